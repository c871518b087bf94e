"""``stemseg-fast demo``: the main job end to end on the embedded default, on a CPU, in minutes.

1. Draw a held-out set of synthetic OVIS-like videos (``stemseg-fast synthesize --split val``):
   textured shapes crossing and hiding behind each other, entering and leaving the frame.
2. Segment and track them with the bundled model (``stemseg_fast/assets/tiny_synthetic.pth``:
   the ``tiny`` preset trained by ``training/configs/tiny_synthetic.yaml`` on the train split)
   through ``stemseg-fast infer``: the results JSON and an overlay video per video.
3. Score the results with ``stemseg-fast eval --metric ovis``: video AP/AR and the OVIS
   occlusion breakdown; the per-stage frame rates come from ``infer``.
"""
import os

from .cli import integer_in, plain_text
from .cli import main as cli_main
from .model.checkpoints import BUNDLED_CHECKPOINT
# The synthetic set the bundled model was trained on (frames of 96 x 128): see the config.
VIDEO_SIZE = {"--frames": 24, "--height": 96, "--width": 128}


def run_demo(out_dir, *, checkpoint=BUNDLED_CHECKPOINT, videos=6, device="auto",
             backend="auto"):
    """Synthesize, infer, evaluate; returns the exit code of the first step that fails."""
    data_dir = os.path.join(out_dir, "synthetic_val")
    predictions = os.path.join(out_dir, "predictions")
    annotations = os.path.join(data_dir, "annotations.json")
    size = [str(item) for pair in VIDEO_SIZE.items() for item in pair]
    steps = [
        ["synthesize", "--split", "val", "--videos", str(videos), "--out", data_dir, *size],
        ["infer", annotations, "--checkpoint", checkpoint, "--out", predictions,
         "--format", "ytvis,overlay", "--device", device, "--backend", backend],
        ["eval", "--metric", "ovis", "--gt", annotations,
         "--results", os.path.join(predictions, "results.json"),
         "--json", os.path.join(out_dir, "ap.json")],
    ]
    for step in steps:
        print(f"\n$ stemseg-fast {' '.join(step)}", flush=True)
        code = cli_main(step)
        if code:
            return code
    print(f"\noverlay videos: {os.path.join(predictions, 'overlay')}/, results: "
          f"{os.path.join(predictions, 'results.json')}, scores: {os.path.join(out_dir, 'ap.json')}")
    return 0


def _command(args):
    return run_demo(args.out, checkpoint=args.checkpoint, videos=args.videos, device=args.device,
                    backend=args.backend)


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help="synthesize videos, segment them, score them",
                                   description=plain_text(__doc__))
    parser.add_argument("--out", default="demo_output", help="output folder (default: %(default)s)")
    parser.add_argument("--checkpoint", default=BUNDLED_CHECKPOINT,
                        help="model checkpoint (default: the bundled tiny synthetic model)")
    parser.add_argument("--videos", type=integer_in(1, 1000), default=6, help="held-out videos to draw")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto", choices=("auto", "triton", "reference"))
    parser.set_defaults(func=_command)
