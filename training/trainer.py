"""The training loop: SGD (Nesterov) with the official schedules, gradient accumulation,
bf16/fp16 autocast, DDP through ``torchrun``, atomic checkpoints with automatic resume,
TensorBoard scalars and a tqdm bar.

The loop knows nothing of STEm-Seg: it takes a model, an ``objective(model, batch)`` returning
a dict of scalar loss terms with a ``"total"`` entry, and a dataset. Every optimiser step sees
the samples :class:`~stemseg_fast.training.sampler.StepBatchSampler` assigns to it, so a run
resumed from a checkpoint continues with exactly the batches it would have seen.
"""

import contextlib
import logging
import os
import signal
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import torch
from torch.nn.parallel import DistributedDataParallel

from stemseg_fast.io.files import PathLike, remove_partial_outputs

from .checkpoint import (
    architecture_differences,
    newest_readable_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from stemseg_fast.distributed import DistributedContext, init_distributed, mean_across_ranks
from .config import LoopConfig, OptimizerConfig, ScheduleConfig
from .sampler import StepBatchSampler
from .schedule import build_scheduler

logger = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def move_to_device(batch: Any, device: Union[str, torch.device]) -> Any:
    """Tensors anywhere inside dicts, lists and tuples, and batch objects with a ``to`` method,
    go to ``device``; the rest stays."""
    if isinstance(batch, torch.Tensor) or callable(getattr(batch, "to", None)):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(move_to_device(value, device) for value in batch)
    if hasattr(batch, "_fields"):  # NamedTuple
        return type(batch)(*(move_to_device(value, device) for value in batch))
    return batch


class _StopRequest:
    """SIGTERM/SIGINT ask the loop to checkpoint and stop at the next step boundary."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Train ``model`` on ``dataset`` with ``objective``.

    Args:
        model (nn.Module): parameters with ``requires_grad=False`` are not optimised.
        objective: ``objective(model, batch) -> dict[str, Tensor]`` with a ``"total"`` entry.
        dataset: map-style dataset; ``collate_fn`` turns a list of its items into a batch.
        optimizer, schedule, loop: :class:`OptimizerConfig`, :class:`ScheduleConfig`,
            :class:`LoopConfig` from :mod:`stemseg_fast.training.config`.
        run_dir (str): checkpoints and TensorBoard logs; a run finding checkpoints here resumes
            from the newest readable one, after deleting what an interrupted write left there.
        config_record (dict): stored in every checkpoint to say how the run was configured.
        architecture (dict): plain values that define the model; stored in every checkpoint,
            and resuming from a checkpoint whose record differs is a ValueError naming the
            fields, raised before any weight is loaded.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        objective: Callable[[torch.nn.Module, Any], Dict[str, torch.Tensor]],
        dataset: torch.utils.data.Dataset,
        *,
        optimizer: OptimizerConfig,
        schedule: ScheduleConfig,
        loop: LoopConfig,
        run_dir: PathLike,
        collate_fn: Optional[Callable[[List[Any]], Any]] = None,
        context: Optional[DistributedContext] = None,
        config_record: Optional[Mapping[str, Any]] = None,
        architecture: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.context = context or init_distributed()
        self.loop, self.run_dir = loop, run_dir
        self.objective, self.dataset, self.collate_fn = objective, dataset, collate_fn
        self.config_record = config_record or {}
        self.architecture = architecture
        if loop.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {sorted(PRECISIONS)}, got {loop.precision!r}"
            )
        self.module = model.to(self.context.device)
        self.model = self.module
        if self.context.world_size > 1:
            device_ids = [self.context.device] if self.context.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=device_ids)
        trainable = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            trainable,
            lr=optimizer.lr,
            momentum=optimizer.momentum,
            nesterov=optimizer.nesterov,
            weight_decay=optimizer.weight_decay,
        )
        self.scheduler = build_scheduler(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler(
            self.context.device.type, enabled=loop.precision == "fp16"
        )
        self.step = 0
        self._resume()

    def _resume(self):
        if self.context.is_main:
            for path in remove_partial_outputs(self.run_dir):
                logger.warning("removed %s, left by a checkpoint write that was interrupted", path)
        found = newest_readable_checkpoint(self.run_dir)
        if found is None:
            return
        path, state = found
        self._check_resumable(path, state)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.step = state["step"]
        if self.context.is_main:
            logger.info("resumed from %s at step %d", path, self.step)

    def _check_resumable(self, path, state):
        """The checkpoint must come from this model: first by the architecture records, then
        (for checkpoints without one) by parameter names and shapes."""
        advice = "use another run folder, or the settings the checkpoint was trained with"
        if self.architecture is not None and state.get("architecture") is not None:
            differences = architecture_differences(state["architecture"], self.architecture)
            if differences:
                raise ValueError(
                    f"cannot resume from {path}: it was trained with another "
                    f"model: {'; '.join(differences)}; {advice}"
                )
        expected = {name: tuple(value.shape) for name, value in self.module.state_dict().items()}
        stored = {
            name: tuple(getattr(value, "shape", ())) for name, value in state["model"].items()
        }
        problems = (
            [f"missing {name}" for name in sorted(set(expected) - set(stored))]
            + [f"unexpected {name}" for name in sorted(set(stored) - set(expected))]
            + [
                f"{name}: checkpoint {list(stored[name])}, model {list(shape)}"
                for name, shape in sorted(expected.items())
                if name in stored and stored[name] != shape
            ]
        )
        if problems:
            shown = ", ".join(problems[:3]) + (
                f" and {len(problems) - 3} more" if len(problems) > 3 else ""
            )
            raise ValueError(
                f"cannot resume from {path}: its weights do not fit the model ({shown}); {advice}"
            )

    def _loader(self):
        sampler = StepBatchSampler(
            len(self.dataset),
            global_batch=self.loop.global_batch,
            micro_batch=self.loop.micro_batch,
            rank=self.context.rank,
            world_size=self.context.world_size,
            seed=self.loop.seed,
            start_step=self.step,
            max_steps=self.loop.max_steps,
        )
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.loop.num_workers,
            pin_memory=self.context.device.type == "cuda",
            persistent_workers=False,
        )
        return loader, sampler.accumulation_steps

    def _autocast(self):
        dtype = PRECISIONS[self.loop.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.context.device.type, dtype=dtype)

    def save(self) -> None:
        if self.context.is_main:
            save_checkpoint(
                self.run_dir,
                self.step,
                model=self.module,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.scaler,
                config=self.config_record,
                architecture=self.architecture,
                keep=self.loop.keep_checkpoints,
            )
        if self.context.world_size > 1:
            torch.distributed.barrier()

    def fit(self, *, after_step: Optional[Callable[[int, Dict[str, float]], None]] = None) -> int:
        """Train until ``loop.max_steps``; returns the step reached (less if stopped by a
        signal, after writing a checkpoint). ``after_step(step, terms)`` runs on every rank."""
        loader, accumulation = self._loader()
        writer = self._summary_writer()
        progress = self._progress()
        batches = iter(loader)
        with _StopRequest() as stop:
            while self.step < self.loop.max_steps:
                terms = self._train_step(batches, accumulation)
                self.step += 1
                if self.step % self.loop.log_every == 0 or self.step == self.loop.max_steps:
                    self._log(terms, writer)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{terms['total']:.4f}")
                if after_step is not None:
                    after_step(self.step, terms)
                stopping = self._agreed(stop.requested)
                if (
                    self.step % self.loop.checkpoint_every == 0
                    or self.step == self.loop.max_steps
                    or stopping
                ):
                    self.save()
                if stopping:
                    break
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
        return self.step

    def _agreed(self, requested):
        """Whether any rank was asked to stop: every rank must leave at the same step, or the
        others would wait forever in the next gradient all-reduce."""
        if self.context.world_size == 1:
            return requested
        flag = torch.tensor([int(requested)], device=self.context.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def _train_step(self, batches, accumulation):
        self.optimizer.zero_grad(set_to_none=True)
        totals = {}
        for micro_step in range(accumulation):
            batch = move_to_device(next(batches), self.context.device)
            synchronise = micro_step == accumulation - 1
            no_sync = (
                self.model.no_sync()
                if isinstance(self.model, DistributedDataParallel) and not synchronise
                else contextlib.nullcontext()
            )
            with no_sync:
                with self._autocast():
                    terms = self.objective(self.model, batch)
                # Dividing each micro-batch's loss by the number of micro-batches (and DDP
                # averaging over ranks) makes the step's gradient the mean of the micro-batch
                # losses. The official loss normalises by the instances of its batch, so the
                # update equals the official one for the official split (one clip per forward).
                self.scaler.scale(terms["total"].float() / accumulation).backward()
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + float(value.detach()) / accumulation
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return totals

    def _log(self, terms, writer):
        averaged = mean_across_ranks(terms, self.context)
        if writer is not None:
            for name, value in averaged.items():
                writer.add_scalar(f"loss/{name}", value, self.step)
            writer.add_scalar("lr", self.optimizer.param_groups[0]["lr"], self.step)
        if self.context.is_main:
            listing = ", ".join(f"{name} {value:.4f}" for name, value in sorted(averaged.items()))
            logger.info("step %d: %s", self.step, listing)

    def _summary_writer(self):
        if not (self.context.is_main and self.loop.tensorboard):
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(self.run_dir, "tensorboard"), purge_step=self.step)

    def _progress(self):
        if not (self.context.is_main and self.loop.progress_bar):
            return None
        from tqdm import tqdm

        return tqdm(total=self.loop.max_steps, initial=self.step, desc="training", unit="step")
