"""The batch's writer thread: video N is written while video N+1 is predicted, with a bounded
number of finished predictions held, records and merged files in input order, and a writing
error reported as that video's failure."""

import json
import threading
import time
import weakref

import pytest
import torch

from stemseg_fast.distributed import DistributedContext
from stemseg_fast.outputs import batch
from stemseg_fast.outputs.batch import WRITE_QUEUE_DEPTH, VideoWriter, run_batch
from stemseg_fast.outputs.writing import VideoOutputs

NUM_VIDEOS = 40
SINGLE = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class Source:
    """A stream-like source (no files: never resumed), as run_batch sees it."""

    def __init__(self, index):
        self.name, self.video_id, self.num_frames, self.fps = f"v{index:03d}", index + 1, 3, 25.0


class Prediction:
    """A finished prediction; weak references count how many are alive."""

    def __init__(self, name):
        self.name, self.num_frames, self.track_ids = name, 3, [1]
        self.timings = {"outputs": 0.0}


class CountingPredictor:
    category_names = None

    def __init__(self):
        self.alive = weakref.WeakSet()
        self.peak_alive = 0

    def predict(self, source, **_):
        prediction = Prediction(source.name)
        self.alive.add(prediction)
        self.peak_alive = max(self.peak_alive, len(self.alive))
        return prediction


def slow_writer(written_order, fail_on=None):
    """A write_video_outputs that takes a while (so predictions pile up if nothing bounds
    them) and records the order it wrote in."""

    def write(prediction, formats, paths, **_):
        time.sleep(0.01)
        if prediction.name == fail_on:
            raise OSError("disk full")
        written_order.append(prediction.name)
        return VideoOutputs([{"video_id": prediction.name}], {"name": prediction.name}, 0.0)

    return write


def test_a_long_batch_holds_few_predictions_and_keeps_input_order(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(batch, "write_video_outputs", slow_writer(written))
    predictor = CountingPredictor()
    sources = [Source(index) for index in range(NUM_VIDEOS)]
    result = run_batch(predictor, sources, [], str(tmp_path), settings={}, context=SINGLE)
    names = [source.name for source in sources]
    assert written == names
    assert [report["video"]["name"] for report in result.reports] == names
    assert [record["video"]["name"] for record in result.records] == names
    videos = json.loads((tmp_path / "videos.json").read_text())
    assert [video["name"] for video in videos] == names
    # Queued, being written, being predicted: flat however long the batch.
    assert WRITE_QUEUE_DEPTH + 2 < NUM_VIDEOS // 2
    assert predictor.peak_alive <= WRITE_QUEUE_DEPTH + 2
    assert not result.failures


def test_a_writing_error_is_that_videos_failure(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(batch, "write_video_outputs", slow_writer(written, fail_on="v002"))
    sources = [Source(index) for index in range(5)]
    result = run_batch(CountingPredictor(), sources, [], str(tmp_path), settings={}, context=SINGLE)
    assert result.failures == ["video 'v002': disk full"]
    assert written == ["v000", "v001", "v003", "v004"]
    assert [record["video"]["name"] for record in result.records] == written
    assert not (tmp_path / "per_video" / "v002.json").exists()


def test_without_keep_going_a_writing_error_stops_the_batch(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(batch, "write_video_outputs", slow_writer(written, fail_on="v001"))
    with pytest.raises(OSError, match="disk full"):
        run_batch(
            CountingPredictor(),
            [Source(index) for index in range(NUM_VIDEOS)],
            [],
            str(tmp_path),
            settings={},
            context=SINGLE,
            keep_going=False,
        )
    # The batch stops at the next video: past the failure, only what was queued is written.
    assert written[0] == "v000" and len(written) <= 1 + WRITE_QUEUE_DEPTH + 1


def test_the_writer_overlaps_the_next_prediction():
    writing, predicted_meanwhile = threading.Event(), threading.Event()

    def write_first():
        writing.set()
        # True only if the caller went on while this job ran (a synchronous writer times out).
        return {"overlapped": predicted_meanwhile.wait(timeout=10)}

    writer = VideoWriter()
    writer.submit("first", write_first)
    assert writing.wait(timeout=30)
    predicted_meanwhile.set()
    assert writer.close() == [("first", {"overlapped": True}, None)]


def test_an_unexpected_error_of_the_writer_reaches_the_caller():
    def broken():
        raise KeyError("bug")

    writer = VideoWriter()
    writer.submit("first", broken)
    with pytest.raises(KeyError, match="bug"):
        writer.close()


def test_an_abort_unwinds_the_job_being_written_and_drops_the_queued_ones():
    started, unwound, ran = threading.Event(), threading.Event(), []

    def long_write():
        started.set()
        try:
            while True:  # a write in Python code, as the format writers are
                time.sleep(0.01)
        finally:
            unwound.set()  # where an atomic writer removes its partial output

    writer = VideoWriter()
    writer.submit("first", long_write)
    writer.submit("second", lambda: ran.append("second"))
    assert started.wait(timeout=30)
    writer.abort()
    assert unwound.is_set() and ran == []
