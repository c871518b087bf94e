"""The one place that resolves ``backend="auto" | "triton" | "reference"``.

``auto`` runs the Triton kernels on CUDA tensors and the PyTorch reference otherwise. The
environment variable ``STEMSEG_FAST_BACKEND`` overrides ``auto`` (never an explicit choice); it
is read at call time, so a test or a user can flip it without re-importing anything.

Triton kernels also run on CPU tensors when the Triton interpreter is active. That is decided
when ``@triton.jit`` decorates a function: ``TRITON_INTERPRET=1`` must be in the environment
before ``stemseg_fast.kernels`` is imported (``tests/conftest.py`` sets it). The probe kernel
below is decorated together with every other kernel, so it reports the mode they all got.
"""

import os

import torch
import triton
import triton.language as tl

BACKENDS = ("auto", "triton", "reference")
BACKEND_ENV_VAR = "STEMSEG_FAST_BACKEND"


@triton.jit
def _interpreter_probe_kernel(x_ptr):
    tl.store(x_ptr, 1)


def triton_interpreter_active() -> bool:
    """True when this process's kernels were decorated for the Triton interpreter (CPU)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_interpreter_probe_kernel, InterpretedFunction)


def _check_backend_name(name, source):
    if name not in BACKENDS:
        raise ValueError(f"{source} must be one of {', '.join(map(repr, BACKENDS))}, got {name!r}")


def resolve_backend(backend: str, *tensors: torch.Tensor) -> str:
    """Return ``"triton"`` or ``"reference"`` for an op called on ``tensors``.

    Raises ``ValueError`` for an unknown name and ``RuntimeError`` when Triton is asked for on
    tensors it cannot run on (CPU tensors outside the interpreter).
    """
    _check_backend_name(backend, "backend")
    if backend == "auto":
        override = os.environ.get(BACKEND_ENV_VAR, "").strip().lower()
        if override:
            _check_backend_name(override, f"environment variable {BACKEND_ENV_VAR}")
            backend = override
    on_cuda = all(t.is_cuda for t in tensors)
    if backend == "auto":
        return "triton" if on_cuda else "reference"
    if backend == "triton" and not on_cuda and not triton_interpreter_active():
        devices = sorted({str(t.device) for t in tensors})
        raise RuntimeError(
            f"backend='triton' needs CUDA tensors, got tensors on {devices}; run with "
            "TRITON_INTERPRET=1 set before importing stemseg_fast to run the kernels on CPU, "
            "or use backend='reference'"
        )
    return backend
