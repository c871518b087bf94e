"""KITTI-MOTS text results and the official post-filter."""

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from stemseg_fast.io import (
    KittiMOTSDetection,
    KittiMOTSFilter,
    filter_kitti_mots_detections,
    kitti_mots_detections,
    kitti_mots_sequence_path,
    postprocess_kitti_mots,
    read_kitti_mots_txt,
    write_kitti_mots_txt,
)
from stemseg_fast.io.rle import encode_mask
from stemseg_fast.tracks import Track, VideoTracks

HEIGHT, WIDTH = 60, 80


def test_lines_parse_and_decode(tmp_path, clip, video_tracks):
    for index, track in enumerate(video_tracks.tracks):
        track.category_id = 1 + index % 2
    path = kitti_mots_sequence_path(tmp_path / "results", 7)
    assert path.endswith("results/0007.txt")
    write_kitti_mots_txt(path, kitti_mots_detections(video_tracks))
    lines = open(path).read().splitlines()
    assert len(lines) == 3 * 6
    assert lines[0].split()[:5] == ["0", "1001", "1", "40", "56"]
    detections = read_kitti_mots_txt(path)
    # track by track (number order), frames increasing
    assert [(d.track_id, d.frame) for d in detections] == [
        (track_id, frame) for track_id in (1001, 2002, 1003) for frame in range(6)
    ]
    for detection in detections:
        index = detection.track_id % 1000 - 1
        assert detection.class_id == detection.track_id // 1000
        mask = mask_utils.decode(detection.rle)
        assert mask.shape == (40, 56)
        assert np.array_equal(mask, clip.instance_ids[detection.frame] == index)


def test_listed_empty_frames_are_written_and_bad_classes_refused():
    masks = {0: np.ones((4, 4), bool), 1: np.zeros((4, 4), bool)}
    video = VideoTracks("v", [Track.from_masks(5, masks, category_id=2)], (4, 4), 2)
    detections = kitti_mots_detections(video)
    assert [(d.frame, d.track_id, d.pixel_area) for d in detections] == [
        (0, 2001, 16),
        (1, 2001, 0),
    ]
    video.tracks[0].category_id = 3
    with pytest.raises(ValueError, match="track 5 has category_id 3, KITTI-MOTS takes 1"):
        kitti_mots_detections(video)


def test_from_line_errors():
    with pytest.raises(ValueError, match=r"f.txt:3: expected 'frame track_id class h w rle' \(6"):
        KittiMOTSDetection.from_line("1 2 3", "f.txt:3")
    with pytest.raises(ValueError, match="first five fields must be integers"):
        KittiMOTSDetection.from_line("1 2 x 4 5 abc")


# ---------------------------------------------------------------------------------------------
# the post-filter on a constructed case


def box_mask(area, box_height=20, box_width=20):
    """A mask whose bounding box is box_height x box_width (top and bottom rows full) and whose
    area is ``area`` pixels."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[0, :box_width] = mask[box_height - 1, :box_width] = 1
    inner = np.zeros((box_height - 2) * box_width, np.uint8)
    inner[: area - 2 * box_width] = 1
    mask[1 : box_height - 1, :box_width] = inner.reshape(box_height - 2, box_width)
    assert mask.sum() == area
    return mask


def detection(frame, track_id, mask):
    counts = encode_mask(mask)["counts"].decode()
    return KittiMOTSDetection(frame, track_id, track_id // 1000, HEIGHT, WIDTH, counts)


def track(track_id, frames, mask):
    return [detection(frame, track_id, mask) for frame in frames]


def kept_frames(detections):
    result = {}
    for d in detections:
        result.setdefault(d.track_id, []).append(d.frame)
    return result


def test_box_ratio_is_pixels_over_the_pycocotools_box():
    d = detection(0, 1001, box_mask(140, 10, 20))
    assert d.pixel_area == 140 and d.pixel_box_area_ratio == pytest.approx(0.7)
    assert detection(0, 1001, np.zeros((HEIGHT, WIDTH), np.uint8)).pixel_box_area_ratio == 0.0


def test_post_filter_drops_what_it_must():
    full_car, full_ped = box_mask(400), box_mask(400)
    detections = (
        track(1001, range(5), full_car)  # kept
        + track(1002, range(5), box_mask(149, 10, 20))  # area < 150: gone
        + track(2001, range(10), box_mask(250))  # area == 250: kept
        + track(2002, range(10), box_mask(249))  # area < 250: gone
        + track(1003, range(5), box_mask(350, 20, 50))  # ratio == 0.35: gone
        + track(1004, range(5), box_mask(351, 20, 50))  # ratio > 0.35: kept
        + track(2003, range(10), box_mask(250, 20, 60))  # ratio 0.208: kept
        + track(2008, range(10), box_mask(300, 25, 60))  # ratio == 0.2: gone
        + track(1005, [0, 1, 3, 5, 7], full_car)  # 3 breaks / 5: gone
        + track(1006, [0, 1, 2, 3, 4, 5, 6, 8, 10, 12], full_car)  # 3 / 10 = 0.3: kept
        + track(2004, [0, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14], full_ped)  # 3 / 12: kept
        + track(2005, [0, 2, 4, 6, 8, 10, 11, 12, 13, 14], full_ped)  # 5 / 10 = 0.5: kept
        + track(2006, [0, 2, 4, 6, 8, 10, 12, 13, 14, 15], full_ped)  # 6 / 10: gone
        + track(1007, [0, 1], full_car)  # length 2 < 3: gone
        + track(1008, [4, 6, 8, 9, 10, 11, 12], full_car)  # 2 / 7 < 0.3: kept
        + track(2007, range(9), full_ped)  # length 9 < 10: gone
        + track(3001, range(20), full_car)  # class 3: gone
    )
    # the area step runs first: a too-small frame makes a break, then too many breaks
    detections += [
        detection(f, 1009, full_car if f != 1 else box_mask(100, 10, 20)) for f in range(4)
    ]  # [0, 2, 3]: 1/3: gone
    # and the length step runs last, on what the area step left
    detections += [
        detection(f, 1010, full_car if f < 2 else box_mask(100, 10, 20)) for f in range(5)
    ]  # 2 left < 3: gone
    kept = kept_frames(filter_kitti_mots_detections(detections))
    assert sorted(kept) == [1001, 1004, 1006, 1008, 2001, 2003, 2004, 2005]
    assert kept[1006] == [0, 1, 2, 3, 4, 5, 6, 8, 10, 12]
    strict = KittiMOTSFilter(min_track_length_car=8, max_time_break_ratio_pedestrian=0.25)
    assert sorted(kept_frames(filter_kitti_mots_detections(detections, strict))) == [
        1006,
        2001,
        2003,
        2004,
    ]


def test_post_filter_orders_tracks_by_first_appearance_and_frames_increasing():
    mask = box_mask(400)
    detections = [
        detection(2, 1002, mask),
        detection(0, 1001, mask),
        detection(0, 1002, mask),
        detection(1, 1002, mask),
        detection(1, 1001, mask),
        detection(2, 1001, mask),
    ]
    assert [(d.track_id, d.frame) for d in filter_kitti_mots_detections(detections)] == [
        (1002, 0),
        (1002, 1),
        (1002, 2),
        (1001, 0),
        (1001, 1),
        (1001, 2),
    ]


def test_postprocess_writes_results_nms_beside_results(tmp_path):
    results = tmp_path / "results"
    write_kitti_mots_txt(
        results / "0000.txt",
        track(1001, range(3), box_mask(400)) + track(1002, range(2), box_mask(400)),
    )
    write_kitti_mots_txt(results / "0001.txt", [])
    written = postprocess_kitti_mots(results)
    assert written == [
        str(tmp_path / "results_nms" / "0000.txt"),
        str(tmp_path / "results_nms" / "0001.txt"),
    ]
    assert [(d.track_id, d.frame) for d in read_kitti_mots_txt(written[0])] == [
        (1001, 0),
        (1001, 1),
        (1001, 2),
    ]
    assert open(written[1]).read() == ""
    with pytest.raises(FileNotFoundError, match="results folder .*nowhere does not exist"):
        postprocess_kitti_mots(tmp_path / "nowhere")


def test_a_failure_mid_write_leaves_no_file(tmp_path):
    def detections():
        yield from track(1001, range(3), box_mask(400))
        raise OSError("stream broke")

    with pytest.raises(OSError, match="stream broke"):
        write_kitti_mots_txt(tmp_path / "0000.txt", detections())
    assert list(tmp_path.iterdir()) == []
