"""dfdetect: Keras 3 reference reimplementation of five deepfake-detection papers.

Label convention everywhere: 1 = fake (positive class), 0 = real.
"""

__version__ = "0.1.0"

FAKE = 1
REAL = 0
