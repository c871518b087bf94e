"""``stemseg-fast infer`` end to end on synthetic videos with the tiny preset at random init:
every output format, bad inputs (one error line, exit code 2, no output), and two gloo
processes giving the same files as one."""

import json
import os
import re
import socket

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
import torch.multiprocessing as mp
from helpers import VIDEO_FPS as FPS
from helpers import save_untrained_tiny_checkpoint, write_frames, write_video

from stemseg_fast.cli import main
from stemseg_fast.io import read_davis_png, read_kitti_mots_txt
from stemseg_fast.model import PRESETS, build_stemseg
from stemseg_fast.synthetic import synthetic_clip

pytestmark = [
    pytest.mark.filterwarnings("ignore:video codec:RuntimeWarning"),
    pytest.mark.usefixtures("one_thread"),
]  # mp4v fallback
SIZES = {"alpha": (6, 48, 80), "beta": (3, 64, 96), "gamma": (7, 40, 60)}  # (T, H, W)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    videos = root / "videos"
    for seed, (name, (frames, height, width)) in enumerate(SIZES.items()):
        clip = synthetic_clip(num_frames=frames, height=height, width=width, seed=seed)
        if name == "alpha":
            videos.mkdir(exist_ok=True)
            write_video(videos / f"{name}.mp4", clip.frames)
        else:
            write_frames(videos / name, clip.frames)
    return {"videos": str(videos), "checkpoint": save_untrained_tiny_checkpoint(root / "tiny.pth")}


def infer(*arguments):
    return main(["infer", *map(str, arguments), "--no-progress"])


def test_every_format_from_one_run(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = infer(
        inputs["videos"],
        "--checkpoint",
        inputs["checkpoint"],
        "--out",
        out,
        "--format",
        "ytvis,davis",
        "--format",
        "kitti",
        "--format",
        "overlay",
    )
    assert code == 0
    printed = capsys.readouterr().out
    for stage in ("decode", "model", "clustering", "outputs", "overall"):
        assert stage in printed

    videos = json.loads((out / "videos.json").read_text())
    assert [video["name"] for video in videos] == sorted(SIZES)
    by_id = {video["id"]: video for video in videos}
    assert by_id[1]["fps"] == pytest.approx(FPS)

    results = json.loads((out / "results.json").read_text())
    assert results and (out / "results.zip").exists()
    for entry in results:
        video = by_id[entry["video_id"]]
        frames, height, width = SIZES[video["name"]]
        assert len(entry["segmentations"]) == frames
        assert 0 < entry["score"] <= 1 and entry["category_id"] in (1, 2)
        for rle in entry["segmentations"]:
            mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
            assert mask.shape == (height, width)
    assert sum(entry["score"] == 1.0 for entry in results) == len(SIZES)  # top track per video

    for name, (frames, height, width) in SIZES.items():
        pngs = sorted(os.listdir(out / "davis" / name))
        assert pngs == [f"{t:05d}.png" for t in range(frames)]
        indices, _ = read_davis_png(out / "davis" / name / pngs[0])
        assert indices.shape == (height, width)
        for detection in read_kitti_mots_txt(out / "kitti_mots" / "results" / f"{name}.txt"):
            assert (detection.height, detection.width) == (height, width)
            assert detection.class_id in (1, 2) and 0 <= detection.frame < frames
        assert (out / "kitti_mots" / "results_nms" / f"{name}.txt").exists()
        capture = cv2.VideoCapture(str(out / "overlay" / f"{name}.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        expected_fps = FPS if name == "alpha" else 30.0  # frame folders have none: default
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(expected_fps)
        decoded, frame = capture.read()
        assert decoded and frame.shape == (height, width, 3)
        capture.release()


def test_overlay_alone_writes_the_results_json_and_threshold_drops_tracks(inputs, tmp_path):
    out = tmp_path / "out"
    assert (
        infer(
            inputs["videos"],
            "--checkpoint",
            inputs["checkpoint"],
            "--out",
            out,
            "--format",
            "overlay",
            "--confidence-threshold",
            "0.99",
            "--fps",
            "5",
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert [entry["score"] for entry in results] == [1.0] * len(SIZES)
    capture = cv2.VideoCapture(str(out / "overlay" / "beta.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    capture.release()
    assert not (out / "davis").exists()


def _bad_cases(tmp_path, checkpoint):
    unreadable = tmp_path / "broken.mp4"
    unreadable.write_bytes(b"not a video at all" * 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    official = tmp_path / "official.pth"
    state = build_stemseg(PRESETS["tiny"]).state_dict()
    state["semseg_head.extra_conv.weight"] = torch.zeros(1)
    torch.save({"model": state}, official)
    frames = tmp_path / "frames"
    write_frames(frames, synthetic_clip(num_frames=2, height=40, width=60).frames)
    return {
        "unreadable video": ([unreadable, "--checkpoint", checkpoint], "OpenCV cannot"),
        "empty folder": ([empty, "--checkpoint", checkpoint], "holds no frames"),
        "missing input": ([tmp_path / "nope.mp4", "--checkpoint", checkpoint], "does not exist"),
        "preset mismatch": (
            [frames, "--checkpoint", checkpoint, "--preset", "youtube_vis"],
            "does not match preset 'youtube_vis'",
        ),
        "unknown keys": (
            [frames, "--checkpoint", official, "--preset", "tiny"],
            "unexpected.*semseg_head.extra_conv.weight",
        ),
        "missing checkpoint": (
            [frames, "--checkpoint", tmp_path / "none.pth"],
            "not a named official checkpoint",
        ),
        "format": (
            [frames, "--checkpoint", checkpoint, "--format", "ytvis,coco"],
            "--format must be among",
        ),
        "unknown setting": (
            [frames, "--checkpoint", checkpoint, "--set", "overlap=2"],
            r"unknown inference settings \['overlap'\]",
        ),
        "bad setting": (
            [frames, "--checkpoint", checkpoint, "--set", "distance_rule=fast"],
            "distance_rule must be one of",
        ),
        "graphs on the cpu": (
            [frames, "--checkpoint", checkpoint, "--device", "cpu", "--cuda-graphs"],
            "--cuda-graphs needs a CUDA device and the triton backend, got --device cpu",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unreadable video",
        "empty folder",
        "missing input",
        "preset mismatch",
        "unknown keys",
        "missing checkpoint",
        "format",
        "unknown setting",
        "bad setting",
        "graphs on the cpu",
    ],
)
def test_bad_input_is_one_error_line_and_no_output(inputs, tmp_path, capsys, case):
    arguments, message = _bad_cases(tmp_path, inputs["checkpoint"])[case]
    out = tmp_path / "out"
    assert infer(*arguments, "--out", out, "--format", "ytvis,davis,overlay") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("stemseg-fast infer: error:") and "\n" not in error
    assert re.search(message, error), error
    assert not out.exists() or not any(out.rglob("*"))


def _free_port():
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def _infer_worker(rank, world_size, port, arguments):
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    if infer(*arguments) != 0:
        raise SystemExit(f"rank {rank} failed")


@pytest.mark.slow
def test_two_gloo_processes_write_what_one_process_writes(inputs, tmp_path):
    common = [
        inputs["videos"],
        "--checkpoint",
        inputs["checkpoint"],
        "--format",
        "ytvis,davis",
        "--device",
        "cpu",
    ]
    assert infer(*common, "--out", tmp_path / "single") == 0
    mp.spawn(
        _infer_worker,
        args=(2, _free_port(), [*common, "--out", str(tmp_path / "sharded")]),
        nprocs=2,
    )
    for name in ("results.json", "videos.json"):
        assert (tmp_path / "single" / name).read_text() == (tmp_path / "sharded" / name).read_text()
    for name, (frames, _, _) in SIZES.items():
        for frame in range(frames):
            single, _ = read_davis_png(tmp_path / "single" / "davis" / name / f"{frame:05d}.png")
            sharded, _ = read_davis_png(tmp_path / "sharded" / "davis" / name / f"{frame:05d}.png")
            np.testing.assert_array_equal(single, sharded)
