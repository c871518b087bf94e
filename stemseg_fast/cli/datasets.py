"""``stemseg-fast convert`` and ``stemseg-fast browse``: dataset preparation and inspection.

``convert`` turns folders of frames and indexed-PNG instance masks (DAVIS layout) into a
YouTube-VIS JSON, so your own videos can be trained on and evaluated. ``browse`` writes a few
training clips, as the training loader produces them (sampling, duplication, pseudo-clip
augmentation, targets), as PNG strips with the masks drawn.
"""

import argparse

from stemseg_fast.benchmarks import DAVIS, KITTI_MOTS, OVIS, YOUTUBE_VIS
from stemseg_fast.model.presets import MAX_INPUT_DIM
from stemseg_fast.training.datasets import (
    COCO_AUGMENTATION,
    PseudoClipDataset,
    TargetBuilder,
    VideoClipDataset,
    convert_mask_folders,
    read_coco,
    read_davis,
    read_kitti_mots,
    read_ytvis,
)
from stemseg_fast.training.datasets.browse import write_clip_strips

from .arguments import integer_in, preset_name

# (min_dim, max_dim, frame_span) per dataset: the official training configs (section 1.1, 5.3)
BROWSE_DEFAULTS = {
    YOUTUBE_VIS: (640, 1196, 8),
    OVIS: (640, 1196, 8),
    "coco": (640, 1196, 8),
    DAVIS: (736, 1248, 16),
    KITTI_MOTS: (736, 1792, 8),
}

CONVERT_EXAMPLES = """examples:
  stemseg-fast convert my_videos --out my_videos/train.json
  stemseg-fast convert my_videos --out train.json --categories categories.json
      categories.json: {"*": {"1": "person", "2": "dog"}, "video_7": {"1": "cat"}}
"""

BROWSE_EXAMPLES = """examples:
  stemseg-fast browse --dataset youtube_vis --annotations youtube_vis/train.json \\
      --images youtube_vis/train/JPEGImages --out browse_youtube_vis --count 8
  stemseg-fast browse --dataset coco --annotations coco/instances_train2017.json \\
      --images coco/train2017 --out browse_coco
  stemseg-fast browse --dataset davis --images DAVIS --out browse_davis
  stemseg-fast browse --dataset kitti_mots --annotations kitti/instances_txt \\
      --images kitti/training/image_02 --out browse_kitti
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser(
        "convert",
        help="frame folders + indexed-PNG masks -> YouTube-VIS JSON",
        description="Convert <input>/JPEGImages/<video>/*.jpg + <input>/Annotations/<video>/"
        "*.png (0 background, k object k, 255 void) into a YouTube-VIS JSON.",
        epilog=CONVERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("input_dir", help="folder holding JPEGImages/ and Annotations/")
    convert.add_argument("--out", required=True, help="the JSON file to write")
    convert.add_argument(
        "--categories",
        default=None,
        help="JSON mapping {video or '*': {mask value: category name}}; "
        "default: one class 'object'",
    )
    convert.set_defaults(func=_run_convert)

    browse = subparsers.add_parser(
        "browse",
        help="write training clips with their masks drawn, to check a dataset",
        description="Write COUNT training clips, augmented and with targets as the training "
        "loader makes them, as PNG strips (one frame after the other).",
        epilog=BROWSE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    browse.add_argument(
        "--dataset", required=True, type=preset_name, choices=sorted(BROWSE_DEFAULTS)
    )
    browse.add_argument(
        "--annotations",
        default=None,
        help="annotation JSON (youtube_vis, ovis, coco) or instances_txt folder "
        "(kitti_mots); not used for davis",
    )
    browse.add_argument(
        "--images",
        required=True,
        help="image root the annotations refer to (davis: the DAVIS root)",
    )
    browse.add_argument("--out", default="browse_output", help="folder for the PNG strips")
    browse.add_argument(
        "--count", type=integer_in(1, 10_000), default=4, help="number of clips (default 4)"
    )
    browse.add_argument(
        "--clip-length", type=integer_in(1, 256), default=8, help="frames per clip (8)"
    )
    browse.add_argument(
        "--frame-span",
        type=integer_in(1, 10_000),
        default=None,
        help="frames between first and last clip frame (dataset default)",
    )
    browse.add_argument(
        "--min-dim",
        type=integer_in(32, MAX_INPUT_DIM),
        default=None,
        help="resize rule, short side",
    )
    browse.add_argument(
        "--max-dim", type=integer_in(32, MAX_INPUT_DIM), default=None, help="resize rule, long side"
    )
    browse.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    browse.set_defaults(func=_run_browse)


def _run_convert(args: argparse.Namespace) -> int:
    result = convert_mask_folders(args.input_dir, args.out, categories=args.categories)
    print(
        f"wrote {len(result['videos'])} videos, {len(result['annotations'])} annotations, "
        f"{len(result['categories'])} categories to {args.out}"
    )
    return 0


def _build_browse_dataset(args: argparse.Namespace):
    min_dim, max_dim, frame_span = BROWSE_DEFAULTS[args.dataset]
    targets = TargetBuilder(args.min_dim or min_dim, args.max_dim or max_dim)
    frame_span = args.frame_span or frame_span
    if args.dataset != "davis" and not args.annotations:
        raise ValueError(f"--annotations is required for --dataset {args.dataset}")
    if args.dataset == "coco":
        images, _ = read_coco(args.annotations, args.images)
        return PseudoClipDataset(
            images,
            args.count,
            targets=targets,
            clip_length=args.clip_length,
            augmentation=COCO_AUGMENTATION,
            seed=args.seed,
            name=args.annotations,
        )
    if args.dataset in (YOUTUBE_VIS, OVIS):
        videos, _ = read_ytvis(args.annotations, args.images)
    elif args.dataset == "davis":
        videos = read_davis(args.images)
    else:
        videos = read_kitti_mots(args.annotations, args.images)
    return VideoClipDataset(
        videos,
        args.count,
        targets=targets,
        clip_length=args.clip_length,
        frame_span=frame_span,
        category_agnostic=args.dataset == "davis",
        duplicate_single_instance=args.dataset in (YOUTUBE_VIS, DAVIS),
        seed=args.seed,
        name=args.annotations or args.images,
    )


def _run_browse(args: argparse.Namespace) -> int:
    dataset = _build_browse_dataset(args)
    paths = write_clip_strips(dataset, args.out, args.count, seed=args.seed)
    print(f"wrote {len(paths)} clip strips to {args.out}")
    return 0
