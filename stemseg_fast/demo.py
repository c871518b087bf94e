"""``stemseg-fast demo``: run the pipeline pieces on a synthetic clip the project draws itself.

Today's pipeline: a synthetic clip with occluding objects -> ideal ("oracle") embeddings on the
stride-4 grid of the clip -> per-instance Gaussians (``instance_gaussians``) with every backend
this machine can run, checked against each other -> a summary JSON and an overlay image.
"""
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .fileio import atomic_output, write_json
from .kernels import PRECISION_SCALE, instance_gaussians, spatiotemporal_grid
from .synthetic import CLASSES, synthetic_clip

STRIDE = 4


def oracle_embeddings(instance_ids, *, seed=0):
    """Embeddings a perfectly trained xyff network would emit: each instance's voxels share
    its mean grid position and two free coordinates, background voxels sit on the grid.

    Args:
        instance_ids (Tensor[T, H, W] int64): -1 for background.
    Returns:
        embeddings [N, 4], log-precisions [N, 2] (N = T*H*W).
    """
    generator = torch.Generator().manual_seed(seed)
    grid = spatiotemporal_grid("xyff", *instance_ids.shape).flatten(1).t()  # [N, 4]
    ids = instance_ids.flatten()
    embeddings = grid.clone()
    for instance in ids[ids >= 0].unique().tolist():
        members = ids == instance
        centre = grid[members, :2].mean(0)
        embeddings[members, :2] = centre
        embeddings[members, 2:] = torch.rand(2, generator=generator) * 1.6 - 0.8
    embeddings += 0.01 * torch.randn(embeddings.shape, generator=generator)
    log_precisions = torch.full((ids.numel(), 2), float(np.log(100.0 / PRECISION_SCALE)))
    return embeddings, log_precisions


def _overlay(frame, instance_ids):
    image = frame.copy()
    for instance in np.unique(instance_ids[instance_ids >= 0]):
        colour = np.array(CLASSES[int(instance) % len(CLASSES)][1], dtype=np.float32)
        inside = instance_ids == instance
        image[inside] = (0.5 * image[inside] + 0.5 * colour).astype(np.uint8)
    return image


def run_demo(out_dir, *, seed=0):
    clip = synthetic_clip(num_frames=8, height=128, width=192, num_objects=4, seed=seed)
    ids_full = torch.from_numpy(clip.instance_ids)
    # Targets at stride 4 as in training (nearest here; the loss issue adds the official rule).
    ids = F.interpolate(ids_full[None, None].float(), scale_factor=1 / STRIDE,
                        mode="nearest")[0, 0].long()
    embeddings, log_precisions = oracle_embeddings(ids, seed=seed)
    flat_ids = ids.flatten()
    backends = ["reference"] + (["triton"] if torch.cuda.is_available() else [])
    results, timings = {}, {}
    for backend in backends:
        device = "cuda" if backend == "triton" else "cpu"
        start = time.perf_counter()
        results[backend] = instance_gaussians(embeddings.to(device), log_precisions.to(device),
                                              flat_ids.to(device), len(clip.categories),
                                              backend=backend)
        timings[backend] = time.perf_counter() - start
    reference = results["reference"]
    for backend, result in results.items():
        if not torch.allclose(result.means.cpu(), reference.means, atol=1e-5):
            raise RuntimeError(f"backend {backend} disagrees with the reference")

    summary = {
        "clip": {"frames": list(clip.frames.shape[:3]), "stride4_map": list(ids.shape),
                 "objects": [CLASSES[c - 1][0] for c in clip.categories]},
        "instances": [
            {"index": k, "voxels": int(reference.counts[k]),
             "mean_embedding": [round(v, 4) for v in reference.means[k].tolist()],
             "precision": [round(v, 3) for v in reference.precisions[k].tolist()]}
            for k in range(len(clip.categories))
        ],
        "seconds": timings,
    }
    write_json(f"{out_dir}/summary.json", summary, indent=2)
    with atomic_output(f"{out_dir}/overlay_frame0.png") as temporary:
        cv2.imwrite(temporary, _overlay(clip.frames[0], clip.instance_ids[0]))
    return summary


def _command(args):
    summary = run_demo(args.out, seed=args.seed)
    print(f"synthetic clip {summary['clip']['frames']} with {summary['clip']['objects']}")
    print(f"{'instance':>8} {'voxels':>7}  mean embedding (y, x, f, f)        precision")
    for row in summary["instances"]:
        print(f"{row['index']:>8} {row['voxels']:>7}  {row['mean_embedding']}  {row['precision']}")
    for backend, seconds in summary["seconds"].items():
        print(f"instance_gaussians [{backend}]: {seconds * 1e3:.2f} ms")
    print(f"wrote {args.out}/summary.json and {args.out}/overlay_frame0.png")
    return 0


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help="run the pipeline on a synthetic clip",
                                   description=__doc__)
    parser.add_argument("--out", default="demo_output", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic clip seed")
    parser.set_defaults(func=_command)
