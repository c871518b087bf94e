"""stemseg_fast: STEm-Seg video instance segmentation with Triton kernels for its hot paths."""

import os

# OpenCV's FFmpeg backend reads this once, at its first use: without it FFmpeg prints its own
# lines when the overlay writer probes an encoder this build lacks (the fallback warns in our
# words). A value the user set wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"

__all__ = ["Predictor", "write_outputs"]


def __getattr__(name):
    # Lazy: ``import stemseg_fast`` stays light (no torch/triton import) until the API is used.
    if name == "Predictor":
        from .inference.predictor import Predictor

        return Predictor
    if name == "write_outputs":
        from .outputs.writing import write_outputs

        return write_outputs
    raise AttributeError(f"module 'stemseg_fast' has no attribute {name!r}")
