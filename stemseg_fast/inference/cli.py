"""``stemseg-fast infer``: videos in, tracks out, in every output format from one network pass.

Outputs under ``--out``:
  ytvis    results.json (+ results.zip for CodaLab): YouTube-VIS/OVIS results, every video
  davis    davis/<video>/00000.png ...: DAVIS palette PNGs
  kitti    kitti_mots/results/<video>.txt and the official post-filter's kitti_mots/results_nms/
  overlay  overlay/<video>.mp4 at the source fps, plus results.json describing what is drawn
videos.json lists each video's id (the results' video_id), name, size, length, fps and input
path, categories.json the class names (for render and eval). Ids come
from annotation inputs or --ids-from; other inputs are numbered 1, 2, ... in input order.

Long batches: each video's files are written as soon as it is done, with a record in
per_video/<video>.json; results.json, results.zip and videos.json are merged at the end. A video
that fails is reported and the others go on (exit code 1); running the same command again skips
every video already done with the same settings and input files, so an interrupted or partly
failed batch resumes where it stopped.

Examples:
  stemseg-fast infer clip.mp4 --checkpoint run/checkpoint.pth --out out/ --format overlay
  stemseg-fast infer valid/JPEGImages --checkpoint youtube_vis --preset ytvis --out out/ \\
      --format ytvis,overlay --confidence-threshold 0.1
  stemseg-fast infer valid.json --image-root valid/JPEGImages --checkpoint youtube_vis --out out/
  torchrun --nproc_per_node 4 -m stemseg_fast.inference.cli infer videos/ --checkpoint C --out out/
  stemseg-fast infer --stream 0 --checkpoint C --out live/ --format overlay   # webcam 0
  stemseg-fast infer --stream rtsp://camera/live --checkpoint C --out live/
"""
import argparse
import contextlib
import json
import os
import signal
import sys
import time

from stemseg_fast.cli import CommandError, integer_in, is_termination, number_in, plain_text
from stemseg_fast.fileio import (atomic_output, check_output_name, output_path, read_json,
                                 remove_partial_outputs, write_json)
from stemseg_fast.model import PRESETS
from stemseg_fast.model.checkpoints import CheckpointMismatchError
from stemseg_fast.outputs.overlay import DEFAULT_FPS
from stemseg_fast.rle import to_json

from .sharding import close_process_group, gather_objects, shard_from_environment, shard_items
from .video import annotation_videos, expand_inputs

FORMATS = ("ytvis", "davis", "kitti", "overlay")
KITTI_MOTS_NUM_CLASSES = 3  # background, car, pedestrian
KITTI_RESULTS_FOLDER = ("kitti_mots", "results")
KITTI_FILTERED_FOLDER = ("kitti_mots", "results_nms")  # the official post-filter's, beside
RECORDS_FOLDER = "per_video"  # one JSON per finished video: what a rerun resumes from


def _formats(values):
    formats = []
    for value in values or ["ytvis"]:
        for name in value.split(","):
            name = name.strip()
            if name not in FORMATS:
                raise CommandError(f"--format must be among {', '.join(FORMATS)} (comma-separated "
                                   f"or repeated), got {name!r}")
            if name not in formats:
                formats.append(name)
    return formats


def _inference_overrides(assignments):
    """``--set name=value`` pairs (values parsed as YAML: numbers, strings, null)."""
    import yaml

    overrides = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name.strip():
            raise CommandError(f"--set expects name=value, got {assignment!r}")
        try:
            overrides[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CommandError(f"--set {name.strip()}: cannot read the value {value!r} (expected "
                               f"a number, true/false, null or a word)") from None
    return overrides


def _video_output_paths(out, name, formats):
    """Where each per-video format of the video ``name`` goes; raises
    :class:`~stemseg_fast.fileio.UnsafeOutputError` for a name that is not one file name, or for
    an existing folder this tool did not write. Called for every input before any work."""
    from stemseg_fast.outputs import kitti_mots_sequence_path
    from stemseg_fast.outputs.davis import davis_sequence_folder

    check_output_name(name, "video name")
    paths = {}
    if "davis" in formats:
        paths["davis"] = davis_sequence_folder(output_path(out, "davis"), name)
    if "kitti" in formats:
        results_dir = output_path(out, *KITTI_RESULTS_FOLDER)
        sequence_number = name.isascii() and name.isdigit()  # "²" is a digit, not a number
        paths["kitti"] = (kitti_mots_sequence_path(results_dir, int(name)) if sequence_number
                          else output_path(results_dir, f"{name}.txt"))
    if "overlay" in formats:
        paths["overlay"] = output_path(out, "overlay", f"{name}.mp4")
    return paths


def _assign_video_ids(sources, ids_from):
    """Dataset ids for inputs that have none: from ``--ids-from`` (matched by name, the folder
    of an entry's first frame), else their position (1, 2, ...). Returns how many were numbered
    by position (a benchmark's server scores by id, so the summary says so)."""
    if ids_from is not None:
        ids = {}
        for video in annotation_videos(ids_from):
            if video.name in ids:
                raise CommandError(f"--ids-from {ids_from}: two videos are named {video.name!r} "
                                   f"(ids {ids[video.name]} and {video.video_id})")
            ids[video.name] = video.video_id
        for source in sources:
            if source.video_id is None:
                if source.name not in ids:
                    raise CommandError(
                        f"--ids-from {ids_from}: no video named {source.name!r} (videos are "
                        f"named by the folder of their first frame)")
                source.video_id = ids[source.name]
    numbered = 0
    for position, source in enumerate(sources):
        if source.video_id is None:
            source.video_id = position + 1
            numbered += 1
    owners = {}
    for source in sources:
        if source.video_id in owners:
            raise CommandError(f"inputs {owners[source.video_id]!r} and {source.name!r} both get "
                               f"video_id {source.video_id}; give every input its dataset id "
                               f"(--ids-from)")
        owners[source.video_id] = source.name
    return numbered


def _check_distinct_outputs(paths):
    """Two videos must not write one file: KITTI-MOTS numbers sequences, so "1" and "01" are
    both 0001.txt."""
    owners = {}
    for name, video_paths in paths.items():
        for path in video_paths.values():
            if path in owners:
                raise CommandError(f"videos {owners[path]!r} and {name!r} would both write "
                                   f"{path}: rename one")
            owners[path] = name


def _remove_debris(out):
    """Temporaries an interrupted earlier run of this command left in the folders it writes."""
    remove_partial_outputs(out)
    for folder in (("davis",), ("overlay",), KITTI_RESULTS_FOLDER, KITTI_FILTERED_FOLDER,
                   (RECORDS_FOLDER,)):
        remove_partial_outputs(output_path(out, *folder))


def _check_formats(formats, predictor):
    config = predictor.config
    if "kitti" in formats and (config.semantic_decoder is None
                               or config.num_classes != KITTI_MOTS_NUM_CLASSES):
        raise CommandError(f"--format kitti needs a model classifying background, car and "
                           f"pedestrian (num_classes 3); preset {config.name!r} has "
                           f"{config.num_classes if config.semantic_decoder else 'no'} classes")
    if "ytvis" in formats and config.semantic_decoder is None:
        raise CommandError(f"--format ytvis needs a semantic head to classify tracks; preset "
                           f"{config.name!r} has none (use davis or overlay)")


def _write_video_outputs(prediction, source, paths, formats, args, json_rule):
    """Per-video files at ``paths`` (from :func:`_video_output_paths`); returns (YouTube-VIS
    entries, videos.json entry)."""
    from stemseg_fast.outputs import (kitti_mots_detections, write_davis_pngs,
                                      write_kitti_mots_txt, write_overlay_video,
                                      youtube_vis_predictions)

    entries = []
    if "davis" in formats:
        folder = paths["davis"]
        write_davis_pngs(os.path.dirname(folder), prediction.select("davis"),
                         sequence=os.path.basename(folder))
    if "kitti" in formats:
        tracks = prediction.select("kitti_mots")
        write_kitti_mots_txt(paths["kitti"], kitti_mots_detections(tracks))
    if "ytvis" in formats or "overlay" in formats:
        tracks = prediction.select(json_rule, min_score=args.confidence_threshold)
        entries = youtube_vis_predictions(tracks)
        if "overlay" in formats:
            write_overlay_video(paths["overlay"], source, tracks)
    height, width = prediction.frame_size
    video = {"id": prediction.video_id, "name": prediction.name, "length": prediction.num_frames,
             "height": height, "width": width, "fps": prediction.fps,
             "path": _input_location(source)}
    return entries, video


def _print_summary(reports, world_size, written):
    frames = sum(report["frames"] for report in reports)
    seconds = {}
    for report in reports:
        for stage, value in report["timings"].items():
            seconds[stage] = seconds.get(stage, 0.0) + value
    rows = (("decode", ("decode",)),
            ("model (preprocess + backbone + heads)", ("preprocess", "backbone", "heads")),
            ("clustering + stitching", ("clustering",)),
            ("outputs (masks, RLE, files)", ("outputs",)),
            ("overall", ("decode", "preprocess", "backbone", "heads", "clustering", "outputs")))
    print(f"{len(reports)} videos, {frames} frames, {world_size} process"
          f"{'es' if world_size > 1 else ''}; frames per second per process:")
    for label, stages in rows:
        total = sum(seconds.get(stage, 0.0) for stage in stages)
        fps = frames / total if total > 0 else float("inf")
        print(f"  {label:<40} {fps:10.2f} fps  ({total:.2f} s)")
    for path in written:
        print(f"wrote {path}")


def _run(args, formats, shard):
    from stemseg_fast.inference.predictor import Predictor, resolve_device

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandError(f"--out {args.out} exists and is not a folder")
    sources = expand_inputs(args.inputs, image_root=args.image_root)
    if not sources:
        raise CommandError(f"the inputs hold no video: {' '.join(args.inputs)}")
    numbered_by_position = _assign_video_ids(sources, args.ids_from)
    paths = {}
    for source in sources:  # open every input now: a bad one fails before anything is written
        source.num_frames, source.frame_size  # noqa: B018 (probing reads the first frame)
        if source.fps is None:  # one rate for the overlay and videos.json
            source.fps = args.fps or DEFAULT_FPS
        paths[source.name] = _video_output_paths(args.out, source.name, formats)
    _check_distinct_outputs(paths)
    if shard.is_main:  # the other ranks write nothing before the gather after prediction
        _remove_debris(args.out)
    if shard.is_main:  # start-up takes a while on a loaded machine: say what is happening
        lengths = [source.num_frames for source in sources]
        frames = "unknown" if None in lengths else sum(lengths)
        print(f"{len(sources)} videos, {frames} frames -> {args.out}; loading {args.checkpoint}",
              flush=True)
    device = args.device
    if device == "auto" and shard.world_size > 1:
        import torch

        device = f"cuda:{shard.local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        predictor = Predictor(args.checkpoint, preset=args.preset, device=resolve_device(device),
                              backend=args.backend, precision=args.precision,
                              inference=_inference_overrides(args.set))
    except CheckpointMismatchError as error:
        raise CommandError(str(error)) from None
    _check_formats(formats, predictor)
    json_rule = "youtube_vis" if "ytvis" in formats else predictor.rule

    mine = shard_items(sources, shard, key=lambda source: source.name)
    settings = _settings_fingerprint(args, formats, predictor)
    fingerprints = {source.name: {"settings": settings, "input": _input_fingerprint(source)}
                    for source in sources}  # one stat of every input file, for skip and merge
    done, failures, reports = 0, [], []
    bar = _batch_progress([source for _, source in mine], args.no_progress)
    try:
        for position, source in mine:
            record_path = output_path(args.out, RECORDS_FOLDER, f"{source.name}.json")
            fingerprint = fingerprints[source.name]
            record = _finished_record(record_path, fingerprint)
            if record is not None and fingerprint["input"] is not None:
                done += 1
                _count_frames(bar, source, record["frames"], record["frames"])
                continue
            try:
                reports.append(_process_video(predictor, source, paths[source.name], formats,
                                              args, json_rule, bar))
            except (ValueError, OSError, RuntimeError) as error:
                if args.traceback:
                    raise
                failures.append(f"video {source.name!r}: {error}")
                continue
            record = dict(reports[-1], fingerprint=fingerprint)
            write_json(record_path, record)  # last: a record means the video is complete
    finally:
        bar.close()
    gathered = gather_objects({"failures": failures, "reports": reports, "done": done}, shard)
    if not shard.is_main:
        return 1 if failures else 0
    failures = [failure for part in gathered for failure in part["failures"]]
    reports = [report for part in gathered for report in part["reports"]]
    done = sum(part["done"] for part in gathered)
    records = []
    this_run = {report["video"]["name"]: report for report in reports}
    for source in sources:  # input order; every finished video, this run's or an earlier one's
        fingerprint = fingerprints[source.name]
        if fingerprint["input"] is None:  # a stream: only what this run made of it
            record = this_run.get(source.name)
        else:
            record = _finished_record(
                output_path(args.out, RECORDS_FOLDER, f"{source.name}.json"), fingerprint)
        if record is not None:
            records.append(record)
    written = _write_merged_outputs(args.out, formats, records, predictor.category_names)
    _print_summary(reports, shard.world_size, written)
    empty = [record["video"]["name"] for record in records if not record["tracks"]]
    if empty:
        print(f"no track found in {len(empty)} of {len(records)} videos ({', '.join(empty)}): "
              f"the model saw no object it knows, or a threshold is too strict (--set "
              f"min_seediness=..., foreground_threshold=...)")
    if done:
        print(f"{done} videos were already done by an earlier run with the same settings "
              f"(their results are in {os.path.join(args.out, RECORDS_FOLDER)}); skipped")
    if numbered_by_position and "ytvis" in formats:
        print(f"video ids: {numbered_by_position} of {len(sources)} videos had no dataset id and "
              f"were numbered by input position (see videos.json); pass --ids-from "
              f"ANNOTATIONS.json to use a benchmark's ids")
    if not failures:
        return 0
    for failure in failures:
        print(f"stemseg-fast infer: failed: {failure}", file=sys.stderr)
    print(f"stemseg-fast infer: {len(failures)} of {len(sources)} videos failed; the others' "
          f"outputs are written; the same command again retries only the failed ones",
          file=sys.stderr)
    return 1


def _process_video(predictor, source, paths, formats, args, json_rule, bar):
    """Predict one video and write its per-video files; returns its report."""
    bar.set_postfix_str(f"{source.name}: model", refresh=False)
    prediction = predictor.predict(source, video_id=source.video_id, progress=bar)
    _count_frames(bar, source, prediction.num_frames, 0)
    bar.set_postfix_str(f"{source.name}: writing outputs")
    start = time.perf_counter()
    entries, video = _write_video_outputs(prediction, source, paths, formats, args, json_rule)
    prediction.timings["outputs"] += time.perf_counter() - start
    return {"entries": entries, "video": video, "frames": prediction.num_frames,
            "timings": prediction.timings, "tracks": len(prediction.track_ids)}


def _input_location(source):
    """Where ``render`` finds the video again: its file, frame folder or stream URL."""
    if hasattr(source, "path"):
        return os.path.abspath(source.path)
    if hasattr(source, "paths"):
        folders = {os.path.dirname(os.path.abspath(path)) for path in source.paths}
        return folders.pop() if len(folders) == 1 else None
    return getattr(source, "target", None) if isinstance(getattr(source, "target", None),
                                                          str) else None


def _write_merged_outputs(out, formats, records, category_names):
    """results.json (+ zip), the KITTI post-filter and videos.json over every finished video;
    returns the written paths."""
    from stemseg_fast.outputs import postprocess_kitti_mots, write_youtube_vis_results

    written = []
    if "ytvis" in formats or "overlay" in formats:
        path = output_path(out, "results.json")
        zip_path = output_path(out, "results.zip") if "ytvis" in formats else None
        write_youtube_vis_results(
            path, [entry for record in records for entry in record["entries"]], zip_path=zip_path)
        written += [path] + ([zip_path] if zip_path else [])
    if "kitti" in formats and os.path.isdir(output_path(out, *KITTI_RESULTS_FOLDER)):
        postprocess_kitti_mots(output_path(out, *KITTI_RESULTS_FOLDER))
        written.append(output_path(out, "kitti_mots"))
    for folder in ("davis", "overlay"):
        if folder in formats:
            written.append(output_path(out, folder))
    videos_path = output_path(out, "videos.json")
    write_json(videos_path, [record["video"] for record in records], indent=1)
    written.append(videos_path)
    if category_names:  # class names for render and eval, in the annotation files' form
        categories_path = output_path(out, "categories.json")
        write_json(categories_path, {"categories": [
            {"id": int(category_id), "name": name}
            for category_id, name in sorted(category_names.items())]}, indent=1)
        written.append(categories_path)
    return written


def _batch_progress(sources, disabled):
    """One bar over every frame of every video of this process (total unknown when a source
    cannot tell its length)."""
    from tqdm import tqdm

    lengths = [source.num_frames for source in sources]
    total = None if None in lengths else sum(lengths)
    return tqdm(total=total, desc="infer", unit="frame", disable=disabled, dynamic_ncols=True)


def _count_frames(bar, source, frames, advance):
    """Advance the batch bar; correct its total where a container announced another length."""
    if bar.total is not None and source.num_frames is not None and frames != source.num_frames:
        bar.total += frames - source.num_frames
    bar.update(advance)


def _settings_fingerprint(args, formats, predictor):
    """What a video's outputs depend on besides the video: a finished video is reused only if
    a later run has the same."""
    checkpoint = args.checkpoint
    if os.path.isfile(checkpoint):
        stat = os.stat(checkpoint)
        checkpoint = [os.path.abspath(checkpoint), stat.st_size, stat.st_mtime_ns]
    settings = {"checkpoint": checkpoint, "config": predictor.config.to_dict(),
                "precision": predictor.precision, "backend": predictor.backend,
                "formats": sorted(formats), "confidence_threshold": args.confidence_threshold}
    return json.loads(json.dumps(settings))  # as a record file will hold it (tuples -> lists)


def _input_fingerprint(source):
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


def _command(args):
    formats = _formats(args.format)
    _use_threads(args)
    if args.stream:
        return _stream(args, formats)
    shard = shard_from_environment()
    try:
        return _run(args, formats, shard)
    finally:
        close_process_group()


def _use_threads(args):
    from stemseg_fast.inference.predictor import resolve_device
    from stemseg_fast.threads import default_threads, set_threads

    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    set_threads(args.threads or default_threads(resolve_device(args.device).type, processes))


STREAM_FORMATS = ("overlay",)


def _stream(args, formats):
    """``infer --stream``: one live source to ``stream.jsonl`` (one line per frame, written as
    each frame is final) and optionally an overlay video, until the source ends or Ctrl-C."""
    from stemseg_fast.inference.predictor import Predictor, resolve_device
    from stemseg_fast.inference.tracks import VideoTracks
    from stemseg_fast.inference.video import open_video
    from stemseg_fast.outputs.overlay import draw_tracks, open_video_writer

    if len(args.inputs) != 1:
        raise CommandError(f"--stream reads one source (a camera index, a URL, a video file or "
                           f"a frame folder), got {len(args.inputs)}")
    if args.format is not None and set(formats) - set(STREAM_FORMATS):
        raise CommandError(f"--stream writes stream.jsonl and, with --format overlay, an overlay "
                           f"video; {', '.join(sorted(set(formats) - set(STREAM_FORMATS)))} "
                           f"select and score tracks over a whole video: run without --stream")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandError(f"--out {args.out} exists and is not a folder")
    target = args.inputs[0]
    source = open_video(int(target) if target.isdigit() and not os.path.exists(target)
                        else target, fps=args.fps)
    source.frame_size  # noqa: B018 (opens the source: a bad one fails before any output)
    overlay_path = (_video_output_paths(args.out, source.name, ["overlay"])["overlay"]
                    if "overlay" in formats and args.format is not None else None)
    predictor = Predictor(args.checkpoint, preset=args.preset, device=resolve_device(args.device),
                          backend=args.backend, precision=args.precision,
                          inference=_inference_overrides(args.set))
    names = predictor.category_names or {}
    lines_path = output_path(args.out, "stream.jsonl")
    os.makedirs(args.out, exist_ok=True)
    _remove_debris(args.out)
    fps = source.fps or DEFAULT_FPS
    frames = 0
    with contextlib.ExitStack() as stack:
        lines = stack.enter_context(open(lines_path, "w", encoding="utf-8", buffering=1))
        writer = None
        if overlay_path is not None:
            temporary = stack.enter_context(atomic_output(overlay_path))
            writer, _ = open_video_writer(temporary, fps, source.frame_size)
            stack.callback(writer.release)
        bar = stack.enter_context(_stream_progress(args.no_progress, source.name))
        try:
            for frame in predictor.stream(source, keep_images=writer is not None):
                lines.write(json.dumps(_frame_record(frame, source.fps, names)) + "\n")
                if writer is not None:
                    drawn = VideoTracks(source.name, frame.tracks, source.frame_size,
                                        frame.index + 1, category_names=names)
                    writer.write(draw_tracks(frame.image, drawn, frame.index))
                frames += 1
                bar.update(1)
        except KeyboardInterrupt as interruption:  # how a live stream ends: keep its outputs
            stopped = interruption
            print(f"stopped after {frames} frames", file=sys.stderr)
        else:
            stopped = None
    print(f"{frames} frames -> {lines_path}" + (f", {overlay_path}" if overlay_path else ""))
    return 128 + signal.SIGTERM if is_termination(stopped) else 0


def _stream_progress(disabled, name):
    from tqdm import tqdm

    return tqdm(desc=name, unit="frame", disable=disabled, dynamic_ncols=True)


def _frame_record(frame, fps, category_names):
    """One line of stream.jsonl: the frame, its time, and each track's id, class, box, area and
    COCO RLE at the source size."""
    tracks = []
    for track in frame.tracks:
        tracks.append({"track_id": track.track_id, "category_id": track.category_id,
                       "category": category_names.get(track.category_id),
                       "bbox": list(track.bbox(frame.index)), "area": track.area(frame.index),
                       "segmentation": to_json(track.rle(frame.index))})
    return {"frame": frame.index, "time": None if not fps else round(frame.index / fps, 6),
            "tracks": tracks}


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "infer", help="segment and track the objects of videos",
        description=plain_text(__doc__.split("Examples:")[0]),
        epilog="Examples:" + __doc__.split("Examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, frame folders, folders of videos, quoted glob "
                             "patterns, or YouTube-VIS/OVIS annotation JSON files")
    parser.add_argument("--checkpoint", required=True,
                        help="our checkpoint, an official checkpoint file (with --preset), or a "
                             "named official checkpoint: youtube_vis, davis, kitti_mots")
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS),
                        help="network and inference constants (default: the checkpoint's)")
    parser.add_argument("--out", default="infer_output",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--format", action="append", metavar="FORMAT",
                        help=f"one or more of {', '.join(FORMATS)}, comma-separated or repeated "
                             f"(default: ytvis)")
    parser.add_argument("--confidence-threshold", type=number_in(0.0, 1.0), default=None,
                        help="drop tracks of results.json and overlays whose score is below "
                             "this; the score is the official YouTube-VIS rule, a track's pixel "
                             "count relative to the largest kept track of its video (which "
                             "scores 1.0), not a classifier's confidence")
    parser.add_argument("--ids-from", default=None, metavar="ANNOTATIONS",
                        help="YouTube-VIS/OVIS annotation JSON giving the video_id of each "
                             "input by name (default: ids of annotation inputs, else 1, 2, ... "
                             "in input order)")
    parser.add_argument("--image-root", default=None,
                        help="frame root of annotation JSON inputs (default: JPEGImages/ beside)")
    parser.add_argument("--fps", type=number_in(0.1, 1000.0), default=None,
                        help=f"frame rate of inputs that have none (frame folders), for overlays "
                             f"and videos.json (default {DEFAULT_FPS:g})")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when available; cuda:LOCAL_RANK under torchrun), cpu, "
                             "cuda, cuda:N (default: %(default)s)")
    parser.add_argument("--backend", default="auto", choices=("auto", "triton", "reference"),
                        help="kernels: Triton or the PyTorch references (default: %(default)s)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="network autocast dtype; auto = bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="replace an inference constant of the preset, repeatable: "
                             "clip_overlap (official -fo), min_seediness (-msp), "
                             "foreground_threshold (-st), max_tracks, min_dim, max_dim, "
                             "cluster_at_full_resolution, distance_rule=paper, "
                             "secondary_rule=nearest, stitch_iou_threshold, ...")
    parser.add_argument("--threads", type=integer_in(1, 1024), default=None,
                        help="CPU threads for torch and OpenCV (default: 1 with a GPU; else the "
                             "cores this process may use, shared among the processes of this "
                             "machine under torchrun)")
    parser.add_argument("--stream", action="store_true",
                        help="read one live source (a camera index such as 0, an rtsp:// or "
                             "http:// URL, or a video or frame folder read as a stream) and "
                             "write stream.jsonl, one line per frame as soon as it is final, "
                             "plus an overlay video with --format overlay, until the source "
                             "ends or Ctrl-C")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_command)


def main(argv=None):
    """``python -m stemseg_fast.inference.cli infer ...`` (e.g. under torchrun): the full
    ``stemseg-fast`` command line."""
    from stemseg_fast.cli import main as stemseg_fast_main

    return stemseg_fast_main(argv)


if __name__ == "__main__":
    sys.exit(main())
