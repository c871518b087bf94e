"""``stemseg-fast models``: what exists, what it was trained on, where its file is or would be."""

import torch

from stemseg_fast.cli import main
from stemseg_fast.model.checkpoints import OFFICIAL_CHECKPOINT_URLS


def test_models_lists_every_official_file_and_the_bundled_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    cached = tmp_path / "hub" / "checkpoints" / "stemseg" / "davis.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(bytes(3 * 2**20))
    assert main(["models"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        "tiny_synthetic (bundled)\n  preset   tiny, 3 classes: disc, square, triangle"
    )
    for name, url in OFFICIAL_CHECKPOINT_URLS.items():
        assert f"\n{name}\n" in printed and f"source   {url}" in printed
    assert f"file     {cached} (3 MB)" in printed
    assert f"not downloaded (would be {cached.parent / 'youtube_vis.pth'})" in printed
    assert (
        "preset   youtube_vis, 40 classes" in printed
        and "preset   davis, class-agnostic" in printed
    )
