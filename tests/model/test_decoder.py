import pytest
import torch
from helpers import assert_close

from stemseg_fast.model import TSEDecoder, temporal_schedule

# T -> (T after the 32x, 16x, 8x branches), from the reference table (section 1.3).
BRANCH_FRAMES = {2: (2, 2, 2), 4: (2, 2, 2), 8: (2, 2, 4), 16: (2, 4, 8), 24: (3, 6, 12)}


def volumes(num_frames, height, width, channels, rng, dtype=torch.float64):
    return [
        torch.randn(1, channels, num_frames, height // s, width // s, generator=rng, dtype=dtype)
        for s in (4, 8, 16, 32)
    ]


def test_temporal_schedule_table():
    assert temporal_schedule(2) == ((False, False, False), (1, 1, 1))
    assert temporal_schedule(4) == ((True, False, False), (1, 1, 2))
    assert temporal_schedule(8) == ((True, True, False), (1, 2, 2))
    for frames in (16, 24, 32):
        assert temporal_schedule(frames) == ((True, True, True), (2, 2, 2))
    with pytest.raises(ValueError, match="num_frames"):
        temporal_schedule(6)


def test_official_parameter_names_and_positions():
    decoder = TSEDecoder(256, (256, 256, 128, 128))
    shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert shapes["block_32x.8.weight"] == (256, 256, 3, 3, 3)
    assert shapes["block_16x.5.bias"] == (256,)
    assert shapes["conv_8.weight"] == (128, 384, 1, 1, 1)
    assert shapes["conv_4.weight"] == (128, 256, 1, 1, 1)
    assert len(shapes) == 7 * 4 + 3  # 7 stages x (conv w, b, gn w, b), 3 fusions
    # About 10.8 M parameters per [256, 256, 128, 128] decoder (reference section 1.3).
    assert abs(sum(p.numel() for p in decoder.parameters()) / 1e6 - 10.8) < 0.1


@pytest.mark.parametrize("num_frames", sorted(BRANCH_FRAMES))
def test_output_shapes_and_branch_frames(num_frames, rng):
    decoder = TSEDecoder(32, (32, 32, 32, 32)).double()
    features = volumes(num_frames, 64, 96, 32, rng)
    out = decoder(features)
    schedule = temporal_schedule(num_frames)
    frames = tuple(
        decoder._branch(name, level, schedule.pool_active).shape[2]
        for name, level in zip(("block_32x", "block_16x", "block_8x"), features[::-1])
    )
    assert tuple(out.shape) == (1, 32, num_frames, 16, 24)
    assert tuple(frames) == BRANCH_FRAMES[num_frames]


def small_decoders(**fused_options):
    # Four channels: the interpreter's cost grows with the number of programs (B * C).
    reference = TSEDecoder(4, (4, 4, 4, 4), num_groups=2).double()
    fused = TSEDecoder(4, (4, 4, 4, 4), num_groups=2, fused=True, **fused_options).double()
    fused.load_state_dict(reference.state_dict())
    return reference, fused


@pytest.mark.parametrize(
    "num_frames",
    [2, pytest.param(4, marks=pytest.mark.slow), pytest.param(8, marks=pytest.mark.slow)],
)
def test_fused_decoder_matches_reference(num_frames, device, rng):
    reference, fused = small_decoders(backend="triton")
    features = volumes(num_frames, 32, 64, 4, rng)
    expected = reference(features)
    result = fused.to(device)([f.to(device) for f in features])
    assert_close(result, expected, name="decoder output")


@pytest.mark.slow
def test_fused_decoder_gradients(device, rng):
    reference, fused = small_decoders(backend="triton")
    features = volumes(4, 32, 32, 4, rng)
    upstream = torch.randn(1, 4, 4, 8, 8, generator=rng, dtype=torch.float64)
    (reference(features) * upstream).sum().backward()
    fused = fused.to(device)
    (fused([f.to(device) for f in features]) * upstream.to(device)).sum().backward()
    for (name, p_ref), (_, p_fused) in zip(reference.named_parameters(), fused.named_parameters()):
        assert_close(p_fused.grad, p_ref.grad, name=f"grad of {name}")


def test_fused_reference_backend_and_channels_last(rng):
    # The same low-resolution fusion through PyTorch ops (the CPU path of fused=True).
    reference, fused = small_decoders(backend="reference", channels_last=True)
    features = volumes(8, 64, 64, 4, rng)
    assert_close(fused(features), reference(features), name="decoder output")


@pytest.mark.fixed_seed(0)
def test_fused_decoder_can_differ(rng):
    reference, fused = small_decoders(backend="reference")
    with torch.no_grad():
        fused.conv_4.weight[0, 0] += 0.05
    features = volumes(2, 32, 32, 4, rng)
    with pytest.raises(AssertionError, match="elements differ"):
        assert_close(fused(features), reference(features))
