"""The STEm-Seg training objective over a batch of clips (official: TrainingModel.forward,
modeling/model_builder.py, and EmbeddingLoss.forward's batch reduction).

Per clip the embedding terms come from :func:`stemseg_fast.kernels.embedding_loss` (fused
Triton on CUDA, the batched reference elsewhere) or, with ``losses="reference"``, from the
official per-instance loop :func:`embedding_loss_reference`; the semantic terms from
:func:`semantic_loss`. The batch reduction is the official one:

    lovasz     = sum of per-instance Lovász terms over the batch / instances in the batch
    smoothness = sum over clips of the per-clip instance mean / clips
    seediness  = (sum of per-instance terms + one background term per clip) / (instances + 1)
    semantic   = mean over clips of the cross-entropy; foreground = mean over clips of the BCE
    total      = 1 lovasz + 10 smoothness + 1 seediness + 1 semantic + 1 foreground
"""
from dataclasses import dataclass

import torch

from stemseg_fast.kernels.embedding_loss import (LOVASZ_WEIGHT, SEEDINESS_WEIGHT,
                                                 SMOOTHNESS_WEIGHT, embedding_loss,
                                                 embedding_loss_reference, semantic_loss)

LOSS_IMPLEMENTATIONS = ("fused", "reference")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (official 1 / 10 / 1 / 1 / 1), implementation and the two ignore options
    (official behaviour by default: see :mod:`stemseg_fast.kernels.embedding_loss`)."""

    implementation: str = "fused"  # "fused": embedding_loss; "reference": official loop
    lovasz_weight: float = LOVASZ_WEIGHT
    smoothness_weight: float = SMOOTHNESS_WEIGHT
    seediness_weight: float = SEEDINESS_WEIGHT
    semantic_weight: float = 1.0
    foreground_weight: float = 1.0
    exclude_ignored_from_lovasz: bool = False
    exclude_ignored_from_cross_entropy: bool = False


def _voxels_last(volume):
    """[C, T, H, W] -> [T*H*W, C]."""
    return volume.flatten(1).t()


class STEmSegObjective:
    """``objective(model, batch) -> dict`` of the loss terms and their weighted ``"total"``.

    Args:
        config (LossConfig): weights, implementation, ignore options.
        free_dim_precision (float): the model's free-dim precision (official 1 / 0.3^2).
    """

    def __init__(self, config, *, free_dim_precision):
        if config.implementation not in LOSS_IMPLEMENTATIONS:
            raise ValueError(f"losses.implementation must be one of {LOSS_IMPLEMENTATIONS}, "
                             f"got {config.implementation!r}")
        self.config = config
        self.free_dim_precision = free_dim_precision

    def _embedding_terms(self, output, batch, clip):
        ids = batch.instance_ids[clip].flatten()
        ignore = batch.ignore[clip].flatten().bool()
        arguments = (_voxels_last(output.embeddings[clip]),
                     _voxels_last(output.log_precisions[clip]),
                     output.seediness[clip, 0].flatten(), ids, ignore,
                     len(batch.categories[clip]))
        options = dict(free_dim_precision=self.free_dim_precision,
                       exclude_ignored_from_lovasz=self.config.exclude_ignored_from_lovasz)
        if self.config.implementation == "reference":
            return embedding_loss_reference(*arguments, **options)
        return embedding_loss(*arguments, **options)

    def __call__(self, model, batch):
        output = model(batch.images)
        config = self.config
        num_clips = batch.images.shape[0]
        lovasz_sum = seediness_sum = smoothness_sum = 0.0
        num_instances = 0
        semantic_terms = []
        for clip in range(num_clips):
            terms = self._embedding_terms(output, batch, clip)
            lovasz_sum = lovasz_sum + terms.lovasz_per_instance.sum()
            seediness_sum = (seediness_sum + terms.seediness_per_instance.sum()
                             + terms.seediness_background)
            smoothness_sum = smoothness_sum + terms.smoothness
            num_instances += int(terms.num_instances)
            if output.semantic_logits is not None:
                logits = _voxels_last(output.semantic_logits[clip])  # [N, C + 1]
                semantic_terms.append(semantic_loss(
                    logits[:, :-1], logits[:, -1], batch.semantic[clip].flatten(),
                    batch.ignore[clip].flatten().bool(),
                    exclude_ignored_from_cross_entropy=config.exclude_ignored_from_cross_entropy))
        losses = {
            "lovasz": lovasz_sum / max(num_instances, 1),
            "smoothness": smoothness_sum / num_clips,
            "seediness": seediness_sum / (num_instances + 1),
        }
        total = (config.lovasz_weight * losses["lovasz"]
                 + config.smoothness_weight * losses["smoothness"]
                 + config.seediness_weight * losses["seediness"])
        if semantic_terms:
            losses["semantic"] = torch.stack([t.cross_entropy for t in semantic_terms]).mean()
            losses["foreground"] = torch.stack([t.foreground for t in semantic_terms]).mean()
            total = (total + config.semantic_weight * losses["semantic"]
                     + config.foreground_weight * losses["foreground"])
        losses["total"] = total
        return losses
