"""The network each preset builds against an independent transcription of the official modules
at the official config values (tests/official_stemseg.py), with the same official weights
loaded through the project's checkpoint remap.

GroupNorm's group count, a pooling slot, a bias, the tanh pre-scale or the grid channel order
have no shape a key/shape test could see; a forward comparison on random volumes sees them all.
"""

import pytest
import torch
from helpers import assert_close
from official_stemseg import OFFICIAL_CONFIGS, OfficialBackbone, OfficialHeads

from stemseg_fast.model import PRESETS, build_stemseg
from stemseg_fast.model.checkpoints import remap_official_state_dict

# The rest of the suite seeds freshly; these comparisons are with a reference, so a fresh seed
# would be fine too, but a fixed one keeps the "the comparison can fail" test below exact.
WEIGHT_SEED = 2020

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def randomise_norms(module, generator):
    """Default GroupNorm affine is (1, 0), which hides a wrong group count less well; draw it."""
    for child in module.modules():
        if isinstance(child, torch.nn.GroupNorm):
            child.weight.data = 1 + 0.3 * torch.randn(child.weight.shape, generator=generator)
            child.bias.data = 0.3 * torch.randn(child.bias.shape, generator=generator)


def official_heads(name, seed=WEIGHT_SEED):
    torch.manual_seed(seed)
    heads = OfficialHeads(OFFICIAL_CONFIGS[name]).eval()
    randomise_norms(heads, torch.Generator().manual_seed(seed))
    return heads


def head_state(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}


def project_model_with(official, name, **build_options):
    model = build_stemseg(PRESETS[name], **build_options).eval()
    remapped = remap_official_state_dict(official.state_dict())
    ours = head_state(model)
    assert sorted(remapped) == sorted(ours), "head keys differ from the official ones"
    for key, value in remapped.items():
        assert tuple(value.shape) == tuple(ours[key].shape), key
    model.load_state_dict({**model.state_dict(), **remapped})
    return model


def fpn_volumes(num_frames, generator, channels=256):
    """P2..P5 of a 96 x 96 input (P5 3 x 3, the least AvgPool3d takes): [1, C, T, H/s, W/s]."""
    return [
        torch.randn(1, channels, num_frames, 96 // s, 96 // s, generator=generator)
        for s in (4, 8, 16, 32)
    ]


@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
@pytest.mark.parametrize("name", ["youtube_vis", "davis", "kitti_mots", "ovis"])
def test_heads_equal_the_official_modules_at_official_config(name, fused):
    official = official_heads(name)
    cfg = OFFICIAL_CONFIGS[name]
    preset = PRESETS[name]
    assert preset.train_clip_length == cfg["NUM_FRAMES"]
    model = project_model_with(official, name, fused=fused, backend="reference")
    volumes = fpn_volumes(cfg["NUM_FRAMES"], torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = official(volumes)
        got = model.heads(volumes)
    for field, ours, theirs in zip(
        ("embeddings", "log_precisions", "seediness", "semantic_logits"), got, want
    ):
        if theirs is None:
            assert ours is None, field
            continue
        if fused:  # re-associated sums: equal up to rounding
            assert_close(ours, theirs, dtype=torch.float16, name=f"{name} {field}")
        else:  # the same ops in the same order: bit-identical (the README's parity claim)
            assert torch.equal(ours, theirs), (
                f"{name} {field}: not bit-identical, max "
                f"difference {float((ours - theirs).abs().max()):.3g}"
            )


def test_the_head_comparison_can_fail():
    """A decoder GroupNorm with 16 groups instead of 32 has the same parameter shapes; the
    forward comparison must notice it."""
    official = official_heads("kitti_mots")
    model = project_model_with(official, "kitti_mots")
    for module in model.embedding_head.decoder.modules():
        if isinstance(module, torch.nn.GroupNorm):
            module.num_groups = 16
    volumes = fpn_volumes(8, torch.Generator().manual_seed(7))
    with torch.no_grad():
        want, got = official(volumes)[0], model.heads(volumes).embeddings
    with pytest.raises(AssertionError, match="differ"):
        assert_close(got, want, dtype=torch.float32)


BACKBONE_BLOCKS = {"youtube_vis": (3, 4, 23, 3), "ovis": (3, 4, 23, 3)}


def randomise_frozen_bn(module, generator):
    """Random statistics, plus one channel per layer with variance 1e-6 and weight 1e-3 (scale
    1 at eps 0, about 0.3 at the usual eps 1e-5): released Mask R-CNN weights have such channels,
    which is why eps = 0 matters."""
    for name, buffer in module.named_buffers():
        if name.endswith("running_var"):
            buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))
            buffer[0] = 1e-6
        elif name.endswith(("weight", "bias", "running_mean")):
            buffer.copy_(
                0.2 * torch.randn(buffer.shape, generator=generator)
                + (1.0 if name.endswith("weight") else 0.0)
            )
            if name.endswith("weight"):
                buffer[0] = 1e-3


@pytest.mark.parametrize("name", ["youtube_vis", "ovis"])
def test_backbone_equals_the_official_resnet_fpn(name):
    """R-101-FPN (stride in the 1x1) and X-101-32x8d-FPN (stride in the 3x3), FrozenBN eps 0,
    bilinear top-down: the official modules with the same (random) weights, one 64 x 64 frame."""
    torch.manual_seed(WEIGHT_SEED)
    official = OfficialBackbone(OFFICIAL_CONFIGS[name], BACKBONE_BLOCKS[name]).eval()
    generator = torch.Generator().manual_seed(WEIGHT_SEED)
    randomise_frozen_bn(official, generator)
    model = build_stemseg(PRESETS[name]).eval()
    remapped = remap_official_state_dict(official.state_dict())
    ours = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    assert sorted(remapped) == sorted(ours)
    model.load_state_dict({**model.state_dict(), **remapped})
    image = torch.randn(1, 3, 64, 64, generator=generator)
    with torch.no_grad():
        want = official(image)
        got = model.backbone_features(image)
    for level, (ours_level, theirs) in enumerate(zip(got, want), 2):
        assert torch.equal(ours_level, theirs), f"{name} P{level}: not bit-identical"
