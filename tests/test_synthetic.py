import json

import numpy as np
from pycocotools import mask as mask_utils

from stemseg_fast.synthetic import OCCLUSION_LABELS, synthetic_video, write_synthetic_dataset


def test_synthetic_video_is_deterministic_and_objects_cross():
    first, second = synthetic_video(seed=11), synthetic_video(seed=11)
    assert np.array_equal(first.frames, second.frames)
    assert np.array_equal(first.instance_ids, second.instance_ids)
    labels = {label for per_object in first.occlusion for label in per_object if label}
    assert labels <= set(OCCLUSION_LABELS)


def test_occlusion_labels_follow_the_visible_fraction():
    # Over many videos every level appears, and an object is labelled exactly where visible.
    seen = set()
    for seed in range(12):
        video = synthetic_video(seed=seed)
        for index, labels in enumerate(video.occlusion):
            visible = (video.instance_ids == index).any(axis=(1, 2))
            assert [label is not None for label in labels] == visible.tolist()
            seen.update(label for label in labels if label)
    assert seen == set(OCCLUSION_LABELS)


def test_dataset_files_match_the_annotations(tmp_path):
    annotations = write_synthetic_dataset(
        tmp_path, 2, split="val", num_frames=5, height=32, width=48
    )
    assert json.loads((tmp_path / "annotations.json").read_text()) == annotations
    video = annotations["videos"][0]
    assert len(video["file_names"]) == 5
    assert (tmp_path / "JPEGImages" / video["file_names"][0]).is_file()
    for annotation in annotations["annotations"]:
        assert len(annotation["segmentations"]) == len(annotation["occlusion"]) == 5
        for segmentation, occlusion in zip(annotation["segmentations"], annotation["occlusion"]):
            assert (segmentation is None) == (occlusion is None)
            if segmentation is not None:
                assert mask_utils.decode(
                    dict(segmentation, counts=segmentation["counts"].encode())
                ).shape == (32, 48)
    train = write_synthetic_dataset(
        tmp_path / "train", 2, split="train", num_frames=5, height=32, width=48
    )
    assert train["annotations"] != annotations["annotations"]  # disjoint seeds
