"""``convert``: DAVIS-layout folders -> YouTube-VIS JSON, read back with the YouTube-VIS reader."""

import json
import os

import numpy as np
import pytest
from dataset_fixtures import make_davis

from stemseg_fast.cli import main
from stemseg_fast.training.datasets import convert_mask_folders, read_ytvis

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_convert_round_trip_gives_the_same_masks(tmp_path):
    root = str(tmp_path / "mine")
    expected = make_davis(root, resolution=None)
    os.remove(os.path.join(root, "Annotations", "seq_b", "00003.png"))  # an unannotated frame
    out = str(tmp_path / "train.json")
    assert main(["convert", root, "--out", out]) == 0
    data = json.load(open(out))
    assert data["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    assert sum(a["iscrowd"] for a in data["annotations"]) == 2  # void -> crowd, per video
    videos, _ = read_ytvis(out, os.path.join(root, "JPEGImages"))
    for video in videos:
        labels = expected[video.name]
        values = sorted(set(np.unique(labels).tolist()) - {0, 255})
        clip = video.load(list(range(len(video))))
        assert len(video) == 12 and clip.masks.shape[0] == len(values)
        for k, value in enumerate(values):
            for f in range(12):
                if video.name == "seq_b" and f == 3:
                    assert not clip.masks[k, f].any()
                else:
                    np.testing.assert_array_equal(clip.masks[k, f], labels[f] == value)
        frames = [f for f in range(12) if not (video.name == "seq_b" and f == 3)]
        np.testing.assert_array_equal(clip.ignore[frames], labels[frames] == 255)


def test_convert_category_mapping(tmp_path):
    root = str(tmp_path / "mine")
    make_davis(root, resolution=None, sequences=("seq_a",))
    mapping = str(tmp_path / "categories.json")
    json.dump({"*": {"1": "dog", "2": "cat", "3": "dog"}}, open(mapping, "w"))
    result = convert_mask_folders(root, str(tmp_path / "a.json"), categories=mapping)
    names = {c["id"]: c["name"] for c in result["categories"]}
    assert set(names.values()) <= {"dog", "cat"}
    for annotation in result["annotations"]:
        assert annotation["category_id"] in names
    json.dump({"seq_a": {"1": "dog"}}, open(mapping, "w"))
    with pytest.raises(ValueError, match="no entry for mask value 2 of video 'seq_a'"):
        convert_mask_folders(root, str(tmp_path / "b.json"), categories=mapping)
    assert not os.path.exists(str(tmp_path / "b.json"))


def test_convert_errors_are_one_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    assert "JPEGImages does not exist" in capsys.readouterr().err
