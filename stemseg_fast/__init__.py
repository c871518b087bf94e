"""stemseg_fast: STEm-Seg video instance segmentation with Triton kernels for its hot paths."""
__version__ = "0.1.0"

__all__ = ["Predictor"]


def __getattr__(name):
    # Lazy: ``import stemseg_fast`` stays light (no torch/triton import) until the API is used.
    if name == "Predictor":
        from .inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'stemseg_fast' has no attribute {name!r}")
