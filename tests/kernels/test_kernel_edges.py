"""Edge cases of the kernels that random inputs of test sizes do not reach.

* Seediness exactly equal to ``min_seediness``: the official loop stops only when the best
  seediness is *below* the threshold (a float32 tensor compared with a Python float, i.e. with
  the float32 value of the threshold), so a voxel at exactly the threshold seeds a cluster and
  one a float32 step below does not.
* More instances than one K-block (16) of the embedding-loss kernels: 37 instances, three
  K-blocks, the last one partial, vanished ids in each block.
* More than 2048 members of one instance in one program's chunk of the segmented reductions
  (instance statistics forward, Gaussian-probability backward partials): at the test's sizes
  every program holds at most 256 voxels, so the number of programs is capped (as a 1M-voxel
  clip caps it at 512) to put 5000 voxels of one instance into one program. 2048 is where a
  half-precision accumulator would stop counting exactly.
"""

import importlib

import pytest
import torch
from helpers import assert_close, compare_gradients, leaf, with_official_precisions

from stemseg_fast.kernels import (
    embedding_loss,
    gaussian_probability,
    greedy_cluster,
    instance_gaussians,
)
from stemseg_fast.kernels.embedding_loss import embedding_loss_reference

embedding_loss = with_official_precisions(embedding_loss)
embedding_loss_reference = with_official_precisions(embedding_loss_reference)
instance_gaussians = with_official_precisions(instance_gaussians)

instance_gaussians_module = importlib.import_module("stemseg_fast.kernels.instance_gaussians")
gaussian_probability_module = importlib.import_module("stemseg_fast.kernels.gaussian_probability")


def two_separated_blobs(threshold_seediness, second_seediness):
    """Voxels 0..9 around (0, 0) and 10..19 around (5, 5) in xy; seediness 0.95 for voxel 0, the
    given value for voxel 10, lower elsewhere."""
    embeddings = torch.zeros(20, 2)
    embeddings[10:] = 5.0
    embeddings[:, 0] += 0.01 * torch.arange(20)
    precisions = torch.full((20, 2), 10.0)
    seediness = torch.full((20,), 0.3)
    seediness[0] = 0.95
    seediness[10] = second_seediness
    return embeddings, precisions, seediness, torch.ones(20, dtype=torch.bool)


@pytest.mark.parametrize("threshold", [0.8, 0.95, 0.75])
def test_seediness_exactly_at_the_threshold_seeds(threshold, device):
    at = torch.tensor(threshold, dtype=torch.float32)
    below = torch.nextafter(at, torch.tensor(0.0))
    assert not bool(at < threshold) and bool(below < threshold)  # the official comparison
    for value, clusters in ((at, 2), (below, 1)):
        inputs = [t.to(device) for t in two_separated_blobs(threshold, float(value))]
        for backend in ("reference", "triton"):
            labels = greedy_cluster(
                *inputs, min_seediness=threshold, secondary_threshold=0.3, backend=backend
            ).cpu()
            assert int(labels.max()) + 1 == clusters, (backend, float(value))
            if clusters == 2:
                assert (labels[10:] == 1).all() and (labels[:10] == 0).all()


def many_instances_clip(rng, num_voxels=1500, num_instances=37, vanished=(3, 16, 17, 36)):
    ids = torch.randint(0, num_instances, (num_voxels,), generator=rng)
    ids[torch.rand(num_voxels, generator=rng) < 0.3] = -1
    for k in vanished:
        ids[ids == k] = -1
    centres = 0.6 * torch.randn(num_instances, 4, generator=rng, dtype=torch.float64)
    embeddings = centres[ids.clamp(min=0)] + 0.2 * torch.randn(
        num_voxels, 4, generator=rng, dtype=torch.float64
    )
    log_precisions = 0.3 * torch.randn(num_voxels, 2, generator=rng, dtype=torch.float64)
    seediness = torch.rand(num_voxels, generator=rng, dtype=torch.float64)
    ignore = torch.rand(num_voxels, generator=rng) < 0.1
    return embeddings, log_precisions, seediness, ids, ignore, num_instances


@pytest.mark.parametrize("exclude", [False, True], ids=["official-ignore", "exclude-ignored"])
def test_embedding_loss_over_three_k_blocks(exclude, device, rng):
    embeddings, log_precisions, seediness, ids, ignore, num_instances = many_instances_clip(rng)
    inputs = [leaf(t, torch.float32, device) for t in (embeddings, log_precisions, seediness)]
    reference_inputs = [leaf(t.detach(), torch.float64, "cpu") for t in inputs]
    options = dict(exclude_ignored_from_lovasz=exclude)
    expected = embedding_loss_reference(*reference_inputs, ids, ignore, num_instances, **options)
    result = embedding_loss(
        *inputs, ids.to(device), ignore.to(device), num_instances, backend="triton", **options
    )
    assert int(result.num_instances) == int(expected.num_instances) == num_instances - 4
    for name in (
        "lovasz_per_instance",
        "smoothness_per_instance",
        "seediness_per_instance",
        "seediness_background",
    ):
        assert_close(getattr(result, name), getattr(expected, name), dtype=torch.float32, name=name)
    compare_gradients(
        [result.total()],
        [expected.total()],
        inputs,
        reference_inputs,
        rng,
        names=["embeddings", "log_precisions", "seediness"],
        dtype=torch.float32,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("programs", [1, 2])
def test_instance_statistics_with_5000_members_in_one_chunk(
    programs, dtype, device, rng, monkeypatch
):
    monkeypatch.setattr(instance_gaussians_module, "_MAX_PROGRAMS", programs)
    num_voxels = 5003 * programs
    ids = torch.zeros(num_voxels, dtype=torch.int64)
    ids[::7] = 1  # a second, smaller instance in the same chunks
    ids[5::11] = -1
    embeddings = -2.3 + 0.5 * torch.randn(num_voxels, 4, generator=rng, dtype=torch.float64)
    log_precisions = 0.5 * torch.randn(num_voxels, 2, generator=rng, dtype=torch.float64)
    inputs = [leaf(embeddings, dtype, device), leaf(log_precisions, dtype, device)]
    reference_inputs = [leaf(x.detach().to(dtype), torch.float64, "cpu") for x in inputs]
    expected = instance_gaussians(*reference_inputs, ids, 2, backend="reference")
    result = instance_gaussians(*inputs, ids.to(device), 2, backend="triton")
    assert int(result.counts[0]) > 2048 * programs
    assert torch.equal(result.counts.cpu(), expected.counts)
    assert_close(result.means, expected.means, dtype=torch.float32, name="means")
    assert_close(result.precisions, expected.precisions, dtype=torch.float32, name="precisions")
    compare_gradients(
        list(result[:2]),
        list(expected[:2]),
        inputs,
        reference_inputs,
        rng,
        names=["embeddings", "log_precisions"],
        dtype=dtype,
    )


def test_probability_backward_sums_an_instance_over_many_voxel_tiles(device, rng):
    # 5003 voxels of each instance: several full backward tiles and a partial last one, whose
    # per-tile partial gradients are summed in a fixed order.
    assert 5003 > 4 * gaussian_probability_module._BWD_BLOCK_N
    embeddings = 0.3 * torch.randn(5003, 4, generator=rng, dtype=torch.float64)
    means = 0.3 * torch.randn(2, 4, generator=rng, dtype=torch.float64)
    precisions = 5 + 5 * torch.rand(2, 4, generator=rng, dtype=torch.float64)
    inputs = [leaf(t, torch.float32, device) for t in (embeddings, means, precisions)]
    reference_inputs = [leaf(t.detach(), torch.float64, "cpu") for t in inputs]
    expected = gaussian_probability(*reference_inputs, backend="reference")
    result = gaussian_probability(*inputs, backend="triton")
    assert_close(result, expected, dtype=torch.float32, name="probability")
    compare_gradients(
        [result],
        [expected],
        inputs,
        reference_inputs,
        rng,
        names=["embeddings", "means", "precisions"],
        dtype=torch.float32,
    )
