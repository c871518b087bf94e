"""The result types: Track and VideoTracks."""

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from stemseg_fast.tracks import Track, VideoTracks, tracks_from_label_maps

# ---------------------------------------------------------------------------------------------
# Track / VideoTracks


def test_track_round_trips_masks_and_decodes_lazily():
    masks = np.zeros((5, 6, 7), dtype=bool)
    masks[1, 1:3, 2:5] = True
    masks[3, 4:, :2] = True
    track = Track.from_masks(4, masks, category_id=2, score=0.5)
    assert track.frames == (1, 3) and track.first_frame == 1 and track.last_frame == 3
    assert track.frame_size == (6, 7)
    assert track.pixel_count == 6 + 4 and track.area(1) == 6 and track.area(0) == 0
    for frame in range(5):
        assert np.array_equal(track.mask(frame), masks[frame].astype(np.uint8))
    assert track.rle(0) is None and isinstance(track.rle(1)["counts"], bytes)
    assert track.bbox(1) == (2, 1, 3, 2) and track.bbox(3) == (0, 4, 2, 2)
    assert track.bbox(0) == (0, 0, 0, 0)
    assert repr(track) == "Track(track_id=4, category_id=2, score=0.500, frames=2)"


def test_track_from_a_dict_keeps_listed_empty_frames_and_takes_tensors():
    empty = torch.zeros(4, 4, dtype=torch.bool)
    full = torch.ones(4, 4, dtype=torch.bool)
    track = Track.from_masks(1, {2: empty, 0: full})
    assert track.frames == (0, 2) and track.area(2) == 0 and track.pixel_count == 16


def test_track_accepts_json_rles_and_rejects_wrong_sizes():
    rle = mask_utils.encode(np.asfortranarray(np.eye(3, dtype=np.uint8)))
    as_json = {"size": rle["size"], "counts": rle["counts"].decode()}
    assert np.array_equal(Track(1, (3, 3), {0: as_json}).mask(0), np.eye(3))
    with pytest.raises(ValueError, match=r"track 1: the mask of frame 0 is \[3, 3\].*\[4, 3\]"):
        Track(1, (4, 3), {0: as_json})
    with pytest.raises(ValueError, match=r"masks must have shape \[T, H, W\]"):
        Track.from_masks(1, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="track 2: masks is an empty dict"):
        Track.from_masks(2, {})


def test_video_tracks_label_map_later_track_wins_and_checks_tracks():
    first = np.zeros((2, 4, 4), bool)
    first[0, :2] = True
    second = np.zeros((2, 4, 4), bool)
    second[0, 1:3] = True
    second[1, 3] = True
    video = VideoTracks("v", [Track.from_masks(7, first), Track.from_masks(3, second)], (4, 4), 2)
    expected = np.zeros((4, 4), np.int32)
    expected[0], expected[1:3] = 1, 2
    assert np.array_equal(video.label_map(0), expected)
    assert video.label_map(1)[3].tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="track 7 has masks of size"):
        VideoTracks("v", [Track.from_masks(7, first)], (5, 4), 2)
    with pytest.raises(ValueError, match="track 3 has a mask in frame 1, the video has 1 frames"):
        VideoTracks("v", [Track.from_masks(3, second)], (4, 4), 1)


def test_tracks_from_label_maps():
    labels = np.full((3, 4, 5), -1)
    labels[0, 0, 0] = 0
    labels[2, 1:, 1:] = 4
    video = tracks_from_label_maps(labels, name="gt", background=-1, categories={4: 2}, fps=10)
    assert [t.track_id for t in video.tracks] == [0, 4]
    assert video.tracks[1].category_id == 2 and video.tracks[0].category_id is None
    assert video.tracks[1].frames == (2,) and video.tracks[1].pixel_count == 12
    assert video.num_frames == 3 and video.frame_size == (4, 5) and video.fps == 10
