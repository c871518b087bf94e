"""pytest plugin: record every Triton kernel launch the interpreter executes, as the arguments
Triton's launch-time specialisation needs (tensors by dtype, shape and byte offset; scalars by
value; keyword constexprs and launch options), in benchmarks/compiled.py's record format (used
by test_hopper_compile.py).

Enabled with ``-p launch_recorder`` and the file named by STEMSEG_FAST_LAUNCH_RECORD."""

import json
import os
import sys

RECORD_ENV = "STEMSEG_FAST_LAUNCH_RECORD"
sys.path.insert(
    0,
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks"
    ),
)

from compiled import describe_argument  # noqa: E402


def pytest_configure(config):
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    from triton.runtime.interpreter import InterpretedFunction

    seen = set()
    original_run = InterpretedFunction.run

    def recording_run(self, *args, grid, warmup, **kwargs):
        launch = {
            "module": self.fn.__module__,
            "kernel": self.fn.__name__,
            "args": [describe_argument(arg) for arg in args],
            "kwargs": {key: describe_argument(value) for key, value in kwargs.items()},
        }
        key = json.dumps(launch, sort_keys=True)
        if key not in seen:
            seen.add(key)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(key + "\n")
        return original_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = recording_run
