"""The training loop on a toy regression problem: DDP equals one process with the same global
batch; an interrupted and resumed run equals an uninterrupted one."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from stemseg_fast.training.checkpoint import list_checkpoints, load_checkpoint
from stemseg_fast.training.config import LoopConfig, OptimizerConfig, ScheduleConfig
from stemseg_fast.distributed import init_distributed, shutdown_distributed
from stemseg_fast.training.trainer import Trainer

SCHEDULE = ScheduleConfig(kind="exponential", decay_start=2, decay_steps=4, decay_factor=0.1)
OPTIMIZER = OptimizerConfig(lr=0.05)


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, size=23):
        generator = torch.Generator().manual_seed(7)
        self.inputs = torch.randn(size, 5, generator=generator)
        self.targets = self.inputs @ torch.randn(5, 2, generator=generator) + 0.1

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return {"x": self.inputs[index], "y": self.targets[index]}


def toy_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model[0].bias.requires_grad_(False)  # frozen parameters stay as they are
    return model


def toy_objective(model, batch):
    error = model(batch["x"]) - batch["y"]
    mse = error.pow(2).mean()
    return {"total": mse + 0.01 * error.abs().mean(), "mse": mse}


def make_trainer(
    run_dir, *, max_steps, global_batch=4, micro_batch=1, checkpoint_every=100, context=None
):
    loop = LoopConfig(
        max_steps=max_steps,
        global_batch=global_batch,
        micro_batch=micro_batch,
        checkpoint_every=checkpoint_every,
        log_every=1,
        num_workers=0,
        tensorboard=True,
        progress_bar=False,
    )
    return Trainer(
        toy_model(),
        toy_objective,
        ToyDataset(),
        optimizer=OPTIMIZER,
        schedule=SCHEDULE,
        loop=loop,
        run_dir=str(run_dir),
        context=context,
    )


def test_training_reduces_the_loss_and_keeps_frozen_parameters(tmp_path):
    losses = []
    trainer = make_trainer(tmp_path, max_steps=12)
    frozen = trainer.module[0].bias.detach().clone()
    trainer.fit(after_step=lambda step, terms: losses.append(terms["mse"]))
    assert losses[-1] < 0.5 * losses[0]
    assert torch.equal(trainer.module[0].bias, frozen)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [12]
    assert os.listdir(tmp_path / "tensorboard")
    # the exponential schedule: constant for 2 steps, then x0.1 over 4 steps and on
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.1 ** (11 / 4))


def test_micro_batches_accumulate_to_the_same_update(tmp_path):
    whole = make_trainer(tmp_path / "whole", max_steps=3, micro_batch=4)
    whole.fit()
    split = make_trainer(tmp_path / "split", max_steps=3, micro_batch=1)
    split.fit()
    for a, b in zip(whole.module.parameters(), split.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


class Interrupt(Exception):
    pass


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    uninterrupted = make_trainer(tmp_path / "straight", max_steps=7)
    uninterrupted.fit()

    def die_after_step_5(step, terms):
        if step == 5:
            raise Interrupt  # like a kill: the checkpoint of step 4 is the last one on disk

    first = make_trainer(tmp_path / "resumed", max_steps=7, checkpoint_every=2)
    with pytest.raises(Interrupt):
        first.fit(after_step=die_after_step_5)
    assert list_checkpoints(tmp_path / "resumed")[-1][0] == 4
    resumed = make_trainer(tmp_path / "resumed", max_steps=7, checkpoint_every=2)
    assert resumed.step == 4
    resumed.fit()
    for a, b in zip(uninterrupted.module.parameters(), resumed.module.parameters()):
        assert torch.equal(a, b)
    state = load_checkpoint(list_checkpoints(tmp_path / "resumed")[-1][1])
    assert state["step"] == 7 and len(list_checkpoints(tmp_path / "resumed")) == 2


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world_size, port, run_dir, result_path):
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    context = init_distributed(device="cpu")
    trainer = make_trainer(run_dir, max_steps=4, global_batch=4, micro_batch=1, context=context)
    trainer.fit()
    if rank == 0:
        torch.save([p.detach() for p in trainer.module.parameters()], result_path)
    shutdown_distributed()


@pytest.mark.slow
def test_two_process_gloo_ddp_equals_one_process(tmp_path):
    single = make_trainer(tmp_path / "single", max_steps=4, global_batch=4, micro_batch=1)
    single.fit()
    result_path = str(tmp_path / "ddp_parameters.pt")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), result_path), nprocs=2)
    ddp_parameters = torch.load(result_path)
    for a, b in zip(single.module.parameters(), ddp_parameters):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_unknown_precision_is_rejected(tmp_path):
    loop = LoopConfig(max_steps=1, precision="fp8", num_workers=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        Trainer(
            toy_model(),
            toy_objective,
            ToyDataset(),
            optimizer=OPTIMIZER,
            schedule=SCHEDULE,
            loop=loop,
            run_dir=str(tmp_path),
        )
