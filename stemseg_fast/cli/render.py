"""``stemseg-fast render``: draw a YouTube-VIS/OVIS results file onto its videos.

Examples:
  stemseg-fast render out/results.json --out vis/   # infer's output: videos.json finds the videos
  stemseg-fast render results.json --videos valid/JPEGImages --annotations valid.json --out vis/
  stemseg-fast render results.json --videos my_videos/ --out vis/   # my_videos/<video_id>.mp4
"""

import argparse

from stemseg_fast.outputs.render import render

from .arguments import number_in, plain_text


def _command(args):
    written = render(
        args.results,
        args.videos,
        args.out,
        annotations=args.annotations,
        score_threshold=args.score_threshold,
    )
    print(f"wrote {len(written)} overlay videos to {args.out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="draw a YouTube-VIS/OVIS results file onto its videos",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", help="results JSON (YouTube-VIS/OVIS format)")
    parser.add_argument(
        "--videos",
        default=None,
        help="frame root of the annotation file; or a folder of the videos, "
        "named as in the videos.json infer wrote beside the results "
        "(default: the input paths it recorded), or by video_id",
    )
    parser.add_argument(
        "--annotations",
        default=None,
        help="dataset annotation JSON: video ids -> frames, class names",
    )
    parser.add_argument(
        "--out", default="render_output", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--score-threshold",
        type=number_in(0.0, 1.0),
        default=0.0,
        help="skip predictions scoring below this (default: %(default)s)",
    )
    parser.set_defaults(func=_command)
