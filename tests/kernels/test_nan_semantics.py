"""NaN semantics of the Triton kernels match PyTorch's on every device.

The interpreter evaluates tl.maximum / tl.max with numpy, which keeps NaN whatever the kernel
asks for; a GPU runs what the kernel asks for, and tl.maximum's default is the NaN-dropping
``max.f32``. So two checks: the interpreter (or GPU) run against the PyTorch reference on NaN
inputs, and the sm_90 PTX of the kernels whose maximum carries data, which must ask for
``max.NaN.f32`` and contain no NaN-dropping float max or min."""

import importlib
import os
import re
import subprocess
import sys

import pytest
import torch
from helpers import assert_close
from test_hopper_compile import REPO, record_launches

group_norm_relu_pool_module = importlib.import_module("stemseg_fast.kernels.group_norm_relu_pool")
lovasz_hinge_module = importlib.import_module("stemseg_fast.kernels.lovasz_hinge")


def assert_same_nans(result, expected, name):
    result_nan, expected_nan = result.isnan().cpu(), expected.isnan().cpu()
    assert torch.equal(result_nan, expected_nan), (
        f"{name}: NaN at {int(result_nan.sum())} elements, expected {int(expected_nan.sum())}"
    )
    assert_close(result.cpu()[~result_nan], expected.cpu()[~expected_nan], name=name)


@pytest.mark.parametrize(
    "memory_format",
    [torch.contiguous_format, torch.channels_last_3d],
    ids=["ncdhw", "channels-last"],
)
@pytest.mark.parametrize("pool", [False, True])
def test_group_norm_relu_keeps_a_nan_group_nan(pool, memory_format, device, rng):
    # One NaN voxel: its group's statistics and every output of that group are NaN (F.relu and
    # the average keep NaN); the other group is untouched.
    x = torch.randn(1, 4, 3, 5, 6, generator=rng, dtype=torch.float64)
    x[0, 1, 2, 3, 4] = float("nan")
    weight = torch.randn(4, generator=rng, dtype=torch.float64)
    bias = torch.randn(4, generator=rng, dtype=torch.float64)
    expected = group_norm_relu_pool_module.group_norm_relu_pool(
        x, weight, bias, 2, pool=pool, backend="reference"
    )
    assert expected[0, :2].isnan().all() and not expected[0, 2:].isnan().any()
    for dtype in (torch.float32, torch.float64):
        result = group_norm_relu_pool_module.group_norm_relu_pool(
            x.to(device, dtype).contiguous(memory_format=memory_format),
            *(t.to(device, dtype) for t in (weight, bias)),
            2,
            pool=pool,
            backend="triton",
        )
        assert_same_nans(result, expected, f"{dtype} pool={pool}")


def test_lovasz_nan_error_gives_a_nan_loss_and_relu_gradient(device):
    # torch: relu(NaN) = NaN enters the loss; relu's backward lets NaN's gradient through.
    logits = torch.tensor(
        [[2.0, float("nan"), -0.5, 0.25, -3.0], [1.0, 0.5, -1.0, 2.0, 0.0]], dtype=torch.float64
    )
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.bool)
    reference_logits = logits.clone().requires_grad_(True)
    expected = lovasz_hinge_module.lovasz_hinge(reference_logits, labels, backend="reference")
    expected.sum().backward()
    triton_logits = logits.to(device).requires_grad_(True)
    result = lovasz_hinge_module.lovasz_hinge(triton_logits, labels.to(device), backend="triton")
    result.sum().backward()
    assert expected[0].isnan() and not expected[1].isnan()
    assert_same_nans(result, expected, "loss")
    assert not reference_logits.grad.isnan().any()
    assert_close(triton_logits.grad, reference_logits.grad, name="grad of logits")


# ------------------------------------------------------------------------------------------
# What the GPU runs: every kernel the tests above launch, compiled to sm_90 PTX here (no GPU
# needed, with the launch-time specialisation test_hopper_compile.py uses), asks for
# NaN-propagating float max / min only.

NAN_DROPPING = re.compile(r"\b(max|min)(\.ftz)?\.(f32|f16|bf16)\b")
COMPILE_AND_SCAN = """
import json, re, sys
from hopper_compile import specialise_and_compile
dropping = re.compile(sys.argv[2])
for line in open(sys.argv[1]):
    launch = json.loads(line)
    compiled = specialise_and_compile(launch["module"], launch["kernel"], launch["args"],
                                      launch["kwargs"])[0]
    ptx = compiled.asm["ptx"]
    found = sorted(set(m.group(0) for m in dropping.finditer(ptx)))
    print(launch["kernel"], "max.NaN" in ptx or "min.NaN" in ptx, ",".join(found) or "-")
"""


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU run of the tests above checks it")
def test_compiled_kernels_propagate_nan(tmp_path):
    record, compiled_environment = record_launches(tmp_path, os.path.abspath(__file__))
    scanned = subprocess.run(
        [sys.executable, "-c", COMPILE_AND_SCAN, str(record), NAN_DROPPING.pattern],
        cwd=REPO,
        env=compiled_environment,
        capture_output=True,
        text=True,
    )
    assert scanned.returncode == 0, scanned.stderr[-3000:]
    propagating, dropping = set(), {}
    for line in scanned.stdout.splitlines():  # one line per launch: name, NaN max?, dropping
        name, asks_for_nan, found = line.split(" ")
        if asks_for_nan == "True":
            propagating.add(name)
        if found != "-":
            dropping[name] = found
    assert not dropping, f"NaN-dropping float max/min in {dropping}"
    # the fused ReLUs were compiled and ask for the NaN-propagating maximum
    assert {
        "_group_norm_relu_kernel",
        "_group_norm_relu_pool_kernel",
        "_group_norm_relu_channels_last_kernel",
        "_group_norm_relu_pool_channels_last_kernel",
    } <= propagating
