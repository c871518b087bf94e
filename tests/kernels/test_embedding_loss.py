import importlib

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, compare_gradients, leaf, with_official_precisions

# The package exports each op under its module's name; fetch the module itself.
embedding_loss_module = importlib.import_module("stemseg_fast.kernels.embedding_loss")
embedding_loss = with_official_precisions(embedding_loss_module.embedding_loss)
embedding_loss_reference = with_official_precisions(embedding_loss_module.embedding_loss_reference)
embedding_loss_batched_reference = with_official_precisions(
    embedding_loss_module.embedding_loss_batched_reference
)
semantic_loss = embedding_loss_module.semantic_loss

TERM_NAMES = [
    "lovasz",
    "smoothness",
    "seediness",
    "lovasz_per_instance",
    "smoothness_per_instance",
    "seediness_per_instance",
    "seediness_background",
]
INPUT_NAMES = ["embeddings", "log_precisions", "seediness"]

# (N voxels, E, E-F, K ids, vanished ids, background fraction, ignore fraction)
CASES = [
    pytest.param((1, 4, 2, 1, (), 0.0, 0.0), id="one-voxel-K1"),
    pytest.param((53, 4, 2, 0, (), 1.0, 0.2), id="K0"),
    pytest.param((129, 4, 2, 1, (), 0.5, 0.2), id="K1-N129"),
    pytest.param((128, 4, 2, 16, (), 0.3, 0.2), id="K16-N128-one-full-block"),
    pytest.param((2049, 4, 2, 3, (), 0.4, 0.2), id="K3-N2049-three-lovasz-chunks"),
    pytest.param((211, 3, 3, 6, (2,), 0.4, 0.3), id="xyt-K6-vanished-id-2"),
    pytest.param((301, 4, 2, 19, (0, 18), 0.3, 0.1), id="K19-two-K-blocks-vanished-ends"),
    pytest.param((97, 2, 0, 4, (), 0.3, 0.2), id="ff-no-variance-dims"),
    pytest.param((64, 4, 2, 3, (), 0.0, 0.0), id="all-foreground"),
    pytest.param((40, 4, 2, 3, (0, 1, 2), 1.0, 0.5), id="all-ids-vanished"),
]


def make_clip(
    num_voxels, num_dims, num_variance_dims, num_instances, vanished, background, ignore, rng
):
    """A clip whose instances sit around their own centres (so probabilities span (0, 1))."""
    ids = torch.randint(0, max(num_instances, 1), (num_voxels,), generator=rng)
    ids[torch.rand(num_voxels, generator=rng) < background] = -1
    for vanished_id in vanished:
        ids[ids == vanished_id] = -1
    if num_instances == 0:
        ids.fill_(-1)
    centres = 0.6 * torch.randn(max(num_instances, 1), num_dims, generator=rng, dtype=torch.float64)
    embeddings = 0.25 * torch.randn(num_voxels, num_dims, generator=rng, dtype=torch.float64)
    embeddings += torch.where(ids[:, None] >= 0, centres[ids.clamp(min=0)], 0.0)
    log_precisions = 0.3 * torch.randn(
        num_voxels, num_variance_dims, generator=rng, dtype=torch.float64
    )
    seediness = torch.rand(num_voxels, generator=rng, dtype=torch.float64)
    ignore_mask = torch.rand(num_voxels, generator=rng) < ignore
    return (embeddings, log_precisions, seediness), ids, ignore_mask


def clip_on(device, inputs64, ids, ignore):
    return [x.to(device) for x in inputs64], ids.to(device), ignore.to(device)


def terms_of(result):
    return [getattr(result, name) for name in TERM_NAMES]


def assert_terms_close(result, expected, *, dtype=None, label=""):
    for name in TERM_NAMES:
        assert_close(
            getattr(result, name), getattr(expected, name), dtype=dtype, name=f"{label}{name}"
        )
    assert int(result.num_instances) == int(expected.num_instances)


@pytest.mark.parametrize("exclude", [False, True], ids=["official-ignore", "exclude-ignored"])
@pytest.mark.parametrize("case", CASES)
def test_fused_triton_matches_per_instance_reference(case, exclude, device, rng):
    """Float64 values and every gradient: the Triton path against the official-style loop."""
    num_voxels, num_dims, num_variance_dims, num_instances, *rest = case
    inputs64, ids, ignore = make_clip(*case, rng)
    inputs = [leaf(x, torch.float64, device) for x in inputs64]
    reference_inputs = [leaf(x, torch.float64, "cpu") for x in inputs64]
    options = dict(exclude_ignored_from_lovasz=exclude)
    expected = embedding_loss_reference(*reference_inputs, ids, ignore, num_instances, **options)
    result = embedding_loss(
        *inputs, ids.to(device), ignore.to(device), num_instances, backend="triton", **options
    )
    assert_terms_close(result, expected)
    compare_gradients(
        terms_of(result), terms_of(expected), inputs, reference_inputs, rng, names=INPUT_NAMES
    )


@pytest.mark.parametrize("case", CASES)
def test_batched_reference_matches_per_instance_reference(case, rng):
    num_instances = case[3]
    inputs64, ids, ignore = make_clip(*case, rng)
    inputs = [leaf(x, torch.float64, "cpu") for x in inputs64]
    reference_inputs = [leaf(x, torch.float64, "cpu") for x in inputs64]
    for exclude in (False, True):
        expected = embedding_loss_reference(
            *reference_inputs, ids, ignore, num_instances, exclude_ignored_from_lovasz=exclude
        )
        result = embedding_loss(
            *inputs,
            ids,
            ignore,
            num_instances,
            backend="reference",
            exclude_ignored_from_lovasz=exclude,
        )
        assert_terms_close(result, expected, label=f"exclude={exclude} ")
        compare_gradients(
            terms_of(result), terms_of(expected), inputs, reference_inputs, rng, names=INPUT_NAMES
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_triton_low_precision_values(dtype, device, rng):
    """Float32 accumulation from float32/bfloat16 inputs against the float64 loop (values:
    the Lovász subgradient is order dependent, and float32 rounding reorders near-ties)."""
    inputs64, ids, ignore = make_clip(257, 4, 2, 7, (3,), 0.4, 0.2, rng)
    inputs = [x.to(device, dtype) for x in inputs64]
    expected = embedding_loss_reference(*[x.to(dtype).double() for x in inputs64], ids, ignore, 7)
    result = embedding_loss(*inputs, ids.to(device), ignore.to(device), 7, backend="triton")
    assert result.lovasz.dtype == torch.float32
    for name in TERM_NAMES:  # the inputs were rounded; the computation is float32
        assert_close(getattr(result, name), getattr(expected, name), dtype=torch.float32, name=name)


def test_reference_gradcheck(rng):
    """The seediness target p is detached, which finite differences in the embeddings do see:
    check Lovász and smoothness against (embeddings, log-precisions) and the seediness terms
    against the seediness alone."""
    geometry_terms = ["lovasz", "smoothness", "lovasz_per_instance", "smoothness_per_instance"]
    seediness_terms = ["seediness", "seediness_per_instance", "seediness_background"]
    for _ in range(2):
        (embeddings, log_precisions, seediness), ids, ignore = make_clip(
            17, 3, 2, 3, (), 0.3, 0.3, rng
        )
        for loss_fn in (embedding_loss_reference, embedding_loss_batched_reference):
            torch.autograd.gradcheck(
                lambda e, r: tuple(
                    getattr(loss_fn(e, r, seediness, ids, ignore, 3), name)
                    for name in geometry_terms
                ),
                (embeddings.requires_grad_(True), log_precisions.requires_grad_(True)),
                fast_mode=True,
            )
            torch.autograd.gradcheck(
                lambda s: tuple(
                    getattr(
                        loss_fn(embeddings.detach(), log_precisions.detach(), s, ids, ignore, 3),
                        name,
                    )
                    for name in seediness_terms
                ),
                (seediness.requires_grad_(True),),
                fast_mode=True,
            )


def test_vanished_id_does_not_shift_other_instances(device, rng):
    """The official index-shift bug cannot occur: ids {0, 2} of K = 3 give the same terms as
    the compacted ids {0, 1} of K = 2 (official: instance 2's Gaussian would meet mask 1)."""
    inputs64, ids, ignore = clip_on(device, *make_clip(120, 4, 2, 3, (1,), 0.3, 0.1, rng))
    compact = torch.where(ids == 2, 1, ids)
    for backend in ("reference", "triton"):
        sparse = embedding_loss(*inputs64, ids, ignore, 3, backend=backend)
        dense = embedding_loss(*inputs64, compact, ignore, 2, backend=backend)
        for name in ("lovasz", "smoothness", "seediness"):
            assert_close(getattr(sparse, name), getattr(dense, name), name=f"{backend} {name}")
        assert_close(
            sparse.lovasz_per_instance[[0, 2]],
            dense.lovasz_per_instance,
            name=f"{backend} per instance",
        )
        assert int(sparse.num_instances) == 2


def test_ignore_handling_options(device, rng):
    """Default (official): the ignore mask leaves the Lovász term unchanged. Excluding equals
    removing the ignored background voxels from the Lovász rows."""
    inputs64, ids, ignore = clip_on(device, *make_clip(150, 4, 2, 4, (), 0.5, 0.3, rng))
    # Ignored background voxels inside instance 0: large hinge errors, so dropping them matters.
    ignored_background = ignore & (ids < 0)
    inputs64[0][ignored_background] = inputs64[0][ids == 0].mean(dim=0)
    no_ignore = torch.zeros_like(ignore)
    for backend in ("reference", "triton"):
        official = embedding_loss(*inputs64, ids, ignore, 4, backend=backend)
        unmasked = embedding_loss(*inputs64, ids, no_ignore, 4, backend=backend)
        assert_close(
            official.lovasz_per_instance,
            unmasked.lovasz_per_instance,
            name=f"{backend} official lovasz",
        )
        excluded = embedding_loss(
            *inputs64, ids, ignore, 4, backend=backend, exclude_ignored_from_lovasz=True
        )
        kept = ~ignored_background
        removed = embedding_loss(*[x[kept] for x in inputs64], ids[kept], None, 4, backend=backend)
        assert_close(
            excluded.lovasz_per_instance,
            removed.lovasz_per_instance,
            name=f"{backend} excluded lovasz",
        )


@pytest.mark.fixed_seed(0)
def test_excluding_ignored_background_changes_the_lovasz(device, rng):
    """The option above can tell the two rules apart: ignored background voxels placed on
    instance 0's mean embedding cost instance 0 Lovász loss only under the official rule."""
    inputs64, ids, ignore = clip_on(device, *make_clip(150, 4, 2, 4, (), 0.5, 0.3, rng))
    ignored_background = ignore & (ids < 0)
    inputs64[0][ignored_background] = inputs64[0][ids == 0].mean(dim=0)
    for backend in ("reference", "triton"):
        official = embedding_loss(*inputs64, ids, ignore, 4, backend=backend)
        excluded = embedding_loss(
            *inputs64, ids, ignore, 4, backend=backend, exclude_ignored_from_lovasz=True
        )
        assert excluded.lovasz_per_instance[0] < official.lovasz_per_instance[0] - 0.01


def test_seediness_background_by_hand(device):
    # Three background voxels (one ignored) with seediness 0.5, 0.2, 0.9 (ignored):
    # (0.25 + 0.04 + 0) / 3 -- the ignored voxel stays in the denominator (official).
    # One instance voxel with seediness 1 and p = 1 (it is its own mean): error 0.
    embeddings = torch.zeros(4, 4, dtype=torch.float64, device=device)
    log_precisions = torch.zeros(4, 2, dtype=torch.float64, device=device)
    seediness = torch.tensor([1.0, 0.5, 0.2, 0.9], dtype=torch.float64, device=device)
    ids = torch.tensor([0, -1, -1, -1], device=device)
    ignore = torch.tensor([False, False, False, True], device=device)
    for backend in ("reference", "triton"):
        terms = embedding_loss(embeddings, log_precisions, seediness, ids, ignore, backend=backend)
        background = torch.tensor(0.29 / 3, dtype=torch.float64)
        assert_close(terms.seediness_background, background, name=f"{backend} background")
        assert_close(terms.seediness, background / 2, name=f"{backend} seediness")  # / (K + 1)
        assert_close(terms.smoothness, torch.tensor(0.0, dtype=torch.float64), name=backend)


def test_no_background_voxel_gives_zero_background_term(device, rng):
    inputs64, ids, ignore = make_clip(30, 4, 2, 2, (), 0.0, 0.0, rng)
    terms = embedding_loss(
        *[x.to(device) for x in inputs64], ids.to(device), None, 2, backend="triton"
    )
    assert float(terms.seediness_background) == 0.0 and torch.isfinite(terms.seediness)


def test_zero_instances_still_touch_every_input(device, rng):
    inputs64, ids, ignore = make_clip(20, 4, 2, 0, (), 1.0, 0.0, rng)
    for backend in ("reference", "triton"):
        inputs = [leaf(x, torch.float64, device) for x in inputs64]
        terms = embedding_loss(*inputs, ids.to(device), None, 0, backend=backend)
        terms.total().backward()
        assert float(terms.total().detach()) == 0.0
        assert all(x.grad is not None and not x.grad.any() for x in inputs), backend


def test_total_applies_official_weights(rng):
    inputs64, ids, ignore = make_clip(60, 4, 2, 3, (), 0.3, 0.0, rng)
    terms = embedding_loss(*inputs64, ids, ignore, 3, backend="reference")
    assert_close(terms.total(), terms.lovasz + 10.0 * terms.smoothness + terms.seediness)


@pytest.mark.fixed_seed(0)
def test_poisoned_outputs_catch_a_kernel_that_writes_nothing(monkeypatch, device, rng):
    """The harness can fail: skip the errors kernel and the NaN poison must show."""
    inputs64, ids, ignore = make_clip(50, 4, 2, 2, (), 0.3, 0.0, rng)
    expected = embedding_loss(*inputs64, ids, ignore, 2, backend="reference")

    class SkippedKernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(embedding_loss_module, "_embedding_loss_errors_kernel", SkippedKernel())
    inputs, ids, ignore = clip_on(device, inputs64, ids, ignore)
    result = embedding_loss(*inputs, ids, ignore, 2, backend="triton")
    with pytest.raises(AssertionError, match="differ"):
        assert_close(result.seediness, expected.seediness, name="seediness")


@pytest.mark.fixed_seed(0)
def test_result_changes_with_input(device, rng):
    # Instance 1's seediness enters only its own seediness term (embeddings would move every
    # row's Lovász term, since instance 1's voxels are negatives of instance 0).
    inputs64, ids, ignore = clip_on(device, *make_clip(50, 4, 2, 2, (), 0.3, 0.0, rng))
    before = embedding_loss(*inputs64, ids, ignore, 2, backend="triton")
    inputs64[2][ids == 1] = 1.0 - inputs64[2][ids == 1]
    after = embedding_loss(*inputs64, ids, ignore, 2, backend="triton")
    assert torch.equal(before.lovasz_per_instance, after.lovasz_per_instance)
    assert before.seediness_per_instance[0] == after.seediness_per_instance[0]
    assert before.seediness_per_instance[1] != after.seediness_per_instance[1]


def test_semantic_loss_official_and_fixed(rng):
    num_voxels, num_classes = 40, 5
    logits = torch.randn(num_voxels, num_classes, generator=rng, dtype=torch.float64)
    foreground_logits = torch.randn(num_voxels, generator=rng, dtype=torch.float64)
    targets = torch.randint(0, num_classes, (num_voxels,), generator=rng)
    ignore = torch.rand(num_voxels, generator=rng) < 0.3
    official = semantic_loss(logits, foreground_logits, targets, ignore)
    # The official CE: the scalar mean times the non-ignore mask, renormalised -- a no-op.
    nonignore = 1.0 - ignore.double()
    official_ce = (F.cross_entropy(logits, targets) * nonignore).sum() / nonignore.sum()
    assert_close(official.cross_entropy, official_ce, name="official cross-entropy")
    fixed = semantic_loss(
        logits, foreground_logits, targets, ignore, exclude_ignored_from_cross_entropy=True
    )
    assert_close(
        fixed.cross_entropy,
        F.cross_entropy(logits[~ignore], targets[~ignore]),
        name="fixed cross-entropy",
    )
    expected_fg = F.binary_cross_entropy_with_logits(
        foreground_logits[~ignore], (targets[~ignore] > 0).double()
    )
    assert_close(official.foreground, expected_fg, name="foreground")
    assert_close(fixed.foreground, expected_fg, name="foreground (fixed)")
    all_ignored = semantic_loss(logits, foreground_logits, targets, torch.ones_like(ignore))
    assert float(all_ignored.foreground) == 0.0


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(embeddings=torch.zeros(5)), ValueError, r"embeddings must have shape \[\*, \*\]"),
        (dict(log_precisions=torch.zeros(5, 5)), ValueError, "at most E = 4"),
        (dict(seediness=torch.zeros(4)), ValueError, "size N must agree"),
        (dict(ignore_mask=torch.zeros(5)), TypeError, "ignore_mask must have dtype"),
        (dict(ignore_mask=torch.zeros(6, dtype=torch.bool)), ValueError, "size N must agree"),
        (dict(instance_ids=torch.tensor([0, 1, 2, 3, 3])), ValueError, r"values in \[-1, 3\)"),
        (dict(num_instances=-1), ValueError, "num_instances must be >= 0"),
        (dict(free_dim_precision=-1.0), ValueError, "free_dim_precision must be > 0"),
        (dict(backend="cuda"), ValueError, "backend must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(
        embeddings=torch.zeros(5, 4),
        log_precisions=torch.zeros(5, 2),
        seediness=torch.zeros(5),
        instance_ids=torch.zeros(5, dtype=torch.long),
        num_instances=3,
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        embedding_loss(**arguments)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(class_logits=torch.zeros(5)), ValueError, r"class_logits must have shape"),
        (dict(semantic_targets=torch.full((5,), 3)), ValueError, r"values in \[0, 3\)"),
        (dict(foreground_logits=torch.zeros(4)), ValueError, "size N must agree"),
        (dict(ignore_mask=torch.zeros(5, dtype=torch.uint8)), TypeError, "ignore_mask must have"),
    ],
)
def test_semantic_loss_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(
        class_logits=torch.zeros(5, 3),
        foreground_logits=torch.zeros(5),
        semantic_targets=torch.zeros(5, dtype=torch.long),
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        semantic_loss(**arguments)
