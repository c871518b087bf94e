"""``stemseg-fast eval`` (score results offline) and ``stemseg-fast split`` (hold out
validation videos from a training annotation file)."""

import argparse
import dataclasses
import os
import warnings

from stemseg_fast.benchmarks import DAVIS, KITTI_MOTS, OVIS, YOUTUBE_VIS
from stemseg_fast.categories import read_category_names
from stemseg_fast.evaluation.annotations import load_ground_truth
from stemseg_fast.evaluation.split import write_split
from stemseg_fast.evaluation.video_ap import evaluate_video_ap
from stemseg_fast.io.files import check_not_an_input, write_json

from .arguments import integer_in, number_in, preset_name
from .errors import CommandError

METRICS = (YOUTUBE_VIS, OVIS, KITTI_MOTS, DAVIS)

EVAL_EXAMPLES = """examples:
  stemseg-fast eval --metric youtube_vis --gt ytvis/val_split.json --results results.json
  stemseg-fast eval --metric ovis --gt ovis/val_split.json --results results.zip --json ap.json
  stemseg-fast eval --metric kitti_mots --gt kitti_mots/instances_txt --results kitti_out \\
      --sequences val
  stemseg-fast eval --metric davis --gt DAVIS/Annotations_unsupervised/480p \\
      --results davis_out --json davis.json

--gt / --results by metric:
  youtube_vis, ovis  annotation JSON / results JSON (or the CodaLab zip holding it)
  mots         folders of <sequence>.txt in the KITTI-MOTS txt format
  davis        folders with one sub-folder of indexed PNGs per sequence
"""

SPLIT_EXAMPLES = """examples:
  stemseg-fast split ytvis/train.json --train-out ytvis/train_split.json \\
      --val-out ytvis/val_split.json --val-fraction 0.1 --seed 0
"""


def _sequences(text, metric):
    if text is None:
        return None
    if text == "val":
        if metric != KITTI_MOTS:
            raise CommandError(
                "--sequences val names the KITTI-MOTS validation split; "
                "use it with --metric kitti_mots"
            )
        from .trackeval_adapters import KITTI_MOTS_VAL_SEQUENCES

        return list(KITTI_MOTS_VAL_SEQUENCES)
    return [name.strip() for name in text.split(",") if name.strip()]


def _warn_on_other_class_names(results, truth_names):
    """Results from ``infer`` carry the model's class names (categories.json beside them); ids
    that name other classes in the ground truth mean a model made for another benchmark."""
    path = os.path.join(os.path.dirname(os.path.abspath(results)), "categories.json")
    if not os.path.isfile(path):
        return
    differ = [
        (category_id, name, truth_names[category_id])
        for category_id, name in sorted(read_category_names(path, "categories file").items())
        if category_id in truth_names and name.lower() != truth_names[category_id].lower()
    ]
    if differ:
        shown = ", ".join(
            f"{i} is {mine!r} there but {theirs!r} here" for i, mine, theirs in differ[:3]
        )
        warnings.warn(
            f"{len(differ)} class ids of the results' {path} name other classes than "
            f"the ground truth ({shown}{', ...' if len(differ) > 3 else ''}): the model "
            f"may have been trained for another benchmark",
            UserWarning,
        )


def _evaluate(args):
    if args.json:
        check_not_an_input(args.json, [args.gt, args.results], "--json")
    if args.sequences is not None and args.metric in (YOUTUBE_VIS, OVIS):
        raise CommandError("--sequences applies to --metric kitti_mots and davis only")
    if args.metric in (YOUTUBE_VIS, OVIS):
        ground_truth = load_ground_truth(args.gt, occlusion=args.metric == OVIS)
        _warn_on_other_class_names(args.results, ground_truth.categories)
        result = evaluate_video_ap(ground_truth, args.results, occlusion=args.metric == OVIS)
        details = {"per_category_ap": result.per_category_ap}
    else:
        from stemseg_fast.evaluation import trackeval_adapters

        sequences = _sequences(args.sequences, args.metric)
        try:
            if args.metric == KITTI_MOTS:
                result = trackeval_adapters.evaluate_kitti_mots(
                    args.gt, args.results, sequences=sequences
                )
                details = {
                    "per_sequence": {
                        sequence: {name: dataclasses.asdict(m) for name, m in classes.items()}
                        for sequence, classes in result.per_sequence.items()
                    }
                }
            else:
                result = trackeval_adapters.evaluate_davis(
                    args.gt, args.results, sequences=sequences
                )
                details = {}
        except ImportError as error:
            raise CommandError(str(error)) from None
    print(result.format_table())
    if args.json:
        write_json(
            args.json,
            {
                "metric": args.metric,
                "ground_truth": args.gt,
                "results": args.results,
                "summary": result.summary(),
                **details,
            },
            indent=2,
        )
    return 0


def _split(args):
    num_train, num_val = write_split(
        args.annotations,
        args.train_out,
        args.val_out,
        val_fraction=args.val_fraction,
        seed=args.seed,
    )
    print(
        f"{num_train} training videos -> {args.train_out}, {num_val} validation videos -> "
        f"{args.val_out} (seed {args.seed})"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "eval",
        help="score results offline: video AP (YouTube-VIS, OVIS), HOTA/sMOTSA "
        "(KITTI-MOTS), J&F (DAVIS)",
        description="Score results with the benchmarks' own metric definitions.",
        epilog=EVAL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--gt", required=True, help="ground truth (see below)")
    evaluate.add_argument("--results", required=True, help="results (see below)")
    evaluate.add_argument("--metric", required=True, type=preset_name, choices=METRICS)
    evaluate.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    evaluate.add_argument(
        "--sequences",
        default=None,
        help="mots/davis: comma-separated sequences to score (default: every "
        "ground-truth sequence); 'val' = the KITTI-MOTS validation split",
    )
    evaluate.set_defaults(func=_evaluate)

    split = subparsers.add_parser(
        "split",
        help="hold out validation videos from a training annotation file",
        description="Split a YouTube-VIS/OVIS (or STEm-Seg generic) annotation file by video "
        "into training and validation files; the same seed gives the same split.",
        epilog=SPLIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    split.add_argument("annotations", help="the training annotation JSON")
    split.add_argument(
        "--train-out",
        default="train_split.json",
        help="where the training half goes (default: %(default)s)",
    )
    split.add_argument(
        "--val-out",
        default="val_split.json",
        help="where the validation half goes (default: %(default)s)",
    )
    split.add_argument(
        "--val-fraction",
        type=number_in(0.0, 1.0),
        default=0.1,
        help="share of the videos held out (default: %(default)s)",
    )
    split.add_argument(
        "--seed", type=integer_in(0, 2**63 - 1), default=0, help="(default: %(default)s)"
    )
    split.set_defaults(func=_split)
