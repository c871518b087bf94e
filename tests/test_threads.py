"""Thread counts: ``--threads`` and the default for shared machines."""

import os

import cv2
import pytest
import torch

from stemseg_fast.cli import main
from stemseg_fast.threads import default_threads, set_threads


@pytest.fixture
def restore_threads():
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


def test_the_default_shares_this_process_cores_and_is_one_with_a_gpu():
    available = len(os.sched_getaffinity(0))
    assert default_threads("cpu") == available
    assert default_threads("cpu", processes_on_machine=available * 4) == 1
    assert default_threads("cpu", processes_on_machine=2) == max(1, available // 2)
    assert default_threads("cuda") == 1


def test_set_threads_reaches_torch_and_opencv(restore_threads):
    assert set_threads(1) == 1
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="threads must be an integer >= 1"):
            set_threads(bad)


def test_infer_threads_option(tmp_path, capsys, restore_threads):
    code = main(
        [
            "infer",
            str(tmp_path / "missing.mp4"),
            "--checkpoint",
            "x",
            "--out",
            str(tmp_path / "out"),
            "--threads",
            "0",
        ]
    )
    assert (
        code == 2 and "argument --threads: must be in [1, 1024], got 0" in capsys.readouterr().err
    )
    torch.set_num_threads(2)
    main(
        [
            "infer",
            str(tmp_path / "missing.mp4"),
            "--checkpoint",
            "x",
            "--out",
            str(tmp_path / "out"),
            "--threads",
            "1",
        ]
    )  # fails on the input, after the threads
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
