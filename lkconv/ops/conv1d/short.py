"""Short depthwise 1D convolution of any width (Triton): forward, and backward to input, weight and bias.

y[b, c, t] = act(bias[c] + sum_j w[c, j] x[b, c, t - left + j]) with left = W - 1 (causal) or (W - 1) // 2.
The forward is one pass over x; the backward recomputes the pre-activation when there is an activation, then
one kernel writes dx (the flipped-kernel convolution of dz) and per-tile partial sums of dw (reduced on the
host, deterministic). x may be (B, C, L) with any strides, so both (B, C, L) and (B, L, C) storage work.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..._triton import can_launch, triton_available
from .reference import short_conv1d_reference

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
ACTIVATIONS = (None, "silu")

if triton is not None:

    @triton.jit
    def short_conv1d_fwd_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr, C, L,
        sxb, sxc, sxl, syb, syc, syl, swc, swj,
        W: tl.constexpr, LEFT: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """y (B, C, L) = act(bias + depthwise conv of x with w (C, W)); grid (L blocks, C blocks, B)."""
        pid_l, pid_c, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[:, None]
        t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)[None, :]
        c_ok = c < C
        x_bc = x_ptr + b.to(tl.int64) * sxb + c.to(tl.int64) * sxc
        acc = tl.zeros([BLOCK_C, BLOCK_L], dtype=tl.float32)
        for j in tl.static_range(W):
            ts = t - LEFT + j
            xv = tl.load(x_bc + ts.to(tl.int64) * sxl, mask=c_ok & (ts >= 0) & (ts < L), other=0.0)
            wv = tl.load(w_ptr + c * swc + j * swj, mask=c_ok, other=0.0)
            acc += xv.to(tl.float32) * wv.to(tl.float32)
        if HAS_BIAS:
            acc += tl.load(b_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
        if SILU:
            acc = acc * tl.sigmoid(acc)
        y = y_ptr + b.to(tl.int64) * syb + c.to(tl.int64) * syc + t.to(tl.int64) * syl
        tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=c_ok & (t < L))

    @triton.jit
    def short_conv1d_bwd_kernel(
        dz_ptr, x_ptr, w_ptr, dx_ptr, dwp_ptr, C, L, N_LBLOCKS,
        szb, szc, szl, sxb, sxc, sxl, sdb, sdc, sdl, swc, swj,
        W: tl.constexpr, LEFT: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """dx[t] = sum_j w[j] dz[t + left - j];  dwp[b*N_LBLOCKS + l-block, c, j] = sum_t dz[t] x[t - left + j]."""
        pid_l, pid_c, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[:, None]
        t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)[None, :]
        c1 = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        c_ok = c < C
        t_ok = t < L
        dz_bc = dz_ptr + b.to(tl.int64) * szb + c.to(tl.int64) * szc
        x_bc = x_ptr + b.to(tl.int64) * sxb + c.to(tl.int64) * sxc
        dz_here = tl.load(dz_bc + t.to(tl.int64) * szl, mask=c_ok & t_ok, other=0.0).to(tl.float32)
        acc = tl.zeros([BLOCK_C, BLOCK_L], dtype=tl.float32)
        part = dwp_ptr + (b * N_LBLOCKS + pid_l).to(tl.int64) * C * W + c1 * W
        for j in tl.static_range(W):
            wv = tl.load(w_ptr + c * swc + j * swj, mask=c_ok, other=0.0).to(tl.float32)
            ts = t + LEFT - j
            dzv = tl.load(dz_bc + ts.to(tl.int64) * szl, mask=c_ok & (ts >= 0) & (ts < L), other=0.0)
            acc += dzv.to(tl.float32) * wv
            tx = t - LEFT + j
            xv = tl.load(x_bc + tx.to(tl.int64) * sxl, mask=c_ok & t_ok & (tx >= 0) & (tx < L), other=0.0)
            tl.store(part + j, tl.sum(dz_here * xv.to(tl.float32), axis=1), mask=c1 < C)
        dx = dx_ptr + b.to(tl.int64) * sdb + c.to(tl.int64) * sdc + t.to(tl.int64) * sdl
        tl.store(dx, acc.to(dx_ptr.dtype.element_ty), mask=c_ok & t_ok)


if triton is not None:

    @triton.jit
    def short_conv1d_silu_bwd_kernel(
        dy_ptr, x_ptr, w_ptr, b_ptr, dz_ptr, dbp_ptr, C, L, N_LBLOCKS,
        syb, syc, syl, sxb, sxc, sxl, szb, szc, szl, swc, swj,
        W: tl.constexpr, LEFT: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """dz = dy * silu'(z) with z = bias + conv(x, w) recomputed; dbp[b*N_LBLOCKS + l-block, c] = sum_t dz."""
        pid_l, pid_c, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[:, None]
        c1 = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)[None, :]
        c_ok = c < C
        ok = c_ok & (t < L)
        x_bc = x_ptr + b.to(tl.int64) * sxb + c.to(tl.int64) * sxc
        z = tl.zeros([BLOCK_C, BLOCK_L], dtype=tl.float32)
        for j in tl.static_range(W):
            ts = t - LEFT + j
            xv = tl.load(x_bc + ts.to(tl.int64) * sxl, mask=c_ok & (ts >= 0) & (ts < L), other=0.0)
            z += xv.to(tl.float32) * tl.load(w_ptr + c * swc + j * swj, mask=c_ok, other=0.0).to(tl.float32)
        if HAS_BIAS:
            z += tl.load(b_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + b.to(tl.int64) * syb + c.to(tl.int64) * syc + t.to(tl.int64) * syl, mask=ok,
                     other=0.0).to(tl.float32)
        sg = tl.sigmoid(z)
        dz = tl.where(ok, dy * sg * (1.0 + z * (1.0 - sg)), 0.0)
        tl.store(dz_ptr + b.to(tl.int64) * szb + c.to(tl.int64) * szc + t.to(tl.int64) * szl,
                 dz.to(dz_ptr.dtype.element_ty), mask=ok)
        tl.store(dbp_ptr + (b * N_LBLOCKS + pid_l).to(tl.int64) * C + c1, tl.sum(dz, axis=1), mask=c1 < C)


def _blocks(C: int, L: int, channels_fast: bool):
    if channels_fast:
        bc = min(64, triton.next_power_of_2(max(C, 1)))
        return bc, max(16, min(256, 4096 // bc))
    return min(16, triton.next_power_of_2(max(C, 1))), 256


def _left(width: int, causal: bool) -> int:
    return width - 1 if causal else (width - 1) // 2


def short_conv1d_fwd(x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool, silu: bool) -> Tensor:
    """Launch the forward kernel; the output has x's memory layout."""
    B, C, L = x.shape
    y = torch.empty_like(x)
    bc, bl = _blocks(C, L, x.stride(1) == 1 and C > 1)
    grid = (triton.cdiv(L, bl), triton.cdiv(C, bc), B)
    short_conv1d_fwd_kernel[grid](
        x, w, bias if bias is not None else w, y, C, L, *x.stride(), *y.stride(), *w.stride(),
        W=w.shape[1], LEFT=_left(w.shape[1], causal), HAS_BIAS=bias is not None, SILU=silu,
        BLOCK_C=bc, BLOCK_L=bl, num_warps=4,
    )
    return y


def short_conv1d_bwd(dz: Tensor, x: Tensor, w: Tensor, causal: bool):
    """(dx, dw) for dz = dL/d(pre-activation output)."""
    B, C, L = x.shape
    dx = torch.empty_like(x)
    bc, bl = _blocks(C, L, x.stride(1) == 1 and C > 1)
    n_l = triton.cdiv(L, bl)
    part = torch.empty(B * n_l, C, w.shape[1], device=x.device, dtype=torch.float32)
    short_conv1d_bwd_kernel[(n_l, triton.cdiv(C, bc), B)](
        dz, x, w, dx, part, C, L, n_l, *dz.stride(), *x.stride(), *dx.stride(), *w.stride(),
        W=w.shape[1], LEFT=_left(w.shape[1], causal), BLOCK_C=bc, BLOCK_L=bl, num_warps=4,
    )
    return dx, part.sum(0)


def short_conv1d_silu_bwd(dy: Tensor, x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool):
    """(dz, db): the gradient before the SiLU (laid out like x, in x's dtype) and, with a bias, its sum over
    (B, L) in fp32 (else None)."""
    B, C, L = x.shape
    dz = torch.empty_like(x)
    bc, bl = _blocks(C, L, x.stride(1) == 1 and C > 1)
    n_l = triton.cdiv(L, bl)
    part = torch.empty(B * n_l, C, device=x.device, dtype=torch.float32)
    short_conv1d_silu_bwd_kernel[(n_l, triton.cdiv(C, bc), B)](
        dy, x, w, bias if bias is not None else w, dz, part, C, L, n_l, *dy.stride(), *x.stride(), *dz.stride(),
        *w.stride(), W=w.shape[1], LEFT=_left(w.shape[1], causal), HAS_BIAS=bias is not None,
        BLOCK_C=bc, BLOCK_L=bl, num_warps=4,
    )
    return dz, part.sum(0) if bias is not None else None


class _ShortConv1d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, bias, causal, activation):
        ctx.save_for_backward(x, w, bias)
        ctx.causal, ctx.activation = causal, activation
        return short_conv1d_fwd(x, w, bias, causal, activation == "silu")

    @staticmethod
    def backward(ctx, dy):
        x, w, bias = ctx.saved_tensors
        db = None
        if ctx.activation == "silu":
            dz, db = short_conv1d_silu_bwd(dy, x, w, bias, ctx.causal)
        else:
            dz = dy
            if bias is not None:
                db = dz.sum(dim=(0, 2), dtype=torch.float32)
        dx, dw = short_conv1d_bwd(dz, x, w, ctx.causal)
        return dx, dw.to(w.dtype), db.to(bias.dtype) if bias is not None else None, None, None


def short_conv1d(x: Tensor, w: Tensor, bias: Optional[Tensor] = None, causal: bool = True,
                 activation: Optional[str] = None, layout: str = "BCL") -> Tensor:
    """Depthwise 1D convolution of any width W (Mamba/Hyena short convs; the causal-conv1d convention).

    x: (B, C, L) for layout="BCL" or (B, L, C) for layout="BLC" (any strides); w: (C, W); bias: (C,) or None.
    causal=True: y[t] = act(bias + sum_j w[j] x[t - W + 1 + j]); causal=False: centred ("same") window.
    activation: None or "silu". Returns y shaped and laid out like x; differentiable in x, w and bias.
    """
    if layout not in ("BCL", "BLC"):
        raise ValueError(f"layout must be 'BCL' or 'BLC', got {layout!r}")
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a 3-D tensor, got {getattr(x, 'shape', type(x).__name__)}")
    xc = x.transpose(1, 2) if layout == "BLC" else x
    C = xc.shape[1]
    if not isinstance(w, Tensor) or w.dim() != 2 or w.shape[0] != C or w.shape[1] < 1:
        raise ValueError(f"w must be (C, W) with C = {C} and W >= 1, got {getattr(w, 'shape', type(w).__name__)}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (C,)):
        raise ValueError(f"bias must be a ({C},) tensor or None, got {getattr(bias, 'shape', bias)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    for name, t in (("w", w), ("bias", bias)):
        if t is not None and (t.device != x.device or t.dtype != x.dtype):
            raise TypeError(f"{name} must match x's device and dtype ({x.device}, {x.dtype}), got ({t.device}, {t.dtype})")
    if can_launch(xc) and xc.dtype in SUPPORTED_DTYPES and xc.numel() > 0:
        y = _ShortConv1d.apply(xc, w, bias, causal, activation)
    else:
        y = short_conv1d_reference(xc, w, bias, causal, activation)
    return y.transpose(1, 2) if layout == "BLC" else y
