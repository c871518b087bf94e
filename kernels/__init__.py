"""Functional ops of stemseg_fast, like ``torchvision.ops``: tensors in, tensors out.

Every op has a plain PyTorch reference (the spec, the CPU path, the benchmark baseline) and a
Triton implementation; ``backend="auto" | "triton" | "reference"`` picks one (see
:mod:`stemseg_fast.kernels._backend`).
"""
from ._backend import BACKEND_ENV_VAR, BACKENDS, resolve_backend, triton_interpreter_active
from .embedding_mixing import (EMBEDDING_MODES, EmbeddingMode, get_embedding_mode,
                               mix_embeddings, spatiotemporal_grid)
from .instance_gaussians import (FREE_DIM_PRECISION, PRECISION_SCALE, InstanceGaussians,
                                 instance_gaussians, instance_gaussians_reference)

__all__ = [
    "BACKENDS",
    "BACKEND_ENV_VAR",
    "EMBEDDING_MODES",
    "EmbeddingMode",
    "FREE_DIM_PRECISION",
    "InstanceGaussians",
    "PRECISION_SCALE",
    "get_embedding_mode",
    "instance_gaussians",
    "instance_gaussians_reference",
    "mix_embeddings",
    "resolve_backend",
    "spatiotemporal_grid",
    "triton_interpreter_active",
]
