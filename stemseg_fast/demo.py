"""``stemseg-fast demo``: the main job end to end on the embedded default, on a CPU, in minutes.

1. Draw a held-out set of synthetic OVIS-like videos (as ``stemseg-fast synthesize --split val``):
   textured shapes crossing and hiding behind each other, entering and leaving the frame.
2. Segment and track them with the bundled model (``stemseg_fast/assets/tiny_synthetic.pth``:
   the ``tiny`` preset trained by ``training/configs/tiny_synthetic.yaml`` on the train split)
   and write the results JSON and an overlay video per video (as ``stemseg-fast infer``).
3. Score the results (as ``stemseg-fast eval --metric ovis``): video AP/AR and the OVIS
   occlusion breakdown, with the per-stage frame rates of step 2.
"""

import os

from .benchmarks import OVIS, YOUTUBE_VIS
from .evaluation import evaluate_video_ap
from .inference.pipeline import frame_rate_table
from .inference.predictor import Predictor
from .io.files import write_json
from .io.video import annotation_videos
from .model.checkpoints import BUNDLED_CHECKPOINT
from .outputs.writing import OVERLAY, write_outputs
from .synthetic import write_synthetic_dataset

# The synthetic set the bundled model was trained on (frames of 96 x 128): see the config.
VIDEO_SIZE = {"num_frames": 24, "height": 96, "width": 128}


def run_demo(
    out_dir: str,
    *,
    checkpoint: str = BUNDLED_CHECKPOINT,
    videos: int = 6,
    device: str = "auto",
    backend: str = "auto",
) -> int:
    """Synthesize, infer, evaluate; prints what each step did and returns 0."""
    data_dir = os.path.join(out_dir, "synthetic_val")
    predictions_dir = os.path.join(out_dir, "predictions")
    annotations = os.path.join(data_dir, "annotations.json")
    written = write_synthetic_dataset(data_dir, videos, split="val", **VIDEO_SIZE)
    print(
        f"1. {len(written['videos'])} synthetic videos with {len(written['annotations'])} "
        f"objects -> {data_dir}",
        flush=True,
    )

    predictor = Predictor(checkpoint, device=device, backend=backend)
    sources = annotation_videos(annotations)
    predictions = [predictor.predict(source) for source in sources]
    results = os.path.join(predictions_dir, "results.json")
    write_outputs(predictions, [YOUTUBE_VIS, OVERLAY], predictions_dir, sources=sources)
    frames = sum(prediction.num_frames for prediction in predictions)
    print(f"2. {predictor!r} on {len(predictions)} videos, {frames} frames; frames per second:")
    print(frame_rate_table(frames, [prediction.timings for prediction in predictions]))

    scores = evaluate_video_ap(annotations, results, occlusion=True)
    print(f"3. {OVIS} video AP of {results}:")
    print(scores.format_table())
    ap_path = os.path.join(out_dir, "ap.json")
    write_json(
        ap_path,
        {
            "metric": OVIS,
            "ground_truth": annotations,
            "results": results,
            "summary": scores.summary(),
            "per_category_ap": scores.per_category_ap,
        },
        indent=2,
    )
    print(
        f"\noverlay videos: {os.path.join(predictions_dir, 'overlay')}/, results: {results}, "
        f"scores: {ap_path}"
    )
    return 0
