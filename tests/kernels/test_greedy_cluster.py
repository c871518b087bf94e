import importlib
import math

import pytest
import torch
import triton
import triton.language as tl

from stemseg_fast.kernels.greedy_cluster import GreedyCluster, greedy_cluster

# The package exports the function under the module's name; fetch the module itself.
greedy_cluster_module = importlib.import_module("stemseg_fast.kernels.greedy_cluster")

RULES = [
    pytest.param("official", "official", id="official-farthest"),
    pytest.param("official", "nearest", id="official-nearest"),
    pytest.param("paper", "official", id="paper-farthest"),
    pytest.param("paper", "nearest", id="paper-nearest"),
]

# (N voxels, E dims, foreground fraction, seediness levels (0: continuous), max_instances,
#  bandwidth scale): the scale sets how tight the Gaussians are, hence how many seeds it takes.
# The interpreter pays ~25 ms per launch and a call makes 2 + 2 * max_instances of them, so most
# cases use few seeds; MAX_REACHED runs the official 20.
MAX_REACHED = (300, 4, 0.7, 10, 20, 60.0)
TIED = (1025, 5, 0.3, 5, 5, 2.0)
CASES = [
    pytest.param(1, 4, 1.0, 0, 4, 1.0, id="one-voxel"),
    pytest.param(300, 4, 0.0, 0, 4, 1.0, id="no-foreground"),
    pytest.param(257, 4, 1.0, 0, 6, 1.0, id="all-foreground-N257"),
    pytest.param(1023, 3, 0.5, 0, 6, 4.0, id="xyt-N1023"),
    pytest.param(1024, 4, 0.5, 0, 3, 4.0, id="N1024-one-full-block"),
    pytest.param(3073, 4, 0.4, 0, 3, 4.0, id="N3073-four-blocks"),
    pytest.param(*TIED, id="tied-seediness-N1025"),
    pytest.param(*MAX_REACHED, id="max-instances-reached"),
    pytest.param(500, 4, 0.6, 0, 3, 8.0, id="max-instances-3"),
    pytest.param(400, 2, 0.8, 0, 0, 1.0, id="max-instances-0"),
    pytest.param(600, 4, 0.5, 0, 1, 4.0, id="max-instances-1"),
]
# Every rule on every case: the rules on one case run by default, the full product is slow.
RULE_CASES = [
    pytest.param(
        *case.values,
        *rule.values,
        id=f"{case.id}-{rule.id}",
        marks=()
        if case.id == "tied-seediness-N1025" or rule.id == "official-farthest"
        else pytest.mark.slow,
    )
    for case in CASES
    for rule in RULES
]


def make_inputs(num_voxels, num_dims, foreground_fraction, seediness_levels, bandwidth_scale, rng):
    """A few blobs in embedding space so seeds gather real clusters; seediness high near the
    blob centres, quantised to ``seediness_levels`` values (ties) when that is not 0."""
    num_blobs = 6
    blob = torch.randint(0, num_blobs, (num_voxels,), generator=rng)
    centres = 2.0 * torch.randn(num_blobs, num_dims, generator=rng)
    offsets = 0.4 * torch.randn(num_voxels, num_dims, generator=rng)
    embeddings = centres[blob] + offsets
    precisions = bandwidth_scale * (0.5 + torch.rand(num_voxels, num_dims, generator=rng))
    closeness = torch.exp(-0.25 * offsets.pow(2).sum(1))  # [N] in (0, 1]
    seediness = closeness * (0.8 + 0.2 * torch.rand(num_voxels, generator=rng))
    if seediness_levels:
        seediness = torch.round(seediness * seediness_levels) / seediness_levels
    foreground = torch.rand(num_voxels, generator=rng) < foreground_fraction
    return embeddings, precisions, seediness, foreground


def official_clustering(
    embeddings,
    precisions,
    seediness,
    foreground,
    *,
    min_seediness=0.8,
    prob_threshold=0.5,
    secondary_threshold=0.3,
    max_instances=20,
):
    """The official SequentialClustering._process as it runs: compaction of the foreground and
    of the unassigned voxels every iteration, probabilities through exp(-d/2), the [M, K]
    stack and its max. Written independently of the library as the parity oracle."""
    index = foreground.nonzero().squeeze(1)
    x, b, s = embeddings[index].float(), precisions[index].float(), seediness[index].float()
    labels = torch.full((index.numel(),), -1, dtype=torch.int64)
    stacked, unassigned, available = [], index.numel(), labels == -1
    for cluster in range(max_instances):
        available = labels == -1
        unassigned = int(available.sum())
        if unassigned == 0:
            break
        best = s[available].argmax()
        if s[available][best] < min_seediness:
            break
        centre, bandwidth = x[available][best], b[available][best]
        distance = torch.full((index.numel(),), 1e8)
        distance[available] = ((x[available] - centre) ** 2 * bandwidth).sum(-1).sqrt()
        stacked.append(distance)
        prob = torch.zeros_like(distance)
        prob[available] = torch.exp(-0.5 * distance[available])
        labels = torch.where((prob > prob_threshold) & available, cluster, labels)
    if unassigned > 0 and stacked:
        farthest, farthest_cluster = torch.stack(stacked, 1).max(1)
        accepted = (torch.exp(-0.5 * farthest) > secondary_threshold) & available
        labels = torch.where(accepted, farthest_cluster, labels)
    result = torch.full((embeddings.shape[0],), -1, dtype=torch.int64)
    result[index] = labels
    return result


def assert_same_labels(actual, expected, name):
    actual, expected = actual.cpu(), expected.cpu()
    assert actual.dtype == torch.int64 and actual.shape == expected.shape, name
    differ = (actual != expected).nonzero().squeeze(1)
    assert differ.numel() == 0, (
        f"{name}: {differ.numel()} of {expected.numel()} labels differ; first voxels "
        f"{differ[:5].tolist()}: {actual[differ[:5]].tolist()} vs {expected[differ[:5]].tolist()}"
    )


@pytest.mark.parametrize(
    "num_voxels,num_dims,fg,levels,max_instances,scale,distance_rule,secondary_rule", RULE_CASES
)
def test_triton_matches_reference(
    num_voxels,
    num_dims,
    fg,
    levels,
    max_instances,
    scale,
    distance_rule,
    secondary_rule,
    device,
    rng,
):
    inputs = make_inputs(num_voxels, num_dims, fg, levels, scale, rng)
    options = dict(
        max_instances=max_instances, distance_rule=distance_rule, secondary_rule=secondary_rule
    )
    expected = greedy_cluster(*inputs, backend="reference", **options)
    result = greedy_cluster(*(x.to(device) for x in inputs), backend="triton", **options)
    assert_same_labels(result, expected, "triton vs reference")


def test_cases_reach_what_their_names_say(rng):
    """The parametrised cases above exercise the paths they claim: 20 seeds, seediness ties."""
    num_voxels, num_dims, fg, levels, max_instances, scale = MAX_REACHED
    inputs = make_inputs(num_voxels, num_dims, fg, levels, scale, rng)
    labels = greedy_cluster(*inputs, max_instances=max_instances, backend="reference")
    assert int(labels.max()) == max_instances - 1
    num_voxels, num_dims, fg, levels, _, scale = TIED
    tied = make_inputs(num_voxels, num_dims, fg, levels, scale, rng)[2]
    assert tied.unique().numel() <= levels + 1


@pytest.mark.parametrize("num_voxels,num_dims,fg,levels,max_instances,scale", CASES)
def test_reference_matches_official_semantics(
    num_voxels, num_dims, fg, levels, max_instances, scale, rng
):
    inputs = make_inputs(num_voxels, num_dims, fg, levels, scale, rng)
    expected = official_clustering(*inputs, max_instances=max_instances)
    result = greedy_cluster(*inputs, max_instances=max_instances, backend="reference")
    assert_same_labels(result, expected, "reference vs official")


def hand_worked_inputs():
    """Embeddings on a plane, bandwidth 1 (d = Euclidean distance). Seeds: voxel 0 (x=0, s=0.95)
    then voxel 3 (x=2.5, s=0.9); the best voxel left then has s=0.4 < 0.8, so the loop stops.
    Official limits: primary d < 2 ln 2 = 1.386, secondary d < -2 ln 0.3 = 2.408."""
    points = [  # (x, y, seediness, foreground)
        (0.0, 0.0, 0.95, True),  # 0: seed of cluster 0
        (1.0, 0.0, 0.5, True),  # 1: d0 = 1 -> cluster 0
        (1.5, 0.0, 0.6, True),  # 2: d0 = 1.5 (no), d1 = 1 -> cluster 1
        (2.5, 0.0, 0.9, True),  # 3: seed of cluster 1
        (3.5, 0.0, 0.7, True),  # 4: d1 = 1 -> cluster 1
        (4.8, 0.0, 0.4, True),  # 5: d0 = 4.8, d1 = 2.3: only the nearest is within 2.408
        (-1.9, 0.0, 0.3, True),  # 6: d0 = 1.9, d1 = 4.4: likewise
        (1.4, 1.0, 0.2, True),  # 7: d0 = 1.72, d1 = 1.49: both within 2.408
        (0.0, 0.0, 1.0, False),  # 8: background, though the most seedy voxel
    ]
    embeddings = torch.tensor([[x, y] for x, y, _, _ in points])
    seediness = torch.tensor([s for _, _, s, _ in points])
    foreground = torch.tensor([f for _, _, _, f in points])
    return embeddings, torch.ones_like(embeddings), seediness, foreground


HAND_WORKED = [
    # the farthest cluster: voxel 7 goes to cluster 0 (d = 1.72 > 1.49), 5 and 6 stay outliers
    pytest.param(dict(), [0, 0, 1, 1, 1, -1, -1, 0, -1], id="official"),
    # the intended nearest cluster
    pytest.param(dict(secondary_rule="nearest"), [0, 0, 1, 1, 1, 1, 0, 1, -1], id="nearest"),
    # two iterations run in full: the stale mask offers voxels 2, 3, 4 of cluster 1 again; voxel
    # 2 moves to its farthest cluster 0 (d = 1.5: p = 0.47 > 0.3); 3 and 4 are too far (d >= 2.5)
    pytest.param(dict(max_instances=2), [0, 0, 0, 1, 1, -1, -1, 0, -1], id="stale-mask"),
    pytest.param(
        dict(max_instances=2, secondary_rule="nearest"),
        [0, 0, 1, 1, 1, 1, 0, 1, -1],
        id="stale-mask-fixed",
    ),
    # paper rule: primary d < 1.177, secondary d < 1.552; voxel 7 is only near cluster 1
    pytest.param(dict(distance_rule="paper"), [0, 0, 1, 1, 1, -1, -1, -1, -1], id="paper"),
    pytest.param(
        dict(distance_rule="paper", secondary_rule="nearest"),
        [0, 0, 1, 1, 1, -1, -1, 1, -1],
        id="paper-nearest",
    ),
    # a single seed: the loop completes, the secondary step sees one cluster
    pytest.param(dict(max_instances=1), [0, 0, 0, -1, -1, -1, 0, 0, -1], id="one-seed"),
    pytest.param(dict(min_seediness=0.96), [-1] * 9, id="no-seed"),
]


@pytest.mark.parametrize("options,expected", HAND_WORKED)
def test_hand_worked_case_reference(options, expected):
    inputs = hand_worked_inputs()
    assert greedy_cluster(*inputs, backend="reference", **options).tolist() == expected
    if "secondary_rule" not in options and "distance_rule" not in options:
        assert official_clustering(*inputs, **options).tolist() == expected


@pytest.mark.parametrize(
    "options,expected",
    [
        pytest.param(
            *case.values, id=case.id, marks=() if case.id == "stale-mask" else pytest.mark.slow
        )
        for case in HAND_WORKED
    ],
)
def test_hand_worked_case_triton(options, expected, device):
    inputs = [x.to(device) for x in hand_worked_inputs()]
    assert greedy_cluster(*inputs, backend="triton", **options).tolist() == expected


def test_hand_worked_limits():
    """The distances in hand_worked_inputs sit on the side of the limits the comments say."""
    primary, secondary = 2 * math.log(2), -2 * math.log(0.3)
    assert 1.0 < primary < 1.4866 and 2.3 < secondary < 2.5
    assert math.sqrt(1.4**2 + 1) < secondary and math.exp(-0.75) > 0.3 > math.exp(-1.25)


def test_many_partial_blocks(monkeypatch, device, rng):
    """Small blocks so the seed selection reduces its partials over several chunks."""
    monkeypatch.setattr(greedy_cluster_module, "_BLOCK", 16)
    monkeypatch.setattr(greedy_cluster_module, "_BLOCK_P", 2)
    inputs = make_inputs(101, 4, 0.6, 4, 6.0, rng)  # 7 blocks: 4 chunks of partials
    expected = greedy_cluster(*inputs, max_instances=4, backend="reference")
    result = greedy_cluster(*(x.to(device) for x in inputs), max_instances=4, backend="triton")
    assert_same_labels(result, expected, "triton with 16-voxel blocks")


def test_equal_seediness_takes_the_lowest_index(device):
    # Three identical far-apart candidates with the same seediness: seeds in index order.
    embeddings = torch.tensor([[9.0, 9.0], [0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    seediness = torch.tensor([0.5, 0.9, 0.9, 0.9])
    foreground = torch.ones(4, dtype=torch.bool)
    for backend in ("reference", "triton"):
        tensors = [
            x.to(device) if backend == "triton" else x
            for x in (embeddings, torch.ones_like(embeddings), seediness, foreground)
        ]
        labels = greedy_cluster(*tensors, max_instances=4, backend=backend)
        assert labels.tolist() == [-1, 0, 1, 2], backend


def test_dtypes_and_layouts(device, rng):
    embeddings, precisions, seediness, foreground = make_inputs(211, 4, 0.7, 0, 3.0, rng)
    expected = greedy_cluster(
        embeddings, precisions, seediness, foreground, max_instances=4, backend="reference"
    )
    wide = torch.zeros(211, 8)
    wide[:, ::2] = embeddings
    strided = wide[:, ::2]
    assert not strided.is_contiguous()
    for tensors in (
        [strided, precisions, seediness, foreground],
        [embeddings.double(), precisions.double(), seediness.double(), foreground],
    ):
        for backend in ("reference", "triton"):
            moved = [x.to(device) if backend == "triton" else x for x in tensors]
            labels = greedy_cluster(*moved, max_instances=4, backend=backend)
            assert_same_labels(labels, expected, backend)


# Official FREE_DIM_STDS = [0.3, 0.3]: not a float32 number, so its rounding matters.
FREE_DIM_PRECISION = 1 / 0.3**2


def with_free_dims(predicted, num_dims, value=FREE_DIM_PRECISION):
    """[N, P] float32 predicted precisions completed to [N, E] as the pipeline did: the free
    dims filled by ``new_full`` (the float32 of ``value``)."""
    free = predicted.new_full((predicted.shape[0], num_dims - predicted.shape[1]), value)
    return torch.cat([predicted, free], dim=1)


def channel_first(matrix, frames, height, width):
    """The contiguous [E, T, H, W] volume whose voxel-major flattening is ``matrix`` [N, E]: the
    layout the pipeline holds embeddings and precisions in."""
    return matrix.t().reshape(matrix.shape[1], frames, height, width).contiguous()


def voxel_view(volume):
    """The [N, E] view of a channel-first volume, strides (1, N), no copy (``flatten``, not
    ``reshape(E, -1)``, which refuses an empty volume)."""
    return volume.flatten(1).t()


# (T, H, W) of channel-first volumes: N around one 1024-voxel block, several blocks, 1 and 0.
VOLUME_SHAPES = [
    pytest.param((1, 1, 1), id="N1"),
    pytest.param((0, 5, 7), id="N0"),
    pytest.param((3, 11, 31), id="N1023-block-minus-1"),
    pytest.param((4, 16, 16), id="N1024-block"),
    pytest.param((5, 5, 41), id="N1025-block-plus-1"),
    pytest.param((3, 29, 37), id="N3219-four-blocks"),
]


def test_volume_shapes_sit_around_the_block():
    """The ids above say where N sits against the block; they stay true if the block changes."""
    block = greedy_cluster_module._BLOCK
    sizes = [math.prod(shape.values[0]) for shape in VOLUME_SHAPES]
    assert sizes[2:5] == [block - 1, block, block + 1] and sizes[5] > 3 * block


@pytest.mark.parametrize("shape", VOLUME_SHAPES)
def test_channel_first_views_match_row_major(shape, device, rng):
    """The transposed views of channel-first volumes (strides (1, N)) give the labels of the
    row-major [N, E] tensors, on both backends."""
    num_voxels = math.prod(shape)
    embeddings, precisions, seediness, foreground = make_inputs(num_voxels, 4, 0.6, 0, 4.0, rng)
    seediness[:1], foreground[:1] = 0.95, True  # one seed at least, N = 1 included
    options = dict(max_instances=4)
    expected = greedy_cluster(
        embeddings, precisions, seediness, foreground, backend="reference", **options
    )
    assert num_voxels == 0 or bool((expected == 0).any())
    embedding_view = voxel_view(channel_first(embeddings, *shape).to(device))
    precision_view = voxel_view(channel_first(precisions, *shape).to(device))
    # (strides along a dim of size 0 or 1 say nothing)
    assert num_voxels <= 1 or embedding_view.stride() == precision_view.stride() == (1, num_voxels)
    seediness, foreground = seediness.to(device), foreground.to(device)
    for backend in ("reference", "triton"):
        labels = greedy_cluster(
            embedding_view, precision_view, seediness, foreground, backend=backend, **options
        )
        assert_same_labels(labels, expected, f"{backend} on channel-first views")


def strided_copies(matrix, rng):
    """``matrix`` [N, E] as views that are neither row-major nor transposed volumes: every other
    row of a taller tensor (strides (2E, 1)) and every other voxel of a channel-first volume
    twice as long (strides (2, 2N)), each starting past the allocation's first element."""
    num_voxels, num_dims = matrix.shape
    taller = torch.randn(2 * num_voxels + 1, num_dims, generator=rng)
    taller[1::2] = matrix
    longer = torch.randn(num_dims, 2 * num_voxels + 1, generator=rng)
    longer[:, 1::2] = matrix.t()
    return {"every-other-row": taller[1::2], "every-other-voxel": longer[:, 1::2].t()}


@pytest.mark.parametrize("layout", ["every-other-row", "every-other-voxel"])
def test_other_strided_views(layout, device, rng):
    embeddings, precisions, seediness, foreground = make_inputs(1500, 4, 0.6, 0, 4.0, rng)
    options = dict(max_instances=4)
    expected = greedy_cluster(
        embeddings, precisions, seediness, foreground, backend="reference", **options
    )
    embedding_view = strided_copies(embeddings, rng)[layout]
    precision_view = strided_copies(precisions, rng)[layout]
    assert not embedding_view.is_contiguous() and not embedding_view.t().is_contiguous()
    inputs = [x.to(device) for x in (embedding_view, precision_view, seediness, foreground)]
    for backend in ("reference", "triton"):
        labels = greedy_cluster(*inputs, backend=backend, **options)
        assert_same_labels(labels, expected, f"{backend} on {layout} views")


def test_broadcast_precisions(device, rng):
    """One precision row for every voxel, expanded (stride 0 along N), read as it is."""
    embeddings, precisions, seediness, foreground = make_inputs(700, 4, 0.6, 0, 4.0, rng)
    shared = precisions[:1].expand(700, 4)
    expected = greedy_cluster(
        embeddings, shared.contiguous(), seediness, foreground, backend="reference"
    )
    inputs = [x.to(device) for x in (embeddings, shared, seediness, foreground)]
    assert_same_labels(greedy_cluster(*inputs, backend="triton"), expected, "expanded precisions")


class RecordingKernel:
    """Stands in for a Triton kernel: notes each launch's positional arguments, then launches."""

    def __init__(self, kernel):
        self.kernel, self.launches = kernel, []

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def run(*args, **kwargs):
            self.launches.append(args)
            return launch(*args, **kwargs)

        return run


def record_embedding_arguments(monkeypatch):
    """Patches the kernels that read the embeddings and precisions; returns a function giving
    the (embeddings, precisions or None) tensors each launch received."""
    kernels = {
        name: RecordingKernel(getattr(greedy_cluster_module, name))
        for name in (
            "_greedy_cluster_select_seed_kernel",
            "_greedy_cluster_assign_kernel",
            "_greedy_cluster_finalize_kernel",
        )
    }
    for name, kernel in kernels.items():
        monkeypatch.setattr(greedy_cluster_module, name, kernel)

    def received():
        seeds = kernels["_greedy_cluster_select_seed_kernel"].launches
        passes = (
            kernels["_greedy_cluster_assign_kernel"].launches
            + kernels["_greedy_cluster_finalize_kernel"].launches
        )
        return [(args[2], args[3]) for args in seeds] + [(args[0], None) for args in passes]

    return received


@pytest.mark.parametrize("free_dim_precision", [None, FREE_DIM_PRECISION])
def test_float32_volumes_are_read_in_place(free_dim_precision, monkeypatch, device, rng):
    """Every launch gets the caller's views themselves (same memory, same strides): no copy."""
    shape = (3, 9, 13)
    embeddings, precisions, seediness, foreground = make_inputs(
        math.prod(shape), 4, 0.6, 0, 4.0, rng
    )
    if free_dim_precision is not None:
        precisions = precisions[:, :2]
    embedding_view, precision_view = (
        voxel_view(channel_first(x, *shape).to(device)) for x in (embeddings, precisions)
    )
    received = record_embedding_arguments(monkeypatch)
    greedy_cluster(
        embedding_view,
        precision_view,
        seediness.to(device),
        foreground.to(device),
        max_instances=3,
        free_dim_precision=free_dim_precision,
        backend="triton",
    )
    launches = received()
    assert len(launches) == 2 * 3 + 1
    for embeddings, precisions in launches:
        assert embeddings.data_ptr() == embedding_view.data_ptr()
        assert embeddings.stride() == embedding_view.stride()
        if precisions is not None:
            assert precisions.data_ptr() == precision_view.data_ptr()
            assert precisions.stride() == precision_view.stride()


def test_other_float_dtypes_are_converted_once(monkeypatch, device, rng):
    """A float64 input reaches every launch as one float32 copy, made once per call."""
    inputs = [x.to(device) for x in make_inputs(300, 4, 0.6, 0, 4.0, rng)]
    embeddings = voxel_view(channel_first(inputs[0], 2, 10, 15)).double()
    received = record_embedding_arguments(monkeypatch)
    greedy_cluster(embeddings, *inputs[1:], max_instances=3, backend="triton")
    converted = {arguments[0].data_ptr() for arguments in received()}
    assert len(converted) == 1 and converted != {embeddings.data_ptr()}
    assert received()[0][0].dtype == torch.float32


@pytest.mark.parametrize("shape", VOLUME_SHAPES)
def test_free_dims_match_full_precisions(shape, device, rng):
    """precisions [N, 2] with free_dim_precision ("xyff"), row-major and as the view of a
    channel-first [2, T, H, W] volume, give the labels of the full [N, 4] precisions."""
    num_voxels = math.prod(shape)
    embeddings, precisions, seediness, foreground = make_inputs(num_voxels, 4, 0.6, 0, 4.0, rng)
    seediness[:1], foreground[:1] = 0.95, True  # one seed at least, N = 1 included
    predicted = precisions[:, :2]
    options = dict(max_instances=4)
    expected = greedy_cluster(
        embeddings,
        with_free_dims(predicted, 4),
        seediness,
        foreground,
        backend="reference",
        **options,
    )
    assert num_voxels == 0 or bool((expected == 0).any())
    embeddings, seediness, foreground = (x.to(device) for x in (embeddings, seediness, foreground))
    layouts = {
        "row-major": (embeddings, predicted.contiguous().to(device)),
        "channel-first": (
            voxel_view(channel_first(embeddings, *shape)),
            voxel_view(channel_first(predicted, *shape).to(device)),
        ),
    }
    for layout, (embedding_input, precision_input) in layouts.items():
        for backend in ("reference", "triton"):
            labels = greedy_cluster(
                embedding_input,
                precision_input,
                seediness,
                foreground,
                free_dim_precision=FREE_DIM_PRECISION,
                backend=backend,
                **options,
            )
            assert_same_labels(labels, expected, f"{backend}, {layout}, free dims")


@pytest.mark.parametrize("predicted_dims", [0, 1, 3])
def test_any_number_of_free_dims(predicted_dims, device, rng):
    embeddings, precisions, seediness, foreground = make_inputs(1100, 4, 0.6, 0, 4.0, rng)
    predicted = precisions[:, :predicted_dims].contiguous()
    options = dict(max_instances=3, free_dim_precision=2.5)
    expected = greedy_cluster(
        embeddings,
        with_free_dims(predicted, 4, 2.5),
        seediness,
        foreground,
        max_instances=3,
        backend="reference",
    )
    inputs = [x.to(device) for x in (embeddings, predicted, seediness, foreground)]
    for backend in ("reference", "triton"):
        labels = greedy_cluster(*inputs, backend=backend, **options)
        assert_same_labels(labels, expected, f"{backend}, {predicted_dims} predicted dims")


def free_dim_boundary_inputs():
    """A seed at the origin and two voxels along free dim 2 whose official distance to it sits
    on the primary limit (2 ln 2 in float32) within one float32 step of the free bandwidth b =
    float32(1 / 0.3^2): voxel 1 is inside with b, outside with the next float32 above b;
    voxel 2 is inside with the float32 below b, outside with b. Distances as both backends
    compute them: sqrt((x * x) * b), each step rounded to float32."""
    bandwidth = torch.tensor(FREE_DIM_PRECISION, dtype=torch.float32)
    above = torch.nextafter(bandwidth, torch.tensor(math.inf))
    below = torch.nextafter(bandwidth, torch.tensor(0.0))
    limit = torch.tensor(greedy_cluster_module.distance_limit(0.5), dtype=torch.float32)
    start = (limit / bandwidth.sqrt()).view(torch.int32)
    offsets = (start + torch.arange(-64, 65, dtype=torch.int32)).view(torch.float32)

    def inside(bandwidth):
        return (offsets * offsets * bandwidth).sqrt() < limit

    inside_with_b = offsets[inside(bandwidth) & ~inside(above)]
    outside_with_b = offsets[inside(below) & ~inside(bandwidth)]
    assert inside_with_b.numel() and outside_with_b.numel()
    embeddings = torch.zeros(3, 4)
    embeddings[1, 2], embeddings[2, 2] = inside_with_b[0], outside_with_b[0]
    seediness = torch.tensor([0.9, 0.1, 0.1])
    return embeddings, torch.ones(3, 2), seediness, torch.ones(3, dtype=torch.bool), below, above


def test_free_dim_precision_is_its_float32_value(device):
    """The free dims take exactly float32(free_dim_precision): one float32 step either way
    changes a label. The secondary threshold equals the primary one, so only the primary
    assignment decides."""
    *inputs, below, above = free_dim_boundary_inputs()
    options = dict(max_instances=1, secondary_threshold=0.5)
    # the float32 neighbours of b label differently: the case resolves one float32 step
    embeddings, predicted, seediness, foreground = inputs
    for bandwidth, expected in ((below, [0, 0, 0]), (above, [0, -1, -1])):
        full = with_free_dims(predicted, 4, float(bandwidth))
        labels = greedy_cluster(embeddings, full, seediness, foreground, **options)
        assert labels.tolist() == expected, float(bandwidth)
    for backend in ("reference", "triton"):
        tensors = [x.to(device) if backend == "triton" else x for x in inputs]
        embeddings, predicted, seediness, foreground = tensors
        full_form = greedy_cluster(
            embeddings,
            with_free_dims(predicted, 4),
            seediness,
            foreground,
            backend=backend,
            **options,
        )
        free_form = greedy_cluster(
            *tensors, free_dim_precision=FREE_DIM_PRECISION, backend=backend, **options
        )
        assert full_form.tolist() == free_form.tolist() == [0, 0, -1], backend


@triton.jit
def _element_offsets_kernel(out_ptr, voxels_ptr, dims_ptr, stride_n, stride_e):
    i = tl.arange(0, 4)
    voxels, dims = tl.load(voxels_ptr + i), tl.load(dims_ptr + i)
    tl.store(out_ptr + i, greedy_cluster_module._element_offsets(voxels, dims, stride_n, stride_e))


@pytest.mark.parametrize("layout", ["row-major", "channel-first"])
def test_element_offsets_pass_two_to_the_31(layout, device):
    """The largest clip greedy_cluster takes, N = 2^31 - 2 voxels of E = 4 dims, read either way:
    the offsets of its far elements pass 2^31 (int32 indices, no [N, E] tensor allocated)."""
    num_voxels = 2**31 - 2
    probe = torch.empty(num_voxels, 4, device="meta")
    stride_n, stride_e = (probe if layout == "row-major" else probe.t().contiguous().t()).stride()
    voxels = torch.tensor([0, 1, num_voxels - 1, num_voxels - 1], dtype=torch.int32)
    dims = torch.tensor([3, 2, 0, 3], dtype=torch.int32)
    out = torch.empty(4, dtype=torch.int64, device=device)
    _element_offsets_kernel[(1,)](out, voxels.to(device), dims.to(device), stride_n, stride_e)
    expected = [n * stride_n + e * stride_e for n, e in zip(voxels.tolist(), dims.tolist())]
    assert out.tolist() == expected
    assert max(expected) >= 2**31


@pytest.mark.fixed_seed(0)
def test_poisoned_outputs_catch_a_kernel_that_writes_nothing(monkeypatch, device, rng):
    """The comparison can fail: skip the finalize kernel and the poisoned labels must show."""
    inputs = make_inputs(64, 4, 0.8, 0, 2.0, rng)
    expected = greedy_cluster(*inputs, max_instances=2, backend="reference")

    class SkippedKernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(greedy_cluster_module, "_greedy_cluster_finalize_kernel", SkippedKernel())
    result = greedy_cluster(*(x.to(device) for x in inputs), max_instances=2, backend="triton")
    with pytest.raises(AssertionError, match="labels differ"):
        assert_same_labels(result, expected, "skipped finalize")


@pytest.mark.fixed_seed(0)
def test_result_changes_with_input(device, rng):
    embeddings, precisions, seediness, foreground = (
        x.to(device) for x in make_inputs(200, 4, 1.0, 0, 2.0, rng)
    )
    options = dict(max_instances=3, backend="triton")
    before = greedy_cluster(embeddings, precisions, seediness, foreground, **options)
    seediness[before == 0] = 0.0  # the first cluster's voxels can no longer seed
    after = greedy_cluster(embeddings, precisions, seediness, foreground, **options)
    assert not torch.equal(before, after)


def test_module_matches_function_and_repr(rng):
    embeddings, precisions, seediness, foreground = make_inputs(90, 4, 0.9, 0, 2.0, rng)
    module = GreedyCluster(max_instances=5, secondary_rule="nearest", backend="reference")
    expected = greedy_cluster(
        embeddings,
        precisions,
        seediness,
        foreground,
        max_instances=5,
        secondary_rule="nearest",
        backend="reference",
    )
    assert torch.equal(module(embeddings, precisions, seediness, foreground), expected)
    assert repr(module) == (
        "GreedyCluster(min_seediness=0.8, prob_threshold=0.5, secondary_threshold=0.3, "
        "max_instances=5, distance_rule='official', secondary_rule='nearest', "
        "free_dim_precision=None, backend='reference')"
    )
    free_dims = GreedyCluster(max_instances=5, free_dim_precision=2.5, backend="reference")
    expected = greedy_cluster(
        embeddings,
        with_free_dims(precisions[:, :2], 4, 2.5),
        seediness,
        foreground,
        max_instances=5,
        backend="reference",
    )
    assert torch.equal(free_dims(embeddings, precisions[:, :2], seediness, foreground), expected)
    assert "free_dim_precision=2.5, backend='reference')" in repr(free_dims)


@pytest.mark.gpu
@pytest.mark.parametrize("pipeline_form", [False, True], ids=["row-major", "volume-views"])
def test_whole_loop_replays_in_a_cuda_graph(pipeline_form, rng):
    """No host synchronisation inside: the launch sequence captured once replays on new
    inputs written into the same buffers and still matches the reference; also in the form the
    pipeline calls it, views of channel-first volumes with the free dims as a constant."""
    shape = (2, 50, 50)
    options = dict(free_dim_precision=FREE_DIM_PRECISION) if pipeline_form else {}

    def buffers(embeddings, precisions, seediness, foreground):
        if not pipeline_form:
            return [x.cuda() for x in (embeddings, precisions, seediness, foreground)]
        embedding_view, precision_view = (
            voxel_view(channel_first(x, *shape).cuda()) for x in (embeddings, precisions[:, :2])
        )
        return [embedding_view, precision_view, seediness.cuda(), foreground.cuda()]

    inputs = buffers(*make_inputs(math.prod(shape), 4, 0.5, 0, 4.0, rng))
    greedy_cluster(*inputs, backend="triton", **options)  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        labels = greedy_cluster(*inputs, backend="triton", **options)
    for _ in range(2):
        embeddings, precisions, seediness, foreground = make_inputs(
            math.prod(shape), 4, 0.5, 0, 4.0, rng
        )
        if pipeline_form:
            precisions = with_free_dims(precisions[:, :2], 4)
        fresh = [embeddings, precisions, seediness, foreground]
        for buffer, value in zip(inputs, fresh):
            buffer.copy_(value[:, : buffer.shape[1]] if buffer.dim() == 2 else value)
        graph.replay()
        torch.cuda.synchronize()
        assert_same_labels(labels, greedy_cluster(*fresh, backend="reference"), "graph replay")


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(embeddings=torch.zeros(5)), ValueError, r"embeddings must have shape \[\*, \*\]"),
        (dict(precisions=torch.ones(5, 3)), ValueError, r"precisions must have shape \[5, 4\]"),
        (dict(seediness=torch.zeros(4)), ValueError, "size N must agree"),
        (dict(foreground=torch.ones(5)), TypeError, "foreground must have dtype"),
        (dict(prob_threshold=1.0), ValueError, r"prob_threshold must be a probability in \(0, 1\)"),
        (dict(secondary_threshold=0.0), ValueError, "secondary_threshold must be a probability"),
        (dict(max_instances=-1), ValueError, r"max_instances must be an int in \[0, 127\]"),
        (dict(max_instances=200), ValueError, "max_instances must be an int"),
        (dict(distance_rule="gaussian"), ValueError, "distance_rule must be one of"),
        (dict(secondary_rule="farthest"), ValueError, "secondary_rule must be one of"),
        (dict(backend="cuda"), ValueError, "backend must be one of"),
        (dict(free_dim_precision=0.0), ValueError, "free_dim_precision must be finite and > 0"),
        (dict(free_dim_precision=-1.0), ValueError, "free_dim_precision must be finite"),
        (dict(free_dim_precision=math.inf), ValueError, "free_dim_precision must be finite"),
        (dict(free_dim_precision=math.nan), ValueError, "free_dim_precision must be finite"),
        # finite as a Python float, but not in float32: inf and 0 there
        (dict(free_dim_precision=1e39), ValueError, "free_dim_precision must be finite"),
        (dict(free_dim_precision=1e-50), ValueError, "free_dim_precision must be finite"),
        (dict(free_dim_precision="11.1"), TypeError, "free_dim_precision must be a real number"),
        (dict(free_dim_precision=True), TypeError, "free_dim_precision must be a real number"),
        (
            dict(free_dim_precision=11.1),
            ValueError,
            r"precisions must have fewer than E = 4 columns when free_dim_precision is given",
        ),
        (
            dict(precisions=torch.ones(4, 2), free_dim_precision=11.1),
            ValueError,
            r"precisions must have shape \[5, \*\]",
        ),
        (dict(precisions=torch.ones(5, 2)), ValueError, r"precisions must have shape \[5, 4\]"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(
        embeddings=torch.zeros(5, 4),
        precisions=torch.ones(5, 4),
        seediness=torch.zeros(5),
        foreground=torch.ones(5, dtype=torch.bool),
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        greedy_cluster(**arguments)


# NaN semantics: the official code runs torch.argmax (NaN ranks first, the first NaN wins),
# `NaN < min_seediness` (false: no stop) and torch.max over the stacked distances (NaN wins,
# then fails the threshold). Each case puts NaN where it decides something.
def _nan_cases():
    embeddings, precisions, seediness, foreground = hand_worked_inputs()
    late_nan = seediness.clone()
    late_nan[[4, 6]] = float("nan")  # voxel 4 is the first NaN: it seeds cluster 0
    nan_point = embeddings.clone()
    nan_point[7, 1] = float("nan")  # no distance, no primary or secondary label
    nan_seed = embeddings.clone()
    nan_seed[0, 0] = float("nan")  # the best seed has no centre: every distance is NaN
    nan_second_seed = embeddings.clone()
    nan_second_seed[3, 1] = float("nan")  # cluster 0 is real, cluster 1's distances are NaN
    return [
        pytest.param((embeddings, precisions, late_nan, foreground), id="nan-seediness"),
        pytest.param((nan_point, precisions, seediness, foreground), id="nan-embedding"),
        pytest.param((nan_seed, precisions, seediness, foreground), id="nan-seed-centre"),
        pytest.param((nan_second_seed, precisions, seediness, foreground), id="nan-second-centre"),
    ]


@pytest.mark.parametrize("inputs", _nan_cases())
def test_nan_follows_the_official_torch_semantics(inputs, device):
    expected = official_clustering(*inputs, max_instances=3)
    reference = greedy_cluster(*inputs, max_instances=3, backend="reference")
    result = greedy_cluster(*(x.to(device) for x in inputs), max_instances=3, backend="triton")
    assert_same_labels(reference, expected, "reference vs official")
    assert_same_labels(result, expected, "triton vs official")


def test_nan_seediness_seeds_first(device):
    inputs = _nan_cases()[0].values[0]
    labels = greedy_cluster(*(x.to(device) for x in inputs), max_instances=1, backend="triton")
    # cluster 0 grows around voxel 4 (x = 3.5), not around the finite maximum voxel 0 (x = 0)
    assert labels[4] == 0 and labels[3] == 0 and labels[0] == -1


@triton.jit
def _order_key_kernel(values_ptr, keys_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(keys_ptr + offs, greedy_cluster_module._order_key(tl.load(values_ptr + offs)))


def test_order_key_orders_like_torch_argmax(device):
    special = [
        float("nan"),
        float("inf"),
        float("-inf"),
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        0.8,
        -0.8,
        3.4e38,
        -3.4e38,
        1.0,
        float("nan"),
        -float("nan"),
        0.5,
        0.25,
    ]
    values = torch.tensor(special, dtype=torch.float32)
    keys = torch.empty(len(special), dtype=torch.int32, device=device)
    _order_key_kernel[(1,)](values.to(device), keys, BLOCK=len(special))
    python_keys = [
        greedy_cluster_module.seediness_order_key(v)
        if v == v
        else greedy_cluster_module._NAN_KEY.value
        for v in values.tolist()
    ]
    assert keys.cpu().tolist() == python_keys
    for i, a in enumerate(values.tolist()):
        for j, b in enumerate(values.tolist()):
            if a == a and b == b:  # float order for numbers, -0 == +0
                assert (keys[i] < keys[j]) == (a < b) and (keys[i] == keys[j]) == (a == b)
            elif a != a:  # NaN above everything
                assert keys[i] >= keys[j]
    never_stops = greedy_cluster_module._NO_KEY.value  # `s < NaN` is false for every s
    assert greedy_cluster_module.seediness_order_key(float("nan")) == never_stops
