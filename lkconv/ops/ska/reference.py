"""Plain-PyTorch SKA (small-kernel aggregation, LSNet): the ground truth and the CPU path.

Paper: "LSNet: See Large, Focus Small" (Wang et al., CVPR 2025); official code:
https://github.com/THU-MIG/lsnet (model/ska.py).

SKA applies a per-pixel k x k kernel to every channel of ``x``. The kernels come in ``WC`` groups that are
shared *interleaved* across channels: channel ``c`` uses kernel group ``c % WC`` (as the official Triton
kernels index ``w``), so with C = G * WC, group g serves channels g, g + WC, g + 2*WC, ...

    y[n, c, h, w] = sum_{i, j < k} x[n, c, h + i - pad, w + j - pad] * w[n, c % WC, i * k + j, h, w]

with ``pad = (k - 1) // 2`` and zeros outside ``x`` (for even k the extra tap is on the bottom/right).
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def ska_kernel_size(w: Tensor) -> int:
    """k for dynamic weights w of shape (N, WC, k*k, H, W); ValueError if w.shape[2] is not a square."""
    kk = w.shape[2]
    k = math.isqrt(kk)
    if kk < 1 or k * k != kk:
        raise ValueError(f"w.shape[2] must be k*k for a kernel size k >= 1, got {kk}")
    return k


def ska_pads(k: int) -> Tuple[int, int]:
    """(before, after) zero padding of each spatial axis for kernel size k (the official pad = (k - 1) // 2)."""
    before = (k - 1) // 2
    return before, k - 1 - before


def _unfold(x: Tensor, k: int) -> Tensor:
    """(N, C, H, W) -> (N, C, k*k, H, W): the k x k neighbourhood of every pixel (zeros outside)."""
    n, c, h, w = x.shape
    b, a = ska_pads(k)
    cols = F.unfold(F.pad(x, (b, a, b, a)), k)
    return cols.view(n, c, k * k, h, w)


def _fold(cols: Tensor, k: int, h: int, w: int) -> Tensor:
    """Adjoint of :func:`_unfold`: (N, C, k*k, H, W) -> (N, C, H, W), summing overlapping taps."""
    n, c = cols.shape[:2]
    b, a = ska_pads(k)
    out = F.fold(cols.reshape(n, c * k * k, h * w), (h + b + a, w + b + a), k)
    return out[:, :, b: b + h, b: b + w]


def _per_channel(w: Tensor, c: int) -> Tensor:
    """(N, WC, KK, H, W) -> (N, C, KK, H, W) with channel c taking group c % WC."""
    wc = w.shape[1]
    reps = -(-c // wc)
    return w.repeat(1, reps, 1, 1, 1)[:, :c]


def _sum_groups(t: Tensor, wc: int) -> Tensor:
    """(N, C, ...) -> (N, WC, ...): sum of channels c with c % WC == g, for each g (the adjoint of _per_channel)."""
    n, c = t.shape[:2]
    reps = -(-c // wc)
    if reps * wc != c:
        t = torch.cat([t, t.new_zeros((n, reps * wc - c) + tuple(t.shape[2:]))], dim=1)
    return t.view((n, reps, wc) + tuple(t.shape[2:])).sum(1)


def ska_reference(x: Tensor, w: Tensor) -> Tensor:
    """SKA in plain PyTorch (differentiable by autograd).

    x: (N, C, H, W); w: (N, WC, k*k, H, W), any WC >= 1. Returns (N, C, H, W) in x's dtype.
    """
    k = ska_kernel_size(w)
    y = (_unfold(x, k) * _per_channel(w, x.shape[1])).sum(2)
    return y.to(x.dtype)


def ska_bwd_x_reference(grad_out: Tensor, w: Tensor, k: int) -> Tensor:
    """dL/dx (N, C, H, W) from grad_out (N, C, H, W) and w (N, WC, k*k, H, W)."""
    h, wd = grad_out.shape[-2:]
    cols = grad_out.unsqueeze(2) * _per_channel(w, grad_out.shape[1])
    return _fold(cols, k, h, wd).to(grad_out.dtype)


def ska_bwd_w_reference(grad_out: Tensor, x: Tensor, wc: int, k: int) -> Tensor:
    """dL/dw (N, WC, k*k, H, W) from grad_out and x, both (N, C, H, W)."""
    return _sum_groups(grad_out.unsqueeze(2) * _unfold(x, k), wc)
