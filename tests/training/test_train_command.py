"""The train command end to end on the project's synthetic videos with the tiny preset."""

import pathlib

import pytest
import torch
import yaml

from stemseg_fast.cli import main
from stemseg_fast.model.checkpoints import load_checkpoint
from stemseg_fast.synthetic import write_synthetic_dataset
from stemseg_fast.training.train import build_dataset, load_train_config, model_config

REPO = pathlib.Path(__file__).resolve().parents[2]


def write_config(tmp_path, **loop):
    data = tmp_path / "data"
    write_synthetic_dataset(data, 3, num_frames=6, height=48, width=64)
    config = {
        "model": "tiny",
        "model_overrides": {"num_classes": 4, "inference": {"min_dim": 48, "max_dim": 64}},
        "run_dir": str(tmp_path / "run"),
        "data": {
            "clip_length": 4,
            "min_dim": 48,
            "max_dim": 64,
            "sources": [
                {
                    "kind": "ovis",
                    "annotations": str(data / "annotations.json"),
                    "images": str(data / "JPEGImages"),
                    "frame_span": 4,
                }
            ],
        },
        "optimizer": {"lr": 0.02},
        "schedule": {"kind": "constant"},
        "loop": {
            "max_steps": 12,
            "global_batch": 2,
            "micro_batch": 1,
            "checkpoint_every": 6,
            "log_every": 1,
            "num_workers": 0,
            "progress_bar": False,
            **loop,
        },
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
    monkeypatch.setattr(
        trainer_module.Trainer,
        "fit",
        lambda self, **kw: original_fit(
            self, after_step=lambda step, terms: losses.append(terms["total"])
        ),
    )
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


def test_every_shipped_config_loads():
    for path in sorted((REPO / "training" / "configs").glob("*.yaml")):
        config = load_train_config(path)
        assert config.data.sources, path


def _with_coco_source(tmp_path, **source):
    from dataset_fixtures import make_coco

    path = write_config(tmp_path)
    values = yaml.safe_load(path.read_text())
    coco_path, coco_root = make_coco(str(tmp_path / "coco"))
    values["data"]["sources"].append(
        {"kind": "coco", "annotations": coco_path, "images": coco_root, **source}
    )
    path.write_text(yaml.safe_dump(values))
    return load_train_config(path)


def test_classes_beyond_the_semantic_head_fail_before_training(tmp_path):
    # the fixture's COCO classes 1..3 fit the 4-class model; remapped to 7 they do not
    config = _with_coco_source(tmp_path, category_map={1: 7, 2: 7, 3: 7})
    with pytest.raises(ValueError, match=r"data.sources\[1\] \(coco\): class ids go up to 7"):
        build_dataset(config)
    assert len(build_dataset(_with_coco_source(tmp_path / "ok", category_map={1: 1, 2: 2, 3: 3})))


def test_a_named_category_map_must_agree_with_the_video_classes(tmp_path):
    # coco_to_ovis sends people to class 1 "Person"; the synthetic videos call class 1 "disc"
    config = _with_coco_source(tmp_path, category_map="coco_to_ovis")
    with pytest.raises(
        ValueError, match="class 1 'Person', but the annotations call class 1 'disc'"
    ):
        build_dataset(config)


def test_a_run_stopped_early_writes_no_final_model(tmp_path, monkeypatch, capsys):
    from stemseg_fast.training import trainer as trainer_module

    path = write_config(tmp_path)
    monkeypatch.setattr(trainer_module.Trainer, "fit", lambda self, **kw: 1)  # a signal at step 1
    assert main(["train", "--config", str(path)]) == 3
    assert not (tmp_path / "run" / "model_final.pth").exists()
    assert "run the same command again to resume" in capsys.readouterr().err


def _train_worker(rank, world_size, port, config_path, run_dir):
    import os

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    assert main(["train", "--config", config_path, "--run-dir", run_dir, "--device", "cpu"]) == 0


@pytest.mark.slow
def test_two_process_ddp_training_of_the_tiny_preset_equals_one_process(tmp_path):
    """torchrun semantics through the real train command: 2 gloo ranks x 1 clip per step give
    the parameters of 1 process accumulating 2 clips."""
    import socket

    import torch.multiprocessing as mp

    path = write_config(tmp_path, max_steps=3, checkpoint_every=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: the same kernels, so the same rounding
    try:
        assert main(["train", "--config", str(path), "--run-dir", str(tmp_path / "single")]) == 0
    finally:
        torch.set_num_threads(threads)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_train_worker, args=(2, port, str(path), str(tmp_path / "ddp")), nprocs=2)
    single = load_checkpoint(tmp_path / "single" / "model_final.pth").state_dict()
    ddp = load_checkpoint(tmp_path / "ddp" / "model_final.pth").state_dict()
    for name, value in single.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-4, atol=1e-5, msg=name)
