"""Test setup: on a machine without CUDA, Triton kernels run through its CPU interpreter.

TRITON_INTERPRET must be set before Triton is imported, so this runs before any lkconv import.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (run on the device machine)")


@pytest.fixture
def device():
    """The device kernel tests run on: CUDA if present, else CPU (Triton interpreter)."""
    return torch.device("cuda" if HAS_CUDA else "cpu")


@pytest.fixture(autouse=True)
def _seed_and_cache(tmp_path, monkeypatch):
    """Fresh seed per test; autotune cache in a temporary folder so tests never touch ~/.cache."""
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path / "lkconv-cache"))
    yield
