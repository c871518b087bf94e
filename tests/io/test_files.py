import os
import stat

import pytest

from stemseg_fast.io.files import atomic_output, atomic_output_dir, write_json


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_output_dir(tmp_path / "folder") as folder:
            (tmp_path / "folder.txt").write_text("")
            assert os.path.isdir(folder)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "folder").st_mode) == 0o755


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError):
        with atomic_output(target) as temporary:
            with open(temporary, "w") as handle:
                handle.write("{partial")
            raise RuntimeError("writer crashed")
    assert target.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["results.json"]
