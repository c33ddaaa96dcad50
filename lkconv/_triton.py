"""Whether Triton kernels can run here: on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import os

import torch


def _probe_triton() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # pragma: no cover - depends on the install
        return False
    return True


_TRITON_AVAILABLE = _probe_triton()  # once, at import (a constant that torch.compile traces without warnings)


def triton_available() -> bool:
    """Whether Triton imports here."""
    return _TRITON_AVAILABLE


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) for ints (host code: ``triton.cdiv`` called from Python costs about 2 us)."""
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= n for n >= 1, and 0 for 0 (``triton.next_power_of_2`` without its host-call
    cost)."""
    if n < 0:
        raise ValueError(f"next_power_of_2: expected n >= 0, got {n}")
    return 1 << (n - 1).bit_length() if n else 0


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def can_launch(t: torch.Tensor) -> bool:
    """Can a Triton kernel take this tensor? CUDA tensors always; CPU tensors only under the interpreter."""
    if not triton_available():
        return False
    if t.is_cuda:
        return not interpreting()
    return t.device.type == "cpu" and interpreting()
