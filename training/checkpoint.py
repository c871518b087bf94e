"""Training checkpoints: everything a resumed run needs to continue as if never stopped.

A checkpoint holds the model, optimiser, scheduler and grad-scaler states, the optimiser step
(which is also the data position: the sampler derives every later batch from it) and the RNG
states. Files are ``checkpoint_<step>.pt`` in the run folder, written atomically (temporary file
+ rename) by rank 0; the newest ``keep`` are kept. Loading uses ``weights_only=True``.
"""
import glob
import os
import random
import re

import numpy as np
import torch

from stemseg_fast.fileio import atomic_output

FORMAT = "stemseg_fast.training.checkpoint/1"
_NAME = re.compile(r"checkpoint_(\d+)\.pt$")


def capture_rng_state():
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        # numpy's state as plain values: weights_only loading refuses numpy arrays
        "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state):
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, f"checkpoint_{step:08d}.pt")


def list_checkpoints(run_dir):
    """(step, path) of every checkpoint in ``run_dir``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "checkpoint_*.pt")):
        match = _NAME.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(run_dir, step, *, model, optimizer, scheduler, scaler, config, keep=2):
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
    }
    with atomic_output(path) as temporary:
        torch.save(state, temporary)
    for _, old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        os.unlink(old)
    return path


def load_checkpoint(path):
    """Read a training checkpoint (on CPU); raises ValueError if it is not one of ours."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise ValueError(f"cannot read training checkpoint {path}: {error}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a stemseg_fast training checkpoint "
                         f"(expected format {FORMAT!r})")
    return state
