"""dfdetect: Keras 3 reference reimplementation of five deepfake-detection papers.

Label convention everywhere: 1 = fake (positive class), 0 = real.

The Python API (see :mod:`dfdetect.api`)::

    import dfdetect
    detector = dfdetect.load_detector()        # shipped default, or load_detector("m.keras")
    result = detector.score("clip.mp4")        # result.verdict, result.score, result.frames

``import dfdetect`` stays cheap: the API's names are imported on first use, and
TensorFlow only when a model is loaded.
"""

__version__ = "0.1.0"

FAKE = 1
REAL = 0

#: Names served lazily from dfdetect.api (module __getattr__, PEP 562).
_API = ("Detector", "load_detector", "score_video", "score_image")
__all__ = ["__version__", "FAKE", "REAL", *_API]


def __getattr__(name: str):
    if name in _API:
        from dfdetect import api  # deferred: 'import dfdetect' stays cheap (see above)

        return getattr(api, name)
    raise AttributeError(f"module 'dfdetect' has no attribute {name!r}")
