"""The official selection rules (YouTube-VIS, DAVIS, KITTI-MOTS)."""

from collections import defaultdict

import numpy as np
import pytest

from stemseg_fast.inference.selection import (
    select_davis_tracks,
    select_kitti_mots_tracks,
    select_youtube_vis_tracks,
)

# ---------------------------------------------------------------------------------------------
# Selection rules on a hand-made case
#
#   track id        5   3   8   2   -1 (outlier)
#   first frame     0   2   0   1   0
#   last frame      4   6   1   5   9
#   lifetime        4   4   1   4   9
#   pixel count    10  40   5  20  100
#
# Official dict order (frame by frame, ids ascending within a frame): -1, 5, 8, 2, 3.

IDS = [5, 3, 8, 2, -1]
FIRST = [0, 2, 0, 1, 0]
LAST = [4, 6, 1, 5, 9]
COUNTS = [10, 40, 5, 20, 100]


def test_youtube_vis_rule_by_hand():
    logit_sums = np.array(
        [
            [100.0, 10.0, 30.0],  # id 5: mean over 10 px without bg = [1, 3] -> class 2
            [0.0, 40.0, 40.0],  # id 3: [1, 1], a tie -> the lower class, 1
            [0.0, 0.0, 5.0],  # id 8
            [0.0, 40.0, 20.0],  # id 2: [2, 1] -> class 1
            [0.0, 0.0, 0.0],  # outlier
        ]
    )
    # lifetime 4 for ids 5, 2, 3 (official order 5, 2, 3), then 8 (lifetime 1)
    selection = select_youtube_vis_tracks(IDS, COUNTS, FIRST, LAST, logit_sums, max_tracks=3)
    assert selection.indices.tolist() == [0, 3, 1]
    assert selection.category_ids.tolist() == [2, 1, 1]
    assert selection.scores.tolist() == [0.25, 0.5, 1.0]  # counts 10, 20, 40 over 40
    assert selection.category_probabilities[0] == pytest.approx(
        [np.exp(1) / (np.exp(1) + np.exp(3)), np.exp(3) / (np.exp(1) + np.exp(3))]
    )
    everything = select_youtube_vis_tracks(IDS, COUNTS, FIRST, LAST, logit_sums)
    assert everything.indices.tolist() == [0, 3, 1, 2]  # the outlier never appears
    assert everything.scores.tolist() == [0.25, 0.5, 1.0, 0.125]
    empty = select_youtube_vis_tracks([-1], [3], [0], [0], np.zeros((1, 3)))
    assert len(empty.indices) == 0 and len(empty.scores) == 0


def test_davis_rule_by_hand():
    assert select_davis_tracks(IDS, COUNTS, FIRST, LAST).indices.tolist() == [0, 3, 1, 2]
    assert select_davis_tracks(IDS, COUNTS, FIRST, LAST, max_tracks=2).indices.tolist() == [0, 3]
    with pytest.raises(ValueError, match="max_tracks must be <= 255"):
        select_davis_tracks(IDS, COUNTS, FIRST, LAST, max_tracks=256)


def test_kitti_mots_rule_by_hand():
    votes = np.array(
        [
            [100, 1, 0],  # id 5: car
            [0, 5, 7],  # id 3: pedestrian
            [50, 0, 0],  # id 8: only background votes -> car (the official first key on a tie)
            [0, 3, 3],  # id 2: a tie -> car
            [0, 0, 9],  # outlier
        ]
    )
    # by pixel count: 3 (40), 2 (20), 5 (10), 8 (5); then lifetime ascending, stable:
    # 8 (1), 3 (4), 2 (4), 5 (4)
    selection = select_kitti_mots_tracks(IDS, COUNTS, FIRST, LAST, votes)
    assert selection.indices.tolist() == [2, 1, 3, 0]
    assert selection.category_ids.tolist() == [1, 2, 1, 1]
    assert selection.output_track_ids.tolist() == [1001, 2002, 1003, 1004]
    top = select_kitti_mots_tracks(IDS, COUNTS, FIRST, LAST, votes, max_tracks=2)
    assert top.indices.tolist() == [1, 3]  # ids 3 and 2 (equal lifetimes keep count order)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: select_davis_tracks([1, 2], [1, 1], [0], [0, 1]),
            "first_frames has 1 entries, track_ids has 2",
        ),
        (lambda: select_davis_tracks([1], [1], [3], [2]), "last_frames must be >= first_frames"),
        (
            lambda: select_davis_tracks([[1]], [1], [0], [0]),
            r"track_ids must be 1-D, got shape \[1, 1\]",
        ),
        (
            lambda: select_davis_tracks([1], [1], [0], [0], max_tracks=-1),
            "max_tracks must be an int >= 0",
        ),
        (
            lambda: select_youtube_vis_tracks([1], [0], [0], [0], np.zeros((1, 3))),
            "pixel_counts of kept tracks must be > 0",
        ),
        (
            lambda: select_kitti_mots_tracks([1], [1], [0], [0], np.zeros((1, 1))),
            "class_votes needs a background column",
        ),
        (
            lambda: select_youtube_vis_tracks([1], [1], [0], [0], np.zeros((1, 1))),
            "class_logit_sums needs a background column",
        ),
    ],
)
def test_selection_rules_reject_bad_arrays(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# The rules against the official procedure, re-done from per-frame labels with Python dicts


def official_statistics(frame_labels):
    counts, spans = defaultdict(int), defaultdict(lambda: [10000, -1])
    for frame, labels in enumerate(frame_labels):
        for label in np.unique(labels).tolist():
            counts[label] += int((labels == label).sum())
            spans[label][0] = min(frame, spans[label][0])
            spans[label][1] = max(frame, spans[label][1])
    return counts, {label: span[1] - span[0] for label, span in spans.items()}, spans


def random_frame_labels(generator, num_frames=12, pixels=30, num_labels=9):
    frames = []
    for _ in range(num_frames):
        present = generator.choice(np.arange(-1, num_labels), size=3, replace=False)
        frames.append(generator.choice(present, size=pixels))
    return frames


@pytest.mark.parametrize("seed", range(5))
def test_rules_match_the_official_dict_procedure(seed):
    generator = np.random.default_rng(seed)
    frame_labels = random_frame_labels(generator)
    counts, lifetimes, spans = official_statistics(frame_labels)
    ids = np.array(sorted(counts))
    first = np.array([spans[i][0] for i in ids])
    last = np.array([spans[i][1] for i in ids])
    pixel_counts = np.array([counts[i] for i in ids])
    position = {label: index for index, label in enumerate(ids)}

    by_lifetime = [
        i for i, _ in sorted(lifetimes.items(), key=lambda x: x[1], reverse=True) if i != -1
    ]
    for max_tracks in (3, 20):
        expected = [position[i] for i in by_lifetime[:max_tracks]]
        assert (
            select_davis_tracks(
                ids, pixel_counts, first, last, max_tracks=max_tracks
            ).indices.tolist()
            == expected
        )
        selection = select_youtube_vis_tracks(
            ids, pixel_counts, first, last, np.ones((len(ids), 3)), max_tracks=max_tracks
        )
        assert selection.indices.tolist() == expected

        by_count = [
            i for i, _ in sorted(counts.items(), key=lambda x: x[1], reverse=True) if i != -1
        ][:max_tracks]
        expected = [position[i] for i in sorted(by_count, key=lambda i: lifetimes[i])]
        selection = select_kitti_mots_tracks(
            ids, pixel_counts, first, last, np.ones((len(ids), 3), int), max_tracks=max_tracks
        )
        assert selection.indices.tolist() == expected


def test_ties_follow_first_frame_then_id_not_the_input_order():
    # ids given in another order than (first frame, id) must not change the result
    ids, first, last = np.array([4, 2]), np.array([0, 0]), np.array([3, 3])
    assert select_davis_tracks(ids, [1, 1], first, last).indices.tolist() == [1, 0]  # id 2 first
    assert select_davis_tracks(ids[::-1], [1, 1], first, last).indices.tolist() == [0, 1]
