"""The NumPy engine: activations, losses, layers, the MLP, optimizers and gradient checking.

Imports NumPy only: no pandas, Click or rich, so it can be used and tested on its own.
"""

from . import activations, gradcheck, layers, losses, optim
from .network import MLP

__all__ = ["MLP", "activations", "losses", "layers", "optim", "gradcheck"]
