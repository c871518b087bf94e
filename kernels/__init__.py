"""Functional ops of stemseg_fast, like ``torchvision.ops``: tensors in, tensors out.

Every op has a plain PyTorch reference (the spec, the CPU path, the benchmark baseline) and a
Triton implementation; ``backend="auto" | "triton" | "reference"`` picks one (see
:mod:`stemseg_fast.kernels._backend`).
"""

from ._backend import BACKEND_ENV_VAR, BACKENDS, resolve_backend, triton_interpreter_active
from .embedding_loss import (
    LOVASZ_WEIGHT,
    SEEDINESS_WEIGHT,
    SMOOTHNESS_WEIGHT,
    EmbeddingLossTerms,
    SemanticLossTerms,
    embedding_loss,
    embedding_loss_batched_reference,
    embedding_loss_reference,
    semantic_loss,
)
from .gaussian_probability import gaussian_probability, gaussian_probability_reference
from .greedy_cluster import (
    DISTANCE_RULES,
    SECONDARY_RULES,
    GreedyCluster,
    greedy_cluster,
    greedy_cluster_reference,
)
from .instance_gaussians import InstanceGaussians, instance_gaussians, instance_gaussians_reference
from .lovasz_hinge import lovasz_hinge, lovasz_hinge_reference
from .group_norm_relu_pool import (
    group_norm_relu_pool,
    group_norm_relu_pool_reference,
    temporal_avg_pool,
)
from .upsample_add import upsample_add, upsample_add_reference

__all__ = [
    "BACKENDS",
    "BACKEND_ENV_VAR",
    "DISTANCE_RULES",
    "LOVASZ_WEIGHT",
    "SECONDARY_RULES",
    "SEEDINESS_WEIGHT",
    "SMOOTHNESS_WEIGHT",
    "EmbeddingLossTerms",
    "GreedyCluster",
    "InstanceGaussians",
    "SemanticLossTerms",
    "embedding_loss",
    "embedding_loss_batched_reference",
    "embedding_loss_reference",
    "gaussian_probability",
    "gaussian_probability_reference",
    "greedy_cluster",
    "greedy_cluster_reference",
    "group_norm_relu_pool",
    "group_norm_relu_pool_reference",
    "instance_gaussians",
    "instance_gaussians_reference",
    "lovasz_hinge",
    "lovasz_hinge_reference",
    "resolve_backend",
    "semantic_loss",
    "temporal_avg_pool",
    "triton_interpreter_active",
    "upsample_add",
    "upsample_add_reference",
]
