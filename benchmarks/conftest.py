"""Benchmark-wide setup: machine info (device, versions, commit, date) in every result file."""
import datetime
import platform
import subprocess

import torch
import triton


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["device"] = (torch.cuda.get_device_name() if torch.cuda.is_available()
                              else f"cpu: {platform.processor() or platform.machine()}")
    machine_info["torch_version"] = torch.__version__
    machine_info["triton_version"] = triton.__version__
    machine_info["cuda_version"] = torch.version.cuda
    machine_info["python_version"] = platform.python_version()
    machine_info["git_commit"] = _git_commit()
    machine_info["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
