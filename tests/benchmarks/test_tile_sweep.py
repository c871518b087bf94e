"""The tile sweep (benchmarks/tile_sweep.py) names constants that exist where it sets them, and
a patched recording really launches the kernels at the patched tile."""

import importlib
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import compiled  # noqa: E402
import tile_sweep  # noqa: E402


@pytest.mark.parametrize("constant", tile_sweep.CONSTANTS, ids=lambda c: c.label)
def test_every_swept_constant_is_set_where_it_is_read(constant):
    values = set()
    for target in constant.targets:
        module, name = target.rsplit(".", 1)
        values.add(getattr(importlib.import_module(module), name))
    assert len(values) == 1  # every holder agrees: patching all of them moves one tile
    assert values.pop() in constant.values
    for module in constant.modules:
        importlib.import_module(module)


def test_a_missing_constant_is_refused():
    with pytest.raises(AttributeError, match="has no constant _NO_SUCH_TILE"):
        compiled.apply_patches({"stemseg_fast.kernels.lovasz_hinge._NO_SUCH_TILE": 1})


def test_a_patched_recording_launches_at_the_patched_tile():
    patch = {"stemseg_fast.kernels.greedy_cluster._BLOCK": 512}
    launches = compiled.record_launches([("greedy_cluster", "cpu_small")], patch)
    blocks = {
        launch["kwargs"]["BLOCK"]
        for launch in launches
        if launch["kernel"] == "_greedy_cluster_assign_kernel"
    }
    assert blocks == {512}
