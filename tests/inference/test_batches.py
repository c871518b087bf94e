"""Batches that keep what finished: each video's outputs are written when it is done, a failing
video does not take the others with it, and the same command again resumes."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import save_untrained_tiny_checkpoint, write_frames

from stemseg_fast.cli import main
from stemseg_fast.synthetic import synthetic_clip

NAMES = ("a_first", "b_broken", "c_last")


@pytest.fixture
def batch(tmp_path):
    for seed, name in enumerate(NAMES):
        frames = synthetic_clip(num_frames=6, height=40, width=56, seed=seed).frames
        write_frames(tmp_path / "videos" / name, frames, extension="png")
    # A frame of another size half-way: found only when the video is decoded that far.
    broken = tmp_path / "videos" / "b_broken" / "00003.png"
    write_frames(broken.parent, [np.zeros((20, 20, 3), np.uint8)], names=[broken.name])
    save_untrained_tiny_checkpoint(tmp_path / "tiny.pth")
    return tmp_path


def _argv(batch, *extra):
    return [
        "infer",
        str(batch / "videos"),
        "--checkpoint",
        str(batch / "tiny.pth"),
        "--out",
        str(batch / "out"),
        "--format",
        "ytvis,davis",
        "--no-progress",
        *extra,
    ]


def _sequences(out):
    """The DAVIS sequence folders written (beside each, the writer's hidden mark)."""
    return sorted(name for name in os.listdir(out / "davis") if not name.startswith("."))


def _mtimes(folder):
    return {
        os.path.join(parent, name): os.stat(os.path.join(parent, name)).st_mtime_ns
        for parent, _, files in os.walk(folder)
        for name in files
    }


def test_a_failing_video_keeps_the_others_and_a_rerun_retries_only_it(batch, capsys):
    out = batch / "out"
    assert main(_argv(batch)) == 1
    stderr = capsys.readouterr().err.strip().splitlines()
    assert stderr[0].startswith("stemseg-fast infer: failed: video 'b_broken': frame file ")
    assert stderr[-1] == (
        "stemseg-fast infer: 1 of 3 videos failed; the others' outputs are "
        "written; the same command again retries only the failed ones"
    )
    videos = json.loads((out / "videos.json").read_text())
    assert [video["name"] for video in videos] == ["a_first", "c_last"]
    results = json.loads((out / "results.json").read_text())
    assert {entry["video_id"] for entry in results} <= {1, 3}
    assert _sequences(out) == ["a_first", "c_last"]

    finished = _mtimes(out / "davis")
    frames = synthetic_clip(num_frames=6, height=40, width=56, seed=1).frames
    write_frames(batch / "videos" / "b_broken", frames, extension="png")  # the user fixes it
    assert main(_argv(batch)) == 0
    printed = capsys.readouterr().out
    assert "1 videos, 6 frames" in printed  # only the fixed one ran
    assert "2 videos were already done by an earlier run with the same settings" in printed
    assert {
        path: mtime for path, mtime in _mtimes(out / "davis").items() if path in finished
    } == finished
    videos = json.loads((out / "videos.json").read_text())
    assert [video["name"] for video in videos] == list(NAMES)


def test_other_settings_are_not_resumed(batch, capsys):
    frames = synthetic_clip(num_frames=6, height=40, width=56, seed=1).frames
    write_frames(batch / "videos" / "b_broken", frames, extension="png")
    assert main(_argv(batch)) == 0
    capsys.readouterr()
    assert main(_argv(batch, "--set", "min_seediness=0.5")) == 0
    printed = capsys.readouterr().out
    assert "3 videos, 18 frames" in printed and "already done" not in printed


KILLED_DURING_THE_SECOND_VIDEO = """
    import os, signal, sys
    from stemseg_fast.outputs import batch
    from stemseg_fast.cli import main

    # Killed as the second video's files are written (the writer thread writes the videos in
    # order, so the first one's are complete by then).
    write = batch.write_video_outputs
    def write_then_die(prediction, *args, **options):
        if prediction.name == "b_broken":
            os.kill(os.getpid(), signal.SIGKILL)
        return write(prediction, *args, **options)

    batch.write_video_outputs = write_then_die
    sys.exit(main({argv!r}))
"""


def test_a_killed_batch_resumes_after_its_finished_videos(batch, capsys):
    frames = synthetic_clip(num_frames=6, height=40, width=56, seed=1).frames
    write_frames(batch / "videos" / "b_broken", frames, extension="png")
    script = textwrap.dedent(KILLED_DURING_THE_SECOND_VIDEO.format(argv=_argv(batch)))
    process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert process.returncode == -signal.SIGKILL
    out = batch / "out"
    assert _sequences(out) == ["a_first"] and not (out / "videos.json").exists()
    assert main(_argv(batch)) == 0
    printed = capsys.readouterr().out
    assert "2 videos, 12 frames" in printed and "1 videos were already done" in printed
    assert [video["name"] for video in json.loads((out / "videos.json").read_text())] == list(NAMES)


def test_a_stream_url_is_processed_again_on_every_run(tmp_path, capsys):
    """A URL's content can change between runs: it is never skipped as done."""
    from helpers import write_video

    frames = synthetic_clip(num_frames=6, height=40, width=56, seed=2).frames
    url = "file://" + write_video(tmp_path / "camera.avi", frames, fourcc="MJPG")
    save_untrained_tiny_checkpoint(tmp_path / "tiny.pth")
    argv = [
        "infer",
        url,
        "--checkpoint",
        str(tmp_path / "tiny.pth"),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    for _ in range(2):
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert "1 videos, 6 frames" in printed and "already done" not in printed
    (video,) = json.loads((tmp_path / "out" / "videos.json").read_text())
    assert video["path"] == url and video["length"] == 6
