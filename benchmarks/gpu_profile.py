"""GPU runbook checks that need torch.profiler or ncu (run by benchmarks/gpu_check.sh).

    python benchmarks/gpu_profile.py --trace TRACE.json.gz   cuDNN version; whether the bf16
        conv3d of the decoder runs a cuDNN kernel; one profiler trace of a whole clip step
        (Predictor, fast path, one OVIS-size clip: launch gaps and host syncs show there)
    python benchmarks/gpu_profile.py --ncu-targets   one launch each of the largest
        ``upsample_add``, one GN+ReLU+pool and the Gaussian probability backward at benchmark
        shapes (the launches the static report predicts; ncu filters them by kernel name)

Exit status 1 when a check fails, 2 without CUDA.
"""

import argparse
import dataclasses
import gzip
import os
import shutil
import sys
import tempfile

import torch

from presets import PRESETS

CONV_SHAPE = (1, 256, 8, 160, 288)  # the decoder's P2 volume at ytvis720_T8


def check_cudnn_conv3d():
    """True when the bf16 3x3x3 conv3d under autocast runs through cuDNN."""
    from torch.profiler import ProfilerActivity, profile

    print(
        f"cudnn version {torch.backends.cudnn.version()}, enabled "
        f"{torch.backends.cudnn.enabled}, benchmark {torch.backends.cudnn.benchmark}"
    )
    conv = torch.nn.Conv3d(256, 256, 3, padding=1).cuda()
    x = torch.randn(CONV_SHAPE, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        conv(x)  # algorithm selection outside the profile
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            conv(x)
            torch.cuda.synchronize()
    names = [event.key for event in prof.key_averages()]
    cudnn_ops = [name for name in names if "cudnn" in name.lower()]
    kernels = sorted(
        {
            event.name
            for event in prof.events()
            if event.device_type == torch.autograd.DeviceType.CUDA
        }
    )
    print("conv3d bf16 ops:", ", ".join(name for name in names if name.startswith("aten::")))
    print("conv3d bf16 kernels:", "; ".join(kernels) or "none")
    print(f"conv3d bf16 runs cuDNN: {bool(cudnn_ops)}")
    return bool(cudnn_ops)


def save_clip_step_trace(path):
    """Profile one Predictor call on one clip of OVIS-size frames (fast path) to ``path``."""
    from torch.profiler import ProfilerActivity, profile

    from stemseg_fast.inference.predictor import Predictor
    from stemseg_fast.model import PRESETS as MODEL_PRESETS
    from stemseg_fast.model import build_stemseg
    from stemseg_fast.synthetic import synthetic_video

    preset = PRESETS["ovis_T8_fullres"]
    config = MODEL_PRESETS["ovis"]
    config = dataclasses.replace(
        config, inference=dataclasses.replace(config.inference, min_seediness=0.0)
    )
    torch.manual_seed(0)
    model = build_stemseg(config, fused=True, backend="triton")
    predictor = Predictor(model, device="cuda", backend="triton", precision="bf16")
    video = synthetic_video(
        num_frames=preset.num_frames, height=preset.height, width=preset.width, seed=0
    ).frames
    predictor.predict(video, video_id=1)  # compile and warm up outside the trace
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        predictor.predict(video, video_id=1)
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(raw)
        with open(raw, "rb") as source, gzip.open(path, "wb") as target:
            shutil.copyfileobj(source, target)
    print(f"clip step trace: {path} ({os.path.getsize(path) / 2**20:.1f} MiB gzip)")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))


def run_ncu_targets():
    """One launch of each kernel ncu profiles, at the shapes the static report reads."""
    from test_bench_gaussian_probability import setup_gaussian_probability

    from stemseg_fast.kernels import group_norm_relu_pool, upsample_add

    davis, ytvis = PRESETS["davis_T16"], PRESETS["ytvis720_T8"]
    # the decoder's largest fusion: its 128-channel stride-8 branch upsampled to davis_T16's
    # stride-4 map (T and the map doubled)
    high = torch.randn(1, 128, davis.num_frames, davis.height, davis.width, device="cuda")
    low = torch.randn(
        1, 128, davis.num_frames // 2, davis.height // 2, davis.width // 2, device="cuda"
    )
    channels_last = torch.channels_last_3d
    upsample_add(low, high, backend="triton")
    upsample_add(
        low.contiguous(memory_format=channels_last),
        high.contiguous(memory_format=channels_last),
        backend="triton",
    )
    # the decoder's largest GN+ReLU+pool at ytvis720_T8: 128 channels at stride 8
    x = torch.randn(1, 128, ytvis.num_frames, ytvis.height // 2, ytvis.width // 2, device="cuda")
    weight, bias = torch.ones(128, device="cuda"), torch.zeros(128, device="cuda")
    group_norm_relu_pool(x, weight, bias, 32, pool=True, backend="triton")
    group_norm_relu_pool(
        x.contiguous(memory_format=channels_last), weight, bias, 32, pool=True, backend="triton"
    )
    _, inputs, forward = setup_gaussian_probability("ytvis720_T8", "triton", requires_grad=True)
    probability = forward()
    torch.autograd.grad(probability, inputs, torch.ones_like(probability))
    torch.cuda.synchronize()
    print("ncu targets launched")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", help="gzip chrome trace of one clip step goes here")
    parser.add_argument(
        "--ncu-targets", action="store_true", help="launch the kernels ncu profiles, nothing else"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "gpu_profile.py: torch.cuda.is_available() is False: needs a CUDA GPU", file=sys.stderr
        )
        return 2
    if args.ncu_targets:
        run_ncu_targets()
        return 0
    ok = check_cudnn_conv3d()
    if args.trace:
        save_clip_step_trace(args.trace)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
