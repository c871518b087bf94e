"""YouTube-VIS / OVIS results JSON."""

import json
import zipfile

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from stemseg_fast.io import (
    read_youtube_vis_results,
    write_youtube_vis_results,
    youtube_vis_predictions,
)
from stemseg_fast.tracks import Track, VideoTracks


def decode(segmentation):
    # straight from the JSON, as the YouTube-VIS evaluation hands it to pycocotools
    return mask_utils.decode(segmentation)


def test_results_load_and_decode_to_the_frame_size(tmp_path, clip, video_tracks):
    path = write_youtube_vis_results(
        tmp_path / "results.json", youtube_vis_predictions(video_tracks)
    )
    loaded = json.loads(open(path).read())
    assert len(loaded) == 3
    for index, entry in enumerate(loaded):
        assert entry["video_id"] == 3 and entry["score"] == 1.0
        assert entry["category_id"] == clip.categories[index]
        assert len(entry["segmentations"]) == 6
        for frame, segmentation in enumerate(entry["segmentations"]):
            assert isinstance(segmentation["counts"], str)
            mask = decode(segmentation)
            assert mask.shape == (40, 56)
            assert np.array_equal(mask, clip.instance_ids[frame] == index)
        areas = mask_utils.area(entry["segmentations"])  # what YTVOS.loadRes computes
        assert areas.tolist() == [int((clip.instance_ids[f] == index).sum()) for f in range(6)]
    assert not list(tmp_path.glob(".*partial*"))


def partial_video():
    """One track present in frames 0 and 2 of 4."""
    masks = np.zeros((4, 5, 6), bool)
    masks[0, 1:3, 1:3] = True
    masks[2, 0, :] = True
    return VideoTracks(
        "partial", [Track.from_masks(1, masks, category_id=7, score=0.3)], (5, 6), 4, video_id=11
    )


def test_absent_frames_empty_rle_or_none():
    empty, none = (
        youtube_vis_predictions(partial_video(), absent=mode)[0]["segmentations"]
        for mode in ("empty", "none")
    )
    assert none[1] is None and none[3] is None
    assert empty[1] == empty[3] and empty[1]["size"] == [5, 6]
    assert decode(empty[1]).sum() == 0 and decode(empty[1]).shape == (5, 6)
    assert empty[0] == none[0] and decode(empty[2]).sum() == 6


def test_video_id_override_and_bad_arguments():
    assert youtube_vis_predictions(partial_video(), video_id=2)[0]["video_id"] == 2
    no_id = partial_video()
    no_id.video_id = None
    with pytest.raises(ValueError, match="video 'partial' has no video_id"):
        youtube_vis_predictions(no_id)
    no_category = partial_video()
    no_category.tracks[0].category_id = None
    with pytest.raises(ValueError, match="track 1 has no category_id"):
        youtube_vis_predictions(no_category)
    with pytest.raises(ValueError, match=r"absent must be one of \('empty', 'none'\), got 'zero'"):
        youtube_vis_predictions(partial_video(), absent="zero")


def test_zip_for_the_server(tmp_path):
    predictions = youtube_vis_predictions(partial_video())
    write_youtube_vis_results(
        tmp_path / "results.json", predictions, zip_path=tmp_path / "results.zip"
    )
    with zipfile.ZipFile(tmp_path / "results.zip") as archive:
        assert archive.namelist() == ["results.json"]
        assert json.loads(archive.read("results.json")) == predictions


def test_a_failure_mid_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("[]")
    predictions = youtube_vis_predictions(partial_video()) * 50 + [{"score": {1, 2}}]
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_youtube_vis_results(path, predictions, zip_path=tmp_path / "results.zip")
    assert path.read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_read_results_checks_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        read_youtube_vis_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"video_id": 1}')
    with pytest.raises(ValueError, match="must hold a list of predictions, got dict"):
        read_youtube_vis_results(bad)
    bad.write_text('[{"video_id": 1, "score": 1}]')
    with pytest.raises(ValueError, match=r"result #0 \(video 1\): missing key 'category_id'"):
        read_youtube_vis_results(bad)
    bad.write_text("[{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_youtube_vis_results(bad)
