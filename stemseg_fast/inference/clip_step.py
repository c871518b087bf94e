"""The two fixed-shape calls of a clip step, the network heads and the clustering, as callables
of tensors alone, so that :class:`~stemseg_fast.inference.graphs.CapturedCalls` can capture
each in a CUDA graph (``cuda_graphs``) and replay it for every clip of its shape.

Neither holds per-video state: a :class:`~stemseg_fast.inference.predictor.Predictor` keeps one
:class:`ClipSteps` for all its videos, so a shape is captured once per predictor.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from stemseg_fast.kernels.greedy_cluster import GreedyCluster
from stemseg_fast.model.embeddings import get_embedding_mode

from .graphs import CapturedCalls
from .masks import EMBEDDING_STRIDE


def network_autocast(device_type: str, autocast_dtype: Optional[torch.dtype]) -> torch.autocast:
    """The network's autocast region: ``autocast_dtype``, or float32 when None. The cast cache
    stays off: a weight cast cached by one call would be freed memory under a graph captured at
    the next (and each weight is cast once per call anyway)."""
    return torch.autocast(
        device_type,
        dtype=autocast_dtype or torch.float32,
        enabled=autocast_dtype is not None,
        cache_enabled=False,
    )


class NetworkHeads:
    """Stacked FPN volumes of one clip -> the model's ``heads`` outputs, in an autocast region
    of its own (:func:`network_autocast`)."""

    def __init__(self, model: torch.nn.Module, autocast_dtype: Optional[torch.dtype]):
        self.model = model
        self.autocast_dtype = autocast_dtype

    def __call__(self, *volumes: torch.Tensor):
        with network_autocast(volumes[0].device.type, self.autocast_dtype):
            return self.model.heads(list(volumes))


def upsample_clip(volume: torch.Tensor) -> torch.Tensor:
    """[C, T, h, w] -> x4 in space, time scale 1 (official ``OnlineChainer.resize_tensors``)."""
    return F.interpolate(
        volume[None],
        scale_factor=(1, EMBEDDING_STRIDE, EMBEDDING_STRIDE),
        mode="trilinear",
        align_corners=False,
    )[0]


class ClipClustering:
    """One clip's stride-4 embeddings [E, T, h, w], predicted precisions [E - F, T, h, w]
    (already 10 exp(r)), seediness [1, T, h, w] and foreground [T, H, W] at clustering
    resolution -> cluster labels [T, H, W] int64 (official ``OnlineChainer`` clustering step).

    At full resolution (official ``--resize_embeddings``) the volumes are upsampled x4 first;
    the F free dims take the config's ``free_dim_precision``. The clustering reads the volumes
    where they are: no [N, E] copy, no constant block for the free dims.
    """

    def __init__(self, config, backend: str):
        inference = config.inference
        self.full_resolution = inference.cluster_at_full_resolution
        num_free_dims = get_embedding_mode(config.embedding_mode).num_free_dims
        self.clustering = GreedyCluster(
            min_seediness=inference.min_seediness,
            prob_threshold=inference.primary_prob_threshold,
            secondary_threshold=inference.secondary_prob_threshold,
            max_instances=inference.max_instances_per_clip,
            distance_rule=inference.distance_rule,
            secondary_rule=inference.secondary_rule,
            free_dim_precision=config.free_dim_precision if num_free_dims else None,
            backend=backend,
        )

    def __call__(
        self,
        embeddings: torch.Tensor,
        precisions: torch.Tensor,
        seediness: torch.Tensor,
        foreground: torch.Tensor,
    ) -> torch.Tensor:
        if self.full_resolution:
            embeddings, precisions, seediness = map(
                upsample_clip, (embeddings, precisions, seediness)
            )
        # [N, E] and [N, E - F] views of the channel-first volumes (strides (1, N)), read in
        # place; the kernel gives the free dims their constant bandwidth itself.
        labels = self.clustering(
            embeddings.flatten(1).t(),
            precisions.flatten(1).t(),
            seediness.reshape(-1),
            foreground.reshape(-1),
        )
        return labels.view(foreground.shape)


class ClipSteps:
    """The heads and the clustering of a clip step, each through :class:`CapturedCalls`
    (captured per input signature when ``cuda_graphs`` is set, called directly otherwise).

    Args:
        model: the STEm-Seg model (its ``heads``).
        config: its :class:`~stemseg_fast.model.STEmSegConfig` with the inference constants
            the clustering uses.
        backend: kernel backend of the clustering.
        autocast_dtype: the heads' autocast dtype, or None for float32.
        cuda_graphs: capture and replay CUDA graphs (CUDA inputs only).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config,
        *,
        backend: str,
        autocast_dtype: Optional[torch.dtype],
        cuda_graphs: bool = False,
    ):
        self.heads = CapturedCalls(
            NetworkHeads(model, autocast_dtype), name="heads", enabled=cuda_graphs
        )
        self.cluster = CapturedCalls(
            ClipClustering(config, backend), name="clustering", enabled=cuda_graphs
        )

    def counts(self) -> dict:
        """Captures, replays and eager calls of each step so far."""
        return {"heads": dict(self.heads.counts), "clustering": dict(self.cluster.counts)}
