"""The train command end to end on the project's synthetic videos with the tiny preset."""
import pytest
import yaml

from stemseg_fast.cli import main
from stemseg_fast.model.checkpoints import load_checkpoint
from stemseg_fast.synthetic import write_synthetic_dataset
from stemseg_fast.training.train import load_train_config, model_config


def write_config(tmp_path, **loop):
    data = tmp_path / "data"
    write_synthetic_dataset(data, 3, num_frames=6, height=48, width=64)
    config = {
        "model": "tiny",
        "model_overrides": {"num_classes": 4, "inference": {"min_dim": 48, "max_dim": 64}},
        "run_dir": str(tmp_path / "run"),
        "data": {"clip_length": 4, "min_dim": 48, "max_dim": 64, "sources": [
            {"kind": "ovis", "annotations": str(data / "annotations.json"),
             "images": str(data / "JPEGImages"), "frame_span": 4}]},
        "optimizer": {"lr": 0.02},
        "schedule": {"kind": "constant"},
        "loop": {"max_steps": 12, "global_batch": 2, "micro_batch": 2, "checkpoint_every": 6,
                 "log_every": 1, "num_workers": 0, "progress_bar": False, **loop},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_tiny_preset_loss_falls_and_the_final_model_loads(tmp_path, monkeypatch):
    path = write_config(tmp_path)
    losses = []
    from stemseg_fast.training import trainer as trainer_module

    original_fit = trainer_module.Trainer.fit
    monkeypatch.setattr(trainer_module.Trainer, "fit", lambda self, **kw: original_fit(
        self, after_step=lambda step, terms: losses.append(terms["total"])))
    assert main(["train", "--config", str(path)]) == 0
    assert len(losses) == 12
    assert sum(losses[-3:]) < sum(losses[:3])
    model = load_checkpoint(tmp_path / "run" / "model_final.pth")
    assert model.config.num_classes == 4 and model.config.inference.min_dim == 48
    assert (tmp_path / "run" / "checkpoint_00000012.pt").is_file()


def test_config_overrides_and_errors(tmp_path):
    path = write_config(tmp_path)
    config = load_train_config(path, ["loop.max_steps=3", "data.sources.0.weight=2.5"])
    assert config.loop.max_steps == 3 and config.data.sources[0].weight == 2.5
    assert model_config(config).inference.clip_length == 4  # nested override keeps the rest
    with pytest.raises(ValueError, match="not an index of a list"):
        load_train_config(path, ["data.sources.3.weight=1"])
    with pytest.raises(ValueError, match=r"unknown keys \['max_step'\]"):
        load_train_config(path, ["loop.max_step=3"])
    with pytest.raises(ValueError, match="model must be one of"):
        load_train_config(path, ["model=r18"])


def test_missing_images_fail_before_training(tmp_path, capsys):
    path = write_config(tmp_path)
    (tmp_path / "data" / "JPEGImages" / "train_0000" / "00000.jpg").unlink()
    assert main(["train", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert "00000.jpg" in error and "Traceback" not in error
