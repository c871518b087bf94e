"""How many CPU threads torch and OpenCV use.

torch's default is one thread per physical core of the machine, whatever else runs there: on a
shared machine, or with several processes per machine under torchrun, the threads contend and
every stage slows down many times over (results are identical whatever the count). The default
here is the cores this process may run on (its affinity mask), shared among the processes of
this machine, and one thread when a GPU does the work (the host then only feeds it).
"""

import os


def default_threads(device_type: str, processes_on_machine: int = 1) -> int:
    """The thread count :func:`set_threads` uses unless told otherwise."""
    if device_type == "cuda":
        return 1
    available = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    return max(1, available // max(1, processes_on_machine))


def set_threads(count: int) -> int:
    """Use ``count`` threads in torch (intra-op) and OpenCV; returns ``count``."""
    import cv2
    import torch

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"threads must be an integer >= 1, got {count!r}")
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    return count
