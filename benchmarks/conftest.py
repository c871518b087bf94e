"""Benchmark-wide setup: machine info (device, versions, commit, date) in every result file."""

import datetime
import platform

import torch
import triton
from provenance import git_commit


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["device"] = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"cpu: {platform.processor() or platform.machine()}"
    )
    machine_info["torch_version"] = torch.__version__
    machine_info["triton_version"] = triton.__version__
    machine_info["cuda_version"] = torch.version.cuda
    machine_info["python_version"] = platform.python_version()
    machine_info["git_commit"] = git_commit()
    machine_info["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
