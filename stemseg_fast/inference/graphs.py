"""CUDA graphs for the fixed-shape parts of a clip step.

A clip's heads and its clustering launch the same kernels on the same shapes clip after clip
(the greedy loop is a fixed launch sequence with its stop flag on the device): launching them
one by one from Python costs host time per kernel, which the device waits for once it runs
ahead. :class:`CapturedCalls` captures such a function once per input signature and replays it
with one launch.

What capturing needs from the function, and what the pipeline's functions give it: no host
synchronisation and no host-to-device copy (a capture fails on either; the pipeline's
constants are cached per shape and device before the capture, by warm-up calls), no
data-dependent Python, shapes that follow from the inputs' shapes, and an autocast region of its
own with its cast cache off (a cast cached by a warm-up call would be freed under the graph).
"""

import warnings
from collections import OrderedDict
from typing import Any, Callable, Optional

import torch

from .host_waits import expected_host_wait

# Signatures kept per call site: a video has at most three clip shapes (regular, end-aligned,
# left-padded), and each graph holds its own memory pool.
MAX_GRAPHS = 4
# Calls before the capture: compile the Triton kernels, pick cuDNN algorithms, fill the caches
# of per-shape constants (PyTorch's make_graphed_callables warms up three times).
WARMUP_CALLS = 2


def _signature(inputs):
    return tuple((x.shape, x.stride(), x.dtype, x.device) for x in inputs)


class _Graph:
    def __init__(self, graph, inputs, outputs):
        self.graph, self.inputs, self.outputs = graph, inputs, outputs


class CapturedCalls:
    """``function(*tensors)`` through a CUDA graph captured at the first call of each input
    signature (shapes, strides, dtypes, device) and replayed at later calls.

    A replay copies the inputs into the graph's own input tensors and returns the graph's own
    outputs: they hold until the next call with the same signature, so callers consume or clone
    them before. Disabled, or on inputs not on a CUDA device, it calls ``function``.

    A capture that fails (the function synchronised, say) warns once, naming ``name`` and the
    error, and that signature runs eagerly from then on.

    Args:
        function: tensors in, any structure of tensors out.
        name: what the warnings and :attr:`counts` call it.
        enabled: capture at all.
        max_graphs: signatures kept, least recently used dropped first.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str,
        enabled: bool = True,
        max_graphs: int = MAX_GRAPHS,
    ):
        self.function = function
        self.name = name
        self.enabled = enabled
        self.max_graphs = max_graphs
        self._graphs: "OrderedDict[tuple, Optional[_Graph]]" = OrderedDict()
        self.counts = {"captures": 0, "replays": 0, "eager": 0}

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if not self.enabled or not inputs or not inputs[0].is_cuda:
            return self.function(*inputs)
        key = _signature(inputs)
        if key in self._graphs:
            self._graphs.move_to_end(key)
        else:
            self._graphs[key] = self._capture(inputs)
            if len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        captured = self._graphs[key]
        if captured is None:
            self.counts["eager"] += 1
            return self.function(*inputs)
        for static, value in zip(captured.inputs, inputs):
            static.copy_(value)
        captured.graph.replay()
        self.counts["replays"] += 1
        return captured.outputs

    def _capture(self, inputs):
        device = inputs[0].device
        # Capturing waits for the device (CUDAGraph's capture begins with a synchronize), once
        # per signature.
        with expected_host_wait():
            static_inputs = [
                torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device).copy_(x)
                for x in inputs
            ]
            current = torch.cuda.current_stream(device)
            warmup = torch.cuda.Stream(device)
            warmup.wait_stream(current)
            with torch.cuda.stream(warmup):
                for _ in range(WARMUP_CALLS):
                    self.function(*static_inputs)
            current.wait_stream(warmup)
            graph = torch.cuda.CUDAGraph()
            try:
                # thread_local: the frame reader and the batch writer threads go on meanwhile
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    outputs = self.function(*static_inputs)
            except RuntimeError as error:
                warnings.warn(
                    f"{self.name}: CUDA graph capture failed, running eagerly for inputs of "
                    f"shapes {[list(x.shape) for x in inputs]}: {error}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
        self.counts["captures"] += 1
        return _Graph(graph, static_inputs, outputs)
