"""``browse`` writes PNG strips of training clips for every dataset kind."""

import os

import cv2
import pytest
from dataset_fixtures import make_coco, make_davis, make_kitti, make_ytvis

from stemseg_fast.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _run(tmp_path, *args):
    out = str(tmp_path / "browse")
    assert (
        main(
            [
                "browse",
                *args,
                "--out",
                out,
                "--count",
                "2",
                "--clip-length",
                "4",
                "--frame-span",
                "4",
                "--min-dim",
                "48",
                "--max-dim",
                "96",
            ]
        )
        == 0
    )
    files = sorted(os.listdir(out))
    assert files == ["clip_000.png", "clip_001.png"]
    strip = cv2.imread(os.path.join(out, files[0]))
    assert strip is not None and strip.shape[1] > 4 * strip.shape[0] > 0
    return strip


def test_browse_ytvis(tmp_path):
    path, image_root, _ = make_ytvis(str(tmp_path))
    _run(tmp_path, "--dataset", "ytvis", "--annotations", path, "--images", image_root)


def test_browse_coco(tmp_path):
    path, image_root = make_coco(str(tmp_path))
    _run(tmp_path, "--dataset", "coco", "--annotations", path, "--images", image_root)


def test_browse_davis_and_kitti(tmp_path):
    make_davis(str(tmp_path / "davis"))
    _run(tmp_path, "--dataset", "davis", "--images", str(tmp_path / "davis"))
    annotation_dir, image_root, _, _ = make_kitti(str(tmp_path / "kitti"))
    _run(tmp_path, "--dataset", "kitti", "--annotations", annotation_dir, "--images", image_root)


def test_browse_needs_annotations(tmp_path, capsys):
    assert main(["browse", "--dataset", "coco", "--images", str(tmp_path)]) == 2
    assert "--annotations is required" in capsys.readouterr().err
