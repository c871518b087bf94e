"""Poisoned outputs: ``torch.empty``/``empty_like``/``new_empty`` called from
``stemseg_fast.kernels`` return NaN-filled (floats) or sentinel-filled (integers) buffers, so an
element a kernel forgets to write fails the comparison (after fla's tests/conftest.py)."""

import functools
import sys

import pytest
import torch

INTEGER_POISON = -123_456_789


def _poison(tensor):
    if tensor.is_floating_point():
        tensor.fill_(float("nan"))
    elif tensor.dtype == torch.bool:
        tensor.fill_(True)
    elif tensor.dtype in (torch.int32, torch.int64):
        tensor.fill_(INTEGER_POISON)
    return tensor


def _poisoning(factory):
    @functools.wraps(factory)
    def poisoned_factory(*args, **kwargs):
        result = factory(*args, **kwargs)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return _poison(result) if caller.startswith("stemseg_fast.kernels") else result

    return poisoned_factory


@pytest.fixture(autouse=True)
def poison_kernel_outputs(monkeypatch):
    monkeypatch.setattr(torch, "empty", _poisoning(torch.empty))
    monkeypatch.setattr(torch, "empty_like", _poisoning(torch.empty_like))
    monkeypatch.setattr(torch.Tensor, "new_empty", _poisoning(torch.Tensor.new_empty))
