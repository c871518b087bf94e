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

Two official behaviours of the embedding loss are named options; both run the per-instance
loop :func:`embedding_loss_from_masks` on the clip's per-instance stride-4 masks (``batch.masks``)
instead of the id map, so they are never fused:

* ``overlapping_masks``: a voxel covered by two instances counts in both instances' sets (the
  official targets keep per-instance masks; the id map gives such a voxel to the higher index).
* ``official_index_shift``: the official loop pairs the n-th *non-empty* instance's Gaussian
  with ``masks[n]``. When a mask vanishes in the x1/4 downsampling (small, thin or briefly
  visible objects, with correct annotations), the instance after it loses its Lovász and
  seediness terms and every later one is scored against the previous instance's mask. The
  default indexes every term by the instance itself.
"""

from dataclasses import dataclass
from typing import Dict, Optional

import torch

import torch.nn.functional as F

from stemseg_fast.kernels.embedding_loss import (
    LOVASZ_WEIGHT,
    SEEDINESS_WEIGHT,
    SMOOTHNESS_WEIGHT,
    EmbeddingLossTerms,
    embedding_loss,
    embedding_loss_reference,
    semantic_loss,
)
from stemseg_fast.kernels.lovasz_hinge import lovasz_hinge_reference
from stemseg_fast.model.embeddings import FREE_DIM_PRECISION, PRECISION_SCALE

from .datasets.collate import ClipBatch

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
    overlapping_masks: bool = False  # official per-instance masks (module docstring)
    official_index_shift: bool = False  # official pairing when a mask vanishes at x1/4

    @property
    def uses_instance_masks(self) -> bool:
        return self.overlapping_masks or self.official_index_shift


def embedding_loss_from_masks(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    seediness: torch.Tensor,
    masks: torch.Tensor,
    ignore_mask: Optional[torch.Tensor] = None,
    *,
    free_dim_precision: float = FREE_DIM_PRECISION,
    official_index_shift: bool = False,
    exclude_ignored_from_lovasz: bool = False,
) -> EmbeddingLossTerms:
    """The official per-instance loop of one clip on per-instance masks (official
    ``EmbeddingLoss.forward``), in plain PyTorch: masks may overlap, and with
    ``official_index_shift`` the n-th non-empty instance's Gaussian is scored against
    ``masks[n]`` (see the module docstring).

    Args:
        embeddings (Tensor[N, E]), log_precisions (Tensor[N, E-F]), seediness (Tensor[N]): as
            :func:`embedding_loss`.
        masks (Tensor[I, N], bool): per-instance stride-4 masks, possibly overlapping.
        ignore_mask (Tensor[N], bool, optional).

    Returns:
        EmbeddingLossTerms; the per-instance fields hold loop position n (the n-th non-empty
        instance's Gaussian), 0 where that position was skipped or does not exist.
    """
    dtype = torch.promote_types(
        torch.promote_types(embeddings.dtype, log_precisions.dtype), torch.float32
    )
    embeddings, log_precisions = embeddings.to(dtype), log_precisions.to(dtype)
    seediness = seediness.to(dtype)
    masks = masks.bool()
    num_dims, num_variance_dims = embeddings.shape[1], log_precisions.shape[1]
    free = embeddings.new_full((num_dims - num_variance_dims,), free_dim_precision)
    zero = embeddings.new_zeros(())
    nonempty = [k for k in range(masks.shape[0]) if bool(masks[k].any())]
    kept = None
    if exclude_ignored_from_lovasz and ignore_mask is not None:
        kept = ~(ignore_mask & ~masks.any(0))
    per_instance = {name: [zero] * masks.shape[0] for name in ("lovasz", "smoothness", "seed")}
    for n, k in enumerate(nonempty):
        members = masks[k]  # [N]
        own_log_precisions = log_precisions[members]  # [n_k, E-F]
        if num_variance_dims:
            per_instance["smoothness"][n] = (
                (own_log_precisions - own_log_precisions.mean(0)).square().mean()
            )
        precision = torch.cat([(PRECISION_SCALE * own_log_precisions.exp()).mean(0), free])
        prob = torch.exp(
            -0.5 * ((embeddings - embeddings[members].mean(0)).square() * precision).sum(1)
        )  # [N]
        target = masks[n] if official_index_shift else members
        if not bool(target.any()):  # official: skips Lovász and seediness of this Gaussian
            continue
        logits, labels = 2.0 * prob - 1.0, target
        if kept is not None:
            logits, labels = logits[kept], labels[kept]
        per_instance["lovasz"][n] = lovasz_hinge_reference(logits[None], labels[None])[0]
        per_instance["seed"][n] = F.mse_loss(seediness[members], prob[members].detach())
    background = ~masks.any(0)  # [N]
    background_seediness = seediness[background].square()
    if ignore_mask is not None:
        background_seediness = background_seediness.masked_fill(ignore_mask[background], 0)
    count = len(nonempty)
    has_instances = count > 0 and bool(background.any())
    seediness_background = background_seediness.mean() if has_instances else zero
    stack = (lambda terms: torch.stack(terms)) if masks.shape[0] else (lambda _: zero.new_zeros(0))
    lovasz, smoothness, seed = (
        stack(per_instance[name]) for name in ("lovasz", "smoothness", "seed")
    )
    if count == 0:
        touch = (embeddings.sum() + log_precisions.sum() + seediness.sum()) * 0.0
        return EmbeddingLossTerms(
            touch, touch, touch, lovasz, smoothness, seed, zero, torch.tensor(0)
        )
    return EmbeddingLossTerms(
        lovasz.sum() / count,
        smoothness.sum() / count,
        (seed.sum() + seediness_background) / (count + 1),
        lovasz,
        smoothness,
        seed,
        seediness_background,
        torch.tensor(count),
    )


def _voxels_last(volume):
    """[C, T, H, W] -> [T*H*W, C]."""
    return volume.flatten(1).t()


class STEmSegObjective:
    """``objective(model, batch) -> dict`` of the loss terms and their weighted ``"total"``.

    Args:
        config (LossConfig): weights, implementation, ignore options.
        free_dim_precision (float): the model's free-dim precision (official 1 / 0.3^2).
    """

    def __init__(self, config: LossConfig, *, free_dim_precision: float) -> None:
        if config.implementation not in LOSS_IMPLEMENTATIONS:
            raise ValueError(
                f"losses.implementation must be one of {LOSS_IMPLEMENTATIONS}, "
                f"got {config.implementation!r}"
            )
        self.config = config
        self.free_dim_precision = free_dim_precision

    def _embedding_terms(self, output, batch, clip):
        ids = batch.instance_ids[clip].flatten()
        ignore = batch.ignore[clip].flatten().bool()
        arguments = (
            _voxels_last(output.embeddings[clip]),
            _voxels_last(output.log_precisions[clip]),
            output.seediness[clip, 0].flatten(),
            ids,
            ignore,
            len(batch.categories[clip]),
        )
        options = dict(
            free_dim_precision=self.free_dim_precision,
            exclude_ignored_from_lovasz=self.config.exclude_ignored_from_lovasz,
        )
        fused_options = dict(options, precision_scale=PRECISION_SCALE)
        if self.config.uses_instance_masks:
            masks = batch.masks[clip].flatten(1)  # [I, N]
            if not self.config.overlapping_masks:  # the id map's precedence, as the default
                instance_range = torch.arange(masks.shape[0], device=ids.device)
                masks = ids[None, :] == instance_range[:, None]
            return embedding_loss_from_masks(
                *arguments[:3],
                masks,
                ignore,
                **options,
                official_index_shift=self.config.official_index_shift,
            )
        if self.config.implementation == "reference":
            return embedding_loss_reference(*arguments, **fused_options)
        return embedding_loss(*arguments, **fused_options)

    def __call__(self, model: torch.nn.Module, batch: ClipBatch) -> Dict[str, torch.Tensor]:
        output = model(batch.images)
        config = self.config
        num_clips = batch.images.shape[0]
        lovasz_sum = seediness_sum = smoothness_sum = 0.0
        num_instances = 0
        semantic_terms = []
        for clip in range(num_clips):
            terms = self._embedding_terms(output, batch, clip)
            lovasz_sum = lovasz_sum + terms.lovasz_per_instance.sum()
            seediness_sum = (
                seediness_sum + terms.seediness_per_instance.sum() + terms.seediness_background
            )
            smoothness_sum = smoothness_sum + terms.smoothness
            num_instances += int(terms.num_instances)
            if output.semantic_logits is not None:
                logits = _voxels_last(output.semantic_logits[clip])  # [N, C + 1]
                semantic_terms.append(
                    semantic_loss(
                        logits[:, :-1],
                        logits[:, -1],
                        batch.semantic[clip].flatten(),
                        batch.ignore[clip].flatten().bool(),
                        exclude_ignored_from_cross_entropy=config.exclude_ignored_from_cross_entropy,
                    )
                )
        losses = {
            "lovasz": lovasz_sum / max(num_instances, 1),
            "smoothness": smoothness_sum / num_clips,
            "seediness": seediness_sum / (num_instances + 1),
        }
        total = (
            config.lovasz_weight * losses["lovasz"]
            + config.smoothness_weight * losses["smoothness"]
            + config.seediness_weight * losses["seediness"]
        )
        if semantic_terms:
            losses["semantic"] = torch.stack([t.cross_entropy for t in semantic_terms]).mean()
            losses["foreground"] = torch.stack([t.foreground for t in semantic_terms]).mean()
            total = (
                total
                + config.semantic_weight * losses["semantic"]
                + config.foreground_weight * losses["foreground"]
            )
        losses["total"] = total
        return losses
