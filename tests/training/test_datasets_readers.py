"""Readers: YouTube-VIS/OVIS, COCO, DAVIS, KITTI-MOTS on fixture files, and their error paths."""

import json
import os

import numpy as np
import pytest
from dataset_fixtures import make_coco, make_davis, make_kitti, make_ytvis, write_frames

from stemseg_fast.training.datasets import read_coco, read_davis, read_kitti_mots, read_ytvis
from stemseg_fast.io.rle import decode_rle

# pycocotools (2.0.11) under NumPy 2 warns inside its own decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def dense(video, instance, frame):
    rle = video.segmentations[frame][instance]
    return np.zeros((video.height, video.width), np.uint8) if rle is None else decode_rle(rle)


def test_ytvis_reads_rle_uncompressed_polygons_and_nulls(tmp_path):
    path, image_root, expected = make_ytvis(str(tmp_path))
    videos, names = read_ytvis(path, image_root)
    assert names == {1: "class1", 2: "class2", 3: "class3"}
    assert [v.name for v in videos] == ["video0", "video1"]
    for video in videos:
        masks = expected[video.name]
        assert len(video) == 12 and len(video.categories) == 3 and video.categories[2] == 3
        for instance in range(3):
            for frame in range(12):
                np.testing.assert_array_equal(dense(video, instance, frame), masks[instance, frame])
        assert video.segmentations[0][0] is None  # the null entry stays absent
        clip = video.load([0, 3, 5])
        assert clip.images.shape == (3, 48, 64, 3) and clip.images.dtype == np.uint8
        np.testing.assert_array_equal(clip.masks, masks[:, [0, 3, 5]])
        assert not clip.ignore.any()


def test_ytvis_crowd_becomes_ignore(tmp_path):
    path, image_root, expected = make_ytvis(str(tmp_path), num_videos=1)
    data = json.load(open(path))
    crowd = data["annotations"][0].copy()
    crowd.update(id=99, iscrowd=1)
    data["annotations"].append(crowd)
    json.dump(data, open(path, "w"))
    (video,), _ = read_ytvis(path, image_root)
    assert len(video.categories) == 3
    np.testing.assert_array_equal(decode_rle(video.ignore[1]), expected["video0"][0, 1])


def test_ytvis_errors_name_the_file(tmp_path):
    path, image_root, _ = make_ytvis(str(tmp_path), num_videos=1)
    data = json.load(open(path))

    os.remove(os.path.join(image_root, "video0", "00003.jpg"))
    with pytest.raises(ValueError, match=r"ytvis\.json: image file .*00003\.jpg does not exist"):
        read_ytvis(path, image_root)
    write_frames(os.path.join(image_root, "video0"), [np.zeros((48, 64, 3), np.uint8)] * 12)

    wrong = dict(data, videos=[dict(data["videos"][0], height=50)])
    json.dump(wrong, open(path, "w"))
    with pytest.raises(ValueError, match=r"ytvis\.json.*RLE size \[48, 64\] does not match"):
        read_ytvis(path, image_root)

    # annotations consistent with the JSON's size, images of another size
    big = os.path.join(str(tmp_path), "big")
    write_frames(os.path.join(big, "video0"), [np.zeros((40, 64, 3), np.uint8)] * 12)
    json.dump(data, open(path, "w"))
    with pytest.raises(ValueError, match=r"ytvis\.json: image .*00000\.jpg is 64x40 .*64x48"):
        read_ytvis(path, big)

    first = data["annotations"][0]
    short = dict(data, annotations=[dict(first, segmentations=first["segmentations"][:5])])
    json.dump(short, open(path, "w"))
    with pytest.raises(ValueError, match="has 5 segmentations for 12 frames"):
        read_ytvis(path, image_root)

    json.dump(dict(data, annotations=[]), open(path, "w"))
    with pytest.raises(ValueError, match=r"ytvis\.json: no video with an annotated instance"):
        read_ytvis(path, image_root)

    json.dump({"videos": []}, open(path, "w"))
    with pytest.raises(ValueError, match="missing key 'annotations'"):
        read_ytvis(path, image_root)

    with pytest.raises(FileNotFoundError, match="annotation file .*nope.json does not exist"):
        read_ytvis(os.path.join(str(tmp_path), "nope.json"), image_root)


def test_ytvis_size_mismatch_detected_at_load_time_for_later_frames(tmp_path):
    path, image_root, _ = make_ytvis(str(tmp_path), num_videos=1)
    import cv2

    cv2.imwrite(os.path.join(image_root, "video0", "00004.jpg"), np.zeros((10, 10, 3), np.uint8))
    (video,), _ = read_ytvis(path, image_root)  # "first" checks only frame 0's header
    with pytest.raises(ValueError, match=r"00004\.jpg is 10x10"):
        video.load([3, 4])
    with pytest.raises(ValueError, match=r"00004\.jpg is 10x10"):
        read_ytvis(path, image_root, check_sizes="all")


def test_coco_reader_crowd_to_ignore_and_category_map(tmp_path):
    path, image_root = make_coco(str(tmp_path))
    images, names = read_coco(path, image_root)
    assert len(images) == 3
    image, masks, ignore = images[0].load()
    assert image.shape == (40, 56, 3) and masks.shape[1:] == (40, 56)
    assert ignore.sum() == 16 and ignore[:4, :4].all()
    assert len(masks) == len(images[0].categories) and all(m.any() for m in masks)

    kept = read_coco(path, image_root, category_map={images[0].categories[0]: 7})[0]
    assert all(set(sample.categories) == {7} for sample in kept)

    data = json.load(open(path))
    json.dump(
        dict(data, annotations=[a for a in data["annotations"] if a["iscrowd"]]), open(path, "w")
    )
    with pytest.raises(ValueError, match=r"coco\.json: no image with a \(kept\) annotated"):
        read_coco(path, image_root)


def test_davis_reader_background_is_ignore(tmp_path):
    expected = make_davis(str(tmp_path))
    videos = read_davis(str(tmp_path))
    assert [v.name for v in videos] == ["seq_a", "seq_b"]
    for video in videos:
        labels = expected[video.name]
        values = sorted(set(np.unique(labels).tolist()) - {0, 255})
        assert video.categories == (1,) * len(values)
        clip = video.load(list(range(len(video))))
        for k, value in enumerate(values):
            np.testing.assert_array_equal(clip.masks[k], labels == value)
        np.testing.assert_array_equal(clip.ignore, (labels == 0) | (labels == 255))
    only_void = read_davis(str(tmp_path), sequences=["seq_a"], background_as_ignore=False)[0]
    np.testing.assert_array_equal(only_void.load([0]).ignore[0], expected["seq_a"][0] == 255)


def test_davis_errors(tmp_path):
    with pytest.raises(ValueError, match="Annotations.*does not exist"):
        read_davis(str(tmp_path))
    make_davis(str(tmp_path), sequences=("seq_a",))
    os.remove(os.path.join(str(tmp_path), "JPEGImages", "480p", "seq_a", "00002.jpg"))
    with pytest.raises(ValueError, match="no image for annotation frame '00002'"):
        read_davis(str(tmp_path))


def test_kitti_mots_reader_ignore_class_and_gap_split(tmp_path):
    annotation_dir, image_root, masks, ignore = make_kitti(str(tmp_path))
    (video,) = read_kitti_mots(annotation_dir, image_root)
    assert video.categories == (1, 2) and len(video) == 14
    clip = video.load(list(range(14)))
    np.testing.assert_array_equal(clip.masks, masks)
    np.testing.assert_array_equal(clip.ignore, ignore)

    split_root = os.path.join(str(tmp_path), "split")
    annotation_dir, image_root, _, _ = make_kitti(
        split_root, num_frames=20, empty=tuple(range(6, 12))
    )
    videos = read_kitti_mots(annotation_dir, image_root)
    assert [v.name for v in videos] == ["0002_0", "0002_1"]
    assert len(videos[0]) == 6 and videos[1].frame_paths[0].endswith("000012.png")
    assert len(read_kitti_mots(annotation_dir, image_root, split_gap=0)) == 1


def test_kitti_mots_errors(tmp_path):
    annotation_dir, image_root, _, _ = make_kitti(str(tmp_path))
    txt = os.path.join(annotation_dir, "0002.txt")
    lines = open(txt).read().splitlines()
    open(txt, "w").write("\n".join(lines + ["3 1001 1 40"]) + "\n")
    with pytest.raises(
        ValueError, match=r"0002\.txt line \d+: expected 'frame track_id class h w rle'"
    ):
        read_kitti_mots(annotation_dir, image_root)
    open(txt, "w").write("\n".join(lines) + "\n")
    os.remove(os.path.join(image_root, "0002", "000000.png"))
    with pytest.raises(ValueError, match=r"0002\.txt: image file .*000000\.png does not exist"):
        read_kitti_mots(annotation_dir, image_root)
    open(txt, "w").write("")
    with pytest.raises(ValueError, match="no sequence with an annotated car or pedestrian"):
        read_kitti_mots(annotation_dir, image_root)
