import pytest
import torch

from stemseg_fast.kernels import BACKEND_ENV_VAR, resolve_backend, triton_interpreter_active


def test_auto_picks_triton_on_cuda_and_the_reference_elsewhere(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    expected = "triton" if torch.cuda.is_available() else "reference"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_backend("auto", torch.zeros(1, device=device)) == expected


def test_environment_overrides_auto_only(monkeypatch, device):
    monkeypatch.setenv(BACKEND_ENV_VAR, "reference")
    assert resolve_backend("auto", torch.zeros(1, device=device)) == "reference"
    monkeypatch.setenv(BACKEND_ENV_VAR, "triton")
    assert resolve_backend("auto", torch.zeros(1, device=device)) == "triton"  # interpreter or CUDA
    assert resolve_backend("reference", torch.zeros(1, device=device)) == "reference"


def test_unknown_names_list_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'triton', 'reference'"):
        resolve_backend("cuda", torch.zeros(1))
    monkeypatch.setenv(BACKEND_ENV_VAR, "fast")
    with pytest.raises(ValueError, match=f"environment variable {BACKEND_ENV_VAR} must be one of"):
        resolve_backend("auto", torch.zeros(1))


def test_the_interpreter_runs_kernels_on_cpu_in_this_suite():
    """CI has no GPU: the suite is only meaningful if the Triton path really executes here."""
    if not torch.cuda.is_available():
        assert triton_interpreter_active()
        assert resolve_backend("triton", torch.zeros(1)) == "triton"


def test_triton_on_cpu_without_the_interpreter_is_a_clear_error(monkeypatch):
    import stemseg_fast.kernels._backend as backend_module

    monkeypatch.setattr(backend_module, "triton_interpreter_active", lambda: False)
    with pytest.raises(RuntimeError, match="backend='triton' needs CUDA tensors"):
        resolve_backend("triton", torch.zeros(1))
