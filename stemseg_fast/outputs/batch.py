"""Many videos through a predictor into every output format, resumable and shardable.

Each video's files are written as soon as it is done, with a record in
``per_video/<video>.json``; results.json, results.zip and videos.json are merged at the end. A
video that fails is reported and the others go on; running the same batch again skips every
video already done with the same settings and input files, so an interrupted or partly failed
batch resumes where it stopped. Under ``torchrun`` every rank takes its share of the videos
(:func:`~stemseg_fast.distributed.shard_items`) and rank 0 writes the merged files.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from stemseg_fast.distributed import DistributedContext, gather_objects, shard_items
from stemseg_fast.io.files import output_path, read_json, write_json

from .writing import (VideoOutputs, remove_debris, video_output_paths, write_merged_outputs,
                      write_video_outputs)

RECORDS_FOLDER = "per_video"  # one JSON per finished video: what a rerun resumes from


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


def input_fingerprint(source) -> Optional[list]:
    """The input's identity: its files' paths, sizes and modification times; None for a
    stream URL, whose content can change between runs (so it is never resumed)."""
    paths = getattr(source, "paths", None) or (
        [source.path] if hasattr(source, "path") else None)
    if paths is None:
        return None
    return [[os.path.abspath(path), os.stat(path).st_size, os.stat(path).st_mtime_ns]
            for path in paths]


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


def run_batch(predictor, sources: Sequence, formats: Sequence[str], out_dir: str, *,
              settings: dict, context: DistributedContext, min_score: Optional[float] = None,
              progress=None, keep_going: bool = True) -> BatchResult:
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
    paths: Dict[str, Dict[str, str]] = {source.name: video_output_paths(out_dir, source.name,
                                                                        formats)
                                        for source in sources}
    if context.is_main:  # the other ranks write nothing before the gather after prediction
        remove_debris(out_dir, [(RECORDS_FOLDER,)])
    settings = json.loads(json.dumps(settings))  # as a record file holds it (tuples -> lists)
    fingerprints = {source.name: {"settings": settings, "input": input_fingerprint(source)}
                    for source in sources}  # one stat of every input file, for skip and merge
    result = BatchResult()
    reports = []
    for _, source in shard_items(sources, context, key=lambda source: source.name):
        record_path = output_path(out_dir, RECORDS_FOLDER, f"{source.name}.json")
        fingerprint = fingerprints[source.name]
        record = _finished_record(record_path, fingerprint)
        if record is not None and fingerprint["input"] is not None:
            result.skipped += 1
            _count_frames(progress, source, record["frames"], record["frames"])
            continue
        try:
            report = _process_video(predictor, source, paths[source.name], formats, min_score,
                                    progress)
        except (ValueError, OSError, RuntimeError) as error:
            if not keep_going:
                raise
            result.failures.append(f"video {source.name!r}: {error}")
            continue
        reports.append(report)
        write_json(record_path, dict(report, fingerprint=fingerprint))  # last: means complete
    gathered = gather_objects({"failures": result.failures, "reports": reports,
                               "skipped": result.skipped}, context)
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
                output_path(out_dir, RECORDS_FOLDER, f"{source.name}.json"), fingerprint)
        if record is not None:
            result.records.append(record)
    result.written = write_merged_outputs(out_dir, formats,
                                          [_outputs(record) for record in result.records],
                                          predictor.category_names)
    return result


def _process_video(predictor, source, paths, formats, min_score, progress):
    """Predict one video and write its per-video files; returns its report."""
    if progress is not None:
        progress.set_postfix_str(f"{source.name}: model", refresh=False)
    prediction = predictor.predict(source, video_id=source.video_id, progress=progress)
    _count_frames(progress, source, prediction.num_frames, 0)
    if progress is not None:
        progress.set_postfix_str(f"{source.name}: writing outputs")
    written = write_video_outputs(prediction, formats, paths, source=source, min_score=min_score)
    timings = dict(prediction.timings)
    timings["outputs"] += written.seconds
    return {"entries": written.entries, "video": written.video, "frames": prediction.num_frames,
            "timings": timings, "tracks": len(prediction.track_ids)}


def _count_frames(bar, source, frames, advance):
    """Advance the batch bar; correct its total where a container announced another length."""
    if bar is None:
        return
    if bar.total is not None and source.num_frames is not None and frames != source.num_frames:
        bar.total += frames - source.num_frames
    bar.update(advance)
