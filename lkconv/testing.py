"""Helpers for verification: NaN-poisoned output allocation and error metrics."""
from __future__ import annotations

import contextlib
import threading

import torch

_state = threading.local()


def poisoning() -> bool:
    """True inside :func:`poison_outputs`: ops fill fresh outputs with NaN before writing them."""
    return getattr(_state, "poison", False)


@contextlib.contextmanager
def poison_outputs(enabled: bool = True):
    """Make every lkconv op fill its freshly allocated outputs with NaN, so unwritten elements cannot pass."""
    old = poisoning()
    _state.poison = enabled
    try:
        yield
    finally:
        _state.poison = old


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64; NaN or Inf anywhere in out gives inf."""
    out64 = out.detach().to(torch.float64).cpu()
    ref64 = ref.detach().to(torch.float64).cpu()
    if out64.shape != ref64.shape:
        raise ValueError(f"shape mismatch: {tuple(out64.shape)} vs {tuple(ref64.shape)}")
    if not torch.isfinite(out64).all():
        return float("inf")
    denom = ref64.norm().item()
    num = (out64 - ref64).norm().item()
    return num / denom if denom > 0 else num


# Relative-error tolerances ||out - ref|| / ||ref|| against a float64 reference on the same (rounded) inputs.
TOLERANCES = {
    ("direct", torch.float32): 1e-5,
    ("torch", torch.float32): 1e-5,
    ("fft", torch.float32): 1e-4,
    ("implicit_gemm", torch.float32): 1e-5,
    torch.float16: 2e-3,
    torch.bfloat16: 1.2e-2,
    torch.float64: 1e-12,
}


TF32_TOLERANCE = 1e-3  # METHOD.md: tf32 lands near 3e-4


def tolerance(algorithm: str, dtype: torch.dtype, device: str = "cpu") -> float:
    """The verification tolerance for an algorithm and dtype on a device.

    PyTorch's own path ("torch", and "auto" when it picks it) follows PyTorch's flags: with
    ``torch.backends.cudnn.allow_tf32`` (PyTorch's default) cuDNN may compute float32 convolutions in tf32.
    """
    tol = TOLERANCES.get((algorithm, dtype), TOLERANCES.get(dtype, 1e-4))
    if (dtype == torch.float32 and device == "cuda" and algorithm in ("torch", "auto")
            and torch.backends.cudnn.allow_tf32):
        tol = max(tol, TF32_TOLERANCE)
    return tol
