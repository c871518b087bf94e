"""TSE decoder: reference (official op sequence), the reference compiled by Inductor
(``compiled``) and the fused blocks, forward and forward+backward, fp32 and bf16 autocast.

Inputs are the four FPN volumes of one clip at a preset's stride-4 map (P2..P5, 256 channels).
Bytes (fp32, the fewest a decoder pass must move): read the four volumes, write every branch
output once and the fused result: dominated by P2 (256 x N) and the 4x branch (c4 x N).
"""

import pytest
import torch
from harness import COMPILED, backends, bench_device, compile_reference, presets, run_benchmark
from presets import PRESETS

from stemseg_fast.model import TSEDecoder

GPU_PRESET_NAMES = (
    "ytvis720_T8",
    "ovis_T8_stride4",
    "davis_T16",
)  # also the static report's (benchmarks/compiled.py)
PRESET_NAMES = presets(GPU_PRESET_NAMES, ("cpu_small",))
WIDTHS = {"embedding": (256, 256, 128, 128), "semantic_ytvis": (256, 256, 256, 256)}
DTYPES = {"fp32": None, "bf16": torch.bfloat16}
# memory layout of the volumes (and so of every conv output and fused block): the decoder's
# channels_last option
LAYOUTS = {"ncdhw": False, "ndhwc": True}
# Inductor's CPU build of the decoder takes minutes per variant and runs slower than eager on
# CPU, which says nothing about the GPU race: the compiled baseline runs on GPUs only.
COMPILE_BASELINE = torch.cuda.is_available()


def build_decoder(backend, widths_name, *, requires_grad, layout="ncdhw"):
    """``backend``: "reference" (official op sequence, eager), "compiled" (that sequence
    compiled by Inductor) or "triton" (fused blocks); ``layout``: a key of LAYOUTS."""
    decoder = TSEDecoder(
        256,
        WIDTHS[widths_name],
        fused=backend == "triton",
        backend="triton" if backend == "triton" else "reference",
        channels_last=LAYOUTS[layout],
    )
    decoder = decoder.to(bench_device()).requires_grad_(requires_grad)
    return compile_reference(decoder) if backend == COMPILED else decoder


def decoder_features(preset, *, requires_grad):
    """The four FPN volumes (P2..P5) of one clip at the preset's stride-4 map."""
    return [
        torch.randn(
            1,
            256,
            preset.num_frames,
            preset.height * 4 // stride,
            preset.width * 4 // stride,
            device=bench_device(),
            requires_grad=requires_grad,
        )
        for stride in (4, 8, 16, 32)
    ]


def setup_decoder(preset_name, backend, widths_name, *, requires_grad, layout="ncdhw"):
    preset = PRESETS[preset_name]
    decoder = build_decoder(backend, widths_name, requires_grad=requires_grad, layout=layout)
    return preset, decoder, decoder_features(preset, requires_grad=requires_grad)


def _bytes_moved(preset, widths):
    voxels = preset.num_voxels
    read = 256 * voxels * (1 + 1 / 4 + 1 / 16 + 1 / 64)
    written = voxels * (widths[3] + widths[2] / 4 + widths[1] / 16 + widths[0] / 64)
    return int(4 * (read + written + widths[3] * voxels))


def _dtypes():
    return DTYPES if torch.cuda.is_available() else {"fp32": None}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype_name", list(_dtypes()))
@pytest.mark.parametrize("widths_name", list(WIDTHS))
@pytest.mark.parametrize("backend", backends(compiled=COMPILE_BASELINE))
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_tse_decoder_forward(benchmark, preset_name, backend, widths_name, dtype_name, layout):
    preset, decoder, features = setup_decoder(
        preset_name, backend, widths_name, requires_grad=False, layout=layout
    )
    # the NCDHW groups keep their earlier names, so results stay comparable across runs
    suffix = "" if layout == "ncdhw" else f"-{layout}"
    benchmark.group = f"tse_decoder-forward-{widths_name}-{dtype_name}{suffix}-{preset_name}"
    dtype = DTYPES[dtype_name]

    def forward():
        with (
            torch.no_grad(),
            torch.autocast(bench_device().type, dtype=dtype, enabled=dtype is not None),
        ):
            return decoder(features)

    run_benchmark(benchmark, forward, bytes_moved=_bytes_moved(preset, WIDTHS[widths_name]))


@pytest.mark.parametrize("dtype_name", list(_dtypes()))
@pytest.mark.parametrize("backend", backends(compiled=COMPILE_BASELINE))
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_tse_decoder_forward_backward(benchmark, preset_name, backend, dtype_name):
    preset, decoder, features = setup_decoder(preset_name, backend, "embedding", requires_grad=True)
    benchmark.group = f"tse_decoder-forward_backward-embedding-{dtype_name}-{preset_name}"
    dtype = DTYPES[dtype_name]
    parameters = list(decoder.parameters())

    def forward_backward():
        with torch.autocast(bench_device().type, dtype=dtype, enabled=dtype is not None):
            out = decoder(features)
        torch.autograd.grad(out.float().square().mean(), parameters + features)

    run_benchmark(
        benchmark, forward_backward, bytes_moved=3 * _bytes_moved(preset, WIDTHS["embedding"])
    )
