"""What the GPU default computation changes: video AP and mask agreement of the bundled model on
the synthetic validation set, for the network in fp32 or bf16 autocast and with the official
or the fused TSE decoder.

    python benchmarks/parity_precision.py                 # writes benchmarks/results/<device>/
    python benchmarks/parity_precision.py --videos 4 --out /tmp/parity.json
    python benchmarks/parity_precision.py --render benchmarks/results/cpu/parity_precision-*.json \
        --readme README.md                                # the README table, from the file

Variants (clustering, stitching and outputs are the same code in all four):

* ``fp32-official``: float32 network, decoder ``conv(cat(up(x), skip))`` as the official code
  computes it. The CPU default, and the bit-exact path (``precision="fp32"``, ``fused=False``).
* ``fp32-fused``: float32, fused decoder ``up(W_a x) + W_b skip`` (equal up to rounding).
* ``bf16-official``: bf16 autocast, official decoder.
* ``bf16-fused``: bf16 autocast and the fused decoder: the computation a GPU runs by default
  (``precision="auto"``, ``backend="auto"``). Here the fused blocks run their PyTorch
  references (the Triton kernels compute the same function; the interpreter would take hours),
  so this measures the arithmetic, not the kernels.

For each variant: AP, AP50, AP75, AR1, AR10 (``evaluate_video_ap``), and against
``fp32-official``: the fraction of videos whose outputs are identical, the fraction of
(frame, pixel) labels that agree, and the mean over reference tracks of the best video IoU with a
variant track. The JSON holds the device, versions, commit and date.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile

import numpy as np
import torch
from provenance import git_commit, replace_between_markers

from stemseg_fast.demo import BUNDLED_CHECKPOINT, VIDEO_SIZE
from stemseg_fast.evaluation import evaluate_video_ap
from stemseg_fast.inference.predictor import Predictor, load_model
from stemseg_fast.io import youtube_vis_predictions
from stemseg_fast.io.files import write_json
from stemseg_fast.synthetic import write_synthetic_dataset

VARIANTS = {  # name -> (precision, fused decoder)
    "fp32-official": ("fp32", False),
    "fp32-fused": ("fp32", True),
    "bf16-official": ("bf16", False),
    "bf16-fused": ("bf16", True),
}
REFERENCE = "fp32-official"


def _device_slug(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device).lower().replace(" ", "-")
    return "cpu"


def run_variant(name, videos, device):
    precision, fused = VARIANTS[name]
    model, config = load_model(BUNDLED_CHECKPOINT, fused=fused, backend="reference")
    predictor = Predictor(model, device=device, backend="reference", precision=precision)
    tracks = {}
    for video_id, folder in videos:
        tracks[video_id] = predictor(folder, video_id=video_id)
    return tracks


def label_volume(video_tracks):
    """[T, H, W] int32: 1 + track position, 0 for none (later tracks win, DAVIS rule)."""
    return np.stack([video_tracks.label_map(t) for t in range(video_tracks.num_frames)])


def track_volume(track, num_frames):
    return np.stack([track.mask(t) for t in range(num_frames)]).astype(bool)


def agreement(reference, variant):
    """Identical outputs, pixel-label agreement, mean best video IoU of reference tracks."""
    identical, agree, ious = [], [], []
    for video_id, ref in reference.items():
        other = variant[video_id]
        ref_labels, other_labels = label_volume(ref), label_volume(other)
        same_tracks = [(a.track_id, a.category_id, a.score) for a in ref.tracks] == [
            (b.track_id, b.category_id, b.score) for b in other.tracks
        ]
        identical.append(same_tracks and np.array_equal(ref_labels, other_labels))
        agree.append(float((ref_labels == other_labels).mean()))
        other_volumes = [track_volume(t, other.num_frames) for t in other.tracks]
        for track in ref.tracks:
            mask = track_volume(track, ref.num_frames)
            best = 0.0
            for candidate in other_volumes:
                union = np.count_nonzero(mask | candidate)
                if union:
                    best = max(best, np.count_nonzero(mask & candidate) / union)
            ious.append(best)
    return {
        "identical_videos": float(np.mean(identical)),
        "pixel_label_agreement": float(np.mean(agree)),
        "mean_best_track_iou": float(np.mean(ious)) if ious else None,
    }


README_START, README_END = "<!-- parity_precision:start -->", "<!-- parity_precision:end -->"


def render_markdown(report, source):
    """The README table of one result file."""
    info = report["machine_info"]
    lines = [
        f"**{info['device']}** — torch {info['torch']}, {info['videos']} synthetic val "
        f"videos of {info['video_size']['--frames']} frames, bundled "
        f"`{info['checkpoint']}`, commit {str(info['commit'])[:10]}, {info['date']} "
        f"(`{source}`)",
        "",
        "| variant | network | decoder | AP | AP50 | AP75 | AR1 | AR10 | identical videos "
        "| pixel labels agreeing | mean best track IoU |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in report["variants"].items():
        against = entry.get("against_" + REFERENCE)
        cells = (
            ["reference", "–", "–"]
            if against is None
            else [
                f"{against['identical_videos']:.3f}",
                f"{against['pixel_label_agreement']:.5f}",
                f"{against['mean_best_track_iou']:.4f}",
            ]
        )
        lines.append(
            f"| `{name}` | {entry['precision']} | "
            f"{'fused' if entry['fused_decoder'] else 'official'} | "
            + " | ".join(f"{entry[key]:.4f}" for key in ("ap", "ap50", "ap75", "ar1", "ar10"))
            + " | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="print (or, with --readme, write) the table of a result file",
    )
    parser.add_argument(
        "--readme", help="with --render: README to update between the parity_precision markers"
    )
    parser.add_argument("--videos", type=int, default=12, help="synthetic val videos")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON path (default: benchmarks/results/<device>/parity_precision-<date>.json)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (one: oneDNN spins on shared cores)"
    )
    args = parser.parse_args(argv)
    if args.render:
        try:
            with open(args.render, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            parser.exit(2, f"error: --render: cannot read {args.render}: {error}\n")
        table = render_markdown(report, os.path.relpath(args.render))
        if args.readme:
            replace_between_markers(args.readme, table, README_START, README_END)
        else:
            print(table)
        return 0
    if args.videos < 1:
        parser.error(f"--videos must be >= 1, got {args.videos}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    date = datetime.datetime.now(datetime.timezone.utc)
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        _device_slug(device),
        f"parity_precision-{date.date().isoformat()}.json",
    )
    with tempfile.TemporaryDirectory() as data_dir:
        annotations = write_synthetic_dataset(
            data_dir,
            args.videos,
            split="val",
            num_frames=VIDEO_SIZE["--frames"],
            height=VIDEO_SIZE["--height"],
            width=VIDEO_SIZE["--width"],
        )
        videos = [
            (
                video["id"],
                os.path.join(data_dir, "JPEGImages", os.path.dirname(video["file_names"][0])),
            )
            for video in annotations["videos"]
        ]
        tracks = {name: run_variant(name, videos, device) for name in VARIANTS}
    report = {
        "machine_info": {
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "cpu": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "triton": _triton_version(),
            "commit": git_commit(),
            "date": date.isoformat(),
            "checkpoint": os.path.basename(BUNDLED_CHECKPOINT),
            "videos": args.videos,
            "video_size": VIDEO_SIZE,
            "threads": args.threads,
        },
        "variants": {},
    }
    for name, per_video in tracks.items():
        results = [
            prediction
            for video_tracks in per_video.values()
            for prediction in youtube_vis_predictions(video_tracks)
        ]
        scores = evaluate_video_ap(annotations, results)
        entry = {
            "precision": VARIANTS[name][0],
            "fused_decoder": VARIANTS[name][1],
            **{key: scores.summary()[key] for key in ("ap", "ap50", "ap75", "ar1", "ar10")},
        }
        if name != REFERENCE:
            entry["against_" + REFERENCE] = agreement(tracks[REFERENCE], per_video)
        report["variants"][name] = entry
    write_json(out, report)
    print(json.dumps(report["variants"], indent=2))
    print(f"wrote {out}")
    return 0


def _triton_version():
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__


if __name__ == "__main__":
    sys.exit(main())
