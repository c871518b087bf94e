"""Many videos through a predictor into every output format, resumable and shardable.

Each video's files are written as soon as it is done, with a record in
``per_video/<video>.json``; results.json, results.zip and videos.json are merged at the end.
The writing runs on a worker thread (:class:`VideoWriter`), so video N's files are written while
video N+1 is predicted; at most :data:`WRITE_QUEUE_DEPTH` finished predictions wait for it, so
memory stays flat over a long batch. A
video that fails is reported and the others go on; running the same batch again skips every
video already done with the same settings and input files, so an interrupted or partly failed
batch resumes where it stopped. Under ``torchrun`` every rank takes its share of the videos
(:func:`~stemseg_fast.distributed.shard_items`) and rank 0 writes the merged files.
"""

import ctypes
import functools
import json
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from stemseg_fast.distributed import DistributedContext, gather_objects, shard_items
from stemseg_fast.inference.predictor import Predictor
from stemseg_fast.io.files import output_path, read_json, write_json
from stemseg_fast.io.video import FrameSource

from .writing import (
    VideoOutputs,
    remove_debris,
    video_output_paths,
    write_merged_outputs,
    write_video_outputs,
)

RECORDS_FOLDER = "per_video"  # one JSON per finished video: what a rerun resumes from
# Predictions waiting for the writer: one keeps it busy while the next video is predicted; more
# only hold memory (a prediction holds every RLE of its video).
WRITE_QUEUE_DEPTH = 1
_FAILURES = (ValueError, OSError, RuntimeError)  # a video's failure, reported with keep_going
# How long an abort waits for the job being written to unwind (it only removes its partial
# files; a write blocked in a system call ends first).
ABORT_SECONDS = 30.0
_POLL_SECONDS = 0.1  # waits on the writer are cut into steps so signals are handled meanwhile


@dataclass
class BatchResult:
    """What a batch did, on rank 0 over every rank (elsewhere this rank's part).

    Attributes:
        reports: per video processed in this run: ``frames``, ``timings``, ``tracks``.
        records: every finished video's record (this run's or an earlier one's), input order.
        skipped: videos an earlier run had already finished with the same settings.
        failures: one line per failed video.
        written: paths of the merged files (rank 0).
    """

    reports: List[dict] = field(default_factory=list)
    records: List[dict] = field(default_factory=list)
    skipped: int = 0
    failures: List[str] = field(default_factory=list)
    written: List[str] = field(default_factory=list)


def input_fingerprint(source: FrameSource) -> Optional[list]:
    """The input's identity: its files' paths, sizes and modification times; None for a
    stream URL, whose content can change between runs (so it is never resumed)."""
    paths = getattr(source, "paths", None) or ([source.path] if hasattr(source, "path") else None)
    if paths is None:
        return None
    return [
        [os.path.abspath(path), os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in paths
    ]


def _finished_record(path, fingerprint):
    """The record an earlier run wrote for a finished video, if it was made with the same
    settings from the same input; None otherwise (then the video is processed again)."""
    if not os.path.isfile(path):
        return None
    try:
        record = read_json(path, "per-video record")
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    return record


def _outputs(record) -> VideoOutputs:
    return VideoOutputs(record["entries"], record["video"], 0.0)


def owned_sources(sources: Sequence[FrameSource], context: DistributedContext) -> List[FrameSource]:
    """The sources this rank predicts: dealt round-robin by sorted name."""
    return [source for _, source in shard_items(sources, context, key=lambda source: source.name)]


def run_batch(
    predictor: Predictor,
    sources: Sequence[FrameSource],
    formats: Sequence[str],
    out_dir: str,
    *,
    settings: dict,
    context: DistributedContext,
    min_score: Optional[float] = None,
    progress: Optional[tqdm] = None,
    keep_going: bool = True,
) -> BatchResult:
    """Predict every source this rank owns and write its files; rank 0 then merges.

    Args:
        predictor: a :class:`~stemseg_fast.inference.predictor.Predictor`.
        sources: opened frame sources with their ``video_id`` and ``fps`` set, names distinct.
        settings: what the outputs depend on besides the videos (JSON-able): a video is reused
            only if a later run has the same.
        progress: a tqdm bar over every frame of this rank's videos, or None.
        keep_going: a failing video (``ValueError``, ``OSError``, ``RuntimeError``) is reported
            and the others go on; False re-raises it.
    """
    paths: Dict[str, Dict[str, str]] = {
        source.name: video_output_paths(out_dir, source.name, formats) for source in sources
    }
    if context.is_main:  # the other ranks write nothing before the gather after prediction
        remove_debris(out_dir, [(RECORDS_FOLDER,)])
    settings = json.loads(json.dumps(settings))  # as a record file holds it (tuples -> lists)
    fingerprints = {
        source.name: {"settings": settings, "input": input_fingerprint(source)}
        for source in sources
    }  # one stat of every input file, for skip and merge
    result = BatchResult()
    writer = VideoWriter()
    try:
        owned = owned_sources(sources, context)
        for position, source in enumerate(owned):
            record_path = output_path(out_dir, RECORDS_FOLDER, f"{source.name}.json")
            fingerprint = fingerprints[source.name]
            record = _finished_record(record_path, fingerprint)
            if record is not None and fingerprint["input"] is not None:
                result.skipped += 1
                _count_frames(progress, source, record["frames"], record["frames"])
                continue
            try:
                prediction = _predict(predictor, source, progress)
            except _FAILURES as error:
                if not keep_going:
                    raise
                writer.add_failure(source.name, error)
                continue
            write = functools.partial(
                _write_video,
                prediction,
                source,
                paths[source.name],
                formats,
                min_score,
                record_path,
                fingerprint,
            )
            if position == len(owned) - 1:  # nothing left to predict meanwhile
                writer.run_here(source.name, write)
            else:
                writer.submit(source.name, write)
            _raise_first_failure(writer, keep_going)
        done = writer.close()
    except BaseException:  # Ctrl-C, SIGTERM, or a failure without keep_going
        writer.abort()
        raise
    reports = []
    for name, report, error in done:  # in the order the videos were predicted
        if error is None:
            reports.append(report)
        elif not keep_going:
            raise error
        else:
            result.failures.append(f"video {name!r}: {error}")
    gathered = gather_objects(
        {"failures": result.failures, "reports": reports, "skipped": result.skipped}, context
    )
    if not context.is_main:
        result.reports = reports
        return result
    result.failures = [failure for part in gathered for failure in part["failures"]]
    result.reports = [report for part in gathered for report in part["reports"]]
    result.skipped = sum(part["skipped"] for part in gathered)
    this_run = {report["video"]["name"]: report for report in result.reports}
    for source in sources:  # input order; every finished video, this run's or an earlier one's
        fingerprint = fingerprints[source.name]
        if fingerprint["input"] is None:  # a stream: only what this run made of it
            record = this_run.get(source.name)
        else:
            record = _finished_record(
                output_path(out_dir, RECORDS_FOLDER, f"{source.name}.json"), fingerprint
            )
        if record is not None:
            result.records.append(record)
    result.written = write_merged_outputs(
        out_dir, formats, [_outputs(record) for record in result.records], predictor.category_names
    )
    return result


def _predict(predictor, source, progress):
    if progress is not None:
        progress.set_postfix_str(f"{source.name}: model", refresh=False)
    prediction = predictor.predict(source, video_id=source.video_id, progress=progress)
    _count_frames(progress, source, prediction.num_frames, 0)
    return prediction


def _write_video(prediction, source, paths, formats, min_score, record_path, fingerprint):
    """Write one video's per-video files, then its record (last: it means complete); returns
    its report. Runs on the writer thread."""
    written = write_video_outputs(prediction, formats, paths, source=source, min_score=min_score)
    timings = dict(prediction.timings)
    timings["outputs"] += written.seconds
    report = {
        "entries": written.entries,
        "video": written.video,
        "frames": prediction.num_frames,
        "timings": timings,
        "tracks": len(prediction.track_ids),
    }
    write_json(record_path, dict(report, fingerprint=fingerprint))
    return report


def _raise_first_failure(writer, keep_going):
    """Without keep_going, a video the writer failed stops the batch at the next video."""
    if not keep_going:
        for _, _, error in writer.finished():
            if error is not None:
                raise error


class VideoWriter:
    """Runs each video's writing job on one worker thread, in submission order.

    :meth:`submit` blocks while ``depth`` jobs already wait, so at most ``depth`` + 1 finished
    predictions (the waiting ones and the one being written) are held besides the one being
    predicted. A job's exception (``ValueError``, ``OSError``, ``RuntimeError``) becomes that
    video's failure; any other stops the writer and is raised by the next call.

    Args:
        depth: jobs waiting at most (>= 1).
    """

    def __init__(self, depth: int = WRITE_QUEUE_DEPTH):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._jobs = queue.Queue(maxsize=depth)
        self._lock = threading.Lock()
        self._done: List[Tuple[str, Optional[dict], Optional[BaseException]]] = []
        self._fatal: Optional[BaseException] = None
        self._worker = threading.Thread(target=self._work, name="stemseg-fast-writer", daemon=True)
        self._worker.start()

    def abort(self) -> None:
        """Stop now: the job being written unwinds as if interrupted (its atomic writers remove
        what they had begun), the queued ones are dropped. For an interruption of the calling
        thread (signals reach only the main thread), so no partial output is left behind."""
        if self._worker.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._worker.ident), ctypes.py_object(_Aborted)
            )
            self._worker.join(timeout=ABORT_SECONDS)

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._run(*job)
            except _Aborted:
                return
            except BaseException as error:  # raised in the submitting thread
                self._fatal = error
                return
            del job  # the prediction goes now, not when the next job arrives

    def _run(self, name, write):
        try:
            outcome = (name, write(), None)
        except _FAILURES as error:
            outcome = (name, None, error)
        with self._lock:
            self._done.append(outcome)

    def run_here(self, name: str, write: Callable[[], dict]) -> None:
        """Run ``write`` in the calling thread once every queued job is done (the batch's last
        video: there is nothing to overlap it with, and a signal then interrupts the writing
        itself, whose atomic writers leave nothing partial)."""
        self._stop_worker()
        self._run(name, write)

    def _check(self):
        if self._fatal is not None:
            raise self._fatal

    def submit(self, name: str, write: Callable[[], dict]) -> None:
        """Queue ``write`` (returns the video's report); blocks while the queue is full."""
        while True:
            self._check()
            try:
                self._jobs.put((name, write), timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def add_failure(self, name: str, error: BaseException) -> None:
        """Record a video that failed before writing, in its place among the others."""
        self.submit(name, functools.partial(_reraise, error))

    def finished(self) -> List[Tuple[str, Optional[dict], Optional[BaseException]]]:
        """``(name, report, error)`` of the jobs done so far, in submission order."""
        with self._lock:
            return list(self._done)

    def _stop_worker(self):
        """Let the worker finish the queued jobs and end; waits in short steps, so a signal
        reaches the calling (main) thread's handler within one."""
        while self._worker.is_alive():
            try:
                self._jobs.put(None, timeout=_POLL_SECONDS)
                break
            except queue.Full:
                continue
        while self._worker.is_alive():
            self._worker.join(timeout=_POLL_SECONDS)
        self._check()

    def close(self) -> List[Tuple[str, Optional[dict], Optional[BaseException]]]:
        """Wait for every job; ``(name, report, error)`` of each, in submission order."""
        self._stop_worker()
        return self.finished()


def _reraise(error):
    raise error


class _Aborted(BaseException):
    """Raised in the writer thread by :meth:`VideoWriter.abort`."""


def _count_frames(bar, source, frames, advance):
    """Advance the batch bar; correct its total where a container announced another length."""
    if bar is None:
        return
    if bar.total is not None and source.num_frames is not None and frames != source.num_frames:
        bar.total += frames - source.num_frames
    bar.update(advance)
