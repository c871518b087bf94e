"""``stemseg-fast infer``: videos in, tracks out, in every output format from one network pass.

Outputs under ``--out``:
  youtube_vis  results.json (+ results.zip for CodaLab): YouTube-VIS/OVIS results, every video
  davis        davis/<video>/00000.png ...: DAVIS palette PNGs
  kitti_mots   kitti_mots/results/<video>.txt and the official post-filter's results_nms/
  overlay      overlay/<video>.mp4 at the source fps, plus results.json describing what is drawn
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
  stemseg-fast infer valid/JPEGImages --checkpoint youtube_vis --preset youtube_vis --out out/ \\
      --format youtube_vis,overlay --confidence-threshold 0.1
  stemseg-fast infer valid.json --image-root valid/JPEGImages --checkpoint youtube_vis --out out/
  torchrun --nproc_per_node 4 -m stemseg_fast infer videos/ --checkpoint C --out out/
  stemseg-fast infer --stream 0 --checkpoint C --out live/ --format overlay   # webcam 0
  stemseg-fast infer --stream rtsp://camera/live --checkpoint C --out live/
"""

import argparse
import contextlib
import json
import os
import signal
import sys

import torch

from stemseg_fast.benchmarks import YOUTUBE_VIS, canonical_name
from stemseg_fast.distributed import init_distributed, resolve_device, shutdown_distributed
from stemseg_fast.inference.pipeline import frame_rate_table
from stemseg_fast.inference.predictor import BACKENDS, PRECISIONS
from stemseg_fast.io.files import atomic_output, output_path
from stemseg_fast.io.rle import to_json
from stemseg_fast.io.video import assign_video_ids, expand_inputs
from stemseg_fast.model import PRESETS
from stemseg_fast.outputs.batch import RECORDS_FOLDER, owned_sources, run_batch
from stemseg_fast.outputs.overlay import DEFAULT_FPS
from stemseg_fast.outputs.writing import (
    FORMATS,
    OVERLAY,
    check_distinct_outputs,
    check_formats,
    remove_debris,
    video_output_paths,
)

from .arguments import integer_in, name_assignments, number_in, plain_text, preset_name
from .errors import CommandError, is_termination


def _formats(values):
    formats = []
    for value in values or [YOUTUBE_VIS]:
        for name in value.split(","):
            name = canonical_name(name.strip())
            if name not in FORMATS:
                raise CommandError(
                    f"--format must be among {', '.join(FORMATS)} (comma-separated "
                    f"or repeated), got {name!r}"
                )
            if name not in formats:
                formats.append(name)
    return formats


def _print_summary(reports, world_size, written):
    frames = sum(report["frames"] for report in reports)
    print(
        f"{len(reports)} videos, {frames} frames, {world_size} process"
        f"{'es' if world_size > 1 else ''}; frames per second per process:"
    )
    print(frame_rate_table(frames, [report["timings"] for report in reports]))
    for path in written:
        print(f"wrote {path}")


def _check_out_folder(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"--out {out} exists and is not a folder")


def _check_cuda_graphs(args, device):
    if args.cuda_graphs and (torch.device(device).type != "cuda" or args.backend == "reference"):
        raise CommandError(
            f"--cuda-graphs needs a CUDA device and the triton backend, got --device "
            f"{device} and --backend {args.backend}"
        )


def _open_inputs(args, formats):
    """Every input opened and checked, its id and fps set and its output paths free, before
    anything is written; returns (sources, how many were numbered by position)."""
    _check_out_folder(args.out)
    sources = expand_inputs(args.inputs, image_root=args.image_root)
    if not sources:
        raise CommandError(f"the inputs hold no video: {' '.join(args.inputs)}")
    numbered_by_position = assign_video_ids(sources, args.ids_from)
    paths = {}
    for source in sources:  # open every input now: a bad one fails before anything is written
        source.num_frames, source.frame_size  # noqa: B018 (probing reads the first frame)
        if source.fps is None:  # one rate for the overlay and videos.json
            source.fps = args.fps or DEFAULT_FPS
        paths[source.name] = video_output_paths(args.out, source.name, formats)
    check_distinct_outputs(paths)
    return sources, numbered_by_position


def _run(args, formats, context):
    from stemseg_fast.inference.predictor import Predictor

    sources, numbered_by_position = _open_inputs(args, formats)
    if context.is_main:  # start-up takes a while on a loaded machine: say what is happening
        lengths = [source.num_frames for source in sources]
        frames = "unknown" if None in lengths else sum(lengths)
        print(
            f"{len(sources)} videos, {frames} frames -> {args.out}; loading {args.checkpoint}",
            flush=True,
        )
    _check_cuda_graphs(args, context.device)
    predictor = Predictor(
        args.checkpoint,
        preset=args.preset,
        device=context.device,
        backend=args.backend,
        precision=args.precision,
        inference=name_assignments(args.set, "--set"),
        cuda_graphs=args.cuda_graphs,
    )
    check_formats(formats, predictor.config)
    bar = _batch_progress(sources, context, args.no_progress)
    try:
        result = run_batch(
            predictor,
            sources,
            formats,
            args.out,
            settings=_settings(args, formats, predictor),
            context=context,
            min_score=args.confidence_threshold,
            progress=bar,
            keep_going=not args.traceback,
        )
    finally:
        bar.close()
    if not context.is_main:
        return 1 if result.failures else 0
    _print_summary(result.reports, context.world_size, result.written)
    records = result.records
    empty = [record["video"]["name"] for record in records if not record["tracks"]]
    if empty:
        print(
            f"no track found in {len(empty)} of {len(records)} videos ({', '.join(empty)}): "
            f"the model saw no object it knows, or a threshold is too strict (--set "
            f"min_seediness=..., foreground_threshold=...)"
        )
    if result.skipped:
        print(
            f"{result.skipped} videos were already done by an earlier run with the same "
            f"settings (their results are in {os.path.join(args.out, RECORDS_FOLDER)}); skipped"
        )
    if numbered_by_position and YOUTUBE_VIS in formats:
        print(
            f"video ids: {numbered_by_position} of {len(sources)} videos had no dataset id and "
            f"were numbered by input position (see videos.json); pass --ids-from "
            f"ANNOTATIONS.json to use a benchmark's ids"
        )
    if not result.failures:
        return 0
    for failure in result.failures:
        print(f"stemseg-fast infer: failed: {failure}", file=sys.stderr)
    print(
        f"stemseg-fast infer: {len(result.failures)} of {len(sources)} videos failed; the "
        f"others' outputs are written; the same command again retries only the failed ones",
        file=sys.stderr,
    )
    return 1


def _batch_progress(sources, context, disabled):
    """One bar over every frame of this process's videos (total unknown when a source cannot
    tell its length)."""
    from tqdm import tqdm

    lengths = [source.num_frames for source in owned_sources(sources, context)]
    total = None if None in lengths else sum(lengths)
    return tqdm(total=total, desc="infer", unit="frame", disable=disabled, dynamic_ncols=True)


def _settings(args, formats, predictor):
    """What a video's outputs depend on besides the video: a finished video is reused only if
    a later run has the same."""
    checkpoint = args.checkpoint
    if os.path.isfile(checkpoint):
        stat = os.stat(checkpoint)
        checkpoint = [os.path.abspath(checkpoint), stat.st_size, stat.st_mtime_ns]
    return {
        "checkpoint": checkpoint,
        "config": predictor.config.to_dict(),
        "precision": predictor.precision,
        "backend": predictor.backend,
        "formats": sorted(formats),
        "confidence_threshold": args.confidence_threshold,
    }


def _command(args):
    formats = _formats(args.format)
    _use_threads(args)
    if args.stream:
        return _stream(args, formats)
    context = init_distributed(args.device, backend="gloo")
    try:
        return _run(args, formats, context)
    finally:
        shutdown_distributed()


def _use_threads(args):
    from stemseg_fast.threads import default_threads, set_threads

    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    set_threads(
        args.threads
        or default_threads(resolve_device(args.device, what="--device").type, processes)
    )


STREAM_FORMATS = (OVERLAY,)


def _stream(args, formats):
    """``infer --stream``: one live source to ``stream.jsonl`` (one line per frame, written as
    each frame is final) and optionally an overlay video, until the source ends or Ctrl-C."""
    from stemseg_fast.inference.predictor import Predictor
    from stemseg_fast.io.video import open_video
    from stemseg_fast.outputs.overlay import draw_tracks, open_video_writer
    from stemseg_fast.tracks import VideoTracks

    if len(args.inputs) != 1:
        raise CommandError(
            f"--stream reads one source (a camera index, a URL, a video file or "
            f"a frame folder), got {len(args.inputs)}"
        )
    if args.format is not None and set(formats) - set(STREAM_FORMATS):
        raise CommandError(
            f"--stream writes stream.jsonl and, with --format overlay, an overlay "
            f"video; {', '.join(sorted(set(formats) - set(STREAM_FORMATS)))} "
            f"select and score tracks over a whole video: run without --stream"
        )
    _check_out_folder(args.out)
    target = args.inputs[0]
    source = open_video(
        int(target) if target.isdigit() and not os.path.exists(target) else target, fps=args.fps
    )
    source.frame_size  # noqa: B018 (opens the source: a bad one fails before any output)
    overlay_path = (
        video_output_paths(args.out, source.name, [OVERLAY])[OVERLAY]
        if OVERLAY in formats and args.format is not None
        else None
    )
    device = resolve_device(args.device, what="--device")
    _check_cuda_graphs(args, device)
    predictor = Predictor(
        args.checkpoint,
        preset=args.preset,
        device=device,
        backend=args.backend,
        precision=args.precision,
        inference=name_assignments(args.set, "--set"),
        cuda_graphs=args.cuda_graphs,
    )
    names = predictor.category_names or {}
    lines_path = output_path(args.out, "stream.jsonl")
    os.makedirs(args.out, exist_ok=True)
    remove_debris(args.out)
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
                    drawn = VideoTracks(
                        source.name,
                        frame.tracks,
                        source.frame_size,
                        frame.index + 1,
                        category_names=names,
                    )
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
        tracks.append(
            {
                "track_id": track.track_id,
                "category_id": track.category_id,
                "category": category_names.get(track.category_id),
                "bbox": list(track.bbox(frame.index)),
                "area": track.area(frame.index),
                "segmentation": to_json(track.rle(frame.index)),
            }
        )
    return {
        "frame": frame.index,
        "time": None if not fps else round(frame.index / fps, 6),
        "tracks": tracks,
    }


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="segment and track the objects of videos",
        description=plain_text(__doc__.split("Examples:")[0]),
        epilog="Examples:" + __doc__.split("Examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, frame folders, folders of videos, quoted glob "
        "patterns, or YouTube-VIS/OVIS annotation JSON files",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="our checkpoint, an official checkpoint file (with --preset), or a "
        "named official checkpoint: youtube_vis, davis, kitti_mots",
    )
    parser.add_argument(
        "--preset",
        default=None,
        type=preset_name,
        choices=sorted(PRESETS),
        help="network and inference constants (default: the checkpoint's)",
    )
    parser.add_argument(
        "--out", default="infer_output", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--format",
        action="append",
        metavar="FORMAT",
        help=f"one or more of {', '.join(FORMATS)}, comma-separated or repeated "
        f"(default: {YOUTUBE_VIS})",
    )
    parser.add_argument(
        "--confidence-threshold",
        type=number_in(0.0, 1.0),
        default=None,
        help="drop tracks of results.json and overlays whose score is below "
        "this; the score is the official YouTube-VIS rule, a track's pixel "
        "count relative to the largest kept track of its video (which "
        "scores 1.0), not a classifier's confidence",
    )
    parser.add_argument(
        "--ids-from",
        default=None,
        metavar="ANNOTATIONS",
        help="YouTube-VIS/OVIS annotation JSON giving the video_id of each "
        "input by name (default: ids of annotation inputs, else 1, 2, ... "
        "in input order)",
    )
    parser.add_argument(
        "--image-root",
        default=None,
        help="frame root of annotation JSON inputs (default: JPEGImages/ beside)",
    )
    parser.add_argument(
        "--fps",
        type=number_in(0.1, 1000.0),
        default=None,
        help=f"frame rate of inputs that have none (frame folders), for overlays "
        f"and videos.json (default {DEFAULT_FPS:g})",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when available; cuda:LOCAL_RANK under torchrun), cpu, "
        "cuda, cuda:N (default: %(default)s)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="kernels: Triton or the PyTorch references (default: %(default)s)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="network autocast dtype; auto = bf16 on CUDA, fp32 on CPU",
    )
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay each clip shape's heads and clustering as CUDA graphs (CUDA and the "
        "triton backend; same outputs, fewer launches; not yet timed on a GPU)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace an inference constant of the preset, repeatable: "
        "clip_overlap (official -fo), min_seediness (-msp), "
        "foreground_threshold (-st), max_tracks, min_dim, max_dim, "
        "cluster_at_full_resolution, distance_rule=paper, "
        "secondary_rule=nearest, stitch_iou_threshold, ...",
    )
    parser.add_argument(
        "--threads",
        type=integer_in(1, 1024),
        default=None,
        help="CPU threads for torch and OpenCV (default: 1 with a GPU; else the "
        "cores this process may use, shared among the processes of this "
        "machine under torchrun)",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="read one live source (a camera index such as 0, an rtsp:// or "
        "http:// URL, or a video or frame folder read as a stream) and "
        "write stream.jsonl, one line per frame as soon as it is final, "
        "plus an overlay video with --format overlay, until the source "
        "ends or Ctrl-C",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_command)
