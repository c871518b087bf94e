import json
import os
import re
from pathlib import Path

import pytest
import torch

from stemseg_fast.model import (
    PRESETS,
    CheckpointMismatchError,
    build_stemseg,
    download_official_checkpoint,
    load_checkpoint,
    load_official_weights,
    remap_official_state_dict,
    save_checkpoint,
    stemseg_tiny,
)
from stemseg_fast.model.checkpoints import OFFICIAL_CHECKPOINT_URLS, read_checkpoint_file

KEYS_DIR = Path("/work/shared/official_checkpoint_keys")
needs_keys = pytest.mark.skipif(not KEYS_DIR.exists(), reason="official key lists not present")
OFFICIAL_FILES = {
    "youtube_vis": "ytvis_r101.json",
    "davis": "davis_r101.json",
    "kitti_mots": "kitti_mots_r101.json",
}


def official_state_dict(file_name, rng):
    """Random values under the official key names and shapes."""
    shapes = json.loads((KEYS_DIR / file_name).read_text())
    state = {key: torch.randn(shape, generator=rng) for key, shape in shapes.items()}
    if "embedding_head.time_scale" in state:
        state["embedding_head.time_scale"] = torch.tensor(1.0)
    if "embedding_loss_criterion.free_dim_bandwidths" in state:
        state["embedding_loss_criterion.free_dim_bandwidths"].fill_(1 / 0.3**2)
    return state


def as_official(state_dict):
    """Our tiny model's state dict under official names (the rename rules, inverted)."""
    official = {re.sub(r"\.decoder\.", ".", key): value for key, value in state_dict.items()}
    official["embedding_head.time_scale"] = torch.tensor(1.0)
    official["embedding_loss_criterion.free_dim_bandwidths"] = torch.full((1, 2), 1 / 0.3**2)
    return official


@needs_keys
@pytest.mark.parametrize("preset", sorted(OFFICIAL_FILES))
def test_every_official_key_maps_with_equal_shapes(preset, rng):
    model = build_stemseg(PRESETS[preset])
    official = official_state_dict(OFFICIAL_FILES[preset], rng)
    load_official_weights(model, {"model": official, "iterations": 1000})
    key = "embedding_head.block_32x.4.weight"
    assert torch.equal(model.embedding_head.decoder.block_32x[4].weight, official[key])
    assert torch.equal(
        model.backbone.body.layer3[22].bn2.running_var,
        official["backbone.body.layer3.22.bn2.running_var"],
    )


@needs_keys
def test_backbone_file_fills_only_the_backbone(rng):
    model = build_stemseg(PRESETS["youtube_vis"])
    head_before = model.embedding_head.conv_variance.weight.clone()
    official = official_state_dict("backbone_r101.json", rng)
    load_official_weights(model, official)
    assert torch.equal(model.backbone.fpn.fpn_layer2.weight, official["fpn.fpn_layer2.weight"])
    assert torch.equal(model.embedding_head.conv_variance.weight, head_before)


def test_unknown_missing_and_misshaped_keys_are_named(rng):
    model = stemseg_tiny()
    official = as_official(model.state_dict())
    official["semseg_head.conv_extra.weight"] = torch.zeros(1)
    del official["embedding_head.conv_16.weight"]
    official["embedding_head.conv_variance.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointMismatchError) as error:
        load_official_weights(model, {"model": official})
    message = str(error.value)
    assert "missing (1): embedding_head.decoder.conv_16.weight" in message
    assert "unexpected (1): semseg_head.conv_extra.weight" in message
    assert "embedding_head.conv_variance.bias: checkpoint [5] vs model [2]" in message


def test_official_buffers_are_checked():
    model = stemseg_tiny()
    official = as_official(model.state_dict())
    official["embedding_head.time_scale"] = torch.tensor(0.1)
    with pytest.raises(ValueError, match="time_scale must be 1.0"):
        load_official_weights(model, official)
    official = as_official(model.state_dict())
    official["embedding_loss_criterion.free_dim_bandwidths"].fill_(4.0)
    with pytest.raises(ValueError, match="free_dim_bandwidths must equal"):
        remap_official_state_dict(official)


def test_legacy_format_official_file_loads(tmp_path, rng):
    source = stemseg_tiny().eval()
    with torch.no_grad():  # non-default values everywhere, buffers included
        for tensor in source.state_dict().values():
            tensor.add_(0.01 * torch.rand(tensor.shape, generator=rng))
    path = tmp_path / "official.pth"
    torch.save(
        {"model": as_official(source.state_dict()), "optimizer": {"state": {}}, "iterations": 5},
        path,
        _use_new_zipfile_serialization=False,
    )
    model = load_official_weights(stemseg_tiny().eval(), path)
    clip = torch.randn(1, 3, 2, 32, 32, generator=rng)
    with torch.no_grad():
        for got, want in zip(model(clip), source(clip)):
            assert torch.isfinite(want).all() and torch.equal(got, want)


def test_save_load_round_trip(tmp_path, rng):
    model = stemseg_tiny().eval()
    with torch.no_grad():
        model.embedding_head.conv_variance.bias.fill_(0.3)
    path = tmp_path / "sub" / "model.pth"
    save_checkpoint(model, path)
    assert os.listdir(path.parent) == ["model.pth"]  # no temporary file left behind
    loaded = load_checkpoint(path).eval()
    assert loaded.config == model.config
    clip = torch.randn(1, 3, 4, 32, 64, generator=rng)
    with torch.no_grad():
        for got, want in zip(loaded(clip), model(clip)):
            assert torch.equal(got, want)
    official_path = tmp_path / "official.pth"
    torch.save({"model": {}}, official_path)
    with pytest.raises(ValueError, match="not a stemseg_fast/1 checkpoint"):
        load_checkpoint(official_path)


class NotATensor:
    pass


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "logger": NotATensor()}, path)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        read_checkpoint_file(path)
    assert "logger" in read_checkpoint_file(path, allowed_globals=[NotATensor])


def test_named_download_once_from_file_url(tmp_path, rng):
    source = tmp_path / "served" / "davis.pth"
    source.parent.mkdir()
    torch.save({"model": {"x": torch.ones(2)}}, source)
    urls = dict(OFFICIAL_CHECKPOINT_URLS, davis=source.as_uri())
    cache = tmp_path / "cache"
    path = download_official_checkpoint("davis", cache_dir=cache, progress=False, urls=urls)
    assert Path(path) == cache / "davis.pth"
    source.unlink()  # a second call must not download again
    again = download_official_checkpoint("davis", cache_dir=cache, progress=False, urls=urls)
    assert again == path and torch.equal(read_checkpoint_file(path)["model"]["x"], torch.ones(2))
    with pytest.raises(ValueError, match="name must be one of"):
        download_official_checkpoint("coco", cache_dir=cache, urls=urls)


def test_official_urls_follow_the_readme():
    assert OFFICIAL_CHECKPOINT_URLS["mask_rcnn_R_101_FPN_backbone"] == (
        "https://omnomnom.vision.rwth-aachen.de/data/STEm-Seg/models/"
        "mask_rcnn_R_101_FPN_backbone.pth"
    )
    assert set(OFFICIAL_CHECKPOINT_URLS) == {
        "youtube_vis",
        "davis",
        "kitti_mots",
        "mask_rcnn_R_101_FPN_backbone",
        "mask_rcnn_R_50_FPN_backbone",
    }
