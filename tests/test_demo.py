"""The embedded default: the bundled model on held-out synthetic videos, through the whole
pipeline (synthesize -> infer -> eval), reaches the AP the README states."""

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from stemseg_fast.cli import main
from stemseg_fast.demo import BUNDLED_CHECKPOINT
from stemseg_fast.model.checkpoints import load_checkpoint
from stemseg_fast.synthetic import synthetic_clip

STATED_AP50 = 0.5  # README "Embedded default"; the bundled model measured above this


def test_synthetic_clip_is_deterministic_and_consistent():
    first, second = synthetic_clip(seed=3), synthetic_clip(seed=3)
    assert np.array_equal(first.frames, second.frames)
    assert np.array_equal(first.instance_ids, second.instance_ids)
    assert first.frames.shape == (8, 64, 96, 3) and first.frames.dtype == np.uint8
    assert set(np.unique(first.instance_ids)) <= {-1, 0, 1, 2}
    assert not np.array_equal(first.frames, synthetic_clip(seed=4).frames)


def test_bundled_model_is_the_tiny_synthetic_preset():
    model = load_checkpoint(BUNDLED_CHECKPOINT)
    assert model.config.name == "tiny" and model.config.num_classes == 4
    assert model.config.category_names == ("disc", "square", "triangle")


@pytest.mark.slow
def test_bundled_model_reaches_the_stated_ap_through_the_whole_pipeline(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--videos", "6"]) == 0
    scores = json.loads((tmp_path / "ap.json").read_text())
    assert scores["summary"]["ap50"] >= STATED_AP50, scores["summary"]
    output = capsys.readouterr().out
    assert "frames per second" in output and "Average Precision" in output

    annotations = json.loads((tmp_path / "synthetic_val" / "annotations.json").read_text())
    results = json.loads((tmp_path / "predictions" / "results.json").read_text())
    assert {r["video_id"] for r in results} <= {v["id"] for v in annotations["videos"]}
    for result in results[:5]:
        for segmentation in result["segmentations"]:
            rle = dict(segmentation, counts=segmentation["counts"].encode())
            assert mask_utils.decode(rle).shape == (96, 128)
    video = cv2.VideoCapture(str(tmp_path / "predictions" / "overlay" / "val_0000.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 24
    video.release()
