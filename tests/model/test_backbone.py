import json
from pathlib import Path

import pytest
import torch

from stemseg_fast.model import (
    FrozenBatchNorm2d,
    build_backbone,
    resnet50_fpn,
    resnet101_fpn,
    resnext101_32x8d_fpn,
)
from stemseg_fast.model.checkpoints import remap_official_state_dict

KEYS_DIR = Path("/work/shared/official_checkpoint_keys")
needs_keys = pytest.mark.skipif(not KEYS_DIR.exists(), reason="official key lists not present")


def tiny_backbone(**kwargs):
    return build_backbone(
        (1, 1, 1, 1),
        width_per_group=8,
        stem_channels=16,
        res2_out_channels=32,
        fpn_channels=32,
        **kwargs,
    )


def test_frozen_batch_norm_has_eps_zero_and_four_buffers(rng):
    bn = FrozenBatchNorm2d(3)
    bn.weight.copy_(torch.tensor([1.0, 2.0, -1.0]))
    bn.bias.copy_(torch.tensor([0.5, 0.0, 1.0]))
    # Channel 1 has mean 0: with a scale of 2e6, a non-zero mean would fold into a shift that
    # cancels catastrophically against x * scale in fp32 (the official folded form does too).
    bn.running_mean.copy_(torch.tensor([1.0, 0.0, 0.0]))
    bn.running_var.copy_(torch.tensor([4.0, 1e-12, 0.25]))
    x = torch.randn(2, 3, 4, 5, generator=rng)
    expected = torch.stack([(x[:, 0] - 1) / 2 + 0.5, 2 * x[:, 1] / 1e-6, -x[:, 2] / 0.5 + 1], dim=1)
    # A tiny variance is not damped by an epsilon (nn.BatchNorm2d would use 1e-5).
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-3)
    assert sorted(bn.state_dict()) == ["bias", "running_mean", "running_var", "weight"]
    assert list(bn.parameters()) == []
    assert repr(bn) == "FrozenBatchNorm2d(3, eps=0)"


def test_stem_and_res2_are_frozen():
    backbone = tiny_backbone()
    for name, parameter in backbone.named_parameters():
        frozen = name.startswith(("body.stem.", "body.layer1."))
        assert parameter.requires_grad != frozen, name
    assert all(p.requires_grad for p in tiny_backbone(freeze_at=0).parameters())


def test_stride_placement_resnet_vs_resnext():
    resnet = build_backbone((1, 1, 1, 1))
    resnext = build_backbone((1, 1, 1, 1), num_groups=32, width_per_group=8, stride_in_1x1=False)
    block, xblock = resnet.body.layer2[0], resnext.body.layer2[0]
    assert (block.conv1.stride, block.conv2.stride) == ((2, 2), (1, 1))
    assert (xblock.conv1.stride, xblock.conv2.stride) == ((1, 1), (2, 2))
    assert xblock.conv2.groups == 32 and xblock.conv2.in_channels == 512
    assert block.downsample[0].stride == (2, 2)
    assert resnet.body.layer1[0].conv1.stride == (1, 1)


def test_tiny_forward_shapes_and_strides(rng):
    backbone = tiny_backbone().eval()
    features = backbone(torch.randn(2, 3, 64, 96, generator=rng))
    assert [tuple(f.shape) for f in features] == [
        (2, 32, 16, 24),
        (2, 32, 8, 12),
        (2, 32, 4, 6),
        (2, 32, 2, 3),
    ]


def test_fpn_top_down_is_bilinear(rng):
    backbone = tiny_backbone().eval()
    images = torch.randn(1, 3, 64, 64, generator=rng)
    c2, c3, c4, c5 = backbone.body(images)
    fpn = backbone.fpn
    inner5 = fpn.fpn_inner4(c5)
    inner4 = fpn.fpn_inner3(c4) + torch.nn.functional.interpolate(
        inner5, scale_factor=2, mode="bilinear", align_corners=False
    )
    expected_p4 = fpn.fpn_layer3(inner4)
    torch.testing.assert_close(backbone(images)[2], expected_p4)


@needs_keys
@pytest.mark.parametrize(
    "builder,blocks",
    [
        (resnet101_fpn, (3, 4, 23, 3)),
        (resnext101_32x8d_fpn, (3, 4, 23, 3)),
        (resnet50_fpn, (3, 4, 6, 3)),
    ],
)
def test_official_backbone_keys_map(builder, blocks):
    official = json.loads((KEYS_DIR / "backbone_r101.json").read_text())
    backbone = builder()
    ours = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    mapped = {
        k[len("backbone.") :]: tuple(v)
        for k, v in remap_official_state_dict({k: torch.empty(0) for k in official}).items()
    }
    if builder is resnet101_fpn:
        assert set(mapped) == set(ours)
        assert all(tuple(official[k]) == ours[k] for k in official)
    else:
        # Same module tree as R-101; R-50 has fewer res4 blocks, X-101 grouped 3x3 convs.
        layer3 = {k for k in ours if k.startswith("body.layer3.")}
        assert len({k.split(".")[2] for k in layer3}) == blocks[2]
        assert set(ours) <= set(mapped)
