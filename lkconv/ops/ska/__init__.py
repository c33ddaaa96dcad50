"""SKA (LSNet's small-kernel aggregation) as torch.library custom ops with autograd.

Paper: "LSNet: See Large, Focus Small" (Wang et al., CVPR 2025); official code:
https://github.com/THU-MIG/lsnet (model/ska.py).

``ska(x, w)`` runs the Triton kernels of :mod:`.triton_ska` on CUDA tensors (and on CPU tensors under
``TRITON_INTERPRET=1``), otherwise the plain-PyTorch :mod:`.reference`. The three directions are custom ops,
so ``torch.compile`` treats them as opaque calls instead of breaking the graph.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..._triton import can_launch
from . import triton_ska
from .reference import ska_bwd_w_reference, ska_bwd_x_reference, ska_kernel_size, ska_reference

__all__ = ["ska", "ska_reference"]


@torch.library.custom_op("lkconv::ska_fwd", mutates_args=())
def ska_fwd(x: Tensor, w: Tensor) -> Tensor:
    """y (N, C, H, W), contiguous, in x's dtype, from x (N, C, H, W) and w (N, WC, k*k, H, W)."""
    k = ska_kernel_size(w)
    if can_launch(x):
        return triton_ska.ska_fwd(x, w, k)
    return ska_reference(x, w).contiguous()


@ska_fwd.register_fake
def _(x, w):
    return x.new_empty(x.shape)


@torch.library.custom_op("lkconv::ska_bwd_x", mutates_args=())
def ska_bwd_x(grad_out: Tensor, x: Tensor, w: Tensor) -> Tensor:
    """dL/dx, contiguous, shaped and typed like x (only x's metadata is read)."""
    k = ska_kernel_size(w)
    if can_launch(grad_out):
        return triton_ska.ska_bwd_x(grad_out, w, k, x.dtype)
    return ska_bwd_x_reference(grad_out, w, k).to(x.dtype).contiguous()


@ska_bwd_x.register_fake
def _(grad_out, x, w):
    return x.new_empty(x.shape)


@torch.library.custom_op("lkconv::ska_bwd_w", mutates_args=())
def ska_bwd_w(grad_out: Tensor, x: Tensor, w: Tensor) -> Tensor:
    """dL/dw, contiguous, shaped and typed like w (only w's metadata is read)."""
    k = ska_kernel_size(w)
    if can_launch(grad_out):
        return triton_ska.ska_bwd_w(grad_out, x, w.shape[1], k, w.dtype)
    return ska_bwd_w_reference(grad_out, x, w.shape[1], k).to(w.dtype).contiguous()


@ska_bwd_w.register_fake
def _(grad_out, x, w):
    return w.new_empty(w.shape)


def _setup_context(ctx, inputs, output):
    x, w = inputs
    ctx.save_for_backward(x, w)


def _backward(ctx, grad_out):
    x, w = ctx.saved_tensors
    dx = ska_bwd_x(grad_out, x, w) if ctx.needs_input_grad[0] else None
    dw = ska_bwd_w(grad_out, x, w) if ctx.needs_input_grad[1] else None
    return dx, dw


ska_fwd.register_autograd(_backward, setup_context=_setup_context)


def check_ska_args(x: Tensor, w: Tensor) -> int:
    """Validate the arguments of :func:`ska`; return the kernel size k."""
    for name, t in (("x", x), ("w", w)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in triton_ska.SUPPORTED_DTYPES:
            raise TypeError(f"{name} dtype must be float32/float16/bfloat16/float64, got {t.dtype}")
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if w.dim() != 5:
        raise ValueError(f"w must be 5-D (N, WC, k*k, H, W), got shape {tuple(w.shape)}")
    if w.shape[0] != x.shape[0] or w.shape[3:] != x.shape[2:]:
        raise ValueError(
            f"w must be (N, WC, k*k, H, W) with (N, H, W) = {(x.shape[0], *x.shape[2:])} from x, "
            f"got shape {tuple(w.shape)}"
        )
    if w.shape[1] < 1:
        raise ValueError(f"w.shape[1] (weight groups WC) must be >= 1, got {w.shape[1]}")
    if w.device != x.device:
        raise ValueError(f"w is on {w.device} but x is on {x.device}")
    return ska_kernel_size(w)


def ska(x: Tensor, w: Tensor) -> Tensor:
    """Small-kernel aggregation: a per-pixel k x k kernel applied to every channel.

    x: (N, C, H, W); w: (N, WC, k*k, H, W), the dynamic kernels (LSNet's LKP output). Channel c uses
    kernel group ``c % WC`` (interleaved sharing, as the official kernels):
    ``y[n, c, h, w] = sum_{i, j} x[n, c, h + i - pad, w + j - pad] * w[n, c % WC, i*k + j, h, w]`` with
    ``pad = (k - 1) // 2`` and zero padding. dtypes float32/float16/bfloat16/float64 (x and w may
    differ, e.g. under autocast); accumulation in float32 (float64 for float64). Returns (N, C, H, W) in
    x's dtype, contiguous; differentiable in x and w.
    """
    check_ska_args(x, w)
    return ska_fwd(x, w)
