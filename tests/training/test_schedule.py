import pytest

from stemseg_fast.training.config import LoopConfig, ScheduleConfig, from_dict
from stemseg_fast.training.sampler import StepBatchSampler
from stemseg_fast.training.schedule import lr_factor


def test_official_youtube_vis_schedule():
    # 1e-3 until 60k, then x0.01 over 100k -> 1e-5 by the end of 160k steps (youtube_vis.yaml);
    # the official scheduler first multiplies by gamma at the start step itself.
    kwargs = dict(kind="exponential", decay_start=60_000, decay_steps=100_000, decay_factor=0.01)
    gamma = 0.01 ** (1 / 100_000)
    assert lr_factor(59_999, **kwargs) == 1.0
    assert lr_factor(60_000, **kwargs) == pytest.approx(gamma, rel=1e-12)
    assert lr_factor(109_999, **kwargs) == pytest.approx(0.1, rel=1e-9)
    assert lr_factor(159_999, **kwargs) == pytest.approx(0.01, rel=1e-9)


def test_step_and_constant_schedules():
    assert lr_factor(19_999, kind="step", milestones=(20_000, 50_000)) == 1.0
    assert lr_factor(50_000, kind="step", milestones=(20_000, 50_000)) == pytest.approx(0.01)
    assert lr_factor(123, kind="constant") == 1.0
    with pytest.raises(ValueError, match="schedule kind must be"):
        lr_factor(0, kind="cosine")


def test_config_from_dict_rejects_unknown_keys():
    assert from_dict(LoopConfig, {"max_steps": 5}).max_steps == 5
    assert from_dict(ScheduleConfig, {"milestones": [1, 2]}).milestones == (1, 2)
    with pytest.raises(ValueError, match=r"unknown keys \['max_step'\]"):
        from_dict(LoopConfig, {"max_step": 5}, where="loop")


def test_sampler_shards_steps_between_ranks_and_resumes():
    def batches(**kwargs):
        return list(StepBatchSampler(10, global_batch=4, seed=3, max_steps=5, **kwargs))

    single = batches(micro_batch=2)
    rank0 = batches(micro_batch=1, rank=0, world_size=2)
    rank1 = batches(micro_batch=1, rank=1, world_size=2)
    for step in range(5):
        together = sorted(single[2 * step] + single[2 * step + 1])
        assert together == sorted(
            rank0[2 * step] + rank0[2 * step + 1] + rank1[2 * step] + rank1[2 * step + 1]
        )
    # every sample once per epoch: 10 samples, 4 per step
    flat = [i for batch in single for i in batch]
    assert sorted(flat[:10]) == list(range(10))
    assert batches(micro_batch=2, start_step=3) == single[6:]
    with pytest.raises(ValueError, match="multiple of world size"):
        StepBatchSampler(10, global_batch=3, micro_batch=2, max_steps=1)
    with pytest.raises(ValueError, match="empty"):
        StepBatchSampler(0, global_batch=2, micro_batch=1, max_steps=1)
