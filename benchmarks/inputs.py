"""Realistic inputs for a preset: box-shaped instances that drift over the clip, embeddings in
the tanh + grid range, log-precisions around zero, seediness in (0, 1)."""

import math

import torch

from stemseg_fast.model.embeddings import FREE_DIM_PRECISION, PRECISION_SCALE, spatiotemporal_grid

# The model's precision numbers, which the kernels take as arguments.
OFFICIAL_PRECISIONS = dict(precision_scale=PRECISION_SCALE, free_dim_precision=FREE_DIM_PRECISION)


def instance_id_map(preset, *, device, seed=0):
    """[T, H, W] int64: K boxes covering about ``foreground_fraction`` of each frame, -1 elsewhere."""
    generator = torch.Generator().manual_seed(seed)
    num_frames, height, width = preset.num_frames, preset.height, preset.width
    ids = torch.full((num_frames, height, width), -1, dtype=torch.int64)
    area = preset.foreground_fraction * height * width / max(preset.num_instances, 1)
    side = max(1, int(math.sqrt(area)))
    for instance in range(preset.num_instances):
        top = int(torch.randint(0, max(1, height - side), (1,), generator=generator))
        left = int(torch.randint(0, max(1, width - side), (1,), generator=generator))
        step = int(torch.randint(-2, 3, (1,), generator=generator))
        for frame in range(num_frames):
            shifted = min(max(0, left + step * frame), max(0, width - side))
            ids[frame, top : top + side, shifted : shifted + side] = instance
    return ids.to(device)


def embedding_inputs(preset, *, device, dtype=torch.float32, seed=0):
    """Embeddings [N, E], raw log-precisions [N, E-F] and seediness [N] of one clip."""
    generator = torch.Generator().manual_seed(seed)
    shape = (preset.num_frames, preset.height, preset.width)
    grid = spatiotemporal_grid("xyff", *shape)  # [E, T, H, W]
    offsets = torch.tanh(0.25 * torch.randn(grid.shape, generator=generator))
    embeddings = (grid + offsets).flatten(1).t().contiguous()  # [N, E]
    log_precisions = 0.5 * torch.randn(
        preset.num_voxels, preset.num_variance_dims, generator=generator
    )
    seediness = torch.rand(preset.num_voxels, generator=generator)
    return (
        embeddings.to(device, dtype),
        log_precisions.to(device, dtype),
        seediness.to(device, dtype),
    )


def instance_gaussian_inputs(preset, *, device):
    """Embeddings [N, E], instance ids [N] and the instances' means and precisions [K, E]
    (the Gaussians the losses evaluate every voxel under)."""
    from stemseg_fast.kernels import instance_gaussians_reference

    embeddings, log_precisions, _ = embedding_inputs(preset, device=device)
    ids = instance_id_map(preset, device=device).flatten()
    means, precisions, _ = instance_gaussians_reference(
        embeddings, log_precisions, ids, preset.num_instances, **OFFICIAL_PRECISIONS
    )
    return embeddings, ids, means, precisions
