"""The places where inference waits for the device on purpose, marked for the sync audit.

Everything else in a clip step is queued without waiting. :func:`expected_host_wait` marks each
place the pipeline's docstring lists (the host needs a value the device computed: a count, the
matching's histogram, the run lengths); under ``torch.cuda.set_sync_debug_mode("error")``, as the
GPU sync audit runs a video (tests/inference/test_sync_audit.py), a synchronising call anywhere
else raises.
"""

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def expected_host_wait() -> Iterator[None]:
    """Within: synchronising calls are allowed whatever the sync debug mode (restored after)."""
    mode = torch.cuda.get_sync_debug_mode() if torch.cuda.is_available() else 0
    if mode == 0:
        yield
        return
    torch.cuda.set_sync_debug_mode(0)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(mode)
