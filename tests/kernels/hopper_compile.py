"""Compile every recorded kernel launch for an H100 (sm_90) without a GPU: Triton's compiler
and the ptxas it ships run on any machine. Usage: python hopper_compile.py RECORD.jsonl

Prints one line per failing launch and exits 1 if any fails."""
import importlib
import json
import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

HOPPER = GPUTarget("cuda", 90, 32)
COMPILE_OPTIONS = ("num_warps", "num_stages", "enable_fp_fusion")


def compile_launch(module_name, name, signature, constants, options):
    kernel = getattr(importlib.import_module(module_name), name)
    source = ASTSource(fn=kernel, signature=signature, constexprs=constants)
    wanted = {key: value for key, value in options.items() if key in COMPILE_OPTIONS}
    return triton.compile(source, target=HOPPER, options=wanted)


def main(path):
    with open(path, encoding="utf-8") as handle:
        launches = [json.loads(line) for line in handle if line.strip()]
    failures = []
    for module_name, name, signature, constants, options in launches:
        try:
            compile_launch(module_name, name, signature, constants, options)
        except Exception as error:  # report every failing kernel, not just the first
            message = " | ".join(str(error).strip().splitlines()[:6])
            failures.append(f"{module_name}.{name} {signature} {constants}: "
                            f"{type(error).__name__}: {message}")
    print(f"compiled {len(launches) - len(failures)} of {len(launches)} launches for sm_90")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
