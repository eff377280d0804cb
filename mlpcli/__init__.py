"""mlpcli: multilayer-perceptron classifiers for tabular omics data."""

__version__ = "0.1.0"
