"""stemseg_fast: STEm-Seg video instance segmentation with Triton kernels for its hot paths."""
__version__ = "0.1.0"
