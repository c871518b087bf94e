"""Clip sampling, single-instance duplication, video clip datasets, mixing and batching through
a DataLoader with workers."""

import numpy as np
import pytest
import torch
from dataset_fixtures import make_coco, make_davis, make_ytvis

from stemseg_fast.training.datasets import (
    MIXTURES,
    ClipBatch,
    MixedClipDataset,
    PseudoClipDataset,
    TargetBuilder,
    VideoClipDataset,
    clip_frame_indices,
    collate_clips,
    duplicate_single_instance,
    mixture_counts,
    read_coco,
    read_davis,
    read_ytvis,
    sample_video_clips,
)
from stemseg_fast.training.sampler import StepBatchSampler

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.mark.parametrize(
    "length, span, expected",
    [
        (8, 8, [0, 1, 2, 3, 5, 6, 7, 8]),
        (8, 16, [0, 2, 5, 7, 9, 11, 14, 16]),
        (16, 16, [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16]),
    ],
)
def test_clip_frame_offsets_worked_examples(length, span, expected):
    assert clip_frame_indices(0, span, length) == expected
    assert clip_frame_indices(5, span, length) == [5 + e for e in expected]


def test_sampling_skips_short_videos_and_is_proportional():
    rng = np.random.default_rng(0)
    clips = sample_video_clips([9, 10, 40], 100, 8, 8, rng)  # 9 frames <= span + 1: skipped
    videos = [video for video, _ in clips]
    assert len(clips) == 100 and 0 not in videos
    assert videos.count(2) > 2 * videos.count(1)
    for video, frames in clips:
        length = [9, 10, 40][video]
        assert frames[-1] - frames[0] == 8 and frames[-1] < length and len(set(frames)) == 8
    with pytest.raises(ValueError, match="no video has more than frame_span \\+ 1 = 9"):
        sample_video_clips([9, 5], 10, 8, 8, rng)
    with pytest.raises(ValueError, match="clip_length"):
        sample_video_clips([40], 10, 10, 8, rng)


def test_duplication_pastes_a_shifted_copy_and_carves_the_original():
    frames, height, width = 3, 40, 100
    images = np.zeros((frames, height, width, 3), np.uint8)
    mask = np.zeros((frames, height, width), np.uint8)
    mask[:, 10:20, 40:60] = 1  # box width 20: shift 15..20 px, within the 30-px cap
    images[mask.astype(bool)] = 255
    for seed in range(6):
        result = duplicate_single_instance(images, mask, np.random.default_rng(seed))
        out_images, (original, copy) = result
        for t in range(frames):
            assert copy[t].sum() > 0.8 * mask[t].sum()
            columns = np.flatnonzero(copy[t].any(0))
            shift = columns.mean() - 49.5
            assert 15 - 1 <= abs(shift) <= 20 + 1
            rows = np.flatnonzero(copy[t].any(1))
            assert abs(rows.mean() - 14.5) <= 0.25 * 10 + 1
            assert not (original[t] & copy[t]).any()  # the original lost the covered pixels
            np.testing.assert_array_equal(original[t], mask[t] & (1 - copy[t]))
            # bilinear sub-pixel shift (official): edge pixels of the copy blend with the shift
            assert (out_images[t][copy[t].astype(bool)] >= 127).all()


def test_duplication_direction_and_feasibility_rules():
    mask = np.zeros((2, 40, 100), np.uint8)
    mask[:, 10:20, 0:50] = 1  # wide (> 40 %) touching the left edge: shifted further left
    images = np.zeros((2, 40, 100, 3), np.uint8)
    for seed in range(4):
        _, (original, copy) = duplicate_single_instance(images, mask, np.random.default_rng(seed))
        assert original[:, :, 30:50].any()
        assert not copy[:, :, 30:].any()  # the copy moved left (partly out of view)
    spanning = np.zeros((1, 40, 100), np.uint8)
    spanning[0, 5:10, :] = 1
    assert duplicate_single_instance(images[:1], spanning, np.random.default_rng(0)) is None
    assert duplicate_single_instance(images[:1], spanning * 0, np.random.default_rng(0)) is None


def test_video_clip_dataset_end_to_end(tmp_path):
    path, image_root, expected = make_ytvis(str(tmp_path))
    videos, _ = read_ytvis(path, image_root)
    targets = TargetBuilder(min_dim=48, max_dim=96)
    dataset = VideoClipDataset(videos, 6, targets=targets, clip_length=4, frame_span=4, seed=3)
    assert len(dataset) == 6
    clip = dataset[0]
    # 48x64 frames: min_dim 48 keeps the size, padding makes it 64x64
    assert clip.images.shape == (3, 4, 64, 64) and clip.instance_ids.shape == (4, 16, 16)
    assert len(clip.categories) == clip.masks.shape[0] >= 1
    assert torch.equal(dataset[2].images, dataset[2].images)  # deterministic per item
    raw = VideoClipDataset(
        videos, 6, clip_length=4, frame_span=4, seed=3, duplicate_single_instance=False
    ).raw_clip(1)
    name, span = raw.name.split(":")
    first, last = map(int, span.split("-"))
    assert last - first == 4 and raw.images.dtype == np.uint8  # no augmentation on real clips


def test_photometric_jitter_option_changes_only_images(tmp_path):
    path, image_root, _ = make_ytvis(str(tmp_path), num_videos=1)
    videos, _ = read_ytvis(path, image_root)
    plain = VideoClipDataset(videos, 2, clip_length=4, frame_span=4, seed=1)
    jittered = VideoClipDataset(
        videos, 2, clip_length=4, frame_span=4, seed=1, photometric_jitter=True
    )
    a, b = plain.raw_clip(0), jittered.raw_clip(0)
    assert not np.array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)


def test_duplication_cap_is_one_sided_unless_symmetric():
    width = 100
    mask = np.zeros((1, 40, width), np.uint8)
    mask[0, 10:20, 30:75] = 1  # 45 wide: shift 34..45 px > the 30-px cap
    images = np.zeros((1, 40, width, 3), np.uint8)
    shifts = {True: set(), False: set()}
    for symmetric in (False, True):
        for seed in range(12):
            result = duplicate_single_instance(
                images, mask, np.random.default_rng(seed), symmetric_cap=symmetric
            )
            columns = np.flatnonzero(result[1][1, 0].any(0))
            shifts[symmetric].add(
                round(columns.min() - 30) if columns.min() > 30 else round(columns.max() - 74)
            )
    assert max(shifts[False]) <= 30 and min(shifts[False]) < -30  # official: min(shift, cap)
    assert all(abs(s) <= 30 for s in shifts[True])


def test_video_clip_dataset_duplicates_single_instances_on_davis(tmp_path):
    make_davis(str(tmp_path), sequences=("seq_a",))
    video = read_davis(str(tmp_path))[0]
    single = video.__class__(
        **{
            **video.__dict__,
            "categories": video.categories[:1],
            "segmentations": tuple(s[:1] for s in video.segmentations),
        }
    )
    on = VideoClipDataset([single], 3, clip_length=4, frame_span=4, seed=0, category_agnostic=True)
    off = VideoClipDataset(
        [single], 3, clip_length=4, frame_span=4, seed=0, duplicate_single_instance=False
    )
    assert len(off.raw_clip(0).categories) == 1
    clip = on.raw_clip(0)
    assert clip.categories == (1, 1)
    # DAVIS ignores the background; the pasted copy is annotated, so it is not ignored
    copy = clip.masks[1].astype(bool)
    assert copy.any() and not clip.ignore[copy].any()


def test_empty_video_dataset_raises(tmp_path):
    path, image_root, _ = make_ytvis(str(tmp_path), num_videos=1, num_frames=6)
    videos, _ = read_ytvis(path, image_root)
    with pytest.raises(ValueError, match="no video has more than frame_span"):
        VideoClipDataset(videos, 4, clip_length=8, frame_span=8)


def test_mixture_counts_are_exact_and_follow_presets():
    counts = mixture_counts(MIXTURES["youtube_vis"], 101)
    assert sum(counts.values()) == 101 and counts == {"youtube_vis": 61, "coco": 30, "voc": 10}
    assert mixture_counts(MIXTURES["ovis"], 200) == {"ovis": 130, "coco": 70}
    assert sum(mixture_counts(MIXTURES["davis"], 7).values()) == 7
    with pytest.raises(ValueError, match="weights"):
        mixture_counts({"a": -1.0}, 10)


def test_mixed_dataset_through_dataloader_workers(tmp_path):
    path, image_root, _ = make_ytvis(str(tmp_path / "ytvis"))
    coco_path, coco_root = make_coco(str(tmp_path / "coco"))
    targets = TargetBuilder(min_dim=48, max_dim=96)
    counts = mixture_counts(MIXTURES["ovis"], 6)
    mixed = MixedClipDataset(
        {
            "ovis": VideoClipDataset(
                read_ytvis(path, image_root)[0],
                counts["ovis"],
                targets=targets,
                clip_length=4,
                frame_span=4,
            ),
            "coco": PseudoClipDataset(
                read_coco(coco_path, coco_root)[0], counts["coco"], targets=targets, clip_length=4
            ),
        }
    )
    assert len(mixed) == 6 and mixed.source_of(0) == "ovis" and mixed.source_of(5) == "coco"
    loader = torch.utils.data.DataLoader(
        mixed,
        num_workers=2,
        collate_fn=collate_clips,
        batch_sampler=StepBatchSampler(6, global_batch=3, micro_batch=3, max_steps=2),
    )
    batches = list(loader)
    assert len(batches) == 2 and all(isinstance(b, ClipBatch) for b in batches)
    batch = batches[0]
    height, width = batch.images.shape[-2:]
    assert batch.images.shape[:3] == (3, 3, 4)
    assert (
        batch.instance_ids.shape
        == batch.ignore.shape
        == batch.semantic.shape
        == (3, 4, height // 4, width // 4)
    )
    assert batch.instance_ids.dtype == torch.int64 and len(batch.categories) == 3
    for masks, categories in zip(batch.masks, batch.categories):
        assert masks.shape[0] == len(categories)
    single = list(
        torch.utils.data.DataLoader(
            mixed,
            num_workers=0,
            collate_fn=collate_clips,
            batch_sampler=StepBatchSampler(6, global_batch=3, micro_batch=3, max_steps=2),
        )
    )
    assert torch.equal(single[1].images, batches[1].images)  # workers do not change items


def test_collate_pads_mixed_sizes_with_background():
    from stemseg_fast.training.datasets import TrainingClip

    def clip(height, width):
        return TrainingClip(
            torch.ones(3, 2, height, width),
            torch.zeros(2, height // 4, width // 4, dtype=torch.int64),
            torch.ones(2, height // 4, width // 4, dtype=torch.uint8),
            torch.ones(2, height // 4, width // 4, dtype=torch.int64),
            torch.ones(1, 2, height // 4, width // 4, dtype=torch.uint8),
            torch.tensor([1]),
            (height, width),
        )

    batch = collate_clips([clip(32, 64), clip(64, 32)])
    assert batch.images.shape == (2, 3, 2, 64, 64)
    assert batch.images[0, :, :, 32:].abs().sum() == 0
    assert (batch.instance_ids[0, :, 8:] == -1).all()
    assert (batch.instance_ids[1, :, :, 8:] == -1).all()
    assert batch.ignore[0, :, 8:].sum() == 0 and batch.semantic[1, :, :, 8:].sum() == 0
    assert batch.masks[0].shape == (1, 2, 16, 16)
    with pytest.raises(ValueError, match="same length T"):
        collate_clips([clip(32, 32), TrainingClip(torch.ones(3, 3, 32, 32), *[None] * 5, (32, 32))])
