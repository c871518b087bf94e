"""Convergence check in the manner of Liger-Kernel's ``test/convergence``: a few optimiser steps
of the tiny model from one seed, once with the fused losses (the Triton embedding loss: instance
statistics, probability/hinge-error kernel, Lovász kernels and their backward; the interpreter on
CPU) and once with the reference losses (the official per-instance loop), must follow the same
trajectory. The network is the same (official decoder sequence) in both runs, so only the losses
differ; the fused decoder blocks have their own forward/backward tests.

Tolerance, stated: every per-step loss term within rtol 1e-4 (plus atol 1e-6), and every
parameter after the last step within rtol 1e-3, atol 1e-5. Both runs are float32 and differ only
in summation order (segmented reductions, chunked Lovász sums): rounding at the 1e-7 level per
step, which the steps amplify but must not turn into a different trajectory.
"""

import dataclasses

import numpy as np
import pytest
import torch

from stemseg_fast.model import PRESETS, build_stemseg
from stemseg_fast.synthetic import synthetic_clip
from stemseg_fast.training.datasets import TargetBuilder
from stemseg_fast.training.datasets.collate import collate_clips
from stemseg_fast.training.datasets.samples import RawClip
from stemseg_fast.training.objective import LossConfig, STEmSegObjective

STEPS = 4
LOSS_TOLERANCE = dict(rtol=1e-4, atol=1e-6)
PARAMETER_TOLERANCE = dict(rtol=1e-3, atol=1e-5)

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def training_batch():
    clips = []
    for seed in (1, 2):
        clip = synthetic_clip(num_frames=4, height=64, width=64, num_objects=3, seed=seed)
        masks = np.stack([(clip.instance_ids == k) for k in range(3)]).astype(np.uint8)
        clips.append(
            RawClip(
                clip.frames,
                masks,
                np.zeros(clip.instance_ids.shape, np.uint8),
                tuple(min(c, 2) for c in clip.categories),
                f"synthetic{seed}",
            )
        )
    return collate_clips([TargetBuilder(min_dim=64, max_dim=64)(c) for c in clips])


def trajectory(*, fused, monkeypatch):
    if fused:
        monkeypatch.setenv("STEMSEG_FAST_BACKEND", "triton")
    else:
        monkeypatch.delenv("STEMSEG_FAST_BACKEND", raising=False)
    config = dataclasses.replace(PRESETS["tiny"], num_classes=3)
    torch.manual_seed(42)
    model = build_stemseg(config)
    model.train()
    objective = STEmSegObjective(
        LossConfig(implementation="fused" if fused else "reference"),
        free_dim_precision=config.free_dim_precision,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    batch = training_batch()
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        terms = objective(model, batch)
        terms["total"].backward()
        optimizer.step()
        losses.append({name: float(value.detach()) for name, value in terms.items()})
    return losses, {name: p.detach().clone() for name, p in model.named_parameters()}


def test_fused_and_reference_losses_follow_the_same_trajectory(monkeypatch):
    fused_losses, fused_parameters = trajectory(fused=True, monkeypatch=monkeypatch)
    reference_losses, reference_parameters = trajectory(fused=False, monkeypatch=monkeypatch)
    for step, (got, want) in enumerate(zip(fused_losses, reference_losses)):
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(
                want[name], rel=LOSS_TOLERANCE["rtol"], abs=LOSS_TOLERANCE["atol"]
            ), (step, name)
    # the steps moved the model (else the comparison would be empty)
    assert reference_losses[-1]["total"] < reference_losses[0]["total"]
    for name, want in reference_parameters.items():
        torch.testing.assert_close(fused_parameters[name], want, **PARAMETER_TOLERANCE, msg=name)
