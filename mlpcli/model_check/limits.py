"""The format's name and the versions read, and what a model file may hold at most: the sizes ``read`` checks
before anything is allocated for a claim."""

from __future__ import annotations

FORMAT = "mlpcli-model"
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)


# model.json repeats the feature names 3 + 2K times for K members (170-300 bytes per feature with 5 members,
# by name length), so 32 MiB holds some 110,000-190,000 features in a 5-member ensemble and about three times
# as many in a single network; parsing takes 5-8 times its size in Python objects. `save` refuses to write
# more, so a trained model always loads.
MAX_JSON_BYTES = 32 * 2**20


# JSON containers ({ or [) in model.json: each costs about 60 bytes parsed, so a file of nothing but "{},"
# would take 25 times its size. A long ensemble run has one per member and epoch (10 x 1,000 = 10,000).
MAX_JSON_CONTAINERS = 1_000_000


# Trained weights and statistics are close to incompressible (real files inflate 1.3-2.2 times, model.json
# 3-6 times); a member inflating more than this is a zip bomb. Below RATIO_FREE_BYTES the ratio is not
# judged (small files compress well, and a few MiB cost nothing).
MAX_RATIO = 32
RATIO_FREE_BYTES = 2**20
MAX_MEMBERS = 1024
MAX_HIDDEN_LAYERS = 256
MAX_WIDTH = 2**24  # hidden and output units of one layer
MAX_FEATURES = 2**26  # input features
MAX_NPY_HEADER = 4096  # bytes of a .npy header (NumPy writes 128 for any array mlpcli saves)
TEMPERATURE_RANGE = (1e-3, 1e3)  # fitted temperatures lie in [1/3, 3]
MAX_TRAINING_ROWS = 2**28  # fingerprints of training rows (8 bytes each: 2 GiB at most)
ZIP_SLACK = 2**16 + 512  # archive comment and end records
ENTRY_SLACK = 512  # local and central headers of one archive member, besides its name twice


# A model given through a pipe (``<(curl ...)``, /dev/stdin) is read into memory whole: at most this much.
MAX_STREAMED_BYTES = 2**32
