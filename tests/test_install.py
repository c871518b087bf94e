"""`pip install .` (not only -e) gives a working package: build the wheel, install it into a
scratch virtual environment, import every public module from outside the source tree."""

import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IMPORT_EVERYTHING = textwrap.dedent("""
    import importlib, pkgutil, os, sys
    import stemseg_fast, stemseg_fast.kernels, stemseg_fast.training
    names = []
    for package in (stemseg_fast, stemseg_fast.kernels, stemseg_fast.training):
        assert "site-packages" in package.__file__, package.__file__
        names.append(package.__name__)
        for module in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            if module.name.endswith(".__main__"):  # runs the command line
                continue
            importlib.import_module(module.name)
            names.append(module.name)
    import stemseg_fast.cli
    stemseg_fast.cli.build_parser()
    from stemseg_fast.demo import BUNDLED_CHECKPOINT
    assert os.path.isfile(BUNDLED_CHECKPOINT), BUNDLED_CHECKPOINT
    configs = os.path.join(os.path.dirname(stemseg_fast.training.__file__), "configs")
    assert "ovis.yaml" in os.listdir(configs), configs
    print(" ".join(names))
""")


@pytest.mark.slow
def test_wheel_installs_into_a_scratch_venv_and_imports(tmp_path):
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheel_dir),
            REPO,
        ],
        check=True,
    )
    wheels = list(wheel_dir.glob("stemseg_fast-*.whl"))
    assert len(wheels) == 1

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    scratch_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            scratch_site,
            str(wheels[0]),
        ],
        check=True,
    )
    # Dependencies (torch, triton, ...) come from this interpreter's site-packages; a path
    # listed in a .pth file does not have its own .pth files run, so the editable install of
    # the source tree stays out.
    (
        venv
        / "lib"
        / os.path.basename(os.path.dirname(scratch_site))
        / "site-packages"
        / "dependencies.pth"
    ).write_text(sysconfig.get_paths()["purelib"] + "\n")

    result = subprocess.run(
        [str(python), "-c", IMPORT_EVERYTHING], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    imported = result.stdout.split()
    assert "stemseg_fast.kernels.instance_gaussians" in imported
    assert "stemseg_fast.training" in imported
