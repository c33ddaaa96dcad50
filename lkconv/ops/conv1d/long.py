"""Long depthwise 1D convolution by FFT, for any sequence length (Hyena, SGConv, state-space-style kernels).

y = irfft(rfft(x, n) * rfft(k, n), n) with n the smallest 2^a 3^b 5^c 7^d >= L + Lk - 1 (no wrap-around), in
float32 (float64 for float64 input); differentiable through torch.fft.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..depthwise2d.fft import next_fast_len


def long_conv1d(x: torch.Tensor, k: torch.Tensor, D: Optional[torch.Tensor] = None, causal: bool = True) -> torch.Tensor:
    """Depthwise long convolution of x (B, C, L) with a per-channel kernel k (C, Lk), 1 <= Lk <= L.

    causal=True: y[t] = sum_{s<=t} k[s] x[t - s]. causal=False: the kernel is centred on tap (Lk - 1) // 2.
    D: optional (C,) skip term, y += D * x. dtypes float32, float16, bfloat16 (computed in float32), float64.
    Returns (B, C, L) in x's dtype; differentiable in x, k and D.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a 3-D tensor (B, C, L), got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(k, torch.Tensor) or k.dim() != 2 or k.shape[0] != x.shape[1]:
        raise ValueError(f"k must be (C, Lk) with C = {x.shape[1]}, got {getattr(k, 'shape', type(k).__name__)}")
    length, lk = x.shape[-1], k.shape[-1]
    if not 1 <= lk <= length:
        raise ValueError(f"kernel length must be between 1 and L = {length}, got {lk}")
    if D is not None and (not isinstance(D, torch.Tensor) or D.shape != (x.shape[1],)):
        raise ValueError(f"D must be a ({x.shape[1]},) tensor or None, got {getattr(D, 'shape', D)}")
    for name, t in (("k", k), ("D", D)):
        if t is not None and t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    n = next_fast_len(length + lk - 1)
    y = torch.fft.irfft(torch.fft.rfft(x.to(dt), n=n) * torch.fft.rfft(k.to(dt), n=n), n=n)
    start = 0 if causal else (lk - 1) // 2
    y = y[..., start: start + length]
    if D is not None:
        y = y + x.to(dt) * D.to(dt).view(1, -1, 1)
    return y.to(x.dtype).contiguous()  # a dense (B, C, L), not a view into the length-n transform
