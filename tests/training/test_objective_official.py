"""The batch objective against an independent transcription of the official loss
(tests/official_stemseg.py: ``EmbeddingLoss.forward``, ``CrossEntropyLoss``,
``compute_fg_loss``, ``resize_masks``) on batches of several clips with different instance
counts, overlapping masks and instances whose masks vanish at stride 4.

Targets go through the project's TargetBuilder and collate on one side and the official
``resize_masks`` + ``instance_masks_to_semseg_mask`` on the other; the network output is a fixed
random tensor (a stand-in model), so the comparison is of targets, per-clip terms and the batch
reduction together.
"""

import dataclasses

import numpy as np
import pytest
import torch
from official_stemseg import (
    official_embedding_loss,
    official_resize_masks,
    official_semantic_losses,
    official_semseg_mask,
)

from stemseg_fast.model import STEmSegOutput
from stemseg_fast.training.datasets import TargetBuilder
from stemseg_fast.training.datasets.collate import collate_clips
from stemseg_fast.training.datasets.samples import RawClip
from stemseg_fast.training.objective import LossConfig, STEmSegObjective, embedding_loss_from_masks

FREE_DIM_STDS = (0.3, 0.3)
T, H, W = 2, 32, 64  # padded sizes already: TargetBuilder neither resizes nor pads
NUM_CLASSES = 4  # background + 3


def rectangle(y0, y1, x0, x1):
    mask = np.zeros((T, H, W), np.uint8)
    mask[:, y0:y1, x0:x1] = 1
    return mask


def make_clip(layout, categories, name):
    """layout: list of [T, H, W] masks; the ignore mask is a band at the bottom."""
    masks = np.stack(layout) if layout else np.zeros((0, T, H, W), np.uint8)
    ignore = np.zeros((T, H, W), np.uint8)
    ignore[:, 28:, 40:] = 1
    images = np.zeros((T, H, W, 3), np.uint8)
    return RawClip(images, masks, ignore, tuple(categories), name)


def thin_line():
    """One pixel wide: every stride-4 voxel's 2 x 2 taps include a 0, so it vanishes."""
    mask = np.zeros((T, H, W), np.uint8)
    mask[:, 4:20, 33] = 1
    return mask


def batch_clips(*, middle_vanishes, overlap):
    """Three clips: 3 instances, 1 instance, 4 instances (one vanishing: in the middle or last);
    ``overlap`` makes two instances of the first clip share a block."""
    first = [
        rectangle(2, 14, 2, 22),
        rectangle(6 if overlap else 14, 26, 10 if overlap else 22, 40),
        rectangle(18, 30, 44, 62),
    ]
    second = [rectangle(6, 22, 10, 50)]
    vanishing = thin_line()
    rest = [rectangle(0, 12, 0, 16), rectangle(16, 32, 0, 24), rectangle(4, 28, 44, 60)]
    third = (
        [rest[0], vanishing, rest[1], rest[2]]
        if middle_vanishes
        else [rest[0], rest[1], rest[2], vanishing]
    )
    return [
        make_clip(first, (1, 2, 3), "a"),
        make_clip(second, (2,), "b"),
        make_clip(third, (3, 1, 2, 1), "c"),
    ]


class FixedOutput(torch.nn.Module):
    """Stands in for the network: returns the same (differentiable) output for any input."""

    def __init__(self, num_clips, generator, dtype=torch.float64):
        super().__init__()
        shape = (num_clips, T, H // 4, W // 4)

        def draw(channels, scale):
            return torch.nn.Parameter(
                scale
                * torch.randn((shape[0], channels, *shape[1:]), generator=generator, dtype=dtype)
            )

        self.embeddings = draw(4, 0.4)
        self.log_precisions = draw(2, 0.3)
        self.seediness_logits = draw(1, 1.0)
        self.semantic = draw(NUM_CLASSES + 1, 1.0)

    def forward(self, images):
        return STEmSegOutput(
            self.embeddings,
            self.log_precisions,
            torch.sigmoid(self.seediness_logits),
            self.semantic,
        )


def official_terms(clips, output):
    targets = []
    for clip in clips:
        masks, ignore = official_resize_masks(
            torch.from_numpy(clip.masks), torch.from_numpy(clip.ignore)
        )
        targets.append(
            {
                "masks": masks,
                "ignore_masks": ignore,
                "semseg_masks": official_semseg_mask(masks.bool(), torch.tensor(clip.categories)),
            }
        )
    embedding_map = torch.cat([output.embeddings, output.log_precisions, output.seediness], 1)
    lovasz, smoothness, seediness = official_embedding_loss(
        embedding_map, targets, FREE_DIM_STDS, n_free_dims=2
    )
    semantic, foreground = official_semantic_losses(output.semantic_logits, targets)
    total = lovasz + 10 * smoothness + seediness + semantic + foreground
    return {
        "lovasz": lovasz,
        "smoothness": smoothness,
        "seediness": seediness,
        "semantic": semantic,
        "foreground": foreground,
        "total": total,
    }


def project_and_official(config, *, middle_vanishes, overlap, seed=3):
    clips = batch_clips(middle_vanishes=middle_vanishes, overlap=overlap)
    batch = collate_clips([TargetBuilder(min_dim=H, max_dim=W)(clip) for clip in clips])
    model = FixedOutput(len(clips), torch.Generator().manual_seed(seed))
    ours = STEmSegObjective(config, free_dim_precision=1 / 0.3**2)(model, batch)
    ours_grads = torch.autograd.grad(ours["total"], list(model.parameters()))
    theirs = official_terms(clips, model(None))
    theirs_grads = torch.autograd.grad(theirs["total"], list(model.parameters()))
    return ours, theirs, ours_grads, theirs_grads


def assert_terms_equal(ours, theirs, ours_grads, theirs_grads, rtol=1e-9):
    for name, value in theirs.items():
        torch.testing.assert_close(
            ours[name].double(), value.double(), rtol=rtol, atol=1e-12, msg=name
        )
    for got, want in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(got.double(), want.double(), rtol=1e-7, atol=1e-10)


OFFICIAL_OPTIONS = LossConfig(overlapping_masks=True, official_index_shift=True)


@pytest.mark.parametrize("middle_vanishes", [False, True], ids=["last_vanishes", "middle_vanishes"])
@pytest.mark.parametrize("overlap", [False, True], ids=["disjoint", "overlapping"])
def test_official_options_equal_the_official_loss(middle_vanishes, overlap):
    """With both official options the objective is the official loss, term by term and in
    every gradient, whatever the batch holds."""
    assert_terms_equal(
        *project_and_official(OFFICIAL_OPTIONS, middle_vanishes=middle_vanishes, overlap=overlap)
    )


@pytest.mark.parametrize("implementation", ["fused", "reference"])
def test_default_equals_the_official_loss_where_the_official_code_is_right(implementation):
    """No overlap and only a *last* instance vanishing: the default id-map losses (fused and
    the official-loop reference) are the official batch reduction exactly."""
    config = LossConfig(implementation=implementation)
    assert_terms_equal(*project_and_official(config, middle_vanishes=False, overlap=False))


def test_triton_kernels_in_the_objective_equal_the_official_loss(monkeypatch):
    """The same batch through the Triton embedding loss (the interpreter on CPU)."""
    monkeypatch.setenv("STEMSEG_FAST_BACKEND", "triton")
    assert_terms_equal(
        *project_and_official(LossConfig(), middle_vanishes=False, overlap=False), rtol=1e-7
    )


def test_each_option_is_what_differs():
    """The default fixes exactly what the options restore: a middle instance that vanishes
    changes the Lovász and seediness terms (not the smoothness), overlapping masks change all
    three; each option alone restores its own case. Fixed inputs: these are differences by
    construction, not by chance."""
    ours, theirs, _, _ = project_and_official(LossConfig(), middle_vanishes=True, overlap=False)
    assert not torch.isclose(ours["lovasz"], theirs["lovasz"], rtol=1e-3)
    assert not torch.isclose(ours["seediness"], theirs["seediness"], rtol=1e-3)
    torch.testing.assert_close(ours["smoothness"], theirs["smoothness"], rtol=1e-9, atol=0)
    assert_terms_equal(
        *project_and_official(
            LossConfig(official_index_shift=True), middle_vanishes=True, overlap=False
        )
    )
    ours, theirs, _, _ = project_and_official(LossConfig(), middle_vanishes=False, overlap=True)
    for term in ("lovasz", "smoothness", "seediness"):
        assert not torch.isclose(ours[term], theirs[term], rtol=1e-4), term
    assert_terms_equal(
        *project_and_official(
            LossConfig(overlapping_masks=True), middle_vanishes=False, overlap=True
        )
    )


def test_the_vanishing_instance_really_vanishes():
    clip = batch_clips(middle_vanishes=True, overlap=False)[2]
    built = TargetBuilder(min_dim=H, max_dim=W)(clip)
    assert clip.masks[1].sum() > 0 and built.masks[1].sum() == 0
    assert all(built.masks[k].sum() > 0 for k in (0, 2, 3))


def test_masks_loss_handles_no_instance_and_matches_the_fused_terms(rng):
    """Zero instances: zero loss touching every input (DDP); and on disjoint masks without a
    vanished instance the per-instance loop equals the fused terms per instance."""
    embeddings = torch.randn(40, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    log_precisions = 0.3 * torch.randn(40, 2, generator=rng, dtype=torch.float64)
    seediness = torch.rand(40, generator=rng, dtype=torch.float64)
    empty = embedding_loss_from_masks(
        embeddings, log_precisions, seediness, torch.zeros(0, 40, dtype=torch.bool)
    )
    assert float(empty.total().detach()) == 0 and int(empty.num_instances) == 0
    empty.total().backward()
    assert embeddings.grad is not None
    from helpers import OFFICIAL_PRECISIONS

    from stemseg_fast.kernels.embedding_loss import embedding_loss

    ids = torch.randint(-1, 3, (40,), generator=rng)
    ids[:3] = torch.arange(3)
    masks = ids[None, :] == torch.arange(3)[:, None]
    ignore = torch.rand(40, generator=rng) < 0.2
    loop = embedding_loss_from_masks(
        embeddings, log_precisions, seediness, masks, ignore, official_index_shift=True
    )
    fused = embedding_loss(
        embeddings, log_precisions, seediness, ids, ignore, 3, **OFFICIAL_PRECISIONS
    )
    for field in (
        "lovasz_per_instance",
        "smoothness_per_instance",
        "seediness_per_instance",
        "seediness_background",
        "lovasz",
        "smoothness",
        "seediness",
    ):
        torch.testing.assert_close(
            getattr(loop, field), getattr(fused, field), rtol=1e-9, atol=1e-12, msg=field
        )


def test_loss_options_are_config_fields():
    from stemseg_fast.training.config import from_dict

    names = {f.name for f in dataclasses.fields(LossConfig)}
    assert {"overlapping_masks", "official_index_shift"} <= names
    assert not LossConfig().uses_instance_masks and OFFICIAL_OPTIONS.uses_instance_masks
    read = from_dict(
        LossConfig, {"overlapping_masks": True, "official_index_shift": True}, where="losses"
    )
    assert read == OFFICIAL_OPTIONS
