"""Compile every recorded kernel launch for an H100 (sm_90) without a GPU, with the runtime
specialisation a real launch gets (Triton's own binder: 16-divisible pointers and integers,
integers equal to 1 as constants; benchmarks/compiled.py). Triton's compiler and the ptxas it
ships run on any machine. Usage: python hopper_compile.py RECORD.jsonl

Prints one line per failing launch and exits 1 if any fails."""

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(
    0,
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks"
    ),
)

from compiled import specialise, specialise_and_compile  # noqa: E402


def _compile(launch):
    """None, or the line describing why the launch does not compile."""
    try:
        specialise_and_compile(launch["module"], launch["kernel"], launch["args"], launch["kwargs"])
    except Exception as error:  # report every failing kernel, not just the first
        message = " | ".join(str(error).strip().splitlines()[:6])
        return f"{launch['module']}.{launch['kernel']}: {type(error).__name__}: {message}"
    return None


def main(path):
    with open(path, encoding="utf-8") as handle:
        launches = [json.loads(line) for line in handle if line.strip()]
    failures, distinct = [], {}
    for launch in launches:
        try:
            _, _, options, signature, constexprs, attrs = specialise(
                launch["module"], launch["kernel"], launch["args"], launch["kwargs"]
            )
        except Exception as error:
            failures.append(
                f"{launch['module']}.{launch['kernel']}: specialisation failed: "
                f"{type(error).__name__}: {error}"
            )
            continue
        # launches differing only in values the specialisation ignores compile once
        key = json.dumps(
            [
                launch["module"],
                launch["kernel"],
                signature,
                repr(constexprs),
                repr(attrs),
                repr(options),
            ]
        )
        distinct.setdefault(key, launch)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=context) as pool:
        failures += [line for line in pool.map(_compile, distinct.values()) if line]
    print(
        f"compiled {len(distinct)} distinct specialisations of {len(launches)} launches for "
        f"sm_90, {len(failures)} failed"
    )
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
