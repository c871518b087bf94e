"""Compile every recorded kernel launch for an H100 (sm_90) without a GPU, with the runtime
specialisation a real launch gets (Triton's own binder: 16-divisible pointers and integers,
integers equal to 1 as constants; benchmarks/compiled.py). Triton's compiler and the ptxas it
ships run on any machine. Usage: python hopper_compile.py RECORD.jsonl

Prints one line per failing launch and exits 1 if any fails."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks"))

from compiled import compile_specialised, specialise  # noqa: E402


def main(path):
    with open(path, encoding="utf-8") as handle:
        launches = [json.loads(line) for line in handle if line.strip()]
    failures, distinct = [], {}
    for launch in launches:
        where = f"{launch['module']}.{launch['kernel']}"
        try:
            kernel, _, options, signature, constexprs, attrs = specialise(
                launch["module"], launch["kernel"], launch["args"], launch["kwargs"])
        except Exception as error:  # report every failing kernel, not just the first
            failures.append(f"{where}: specialisation failed: {type(error).__name__}: {error}")
            continue
        # launches differing only in values the specialisation ignores compile once
        key = json.dumps([where, signature, repr(constexprs), repr(attrs), repr(options)])
        distinct.setdefault(key, (where, kernel, options, signature, constexprs, attrs))
    for where, kernel, options, signature, constexprs, attrs in distinct.values():
        try:
            compile_specialised(kernel, options, signature, constexprs, attrs)
        except Exception as error:
            message = " | ".join(str(error).strip().splitlines()[:6])
            failures.append(f"{where} {signature} {constexprs} {attrs}: "
                            f"{type(error).__name__}: {message}")
    print(f"compiled {len(distinct)} distinct specialisations of {len(launches)} launches for "
          f"sm_90, {len(failures)} failed")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
