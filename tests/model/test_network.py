import dataclasses

import pytest
import torch
from helpers import assert_close

from stemseg_fast.model import (
    PRESETS,
    STEmSeg,
    STEmSegConfig,
    build_stemseg,
    padded_size,
    preprocess_clip,
    resized_size,
    stemseg_tiny,
)
from stemseg_fast.model.preprocessing import IMAGE_MEAN_BGR

TINY = PRESETS["tiny"]


def tiny_version(name):
    """The preset's heads (mode, classes, seediness source) on the tiny backbone and widths."""
    preset = PRESETS[name]
    narrow = TINY.embedding_decoder
    return dataclasses.replace(
        preset,
        backbone=TINY.backbone,
        embedding_decoder=narrow,
        seediness_decoder=narrow if preset.seediness_decoder else None,
        semantic_decoder=narrow if preset.semantic_decoder else None,
    )


@pytest.mark.parametrize("name", ["youtube_vis", "davis", "kitti_mots", "ovis", "tiny"])
def test_output_shapes_per_preset(name, rng):
    model = build_stemseg(tiny_version(name)).eval()
    preset = PRESETS[name]
    dims = {"xyff": (4, 2), "xyt": (3, 3)}[preset.embedding_mode]
    for num_frames in (2, 4, 8, 16):
        clip = torch.randn(1, 3, num_frames, 32, 64, generator=rng)
        with torch.no_grad():
            out = model(clip)
        map_shape = (num_frames, 8, 16)
        assert tuple(out.embeddings.shape) == (1, dims[0], *map_shape)
        assert tuple(out.log_precisions.shape) == (1, dims[1], *map_shape)
        assert tuple(out.seediness.shape) == (1, 1, *map_shape)
        assert ((out.seediness > 0) & (out.seediness < 1)).all()
        if preset.semantic_decoder is None:
            assert out.semantic_logits is None
        else:
            assert tuple(out.semantic_logits.shape) == (1, preset.num_classes + 1, *map_shape)
        assert all(t is None or t.dtype == torch.float32 for t in out)


@pytest.mark.parametrize("name", ["youtube_vis", "davis", "kitti_mots", "ovis"])
def test_real_preset_structure(name):
    model = build_stemseg(PRESETS[name])
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    classes = PRESETS[name].num_classes
    if name == "davis":
        assert "embedding_head.conv_seediness.weight" not in shapes
        assert shapes["seediness_head.conv_out.weight"] == (1, 128, 1, 1, 1)
        assert model.semseg_head is None
    else:
        assert shapes["embedding_head.conv_seediness.weight"] == (1, 128, 1, 1, 1)
        width = 256 if name == "youtube_vis" else 128
        assert shapes["semseg_head.conv_out.weight"] == (classes + 1, width, 1, 1, 1)
    if name == "ovis":
        assert shapes["backbone.body.layer1.0.conv2.weight"] == (256, 8, 3, 3)


def test_per_frame_backbone_and_clip_heads_equal_forward(rng):
    model = stemseg_tiny().eval()
    clip = torch.randn(2, 3, 4, 64, 96, generator=rng)
    with torch.no_grad():
        expected = model(clip)
        per_frame = [model.backbone_features(clip[:, :, t]) for t in range(4)]
        result = model.heads(STEmSeg.stack_clip(per_frame))
    for got, want, name in zip(result, expected, expected._fields):
        assert_close(got, want, dtype=torch.float32, name=name)


def test_fused_model_shares_weights_with_reference(rng):
    reference = stemseg_tiny().eval()
    fused = stemseg_tiny(fused=True, backend="reference").eval()
    fused.load_state_dict(reference.state_dict())
    clip = torch.randn(1, 3, 4, 64, 64, generator=rng)
    with torch.no_grad():
        for got, want in zip(fused(clip), reference(clip)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_bfloat16_autocast_forward(rng):
    model = stemseg_tiny(fused=True, backend="reference").eval()
    clip = torch.randn(1, 3, 2, 64, 64, generator=rng)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(clip)
    assert out.embeddings.dtype == torch.float32 and torch.isfinite(out.embeddings).all()


def test_forward_argument_errors():
    model = stemseg_tiny()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.zeros(1, 3, 2, 60, 64))
    with pytest.raises(ValueError, match=r"clip must have shape \[B, 3, T, H, W\]"):
        model(torch.zeros(3, 2, 64, 64))
    with pytest.raises(ValueError, match="num_frames"):
        model(torch.zeros(1, 3, 3, 64, 64))


def test_config_round_trip_and_unknown_keys():
    for config in PRESETS.values():
        assert STEmSegConfig.from_dict(config.to_dict()) == config
    values = PRESETS["youtube_vis"].to_dict()
    values["inference"]["bogus"] = 1
    with pytest.raises(ValueError, match=r"config.inference: unknown keys \['bogus'\]"):
        STEmSegConfig.from_dict(values)


@pytest.mark.parametrize(
    "frame,limits,resized,padded",
    [
        ((720, 1280), (640, 1196), (640, 1138), (640, 1152)),  # YouTube-VIS 720p
        ((480, 640), (640, 1196), (640, 853), (640, 864)),
        ((480, 854), (736, 1248), (701, 1248), (704, 1248)),  # DAVIS
        ((375, 1242), (736, 1792), (541, 1792), (544, 1792)),  # KITTI-MOTS train
        ((375, 1242), (800, 1948), (588, 1948), (608, 1952)),  # KITTI-MOTS inference
    ],
)
def test_resize_rule_worked_examples(frame, limits, resized, padded):
    assert resized_size(*frame, *limits) == resized
    assert padded_size(*resized) == padded


def test_preprocess_clip_subtracts_mean_and_pads_with_zeros():
    frames = torch.full((2, 40, 50, 3), 200, dtype=torch.uint8)
    out = preprocess_clip(frames, 64, 96)
    assert out.resized_size == (64, 80)
    assert tuple(out.clip.shape) == (3, 2, 64, 96)
    for channel, mean in enumerate(IMAGE_MEAN_BGR):
        assert torch.allclose(out.clip[channel, :, :, :80], torch.tensor(200 - mean))
    assert (out.clip[:, :, :, 80:] == 0).all()
