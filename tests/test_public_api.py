"""The public surface: __all__ lists what exists, and every module imports."""
import importlib
import pkgutil

import stemseg_fast
import stemseg_fast.kernels


def test_kernels_all_lists_existing_names():
    for name in stemseg_fast.kernels.__all__:
        assert hasattr(stemseg_fast.kernels, name), name
    assert len(set(stemseg_fast.kernels.__all__)) == len(stemseg_fast.kernels.__all__)


def test_every_module_imports():
    # kernels/ and training/ install from their own folders under the stemseg_fast namespace
    for name in ("stemseg_fast", "stemseg_fast.kernels", "stemseg_fast.training"):
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if not module.name.endswith(".__main__"):  # runs the command line
                importlib.import_module(module.name)
