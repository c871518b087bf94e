"""Training checkpoints: everything a resumed run needs to continue as if never stopped.

A checkpoint holds the model, optimiser, scheduler and grad-scaler states, the optimiser step
(which is also the data position: the sampler derives every later batch from it) and the RNG
states. Files are ``checkpoint_<step>.pt`` in the run folder, written atomically (temporary file
+ rename) by rank 0; the newest ``keep`` are kept. Loading uses ``weights_only=True``.

A run killed while writing leaves the temporary file of that write behind (kill -9 runs no
cleanup): :func:`stemseg_fast.io.files.remove_partial_outputs` deletes such files, and only
those, at the next start.
An unreadable newest checkpoint is skipped for the newest readable one
(:func:`newest_readable_checkpoint`), as detectron2's checkpointer does.
"""

import glob
import logging
import os
import random
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from stemseg_fast.io.files import PathLike, atomic_output
from stemseg_fast.model.checkpoints import read_checkpoint_file

FORMAT = "stemseg_fast.training.checkpoint/1"
FINAL_MODEL_NAME = "model_final.pth"
_NAME = re.compile(r"checkpoint_(\d+)\.pt$")
_ENTRY_TYPES = {
    "step": int,
    "model": Mapping,
    "optimizer": Mapping,
    "scheduler": Mapping,
    "scaler": Mapping,
    "rng": Mapping,
    "config": Mapping,
}

logger = logging.getLogger(__name__)


def capture_rng_state() -> Dict[str, Any]:
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        # numpy's state as plain values: weights_only loading refuses numpy arrays
        "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_dir: PathLike, step: int) -> str:
    return os.path.join(run_dir, f"checkpoint_{step:08d}.pt")


def list_checkpoints(run_dir: PathLike) -> List[Tuple[int, str]]:
    """(step, path) of every checkpoint in ``run_dir``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "checkpoint_*.pt")):
        match = _NAME.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(
    run_dir: PathLike,
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    config: Mapping[str, Any],
    architecture: Optional[Mapping[str, Any]] = None,
    keep: int = 2,
) -> str:
    """Write ``checkpoint_<step>.pt``; ``architecture`` (plain values) is what a run resuming
    from it must match (see :func:`architecture_differences`)."""
    path = checkpoint_path(run_dir, step)
    state = {
        "format": FORMAT,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": capture_rng_state(),
        "config": config,
        "architecture": architecture,
    }
    with atomic_output(path) as temporary:
        torch.save(state, temporary)
    for _, old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        os.unlink(old)
    return path


def load_checkpoint(path: PathLike, step: Optional[int] = None) -> Dict[str, Any]:
    """Read a training checkpoint (on CPU); ValueError if it is unreadable, not one of ours,
    incomplete, or (given ``step``) of another step than its name says."""
    try:
        state = read_checkpoint_file(path)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"cannot read training checkpoint: {error}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a stemseg_fast training checkpoint (expected format {FORMAT!r})"
        )
    for key, kind in _ENTRY_TYPES.items():
        if not isinstance(state.get(key), kind):
            raise ValueError(
                f"training checkpoint {path} is incomplete: {key!r} is missing or "
                f"not a {kind.__name__}"
            )
    if step is not None and state["step"] != step:
        raise ValueError(f"training checkpoint {path} holds step {state['step']}, not {step}")
    return state


def newest_readable_checkpoint(run_dir: PathLike) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(path, state) of the newest checkpoint in ``run_dir`` that loads, or None when there is
    none; unreadable newer ones are skipped with a warning naming them. ValueError when
    checkpoints exist but none is readable."""
    checkpoints = list_checkpoints(run_dir)
    problems = []
    for step, path in reversed(checkpoints):
        try:
            state = load_checkpoint(path, step)
        except ValueError as error:
            logger.warning("skipping checkpoint %s: %s", path, error)
            problems.append(os.path.basename(path))
            continue
        if problems:
            logger.warning("resuming from the older checkpoint %s instead", path)
        return path, state
    if problems:
        raise ValueError(
            f"no readable checkpoint to resume from in {run_dir}: "
            f"{', '.join(reversed(problems))} cannot be read; move them away to "
            f"start afresh"
        )
    return None


def _flatten(values, prefix=""):
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def architecture_differences(
    stored: Optional[Mapping[str, Any]], current: Optional[Mapping[str, Any]]
) -> List[str]:
    """The dotted fields in which two ``architecture`` records differ, as
    ``"field (checkpoint A, now B)"`` strings."""
    stored, current = _flatten(stored or {}), _flatten(current or {})

    def shown(flat, name):
        return repr(flat[name]) if name in flat else "absent"

    return [
        f"{name} (checkpoint {shown(stored, name)}, now {shown(current, name)})"
        for name in sorted(set(stored) | set(current))
        if name not in stored or name not in current or stored[name] != current[name]
    ]
