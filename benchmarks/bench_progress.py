"""pytest plugin: rewrite the benchmark result file after every finished benchmark, so a run
that fails or is killed part-way keeps every benchmark that finished.

pytest-benchmark writes ``--benchmark-json`` only when the session ends; a time limit that
kills pytest loses the whole part. Loaded by ``benchmarks/run.py`` (``-p bench_progress``) with
the target named by STEMSEG_FAST_BENCH_RESULT. The file is pytest-benchmark's own JSON (its
``pytest_benchmark_generate_json`` hook), replaced atomically, with ``run_status`` saying
whether the session finished and with which exit status.
"""

import json
import os

from stemseg_fast.io.files import atomic_output

RESULT_ENV = "STEMSEG_FAST_BENCH_RESULT"


class _ProgressWriter:
    def __init__(self, config, path):
        self.config = config
        self.path = path
        self.written = 0
        self.machine_info = None
        self.commit_info = None

    def write(self, status):
        session = self.config._benchmarksession
        finished = [bench for bench in session.benchmarks if bench and not bench.has_error]
        if not finished:
            return
        if self.machine_info is None:
            self.machine_info = session.get_machine_info()
            self.commit_info = self.config.hook.pytest_benchmark_generate_commit_info(
                config=self.config
            )
        output = self.config.hook.pytest_benchmark_generate_json(
            config=self.config,
            benchmarks=finished,
            include_data=False,
            machine_info=self.machine_info,
            commit_info=self.commit_info,
        )
        output["run_status"] = status
        with atomic_output(self.path) as partial:
            with open(partial, "w", encoding="utf-8") as handle:
                json.dump(output, handle, indent=1, default=str)
        self.written = len(finished)

    def pytest_runtest_logfinish(self, nodeid, location):
        if len(self.config._benchmarksession.benchmarks) != self.written:
            self.write({"finished": False, "last_test": nodeid})

    def pytest_sessionfinish(self, session, exitstatus):
        self.write({"finished": True, "exit_status": int(exitstatus)})


def pytest_configure(config):
    path = os.environ.get(RESULT_ENV)
    if path:
        config.pluginmanager.register(_ProgressWriter(config, path), "bench_progress_writer")
