"""StageTimer: stages partition the timeline; on CUDA from events, read without a synchronize."""

import pytest
import torch

from stemseg_fast.inference import pipeline
from stemseg_fast.inference.pipeline import STAGES, StageTimer


def test_each_stage_is_charged_the_time_since_the_last_boundary(monkeypatch):
    clock = iter([10.0, 10.5, 12.0, 20.0, 21.0, 21.25])
    monkeypatch.setattr(pipeline.time, "perf_counter", lambda: next(clock))
    timer = StageTimer("cpu")  # 10.0
    timer.charge("decode")  # 10.5
    timer.charge("heads")  # 12.0
    timer.restart()  # 20.0: the 8 s in between belong to no stage
    timer.charge("heads")  # 21.0
    timer.charge("outputs")  # 21.25
    assert timer.totals() == dict(dict.fromkeys(STAGES, 0.0), decode=0.5, heads=2.5, outputs=0.25)


@pytest.mark.gpu
def test_cuda_stages_are_read_from_events_without_synchronising():
    timer = StageTimer("cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2 * StageTimer._FOLD_EVERY):  # past a fold of completed pairs
            torch.cuda._sleep(1000)
            timer.charge("heads")
            timer.charge("decode")  # nothing queued: the device is still busy with heads
        torch.cuda._sleep(50_000_000)  # tens of milliseconds of device time
        timer.charge("backbone")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    totals = timer.totals()
    assert totals["backbone"] > totals["decode"]
    assert totals["heads"] > 0 and totals["clustering"] == 0.0
