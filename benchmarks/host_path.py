"""CPU benchmark of the inference host path at OVIS input (640 x 1152 frames, clips of T = 8,
stride-4 maps 160 x 288): milliseconds per frame of each host stage.

    python benchmarks/host_path.py [--out PATH] [--readme README.md] [--repeats N] [--frames N]

Stages, each timed on the library's own code (the median of ``--repeats`` runs):
  decode       ``open_video`` over an MP4 (OpenCV mp4v) of synthetic OVIS-size frames, and
               ``folder_source`` over the same frames as JPEG files (how OVIS ships them)
  preprocess   ``np.stack`` + ``preprocess_clip`` of one clip of 8 frames (per frame: / 8)
  mask path    ``inference.masks.frame_masks``, the official output-mask path: the label map at the
               clustering resolution (stride 4: 160 x 288, upsampled x4 then to the frame; or
               full resolution 640 x 1152 as the OVIS preset clusters) to K full-size masks
  rle          pycocotools' ``encode`` of those K masks, as the pipeline calls it on the CPU;
               the same split over a pool of one thread per core (the worker-pool fallback:
               it gains only if pycocotools releases the GIL); and
               ``stemseg_fast.io.rle.encode_masks`` (what the pipeline runs on a GPU)
  clip masks   ``inference.masks.ClipMaskEncoding`` over the 4 frames a clip of 8 overlapping
               by 4 makes final (mask path and RLE together, as the pipeline runs them; per
               frame: / 4)
  write        ``youtube_vis_predictions`` + ``write_youtube_vis_results`` of a video of the K
               tracks (per frame: / frames)
for K = 5 and 20 tracks. The mask and RLE steps are the pipeline's own functions, called directly so
that the numbers move when the library's code does; a renamed method fails this script loudly.

Writes ``benchmarks/results/cpu/host-path-<yyyy-mm-dd>.json`` (versions, commit, machine) unless
``--out`` names another file; ``--readme`` renders the table between
``<!-- host-path:start -->`` and ``<!-- host-path:end -->``.
"""

import argparse
import dataclasses
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCHMARKS_DIR)
sys.path.insert(0, BENCHMARKS_DIR)

from inputs import instance_id_map  # noqa: E402
from presets import PRESETS  # noqa: E402
from provenance import git_commit, publish  # noqa: E402

from stemseg_fast.io.files import atomic_output  # noqa: E402
from stemseg_fast.inference.masks import ClipMaskEncoding, frame_masks  # noqa: E402
from stemseg_fast.tracks import Track, VideoTracks  # noqa: E402
from stemseg_fast.io.video import folder_source, open_video  # noqa: E402
from stemseg_fast.model import PRESETS as MODEL_PRESETS  # noqa: E402
from stemseg_fast.model.preprocessing import preprocess_clip, resized_size  # noqa: E402
from stemseg_fast.io.youtube_vis import write_youtube_vis_results  # noqa: E402
from stemseg_fast.io.youtube_vis import youtube_vis_predictions  # noqa: E402
from stemseg_fast.io.rle import encode_masks  # noqa: E402
from stemseg_fast.synthetic import synthetic_video  # noqa: E402

START, END = "<!-- host-path:start -->", "<!-- host-path:end -->"
CLIP_LENGTH = 8
FRAMES_FINAL_PER_CLIP = 4  # clips of 8 overlapping by 4
TRACK_COUNTS = (5, 20)
RESOLUTIONS = {"stride4": "ovis_T8_stride4", "fullres": "ovis_T8_fullres"}


def _median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times), max(times)


def _row(stage, detail, per, timing, repeats):
    median, low, high = (value / per for value in timing)
    return {
        "stage": stage,
        "detail": detail,
        "ms_per_frame": median,
        "ms_per_frame_min": low,
        "ms_per_frame_max": high,
        "repeats": repeats,
    }


def _write_video(path, frames):
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write an mp4v video here")
    for frame in frames:
        writer.write(frame)
    writer.release()


def _mask_sizes(frames, full_resolution):
    """The mask path's size arguments for the OVIS preset at this clustering resolution."""
    inference = MODEL_PRESETS["ovis"].inference
    frame_size = tuple(frames.shape[1:3])
    return dict(
        resized=resized_size(*frame_size, inference.min_dim, inference.max_dim),
        frame_size=frame_size,
        full_resolution=full_resolution,
    )


def _clip_masks(labels, track_ids, sizes):
    """The pipeline's output masks of the frames one clip makes final, each holding ``labels``."""
    clip = labels.expand(FRAMES_FINAL_PER_CLIP, -1, -1)
    return ClipMaskEncoding(clip, [track_ids.tolist()] * FRAMES_FINAL_PER_CLIP, **sizes).result()


def measure(*, repeats=5, num_frames=16):
    """Every stage's ms per frame (a list of rows)."""
    preset = PRESETS["ovis_T8_fullres"]
    frames = synthetic_video(
        num_frames=num_frames, height=preset.height, width=preset.width, seed=0
    ).frames  # [T, H, W, 3] uint8 BGR
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ovis.mp4")
        _write_video(path, frames)
        decoded = sum(1 for _ in open_video(path))
        if decoded != num_frames:
            raise RuntimeError(f"decoded {decoded} of the {num_frames} frames written")
        timing = _median_ms(lambda: sum(1 for _ in open_video(path)), repeats)
        rows.append(_row("decode", "MP4 (mp4v) 640x1152, OpenCV", num_frames, timing, repeats))
        # OVIS ships its videos as JPEG frame folders
        jpeg_folder = os.path.join(folder, "frames")
        os.makedirs(jpeg_folder)
        for index, frame in enumerate(frames):
            cv2.imwrite(
                os.path.join(jpeg_folder, f"{index:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90]
            )
        timing = _median_ms(lambda: sum(1 for _ in folder_source(jpeg_folder)), repeats)
        rows.append(
            _row("decode", "JPEG folder 640x1152 (quality 90), OpenCV", num_frames, timing, repeats)
        )

        inference = MODEL_PRESETS["ovis"].inference
        clip = list(frames[:CLIP_LENGTH])
        timing = _median_ms(
            lambda: preprocess_clip(
                torch.from_numpy(np.stack(clip)), inference.min_dim, inference.max_dim
            ),
            repeats,
        )
        rows.append(_row("preprocess", f"clip of {CLIP_LENGTH}", CLIP_LENGTH, timing, repeats))

        for resolution, preset_name in RESOLUTIONS.items():
            sizes = _mask_sizes(frames, full_resolution=resolution == "fullres")
            masks_of = functools.partial(frame_masks, **sizes)
            for num_tracks in TRACK_COUNTS:
                label_preset = dataclasses.replace(PRESETS[preset_name], num_instances=num_tracks)
                labels = instance_id_map(label_preset, device="cpu")[0]  # [H_c, W_c], -1 = none
                track_ids = torch.arange(num_tracks)
                detail = (
                    f"{num_tracks} tracks, label map {label_preset.height}x{label_preset.width}"
                )
                timing = _median_ms(lambda: masks_of(labels, track_ids), repeats)
                rows.append(_row("mask path", detail, 1, timing, repeats))
                transposed = masks_of(labels, track_ids)  # [K, W, H], as the pipeline
                masks = transposed.numpy().transpose(2, 1, 0)
                timing = _median_ms(lambda: mask_utils.encode(masks), repeats)
                rows.append(
                    _row(
                        "rle",
                        f"{num_tracks} tracks 640x1152 (masks of the "
                        f"{label_preset.height}x{label_preset.width} map)",
                        1,
                        timing,
                        repeats,
                    )
                )
                with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
                    chunks = np.array_split(np.arange(num_tracks), os.cpu_count())
                    timing = _median_ms(
                        lambda: list(
                            pool.map(
                                lambda chunk: mask_utils.encode(
                                    masks[:, :, chunk[0] : chunk[-1] + 1]
                                ),
                                [chunk for chunk in chunks if chunk.size],
                            )
                        ),
                        repeats,
                    )
                rows.append(
                    _row(
                        "rle",
                        f"{num_tracks} tracks 640x1152, pycocotools over {os.cpu_count()} threads",
                        1,
                        timing,
                        repeats,
                    )
                )
                # The GPU path's encoder (run lengths found with torch ops), on the CPU: it
                # shows whether the CPU should use it (it should not when this is slower).
                timing = _median_ms(lambda: encode_masks(transposed.transpose(1, 2)), repeats)
                rows.append(
                    _row(
                        "rle",
                        f"{num_tracks} tracks 640x1152, encode_masks (torch ops) on the CPU",
                        1,
                        timing,
                        repeats,
                    )
                )
                timing = _median_ms(lambda: _clip_masks(labels, track_ids, sizes), repeats)
                rows.append(
                    _row(
                        "clip masks",
                        f"{num_tracks} tracks, {FRAMES_FINAL_PER_CLIP} "
                        f"final frames of a clip, label map {label_preset.height}x"
                        f"{label_preset.width}",
                        FRAMES_FINAL_PER_CLIP,
                        timing,
                        repeats,
                    )
                )
                if resolution == "fullres":
                    rows.append(_write_rows(folder, masks, num_tracks, num_frames, repeats))
    return rows


def _write_rows(folder, masks, num_tracks, num_frames, repeats):
    """Results JSON of a video whose every frame holds the K masks."""
    encoded = mask_utils.encode(masks)
    size = masks.shape[:2]
    tracks = [
        Track(
            track_id,
            size,
            {frame: encoded[track_id] for frame in range(num_frames)},
            category_id=1,
            score=0.5,
        )
        for track_id in range(num_tracks)
    ]
    video = VideoTracks("ovis", tracks, size, num_frames, video_id=1)
    target = os.path.join(folder, "results.json")

    def write():
        write_youtube_vis_results(target, youtube_vis_predictions(video))

    return _row(
        "write",
        f"{num_tracks} tracks, YouTube-VIS/OVIS JSON",
        num_frames,
        _median_ms(write, repeats),
        repeats,
    )


def render_markdown(result, path=None):
    machine = result["machine"]
    source = f" (`{os.path.relpath(os.path.abspath(path), REPO)}`)" if path else ""
    lines = [
        f"**{machine['cpu']}, {machine['threads']} threads** — torch {machine['torch']}, "
        f"OpenCV {machine['opencv']}, commit {result['git_commit'][:10]}, "
        f"{result['date']}{source}; median of {result['repeats']} runs",
        "",
        "| stage | detail | ms per frame | min | max |",
        "|---|---|---:|---:|---:|",
    ]
    for row in result["stages"]:
        lines.append(
            f"| {row['stage']} | {row['detail']} | {row['ms_per_frame']:.2f} | "
            f"{row['ms_per_frame_min']:.2f} | {row['ms_per_frame_max']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", help="JSON file to write (default: benchmarks/results/cpu/host-path-<date>.json)"
    )
    parser.add_argument("--readme", help="render the table into this file between the markers")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per stage (median)")
    parser.add_argument("--frames", type=int, default=16, help="frames of the decoded video")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.frames < CLIP_LENGTH:
        parser.error(f"--frames must be >= {CLIP_LENGTH} (one clip), got {args.frames}")
    stages = measure(repeats=args.repeats, num_frames=args.frames)
    result = {
        "label": "CPU host path at OVIS input, ms per frame",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "input": {
            "frame": [640, 1152],
            "clip_length": CLIP_LENGTH,
            "stride": 4,
            "frames": args.frames,
        },
        "repeats": args.repeats,
        "stages": stages,
    }
    path = args.out or os.path.join(
        BENCHMARKS_DIR, "results", "cpu", f"host-path-{datetime.date.today().isoformat()}.json"
    )
    with atomic_output(path) as partial:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
            handle.write("\n")
    text = render_markdown(result, path)
    publish(text, args.readme, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
