"""The host-path benchmark (benchmarks/host_path.py) runs on the library's own code and writes a
result every stage of which is there; bad arguments are one clear error."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "benchmarks", "host_path.py")


def test_host_path_writes_every_stage(tmp_path):
    out = tmp_path / "host.json"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--out", str(out), "--repeats", "1", "--frames", "8"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["input"] == {"frame": [640, 1152], "clip_length": 8, "stride": 4, "frames": 8}
    stages = [(row["stage"], row["detail"]) for row in data["stages"]]
    assert [stage for stage, _ in stages].count("decode") == 2
    for stage in ("preprocess", "mask path", "rle", "write"):
        assert any(name == stage for name, _ in stages), stage
    for tracks in (5, 20):
        assert (
            sum(
                1
                for name, detail in stages
                if name == "mask path" and detail.startswith(f"{tracks} tracks")
            )
            == 2
        )
    assert all(row["ms_per_frame"] > 0 for row in data["stages"])
    assert "| mask path |" in result.stdout


def test_host_path_refuses_too_few_frames(tmp_path):
    out = tmp_path / "host.json"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--out", str(out), "--frames", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--frames must be >= 8" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
