import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from stemseg_fast.inference.stitching import ClipStitcher, joint_histogram, match_clusters


def brute_force_iou(previous, current, foreground):
    """IoU of every (previous id, current id) pair by a double loop over the ids, as the
    official associate_clusters computes it (boolean masks, float32 sums)."""
    previous, current = previous[foreground], current[foreground]
    previous_ids = sorted(set(previous.unique().tolist()) - {-1})
    current_ids = sorted(set(current.unique().tolist()) - {-1})
    iou = {}
    for a in previous_ids:
        for b in current_ids:
            intersection = ((previous == a) & (current == b)).float().sum()
            union = ((previous == a) | (current == b)).float().sum()
            iou[a, b] = (intersection / union).item()
    return iou


def official_stitching(clips):
    """The official OnlineChainer.process/associate_clusters/TrackContainer loop, on
    foreground voxel lists, written independently of the library as the parity oracle.
    ``clips``: (frames, cluster labels [T, H, W] with 0-based clusters, foreground [T, H, W]).
    Returns {frame: labels of its foreground voxels}, {id: pixel count}, {id: lifetime}."""
    stored, highest, next_label, previous_frames = {}, 0, 1, None
    for clip_number, (frames, labels, foreground) in enumerate(clips):
        per_frame = []
        for j in range(len(frames)):
            voxels = labels[j][foreground[j]].long()
            per_frame.append(torch.where(voxels >= 0, voxels + next_label, -1))
        if clip_number == 0:
            overlap, associations = [], []
        else:
            overlap = sorted(set(frames) & set(previous_frames))
            labels_1 = torch.cat([stored[t] for t in overlap])
            labels_2 = torch.cat([per_frame[j] for j, t in enumerate(frames) if t in overlap])
            unique_1 = list(set(labels_1.unique().tolist()) - {-1})
            unique_2 = list(set(labels_2.unique().tolist()) - {-1})
            costs = np.zeros((len(unique_1), len(unique_2)), np.float32)
            for i1, l1 in enumerate(unique_1):
                for i2, l2 in enumerate(unique_2):
                    intersection = ((labels_1 == l1) & (labels_2 == l2)).float().sum()
                    union = ((labels_1 == l1) | (labels_2 == l2)).float().sum()
                    costs[i1, i2] = 1.0 - (intersection / union).item()
            rows, columns = linear_sum_assignment(costs)
            associations = [(unique_1[r], unique_2[c]) for r, c in zip(rows, columns)]
        for j, t in enumerate(frames):
            if t in overlap:
                continue
            voxels = per_frame[j]
            for track_label, cluster_label in associations:
                voxels = torch.where(voxels == cluster_label, track_label, voxels)
            stored[t] = voxels
            if voxels.numel():
                highest = max(highest, int(voxels.max()))
        next_label = highest + 1
        previous_frames = frames
    pixel_counts, spans = {}, {}
    for t in sorted(stored):
        for track in stored[t].unique().tolist():
            if track == -1:
                continue
            pixel_counts[track] = pixel_counts.get(track, 0) + int((stored[t] == track).sum())
            first, last = spans.get(track, (t, t))
            spans[track] = (min(first, t), max(last, t))
    return stored, pixel_counts, {k: last - first for k, (first, last) in spans.items()}


def clip_schedule(num_frames, clip_length, overlap):
    """Official clip starts: 0, stride, ... while a clip fits, then one aligned to the end."""
    stride = clip_length - overlap
    starts = list(range(0, max(num_frames - clip_length, 0) + 1, stride))
    if starts[-1] + clip_length < num_frames:
        starts.append(num_frames - clip_length)
    return [list(range(s, s + clip_length)) for s in starts]


def synthetic_clips(
    rng, *, num_frames=15, clip_length=6, overlap=3, height=9, width=11, num_objects=4, noise=0.15
):
    """Objects that persist over the video; every clip renumbers them at random (its own
    cluster ids), drops some, adds noise and spurious clusters."""
    objects = torch.randint(-1, num_objects, (height, width), generator=rng)
    video = objects.expand(num_frames, height, width).clone()
    shift = torch.randint(0, 2, (num_frames,), generator=rng).cumsum(0)
    for t in range(num_frames):
        video[t] = torch.roll(objects, int(shift[t]), dims=1)
    foreground = (video >= 0) | (torch.rand(video.shape, generator=rng) < 0.1)
    clips = []
    for frames in clip_schedule(num_frames, clip_length, overlap):
        num_clusters = int(torch.randint(1, num_objects + 3, (1,), generator=rng))
        renumber = torch.randint(-1, num_clusters, (num_objects + 1,), generator=rng)
        renumber[0] = -1  # background
        labels = renumber[video[frames] + 1]
        noisy = torch.rand(labels.shape, generator=rng) < noise
        labels[noisy] = torch.randint(-1, num_clusters, (int(noisy.sum()),), generator=rng)
        labels[~foreground[frames]] = -1
        clips.append((frames, labels, foreground[frames]))
    return clips


def test_joint_histogram_matches_brute_force_iou(rng):
    previous = torch.randint(-1, 7, (3, 20, 30), generator=rng)
    current = torch.randint(-1, 5, (3, 20, 30), generator=rng) + 10
    current[current == 9] = -1
    foreground = torch.rand(3, 20, 30, generator=rng) < 0.8
    matching = match_clusters(previous, current, foreground=foreground)
    expected = brute_force_iou(previous, current, foreground)
    computed = {
        (a, b): float(matching.iou[i, j])
        for i, a in enumerate(matching.previous_ids)
        for j, b in enumerate(matching.current_ids)
    }
    assert computed == expected  # exact: the same float32 counts and division
    counts, previous_values, current_values = joint_histogram(
        previous, current, foreground=foreground
    )
    assert int(counts.sum()) == int(foreground.sum())
    assert previous_values.tolist() == sorted(set(previous[foreground].tolist()))
    assert current_values.tolist() == sorted(set(current[foreground].tolist()))


def test_histogram_size_does_not_grow_with_track_ids():
    # ids far along a long video: the table is indexed by the labels present, not the ids
    previous = torch.tensor([[-1, 50_000, 50_000, 70_001]])
    current = torch.tensor([[90_000, 90_000, -1, 90_003]])
    counts, previous_values, current_values = joint_histogram(previous, current)
    assert counts.shape == (3, 3)
    assert counts.tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 1]]
    matching = match_clusters(previous, current)
    assert matching.matches == [(50_000, 90_000), (70_001, 90_003)]


@pytest.mark.fixed_seed(0)
def test_joint_histogram_comparison_can_fail(rng):
    previous = torch.randint(-1, 4, (2, 8, 8), generator=rng)
    current = torch.randint(5, 8, (2, 8, 8), generator=rng)
    foreground = torch.ones(2, 8, 8, dtype=torch.bool)
    matching = match_clusters(previous, current, foreground=foreground)
    shifted = current.clone()
    shifted[0] = torch.roll(shifted[0], 1, dims=0)
    expected = brute_force_iou(previous, shifted, foreground)
    computed = {
        (a, b): float(matching.iou[i, j])
        for i, a in enumerate(matching.previous_ids)
        for j, b in enumerate(matching.current_ids)
    }
    assert computed != expected


@pytest.mark.parametrize(
    "num_frames,clip_length,overlap",
    [
        pytest.param(15, 6, 3, id="stride3-end-aligned"),
        pytest.param(16, 8, 4, id="ytvis-T8-overlap4"),
        pytest.param(12, 8, 6, id="davis-like-overlap6"),
        pytest.param(6, 6, 3, id="single-clip"),
    ],
)
def test_stitcher_matches_official_loop(num_frames, clip_length, overlap, rng):
    clips = synthetic_clips(rng, num_frames=num_frames, clip_length=clip_length, overlap=overlap)
    expected_labels, expected_counts, expected_lifetimes = official_stitching(clips)
    stitcher = ClipStitcher()
    written = {}
    for frames, labels, foreground in clips:
        stitched = stitcher.add_clip(labels, frames, foreground=foreground)
        for t, frame_labels in zip(stitched.frame_indices, stitched.labels):
            assert t not in written, "each frame is handed back once"
            written[t] = frame_labels
    assert sorted(written) == list(range(num_frames))
    foreground_of = {t: fg for frames, _, fgs in clips for t, fg in zip(frames, fgs)}
    for t in range(num_frames):
        assert torch.equal(written[t][foreground_of[t]], expected_labels[t]), f"frame {t}"
        assert (written[t][~foreground_of[t]] == -1).all()
    stats = stitcher.track_stats()
    assert dict(zip(stats.track_ids.tolist(), stats.pixel_counts.tolist())) == expected_counts
    assert dict(zip(stats.track_ids.tolist(), stats.lifetimes.tolist())) == expected_lifetimes


def test_iou_threshold_refuses_weak_matches():
    first = torch.zeros(4, 3, 3, dtype=torch.long)  # cluster 0 -> track 1
    first[:, 0, :] = 1  # top row: cluster 1 -> track 2
    second = torch.full((4, 3, 3), -1, dtype=torch.long)
    second[:, 2, 2] = 0  # inside track 1 on the overlap: IoU 2/12 = 1/6
    second[:2, 0, 0] = 1  # inside track 2 on the overlap: IoU 2/6 = 1/3
    second[2:, 1, 1] = 1
    stitcher = ClipStitcher()
    stitcher.add_clip(first, [0, 1, 2, 3])
    stitched = stitcher.add_clip(second, [2, 3, 4, 5])
    assert stitched.frame_indices == [4, 5]
    assert sorted(stitched.matching.matches) == [(1, 3), (2, 4)]  # proposals k + 3
    assert stitched.cluster_track_ids.tolist() == [1, 2]
    strict = ClipStitcher(iou_threshold=0.2)
    strict.add_clip(first, [0, 1, 2, 3])
    refused = strict.add_clip(second, [2, 3, 4, 5])
    assert refused.cluster_track_ids.tolist() == [3, 2]  # 1/6 < 0.2: cluster 0 opens track 3
    assert refused.labels[0, 2, 2] == 3 and refused.labels[1, 1, 1] == 2


def test_iou_zero_pairs_are_matched_officially_and_refused_with_threshold_zero():
    first = torch.zeros(2, 2, 4, dtype=torch.long)
    first[:, :, 2:] = 1  # tracks 1 (left) and 2 (right)
    first[1, 0, 3] = -1  # an outlier on frame 1
    second = torch.full((2, 2, 4), -1, dtype=torch.long)
    second[:, :, :2] = 0  # cluster 0 on the left: track 1, IoU 1
    second[0, 0, 3] = 1  # frame 1 (overlap): cluster 1 only on the outlier voxel, IoU 0
    second[1, :, 2:] = 1
    official = ClipStitcher()
    official.add_clip(first, [0, 1])
    stitched = official.add_clip(second, [1, 2])
    assert stitched.cluster_track_ids.tolist() == [1, 2]  # IoU 0, still matched to track 2
    assert sorted(stitched.matching.match_ious) == [0.0, 1.0]
    assert (stitched.labels[0, :, 2:] == 2).all()
    fixed = ClipStitcher(iou_threshold=0.0)
    fixed.add_clip(first, [0, 1])
    assert fixed.add_clip(second, [1, 2]).cluster_track_ids.tolist() == [1, 4]


def test_unmatched_clusters_become_new_tracks_and_overlap_keeps_earlier_labels():
    first = torch.zeros(3, 2, 2, dtype=torch.long)  # cluster 0 -> track 1, frames 0-2
    second = torch.full((3, 2, 2), 2, dtype=torch.long)  # cluster 2 everywhere
    second[0] = 5  # frame 2 (overlap) says cluster 5: matched to track 1 ...
    stitcher = ClipStitcher()
    stitcher.add_clip(first, [0, 1, 2])
    assert stitcher.next_track_id == 2
    stitched = stitcher.add_clip(second, [2, 3, 4])
    # ... so cluster 5 takes id 1; cluster 2 is unmatched: proposal 2 + start (2) = 4
    assert stitched.frame_indices == [3, 4]
    assert (stitched.labels == 4).all()
    assert stitched.cluster_track_ids.tolist() == [2, 3, 4, 5, 6, 1]
    stats = stitcher.track_stats()
    assert stats.track_ids.tolist() == [1, 4]
    assert stats.pixel_counts.tolist() == [12, 8]  # frame 2 kept track 1 (the earlier clip)
    assert stats.first_frames.tolist() == [0, 3] and stats.last_frames.tolist() == [2, 4]
    assert stitcher.next_track_id == 5


def test_device_tensors_stay_on_device(device):
    stitcher = ClipStitcher()
    labels = torch.zeros(2, 3, 3, dtype=torch.long, device=device)
    stitched = stitcher.add_clip(labels, [0, 1])
    assert stitched.labels.device == labels.device
    assert stitcher.track_stats().pixel_counts.device == labels.device


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda s: s.add_clip(torch.zeros(2, 3, 3, dtype=torch.long), [0]),
            ValueError,
            r"cluster_labels must have shape \[T=1, H, W\]",
        ),
        (
            lambda s: s.add_clip(torch.zeros(2, 3, 3, dtype=torch.long), [1, 0]),
            ValueError,
            "strictly increasing",
        ),
        (lambda s: s.add_clip(torch.zeros(2, 3, 3), [0, 1]), TypeError, "integer dtype"),
        (lambda s: s.add_clip(torch.full((2, 3, 3), -2), [0, 1]), ValueError, "labels >= -1"),
        (
            lambda s: s.add_clip(
                torch.zeros(2, 3, 3, dtype=torch.long), [0, 1], foreground=torch.ones(2, 3, 3)
            ),
            ValueError,
            "foreground must be",
        ),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call(ClipStitcher())


def test_frames_of_older_clips_are_refused():
    stitcher = ClipStitcher()
    stitcher.add_clip(torch.zeros(2, 2, 2, dtype=torch.long), [0, 1])
    stitcher.add_clip(torch.zeros(2, 2, 2, dtype=torch.long), [2, 3])
    with pytest.raises(ValueError, match=r"frame_indices \[1\] were stored"):
        stitcher.add_clip(torch.zeros(2, 2, 2, dtype=torch.long), [1, 2])
    with pytest.raises(ValueError, match="iou_threshold must be"):
        ClipStitcher(iou_threshold=1.5)
