"""Helpers every op test uses: tolerances per dtype, verbose comparison, random inputs,
gradient comparison. Import as ``from helpers import ...`` (pytest puts tests/ on sys.path)."""

import functools

import pytest
import torch

from stemseg_fast.model.embeddings import FREE_DIM_PRECISION, PRECISION_SCALE

# The model's precision numbers, which the kernels take as arguments.
OFFICIAL_PRECISIONS = dict(precision_scale=PRECISION_SCALE, free_dim_precision=FREE_DIM_PRECISION)


def with_official_precisions(op):
    """``op`` with the model's ``precision_scale`` and ``free_dim_precision`` (still
    overridable by keyword)."""
    return functools.partial(op, **OFFICIAL_PRECISIONS)


# (rtol, atol) for comparing a result computed in this dtype with the float64 reference.
# fp32 from torchvision's test_ops; bf16/fp16 about twice PyTorch's own rounding error there.
TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}


def tolerance_for(*dtypes):
    """The loosest tolerance among the dtypes that took part in the computation."""
    return max((TOLERANCES[d] for d in dtypes), key=lambda tol: tol[0])


def assert_close(actual, expected, *, dtype=None, name="result"):
    """Compare with the float64 reference; on failure say how many elements differ and where.

    NaN or inf in one tensor and not the other is a failure (poisoned outputs show as NaN).
    """
    rtol, atol = tolerance_for(dtype or actual.dtype)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {list(actual.shape)} != {list(expected.shape)}")
    actual64 = actual.detach().to("cpu", torch.float64)
    expected64 = expected.detach().to("cpu", torch.float64)
    close = torch.isclose(actual64, expected64, rtol=rtol, atol=atol, equal_nan=False)
    both_same_inf = torch.isinf(actual64) & (actual64 == expected64)
    bad = ~(close | both_same_inf)
    if bad.any():
        where = bad.nonzero()[:5].tolist()
        samples = ", ".join(
            f"{tuple(idx)}: {actual64[tuple(idx)].item():.8g} vs {expected64[tuple(idx)].item():.8g}"
            for idx in where
        )
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.numel()} elements differ beyond rtol={rtol}, "
            f"atol={atol} (NaN in result: {int(torch.isnan(actual64).sum())}); first: {samples}"
        )


def random_upstream(outputs, rng):
    """One random upstream gradient per output, shared by both backends."""
    return [torch.randn(o.shape, generator=rng, dtype=torch.float64).to(o.device) for o in outputs]


def gradients(outputs, inputs, upstream):
    """d(sum_j <outputs_j, upstream_j>)/d inputs, zeros for inputs that do not take part."""
    total = sum((o.to(torch.float64) * u).sum() for o, u in zip(outputs, upstream))
    grads = torch.autograd.grad(total, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


def compare_gradients(
    outputs, reference_outputs, inputs, reference_inputs, rng, *, names, dtype=None
):
    """Drive both backends with the same random upstream gradient; compare every input grad."""
    upstream = random_upstream(reference_outputs, rng)
    grads = gradients(outputs, inputs, upstream)
    reference_grads = gradients(reference_outputs, reference_inputs, upstream)
    for name, grad, reference_grad in zip(names, grads, reference_grads):
        assert_close(grad, reference_grad, dtype=dtype, name=f"grad of {name}")


def leaf(tensor, dtype, device):
    """A fresh leaf tensor with gradients, in the dtype and on the device of the test."""
    return tensor.detach().to(device=device, dtype=dtype).requires_grad_(True)


def assert_within_dtype_error(actual, expected, baseline, *, name="result", atol=1e-6):
    """flash-attn's rule for ill-conditioned low-precision results: the error of ``actual``
    against the float64 ``expected`` is at most twice that of ``baseline``, PyTorch's own
    computation in the same dtype, plus ``atol``."""
    expected64 = expected.detach().to("cpu", torch.float64)
    error = (actual.detach().to("cpu", torch.float64) - expected64).abs().max().item()
    baseline_error = (baseline.detach().to("cpu", torch.float64) - expected64).abs().max().item()
    if not error <= 2 * baseline_error + atol:  # also fails on NaN
        raise AssertionError(
            f"{name}: max error {error:.3g} exceeds 2 x PyTorch's own error "
            f"in that dtype ({baseline_error:.3g}) + {atol:g}"
        )


VIDEO_FPS = 12.5  # an unusual rate, so a writer that drops the source fps is caught


def write_video(path, frames, fourcc="mp4v", fps=VIDEO_FPS):
    """Write BGR ``frames`` [T, H, W, 3] as a video file; returns the path as str."""
    import cv2

    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def write_frames(folder, frames, names=None, extension="png"):
    """Write BGR ``frames`` as numbered images (or ``names``) in ``folder``; returns it as str."""
    import os

    import cv2

    os.makedirs(folder, exist_ok=True)
    names = names or [f"{index:05d}.{extension}" for index in range(len(frames))]
    for name, frame in zip(names, frames):
        cv2.imwrite(os.path.join(folder, name), frame)
    return str(folder)


def untrained_tiny_config():
    """The tiny preset with a seed threshold low enough that a random-init network finds
    tracks (what the inference tests run)."""
    import dataclasses

    from stemseg_fast.model import PRESETS

    tiny = PRESETS["tiny"]
    return dataclasses.replace(
        tiny, inference=dataclasses.replace(tiny.inference, min_seediness=0.3)
    )


def fast_tiny_predictor(*, full_resolution=True, cuda_graphs=False):
    """The untrained tiny preset on the GPU's fast path (fused Triton decoder blocks, Triton
    clustering, bf16), clustering at full resolution or at stride 4."""
    import dataclasses

    import torch

    from stemseg_fast.inference.predictor import Predictor
    from stemseg_fast.model import build_stemseg

    config = untrained_tiny_config()
    config = dataclasses.replace(
        config,
        inference=dataclasses.replace(config.inference, cluster_at_full_resolution=full_resolution),
    )
    torch.manual_seed(0)
    model = build_stemseg(config, fused=True, backend="triton")
    return Predictor(
        model, device="cuda", backend="triton", precision="bf16", cuda_graphs=cuda_graphs
    )


def save_untrained_tiny_checkpoint(path, seed=0):
    """A random-init tiny network (``untrained_tiny_config``, weights from ``seed``) saved in
    our format; returns the path as str."""
    import torch

    from stemseg_fast.model import build_stemseg, save_checkpoint

    torch.manual_seed(seed)
    save_checkpoint(build_stemseg(untrained_tiny_config()), path)
    return str(path)


def read_video(path):
    """``(fps, [frames])`` of a video file, every frame OpenCV decodes."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        decoded, frame = capture.read()
        if not decoded:
            break
        frames.append(frame)
    capture.release()
    return fps, frames


def snapshot(*roots):
    """``{path: sha256 of the bytes, or "folder"}`` of everything under ``roots``: taken before
    and after a command, it shows any file created, changed or removed."""
    import hashlib
    import os

    found = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            found[folder] = "folder"
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    found[path] = hashlib.sha256(handle.read()).hexdigest()
    return found


# Fixtures of the writer tests (tests/io, tests/outputs): a synthetic clip and its ground truth
# as tracks. Their conftests import them, so both folders share one definition.
@pytest.fixture(scope="module")
def clip():
    """A small synthetic clip the writers draw and encode."""
    from stemseg_fast.synthetic import synthetic_clip

    return synthetic_clip(num_frames=6, height=40, width=56, num_objects=3, seed=2)


@pytest.fixture
def video_tracks(clip):
    from stemseg_fast.synthetic import CLASSES
    from stemseg_fast.tracks import tracks_from_label_maps

    return tracks_from_label_maps(
        clip.instance_ids,
        name="synthetic",
        background=-1,
        categories=dict(enumerate(clip.categories)),
        fps=VIDEO_FPS,
        video_id=3,
        category_names={index: name for index, (name, _) in enumerate(CLASSES, 1)},
    )
