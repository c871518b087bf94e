import importlib

import pytest
import torch
from helpers import assert_close, compare_gradients, leaf

# The package exports each op under its module's name; fetch the module itself.
lovasz_hinge_module = importlib.import_module("stemseg_fast.kernels.lovasz_hinge")
lovasz_hinge = lovasz_hinge_module.lovasz_hinge

# (K rows, N voxels, fraction of positives); the kernels work in chunks of 1024.
CASES = [
    pytest.param(1, 1, 0.5, id="one-voxel-K1"),
    pytest.param(0, 17, 0.5, id="K0"),
    pytest.param(3, 0, 0.5, id="N0-empty-rows"),
    pytest.param(1, 255, 0.3, id="K1-N255"),
    pytest.param(5, 1025, 0.2, id="K5-N1025-two-chunks"),
    pytest.param(2, 1023, 0.3, id="K2-N1023"),
    pytest.param(2, 1024, 0.3, id="K2-N1024-one-full-chunk"),
    pytest.param(3, 3073, 0.1, id="K3-N3073-four-chunks"),
    pytest.param(12, 333, 0.5, id="K12-N333"),
    pytest.param(4, 101, 0.0, id="all-negative"),
    pytest.param(4, 101, 1.0, id="all-positive"),
]


def make_inputs(num_rows, num_voxels, positive_fraction, rng, *, quantised=True):
    """Logits on a 1/64 grid in [-2, 2]: errors are exact in every float dtype, so both
    backends see the same ties and order (the gradient is order dependent at ties)."""
    if quantised:
        logits = torch.randint(-128, 129, (num_rows, num_voxels), generator=rng) / 64.0
    else:
        logits = torch.randn(num_rows, num_voxels, generator=rng)
    labels = torch.rand(num_rows, num_voxels, generator=rng) < positive_fraction
    return logits.to(torch.float64), labels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("num_rows,num_voxels,positive_fraction", CASES)
def test_triton_matches_float64_reference(
    num_rows, num_voxels, positive_fraction, dtype, device, rng
):
    logits, labels = make_inputs(num_rows, num_voxels, positive_fraction, rng)
    inputs = [leaf(logits, dtype, device)]
    reference_inputs = [leaf(logits, torch.float64, "cpu")]
    expected = lovasz_hinge(reference_inputs[0], labels, backend="reference")
    result = lovasz_hinge(inputs[0], labels.to(device), backend="triton")
    result_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert result.dtype == result_dtype and result.shape == (num_rows,)
    assert_close(result, expected, dtype=result_dtype, name="loss")
    compare_gradients(
        [result], [expected], inputs, reference_inputs, rng, names=["logits"], dtype=dtype
    )


@pytest.mark.parametrize("label_dtype", [torch.bool, torch.uint8, torch.int64, torch.float32])
def test_label_dtypes(label_dtype, device, rng):
    logits, labels = make_inputs(3, 50, 0.4, rng)
    expected = lovasz_hinge(logits, labels, backend="reference")
    result = lovasz_hinge(logits.to(device), labels.to(device, label_dtype), backend="triton")
    assert_close(result, expected, name=f"loss with {label_dtype} labels")


def test_hand_worked_case(device):
    # One row, logits x = (2, -1, 0.5, 0), labels y = (1, 0, 0, 1), sign = (1, -1, -1, 1).
    # errors = 1 - x * sign = (1 - 2, 1 - 1, 1 + 0.5, 1 - 0) = (-1, 0, 1.5, 1).
    # Sorted descending: 1.5 (y=0), 1 (y=1), 0 (y=0), -1 (y=1); gts = 2.
    #   j  y  cumsum(y)  cumsum(1-y)  I = 2 - cum(y)  U = 2 + cum(1-y)  J = 1 - I/U
    #   0  0      0          1              2               3             1/3
    #   1  1      1          1              1               3             2/3
    #   2  0      1          2              1               4             3/4
    #   3  1      2          2              0               4             1
    # grad = J_j - J_{j-1} = (1/3, 1/3, 1/12, 1/4)
    # loss = relu(1.5)/3 + relu(1)/3 + relu(0)/12 + relu(-1)/4 = 0.5 + 1/3 = 5/6.
    # d loss / d x_i = -sign_i * grad(i) where the error is > 0: voxel 2 (sorted 0, sign -1)
    # gets +1/3, voxel 3 (sorted 1, sign +1) gets -1/3, voxels 0 and 1 (error <= 0) get 0.
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0]], dtype=torch.float64, device=device)
    labels = torch.tensor([[1, 0, 0, 1]], device=device)
    for backend in ("reference", "triton"):
        x = logits.clone().requires_grad_(True)
        loss = lovasz_hinge(x, labels, backend=backend)
        assert_close(loss, torch.tensor([5.0 / 6.0], dtype=torch.float64), name=backend)
        loss.sum().backward()
        assert_close(
            x.grad,
            torch.tensor([[0.0, 0.0, 1.0 / 3.0, -1.0 / 3.0]], dtype=torch.float64),
            name=f"{backend} grad",
        )


def test_row_without_positives_is_the_largest_error(device):
    # gts = 0: J_j = 1 from the first position, so grad = (1, 0, ...) and loss = relu(max).
    logits = torch.tensor(
        [[0.25, -3.0, 0.5], [-2.0, -3.0, -4.0]], dtype=torch.float64, device=device
    )
    labels = torch.zeros(2, 3, dtype=torch.bool, device=device)
    for backend in ("reference", "triton"):
        loss = lovasz_hinge(logits, labels, backend=backend)
        assert_close(loss, torch.tensor([1.5, 0.0], dtype=torch.float64), name=backend)


def test_ties_give_the_same_value_in_any_order(device):
    # All errors equal: the value is tie-invariant (sum over the tie group of grad = J_end).
    logits = torch.zeros(1, 7, dtype=torch.float64)
    labels = torch.tensor([[1, 0, 1, 1, 0, 0, 1]])
    expected = lovasz_hinge(logits, labels, backend="reference")
    reversed_order = lovasz_hinge(logits, labels.flip(1), backend="reference")
    result = lovasz_hinge(logits.to(device), labels.to(device), backend="triton")
    assert_close(reversed_order, expected, name="reference, reversed")
    assert_close(result, expected, name="triton")
    # errors all 1, J at the end = 1 - 0 / (4 + 3) = 1, so the loss is exactly 1.
    assert_close(expected, torch.ones(1, dtype=torch.float64), name="value")


def test_random_real_logits_float32(device, rng):
    """Unquantised logits: float32 values against the float64 reference."""
    logits, labels = make_inputs(6, 2049, 0.3, rng, quantised=False)
    expected = lovasz_hinge(logits, labels, backend="reference")
    result = lovasz_hinge(logits.float().to(device), labels.to(device), backend="triton")
    assert_close(result, expected, dtype=torch.float32, name="loss")


def test_reference_gradcheck(rng):
    for _ in range(5):
        logits, labels = make_inputs(3, 9, 0.5, rng, quantised=False)
        torch.autograd.gradcheck(
            lambda x: lovasz_hinge(x, labels, backend="reference"), (logits.requires_grad_(True),)
        )


def test_non_contiguous_inputs(device, rng):
    logits, labels = make_inputs(40, 5, 0.5, rng)
    expected = lovasz_hinge(logits.t(), labels.t(), backend="reference")
    result = lovasz_hinge(logits.to(device).t(), labels.to(device).t(), backend="triton")
    assert_close(result, expected, name="loss")


@pytest.mark.fixed_seed(0)
def test_poisoned_outputs_catch_a_kernel_that_writes_nothing(monkeypatch, device, rng):
    """The harness can fail: skip the gradient kernel and the NaN poison must show."""
    logits, labels = make_inputs(2, 60, 0.5, rng)
    expected = lovasz_hinge(logits, labels, backend="reference")

    class SkippedKernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(lovasz_hinge_module, "_lovasz_gradient_kernel", SkippedKernel())
    result = lovasz_hinge(logits.to(device), labels.to(device), backend="triton")
    with pytest.raises(AssertionError, match="differ"):
        assert_close(result, expected, name="loss")


@pytest.mark.fixed_seed(0)
def test_result_changes_with_input(device, rng):
    logits, labels = (x.to(device) for x in make_inputs(2, 30, 0.5, rng))
    before = lovasz_hinge(logits, labels, backend="triton")
    labels[1] = ~labels[1]
    after = lovasz_hinge(logits, labels, backend="triton")
    assert before[0] == after[0] and before[1] != after[1]


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(logits=torch.zeros(5)), ValueError, r"logits must have shape \[\*, \*\]"),
        (
            dict(labels=torch.zeros(2, 4)),
            ValueError,
            r"labels must have the shape of logits \[2, 5\]",
        ),
        (
            dict(labels=torch.zeros(2, 5, dtype=torch.complex64)),
            TypeError,
            "labels must have dtype",
        ),
        (dict(logits=torch.zeros(2, 5, dtype=torch.int32)), TypeError, "logits must have dtype"),
        (dict(backend="fast"), ValueError, "backend must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(logits=torch.zeros(2, 5), labels=torch.zeros(2, 5, dtype=torch.bool))
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        lovasz_hinge(**arguments)
