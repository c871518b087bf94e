"""pytest plugin: record every Triton kernel launch the interpreter executes, as the
signature and constants a compiler needs (used by test_hopper_compile.py).

Enabled with ``-p launch_recorder`` and the file named by STEMSEG_FAST_LAUNCH_RECORD."""
import inspect
import json
import os

import torch

RECORD_ENV = "STEMSEG_FAST_LAUNCH_RECORD"
POINTER_TYPES = {torch.float32: "*fp32", torch.float64: "*fp64", torch.float16: "*fp16",
                 torch.bfloat16: "*bf16", torch.int64: "*i64", torch.int32: "*i32",
                 torch.int16: "*i16", torch.int8: "*i8", torch.uint8: "*u8", torch.bool: "*i1"}


def _scalar_type(value):
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -2**31 <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"unsupported kernel argument {value!r}")


def describe_launch(function, args, kwargs):
    """(module, name, signature, constants, options) of one launch."""
    parameters = inspect.signature(function).parameters
    names = list(parameters)
    bound = dict(zip(names, args))
    options = {}
    for key, value in kwargs.items():
        (bound if key in parameters else options)[key] = value
    signature, constants = {}, {}
    for name in names:
        value = bound[name]
        annotation = parameters[name].annotation
        if "constexpr" in str(annotation) or value is None:
            signature[name] = "constexpr"
            constants[name] = value
        elif isinstance(value, torch.Tensor):
            signature[name] = POINTER_TYPES[value.dtype]
        else:
            signature[name] = _scalar_type(value)
    return function.__module__, function.__name__, signature, constants, options


def pytest_configure(config):
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    from triton.runtime.interpreter import InterpretedFunction

    seen = set()
    original_run = InterpretedFunction.run

    def recording_run(self, *args, grid, warmup, **kwargs):
        launch = describe_launch(self.fn, args, kwargs)
        key = json.dumps(launch, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(key + "\n")
        return original_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = recording_run
