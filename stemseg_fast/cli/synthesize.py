"""``stemseg-fast synthesize``: a synthetic OVIS-like video set (:mod:`stemseg_fast.synthetic`)."""

import argparse

from stemseg_fast.synthetic import write_synthetic_dataset

from .arguments import integer_in


def _synthesize_command(args):
    annotations = write_synthetic_dataset(
        args.out,
        args.videos,
        split=args.split,
        num_frames=args.frames,
        height=args.height,
        width=args.width,
    )
    print(
        f"wrote {len(annotations['videos'])} videos with {len(annotations['annotations'])} "
        f"objects to {args.out} (annotations.json, JPEGImages/)"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synthesize",
        help="write a synthetic OVIS-like video set (YouTube-VIS/OVIS format)",
        description="Deterministic synthetic videos: textured shapes crossing, occluding each "
        "other, entering and leaving the frame; annotations with OVIS occlusion "
        "levels. Splits use disjoint seeds.",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument(
        "--videos", type=integer_in(1, 100_000), default=16, help="number of videos"
    )
    parser.add_argument(
        "--frames", type=integer_in(1, 100_000), default=16, help="frames per video"
    )
    parser.add_argument("--height", type=integer_in(16, 4096), default=96)
    parser.add_argument("--width", type=integer_in(16, 4096), default=128)
    parser.set_defaults(func=_synthesize_command)
