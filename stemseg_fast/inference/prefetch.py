"""Decoding ahead in a background thread, so the network does not wait for the decoder.

OpenCV's decoder and image readers release the GIL, so a reader thread overlaps decoding with
the network (on a GPU, decoding a 640x1152 H.264 frame costs a large share of a frame's time
budget). The queue is bounded: at most ``depth`` decoded frames wait, so memory stays flat.
"""

import queue
import threading
from typing import Callable, Iterable, Iterator, Optional

DEFAULT_DEPTH = 8  # frames decoded ahead: one official clip
# How long closing waits for a reader blocked in its source (a live camera between frames);
# past it the daemon thread ends on its own when the source yields or the process exits.
READER_STOP_SECONDS = 5.0
_END = object()


def prefetched(
    frames: Iterable, depth: int = DEFAULT_DEPTH, transform: Optional[Callable] = None
) -> Iterator:
    """``frames``, read by a background thread at most ``depth`` items ahead, each passed
    through ``transform`` there when given; an exception of the reader (or of ``transform``)
    is raised here, at the item where it happened. Closing the returned iterator (or leaving a
    ``for`` loop) stops the reader and closes ``frames``."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()
    source = iter(frames)

    def put(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            for frame in source:
                if not put((frame if transform is None else transform(frame), None)):
                    break
            else:
                put((_END, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((_END, error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="stemseg-fast-reader", daemon=True)
    reader.start()
    try:
        while True:
            item, error = items.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        reader.join(timeout=READER_STOP_SECONDS)
