"""``infer --ids-from``: a benchmark's video ids for inputs that are plain folders or files."""

import json

import pytest
from helpers import save_untrained_tiny_checkpoint, write_frames

from stemseg_fast.cli import main
from stemseg_fast.synthetic import synthetic_clip

NAMES = ("beta", "alpha")  # sorted position and dataset id disagree on purpose
IDS = {"alpha": 17, "beta": 5}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ids")
    for seed, name in enumerate(NAMES):
        clip = synthetic_clip(num_frames=3, height=40, width=56, seed=seed)
        write_frames(root / "videos" / name, clip.frames, extension="jpg")
    annotation = {
        "videos": [
            {"id": IDS[name], "file_names": [f"{name}/{t:05d}.jpg" for t in range(3)]}
            for name in NAMES
        ],
        "categories": [],
        "annotations": [],
    }
    (root / "valid.json").write_text(json.dumps(annotation))
    save_untrained_tiny_checkpoint(root / "tiny.pth")
    return root


def _infer(root, out, *extra):
    return main(
        [
            "infer",
            str(root / "videos"),
            "--checkpoint",
            str(root / "tiny.pth"),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ]
    )


def test_ids_come_from_the_annotation_file_by_name(inputs, tmp_path, capsys):
    assert _infer(inputs, tmp_path, "--ids-from", str(inputs / "valid.json")) == 0
    videos = json.loads((tmp_path / "videos.json").read_text())
    assert {video["name"]: video["id"] for video in videos} == IDS
    results = json.loads((tmp_path / "results.json").read_text())
    assert results and {entry["video_id"] for entry in results} <= set(IDS.values())
    assert "numbered by input position" not in capsys.readouterr().out


def test_without_ids_the_summary_says_they_are_positions(inputs, tmp_path, capsys):
    assert _infer(inputs, tmp_path) == 0
    videos = json.loads((tmp_path / "videos.json").read_text())
    assert {video["name"]: video["id"] for video in videos} == {"alpha": 1, "beta": 2}
    assert "2 of 2 videos had no dataset id and were numbered by input position" in (
        capsys.readouterr().out
    )


def test_a_video_missing_from_the_ids_file_is_an_error(inputs, tmp_path, capsys):
    (tmp_path / "other.json").write_text(
        json.dumps({"videos": [{"id": 3, "file_names": ["alpha/00000.jpg"]}]})
    )
    assert _infer(inputs, tmp_path / "out", "--ids-from", str(tmp_path / "other.json")) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(
        "no video named 'beta' (videos are named by the folder of their first frame)"
    )
    assert not (tmp_path / "out").exists()
