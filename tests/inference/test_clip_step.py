"""The clip step's clustering call: the kernel reads the channel-first volumes in place and
gives the free dims their constant itself, with the labels of the row-major form the official
code clusters (full [N, E] precisions, free dims filled)."""

import dataclasses

import pytest
import torch
from helpers import untrained_tiny_config

from stemseg_fast.inference.clip_step import ClipClustering, upsample_clip
from stemseg_fast.kernels.greedy_cluster import greedy_cluster
from stemseg_fast.model.embeddings import get_embedding_mode


def _clip_volumes(generator, frames, height, width, num_objects=4):
    """Embeddings near one of ``num_objects`` centres per voxel, precisions around 10."""
    config = untrained_tiny_config()
    mode = get_embedding_mode(config.embedding_mode)
    num_dims, num_free = mode.num_dims, mode.num_free_dims
    centres = 3 * torch.randn(num_objects, num_dims, generator=generator)
    owner = torch.randint(num_objects, (frames, height, width), generator=generator)
    embeddings = centres[owner].permute(3, 0, 1, 2) + 0.1 * torch.randn(
        num_dims, frames, height, width, generator=generator
    )
    precisions = 10 * torch.exp(
        0.2 * torch.randn(num_dims - num_free, frames, height, width, generator=generator)
    )
    seediness = torch.rand(1, frames, height, width, generator=generator)
    return config, embeddings, precisions, seediness


def _row_major_labels(config, embeddings, precisions, seediness, foreground, full_resolution):
    """The former call: volumes upsampled, free dims concatenated, [N, E] copies."""
    if full_resolution:
        embeddings, precisions, seediness = map(upsample_clip, (embeddings, precisions, seediness))
    num_dims = embeddings.shape[0]
    free = precisions.new_full(
        (num_dims - precisions.shape[0], *precisions.shape[1:]), config.free_dim_precision
    )
    precisions = torch.cat([precisions, free])
    inference = config.inference
    return greedy_cluster(
        embeddings.permute(1, 2, 3, 0).reshape(-1, num_dims),
        precisions.permute(1, 2, 3, 0).reshape(-1, num_dims),
        seediness.reshape(-1),
        foreground.reshape(-1),
        min_seediness=inference.min_seediness,
        prob_threshold=inference.primary_prob_threshold,
        secondary_threshold=inference.secondary_prob_threshold,
        max_instances=inference.max_instances_per_clip,
        distance_rule=inference.distance_rule,
        secondary_rule=inference.secondary_rule,
        backend="reference",
    ).view(foreground.shape)


@pytest.mark.parametrize("full_resolution", [False, True], ids=["stride4", "fullres"])
@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_clustering_views_give_the_row_major_labels(rng, full_resolution, backend):
    config, embeddings, precisions, seediness = _clip_volumes(rng, 3, 5, 7)
    config = dataclasses.replace(
        config,
        inference=dataclasses.replace(config.inference, cluster_at_full_resolution=full_resolution),
    )
    scale = 4 if full_resolution else 1
    foreground = torch.rand(3, 5 * scale, 7 * scale, generator=rng) > 0.3
    labels = ClipClustering(config, backend)(embeddings, precisions, seediness, foreground)
    expected = _row_major_labels(
        config, embeddings, precisions, seediness, foreground, full_resolution
    )
    assert labels.shape == foreground.shape
    assert torch.equal(labels, expected)
    assert labels.max() >= 1  # several clusters: the comparison can tell layouts apart
