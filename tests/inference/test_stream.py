"""Streams: frames with their tracks as soon as they are final, from sources that never say how
long they are, with memory that stays flat however long they run."""

import itertools
import json
import os
import time

import numpy as np
import pytest
import torch
from helpers import untrained_tiny_config

from stemseg_fast import Predictor
from stemseg_fast.cli import main
from stemseg_fast.inference.pipeline import VideoRun
from stemseg_fast.inference.prefetch import DEFAULT_DEPTH
from stemseg_fast.io.video import IterableSource, open_video
from stemseg_fast.model import build_stemseg, save_checkpoint
from stemseg_fast.io.rle import to_json
from stemseg_fast.synthetic import synthetic_video

pytestmark = [
    pytest.mark.filterwarnings("ignore:video codec:RuntimeWarning"),
    pytest.mark.usefixtures("one_thread"),
]


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    config = untrained_tiny_config()
    return Predictor(build_stemseg(config), preset=config)


@pytest.fixture(scope="module")
def video():
    return synthetic_video(num_frames=27, height=64, width=96, seed=2)


class SlowSource:
    """Frames one at a time with a pause, never announcing a length; counts what it produced."""

    def __init__(self, frames, pause=0.002):
        self.frames, self.pause, self.produced = frames, pause, 0

    def __iter__(self):
        for frame in self.frames:
            time.sleep(self.pause)
            self.produced += 1
            yield frame


def test_a_stream_gives_the_masks_of_the_offline_run_frame_by_frame(predictor, video):
    offline = predictor.predict(video.frames)
    source = SlowSource(video.frames)
    streamed = list(predictor.stream(source))
    assert [frame.index for frame in streamed] == list(range(len(video.frames)))
    numbers = {}
    for frame in streamed:
        expected = {
            track_id: rles[frame.index]
            for track_id, rles in offline.rles.items()
            if frame.index in rles
        }
        assert len(frame.tracks) == len(expected)
        for track in frame.tracks:
            (match,) = [
                track_id
                for track_id, rle in expected.items()
                if rle["counts"] == track.rle(frame.index)["counts"]
            ]
            # one display number per stitched track, numbered by first appearance
            assert numbers.setdefault(match, track.track_id) == track.track_id
    first_seen = sorted(numbers, key=lambda track_id: min(offline.rles[track_id]))
    assert [numbers[track_id] for track_id in first_seen] == list(range(1, len(numbers) + 1))


def test_each_frame_comes_about_one_clip_after_it_is_decoded(predictor, video):
    inference = predictor.config.inference
    stride = inference.clip_length - inference.clip_overlap
    source = SlowSource(video.frames)
    lags = [source.produced - frame.index for frame in predictor.stream(source)]
    # Final once its last clip is clustered: that clip, and the next clip read ahead; the
    # reader thread decodes up to DEFAULT_DEPTH frames (+ the one in its hand) beyond that.
    assert max(lags) <= 2 * inference.clip_length + stride + DEFAULT_DEPTH + 2
    assert min(lags) >= 1


def test_memory_stays_flat_on_an_endless_stream(predictor):
    small = synthetic_video(num_frames=12, height=48, width=64, num_objects=3, seed=4)

    def endless():  # the video forwards and backwards, forever: objects come and go
        return itertools.cycle(list(small.frames) + list(small.frames[::-1]))

    peaks = []
    for length in (30, 80):
        run = VideoRun(
            predictor.model,
            predictor.config,
            IterableSource(endless()),
            device="cpu",
            streaming=True,
        )
        seen = 0
        for frame in run.stream():
            seen = frame.index + 1
            if seen == length:
                break
        assert seen == length
        held = (
            len(run._display_numbers),
            len(run._live),
            len(run.rles),
            len(run.stitcher._previous_frames),
            run.stitcher._pixel_counts,
        )
        peaks.append((dict(run.diagnostics), held))
    (short, short_held), (long, long_held) = peaks
    assert long_held[2] == 0 and long_held[4] is None  # no per-track history is kept
    assert long_held[0] <= 2 * predictor.config.inference.max_instances_per_clip
    for key in ("peak_cached_frames", "peak_pending_clips", "peak_final_frames_held"):
        assert long[key] == short[key], key


def test_a_stream_is_read_once_and_must_have_frames():
    source = IterableSource(iter([np.zeros((8, 8, 3), np.uint8)]))
    assert source.num_frames is None and source.frame_size == (8, 8)
    assert len(list(source)) == 1
    with pytest.raises(ValueError, match="is a stream: it can be read once"):
        list(source)
    with pytest.raises(ValueError, match="the stream has no frames"):
        IterableSource(iter([])).frame_size  # noqa: B018 (the property raises)
    assert isinstance(
        open_video(frame for frame in [np.zeros((8, 8, 3), np.uint8)]), IterableSource
    )


def test_infer_stream_writes_one_json_line_per_frame_and_an_overlay(
    predictor, video, tmp_path, capsys
):
    save_checkpoint(predictor.model, tmp_path / "tiny.pth", predictor.config)
    from helpers import write_video

    path = write_video(tmp_path / "clip.mp4", video.frames)
    out = tmp_path / "out"
    assert (
        main(
            [
                "infer",
                "--stream",
                str(path),
                "--checkpoint",
                str(tmp_path / "tiny.pth"),
                "--out",
                str(out),
                "--format",
                "overlay",
                "--no-progress",
            ]
        )
        == 0
    )
    lines = (out / "stream.jsonl").read_text().splitlines()
    assert len(lines) == len(video.frames)
    first = json.loads(lines[0])
    assert first["frame"] == 0 and isinstance(first["tracks"], list)
    offline = predictor.predict(str(path))
    for line in lines:
        record = json.loads(line)
        expected = sorted(
            to_json(rles[record["frame"]])["counts"]
            for rles in offline.rles.values()
            if record["frame"] in rles
        )
        assert sorted(track["segmentation"]["counts"] for track in record["tracks"]) == expected
    import cv2

    capture = cv2.VideoCapture(str(out / "overlay" / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(video.frames)
    capture.release()


def test_a_camera_index_in_batch_mode_points_to_stream(tmp_path, capsys):
    assert main(["infer", "0", "--checkpoint", "tiny.pth", "--out", str(tmp_path)]) == 2
    assert "names a camera, which never ends: read live sources with --stream" in (
        capsys.readouterr().err
    )


def test_a_capture_source_keeps_its_first_frame_and_ends_with_the_stream(tmp_path):
    """OpenCV opens cameras, URLs and files alike; a file stands in for a live source here."""
    from helpers import write_video

    from stemseg_fast.io.video import CaptureSource

    frames = synthetic_video(num_frames=7, height=48, width=64, seed=1).frames
    path = write_video(tmp_path / "live.avi", frames, fourcc="MJPG")
    source = CaptureSource(path)
    assert source.num_frames is None and source.frame_size == (48, 64)
    read = list(source)  # the probed first frame is not lost
    assert len(read) == 7
    assert source.name == "live"
    with pytest.raises(ValueError, match="stream rtsp://nowhere.invalid/cam: OpenCV cannot open"):
        CaptureSource("rtsp://nowhere.invalid/cam").frame_size  # noqa: B018


def test_the_codec_warning_is_one_line_once_per_run(predictor, video, tmp_path, capsys):
    from helpers import write_frames

    save_checkpoint(predictor.model, tmp_path / "tiny.pth", predictor.config)
    for name in ("one", "two"):
        write_frames(tmp_path / "videos" / name, video.frames[:4])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert (
            main(
                [
                    "infer",
                    str(tmp_path / "videos"),
                    "--checkpoint",
                    str(tmp_path / "tiny.pth"),
                    "--out",
                    str(tmp_path / "out"),
                    "--format",
                    "overlay",
                    "--no-progress",
                ]
            )
            == 0
        )
    codec_lines = [line for line in capsys.readouterr().err.splitlines() if "codec" in line]
    from stemseg_fast.outputs.overlay import open_video_writer

    writer, codec = open_video_writer(str(tmp_path / "probe.mp4"), 30, (16, 16))
    writer.release()
    assert len(codec_lines) == (0 if codec == "avc1" else 1)
    assert all(line.startswith("stemseg-fast infer: warning: video codec") for line in codec_lines)


ENDLESS_STREAM_UNTIL_CTRL_C = """
    import itertools, os, signal, sys, time
    import numpy as np
    import stemseg_fast.io.video as video_module
    from stemseg_fast.cli import main
    from stemseg_fast.synthetic import synthetic_video

    # A shell starts background jobs with SIGINT ignored, and Python keeps that: restore the
    # default, as an interactive terminal would have it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    frames = list(synthetic_video(num_frames=10, height=48, width=64, seed=1).frames)

    def endless(target, **options):  # a live camera that does not end (before 300 frames)
        def feed():
            for index, frame in enumerate(itertools.islice(itertools.cycle(frames), 300)):
                if index == {interrupt_at}:
                    os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C
                time.sleep(0.001)
                yield frame
        return video_module.IterableSource(feed(), name="camera0", fps=25.0)

    video_module.open_video = endless
    sys.exit(main({argv!r}))
"""


def test_ctrl_c_ends_a_live_stream_keeping_every_line_and_the_overlay(predictor, tmp_path):
    import subprocess
    import sys
    import textwrap

    import cv2

    save_checkpoint(predictor.model, tmp_path / "tiny.pth", predictor.config)
    out = tmp_path / "out"
    argv = [
        "infer",
        "--stream",
        "0",
        "--checkpoint",
        str(tmp_path / "tiny.pth"),
        "--out",
        str(out),
        "--format",
        "overlay",
        "--no-progress",
        "--threads",
        "1",
    ]
    script = textwrap.dedent(ENDLESS_STREAM_UNTIL_CTRL_C.format(interrupt_at=30, argv=argv))
    process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr and "stopped after" in process.stderr
    lines = (out / "stream.jsonl").read_text().splitlines()
    assert 10 <= len(lines) <= 30
    assert [json.loads(line)["frame"] for line in lines] == list(range(len(lines)))
    assert json.loads(lines[-1])["time"] == pytest.approx((len(lines) - 1) / 25.0)
    capture = cv2.VideoCapture(str(out / "overlay" / "camera0.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)
    capture.release()
    assert not [name for name in os.listdir(out / "overlay") if ".partial" in name]
