"""Short depthwise 1D convolution of any width (Triton): forward, and backward to input, weight and bias.

y[b, c, t] = act(bias[c] + sum_j w[c, j] x[b, c, t - left + j]) with left = W - 1 (causal) or (W - 1) // 2.
The forward is one pass over x; the backward recomputes the pre-activation when there is an activation, then
one kernel writes dx (the flipped-kernel convolution of dz) and per-tile partial sums of dw (reduced on the
host, deterministic). x may be (B, C, L) with any strides, so both (B, C, L) and (B, L, C) storage work.

When the time axis is contiguous (and W <= 3V + 1) the "grouped" kernels of forward and backward read each
input in aligned groups of V = 16 bytes of time steps, one vector load per group and per neighbour group the
window reaches, and form the W shifted operands from the groups' elements in registers; the "per-tap" kernels
(any strides, any W) do W unaligned scalar loads per output instead.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..._triton import can_launch, cdiv, next_power_of_2, triton_available
from ...testing import poisoning
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
    def _group_elements(x, BLOCK_C: tl.constexpr, G: tl.constexpr, V: tl.constexpr, LOG2_V: tl.constexpr):
        """The V elements of x (BLOCK_C, G, V) along its last axis: a tuple of V (BLOCK_C, G, 1) tensors."""
        parts = (x,)
        for level in tl.static_range(LOG2_V):
            evens = ()
            odds = ()
            for i in tl.static_range(1 << level):
                even, odd = tl.split(tl.reshape(parts[i], [BLOCK_C, G, V >> (level + 1), 2]))
                evens = evens + (even,)
                odds = odds + (odd,)
            parts = evens + odds
        return parts

    @triton.jit
    def _group_from_elements(parts, BLOCK_C: tl.constexpr, G: tl.constexpr, V: tl.constexpr,
                             LOG2_V: tl.constexpr):
        """Inverse of _group_elements: a tuple of V (BLOCK_C, G, 1) tensors -> (BLOCK_C, G, V)."""
        for level in tl.static_range(LOG2_V):
            merged = ()
            for i in tl.static_range(V >> (level + 1)):
                pair = tl.join(parts[i], parts[i + (V >> (level + 1))])
                merged = merged + (tl.reshape(pair, [BLOCK_C, G, 2 << level]),)
            parts = merged
        return parts[0]

    @triton.jit
    def _load_window(row_ptr, t, L, row_ok, NPREV: tl.constexpr, NNEXT: tl.constexpr,
                     BLOCK_C: tl.constexpr, G: tl.constexpr, V: tl.constexpr, LOG2_V: tl.constexpr):
        """The groups of a row with time stride 1 around each group of t (BLOCK_C, G, V), NPREV before and NNEXT
        after, zero outside [0, L), in fp32: a tuple of (NPREV + 1 + NNEXT) * V (BLOCK_C, G, 1) tensors whose
        element NPREV * V + v + s holds time t[..., 0] + v + s. One aligned vector load per group."""
        window = ()
        for k in tl.static_range(NPREV + 1 + NNEXT):
            ts = t + (k - NPREV) * V
            xg = tl.load(row_ptr + ts, mask=row_ok & (ts >= 0) & (ts < L), other=0.0)
            window = window + _group_elements(xg.to(tl.float32), BLOCK_C, G, V, LOG2_V)
        return window

    @triton.jit
    def _load_taps(w_ptr, c, c_ok, swc, swj, W: tl.constexpr, FLIP: tl.constexpr):
        """w[c, j] (FLIP: w[c, W - 1 - j]) for j < W in fp32: a tuple of W (BLOCK_C, 1, 1) tensors."""
        taps = ()
        for j in tl.static_range(W):
            taps = taps + (tl.load(w_ptr + c * swc + (j + FLIP * (W - 1 - 2 * j)) * swj, mask=c_ok,
                                   other=0.0).to(tl.float32),)
        return taps

    @triton.jit
    def _window_conv(window, taps, bias, HAS_BIAS: tl.constexpr, NPREV: tl.constexpr, LEFT: tl.constexpr,
                     W: tl.constexpr, V: tl.constexpr):
        """out[v] = (bias +) sum_j taps[j] * window[NPREV * V + v - LEFT + j] for v < V: a tuple of V
        (BLOCK_C, G, 1) tensors; bias (BLOCK_C, 1, 1) is used only when HAS_BIAS."""
        outs = ()
        for v in tl.static_range(V):
            acc = window[NPREV * V + v - LEFT] * taps[0]
            for j in tl.static_range(1, W):
                acc += window[NPREV * V + v - LEFT + j] * taps[j]
            if HAS_BIAS:
                acc += bias
            outs = outs + (acc,)
        return outs

    @triton.jit
    def short_conv1d_fwd_groups_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr, C, L,
        sxb, sxc, syb, syc, swc, swj,
        W: tl.constexpr, LEFT: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr,
        BLOCK_C: tl.constexpr, G: tl.constexpr, V: tl.constexpr, LOG2_V: tl.constexpr,
    ):
        """short_conv1d_fwd_kernel for time stride 1 in x and y; grid (L / (G*V), C blocks, B).

        The tile is (BLOCK_C, G, V): G groups of V consecutive time steps. Each group and the NPREV groups
        before and NNEXT after it that the window reaches are one aligned vector load each; output v of a group
        sums w[j] * element (v - LEFT + j) of that run of groups, all in fp32 registers.
        """
        NPREV: tl.constexpr = (LEFT + V - 1) // V
        NNEXT: tl.constexpr = (W - 1 - LEFT + V - 1) // V
        pid_l, pid_c, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[:, None, None]
        t = pid_l * (G * V) + tl.arange(0, G)[None, :, None] * V + tl.arange(0, V)[None, None, :]
        c_ok = c < C
        window = _load_window(x_ptr + b.to(tl.int64) * sxb + c.to(tl.int64) * sxc, t, L, c_ok, NPREV, NNEXT,
                              BLOCK_C, G, V, LOG2_V)
        taps = _load_taps(w_ptr, c, c_ok, swc, swj, W, 0)
        bias = tl.load(b_ptr + c, mask=c_ok & HAS_BIAS, other=0.0).to(tl.float32)
        acc = _window_conv(window, taps, bias, HAS_BIAS, NPREV, LEFT, W, V)
        acc = _group_from_elements(acc, BLOCK_C, G, V, LOG2_V)
        if SILU:
            acc = acc * tl.sigmoid(acc)
        y_bc = y_ptr + b.to(tl.int64) * syb + c.to(tl.int64) * syc
        tl.store(y_bc + t, acc.to(y_ptr.dtype.element_ty), mask=c_ok & (t < L))

    @triton.jit
    def short_conv1d_bwd_groups_kernel(
        dz_ptr, x_ptr, w_ptr, dx_ptr, dwp_ptr, C, L, N_LBLOCKS,
        szb, szc, sxb, sxc, sdb, sdc, swc, swj,
        W: tl.constexpr, LEFT: tl.constexpr,
        BLOCK_C: tl.constexpr, G: tl.constexpr, V: tl.constexpr, LOG2_V: tl.constexpr,
    ):
        """short_conv1d_bwd_kernel for time stride 1 in dz, x and dx, on the (BLOCK_C, G, V) tiles of
        short_conv1d_fwd_groups_kernel: dx is the window convolution of dz with the flipped taps (window
        LEFT' = W - 1 - LEFT), dwp[b*N_LBLOCKS + l-block, c, j] sums dz[t] x[t - LEFT + j] from the two windows."""
        RIGHT: tl.constexpr = W - 1 - LEFT
        XPREV: tl.constexpr = (LEFT + V - 1) // V
        XNEXT: tl.constexpr = (RIGHT + V - 1) // V
        pid_l, pid_c, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[:, None, None]
        c1 = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        t = pid_l * (G * V) + tl.arange(0, G)[None, :, None] * V + tl.arange(0, V)[None, None, :]
        c_ok = c < C
        dz_win = _load_window(dz_ptr + b.to(tl.int64) * szb + c.to(tl.int64) * szc, t, L, c_ok, XNEXT, XPREV,
                              BLOCK_C, G, V, LOG2_V)
        x_win = _load_window(x_ptr + b.to(tl.int64) * sxb + c.to(tl.int64) * sxc, t, L, c_ok, XPREV, XNEXT,
                             BLOCK_C, G, V, LOG2_V)
        taps = _load_taps(w_ptr, c, c_ok, swc, swj, W, 1)
        dx = _group_from_elements(_window_conv(dz_win, taps, taps[0], False, XNEXT, RIGHT, W, V), BLOCK_C, G, V,
                                  LOG2_V)
        dx_bc = dx_ptr + b.to(tl.int64) * sdb + c.to(tl.int64) * sdc
        tl.store(dx_bc + t, dx.to(dx_ptr.dtype.element_ty), mask=c_ok & (t < L))
        part = dwp_ptr + (b * N_LBLOCKS + pid_l).to(tl.int64) * C * W + c1 * W
        t_group = pid_l * (G * V) + tl.arange(0, G)[None, :, None] * V  # time of element 0 of each group
        for j in tl.static_range(W):
            # terms past the end are dropped, not multiplied by dz = 0 (0 * inf would be NaN)
            s = tl.where(t_group < L, dz_win[XNEXT * V] * x_win[XPREV * V - LEFT + j], 0.0)
            for v in tl.static_range(1, V):
                s += tl.where(t_group + v < L, dz_win[XNEXT * V + v] * x_win[XPREV * V + v - LEFT + j], 0.0)
            tl.store(part + j, tl.sum(tl.sum(s, axis=2), axis=1), mask=c1 < C)

    @triton.jit
    def short_conv1d_silu_bwd_groups_kernel(
        dy_ptr, x_ptr, w_ptr, b_ptr, dz_ptr, dbp_ptr, C, L, N_LBLOCKS,
        syb, syc, sxb, sxc, szb, szc, swc, swj,
        W: tl.constexpr, LEFT: tl.constexpr, HAS_BIAS: tl.constexpr,
        BLOCK_C: tl.constexpr, G: tl.constexpr, V: tl.constexpr, LOG2_V: tl.constexpr,
    ):
        """short_conv1d_silu_bwd_kernel for time stride 1 in dy, x and dz, with z recomputed as in
        short_conv1d_fwd_groups_kernel; with a bias, dbp[b*N_LBLOCKS + l-block, c] = sum_t dz."""
        NPREV: tl.constexpr = (LEFT + V - 1) // V
        NNEXT: tl.constexpr = (W - 1 - LEFT + V - 1) // V
        pid_l, pid_c, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[:, None, None]
        c1 = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        t = pid_l * (G * V) + tl.arange(0, G)[None, :, None] * V + tl.arange(0, V)[None, None, :]
        c_ok = c < C
        ok = c_ok & (t < L)
        window = _load_window(x_ptr + b.to(tl.int64) * sxb + c.to(tl.int64) * sxc, t, L, c_ok, NPREV, NNEXT,
                              BLOCK_C, G, V, LOG2_V)
        taps = _load_taps(w_ptr, c, c_ok, swc, swj, W, 0)
        bias = tl.load(b_ptr + c, mask=c_ok & HAS_BIAS, other=0.0).to(tl.float32)
        z = _group_from_elements(_window_conv(window, taps, bias, HAS_BIAS, NPREV, LEFT, W, V), BLOCK_C, G, V,
                                 LOG2_V)
        dy = tl.load(dy_ptr + b.to(tl.int64) * syb + c.to(tl.int64) * syc + t, mask=ok, other=0.0).to(tl.float32)
        sg = tl.sigmoid(z)
        dz = tl.where(ok, dy * sg * (1.0 + z * (1.0 - sg)), 0.0)
        tl.store(dz_ptr + b.to(tl.int64) * szb + c.to(tl.int64) * szc + t, dz.to(dz_ptr.dtype.element_ty), mask=ok)
        if HAS_BIAS:
            tl.store(dbp_ptr + (b * N_LBLOCKS + pid_l).to(tl.int64) * C + c1, tl.sum(tl.sum(dz, axis=2), axis=1),
                     mask=c1 < C)

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
        """dz = dy * silu'(z) with z = bias + conv(x, w) recomputed; with a bias,
        dbp[b*N_LBLOCKS + l-block, c] = sum_t dz."""
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
        if HAS_BIAS:
            tl.store(dbp_ptr + (b * N_LBLOCKS + pid_l).to(tl.int64) * C + c1, tl.sum(dz, axis=1), mask=c1 < C)


def _blocks(C: int, L: int, channels_fast: bool):
    if channels_fast:
        bc = min(64, next_power_of_2(max(C, 1)))
        return bc, max(16, min(256, 4096 // bc))
    return min(16, next_power_of_2(max(C, 1))), 256


def _left(width: int, causal: bool) -> int:
    return width - 1 if causal else (width - 1) // 2


def _poisoned(t: Tensor) -> Tensor:
    """t, filled with NaN inside lkconv.testing.poison_outputs (an element a kernel fails to write cannot pass)."""
    return t.fill_(float("nan")) if poisoning() else t


def _partial_sums(*shape: int, device) -> Tensor:
    """A float32 buffer for per-tile partial sums."""
    return _poisoned(torch.empty(shape, dtype=torch.float32, device=device))


def group_size(dtype: torch.dtype) -> int:
    """V: the time steps in one aligned 16-byte vector group of the grouped kernels."""
    return 16 // dtype.itemsize


def uses_groups(width: int, *tensors: Tensor) -> bool:
    """Whether the grouped kernels take these (B, C, L) tensors and a width-W filter: each has a contiguous time
    axis, and W <= 3V + 1, so the window adds at most 3V steps to a group of V outputs (4 or 5 vector loads of
    each windowed input per V outputs; on an H100 the grouped forward still beats the per-tap one 2-5x at
    W = 12..24). Wider windows and strided time go to the per-tap kernels."""
    return width <= 3 * group_size(tensors[0].dtype) + 1 and all(t.stride(2) == 1 or t.shape[2] == 1
                                                                   for t in tensors)


def group_tile(C: int, L: int, v: int):
    """Default (BLOCK_C, G) of the grouped kernels: G groups of V steps = 512 time steps (fewer for short L) and
    one channel row per thread (BLOCK_C = max(4, 128 / G) for 4 warps), the best tiles measured on an H100."""
    g = min(512 // v, next_power_of_2(cdiv(max(L, 1), v)))
    return min(max(4, 128 // g), next_power_of_2(max(C, 1))), g


def _group_grid(x: Tensor, block_c: Optional[int], groups: Optional[int]):
    B, C, L = x.shape
    v = group_size(x.dtype)
    bc, g = group_tile(C, L, v)
    bc, g = block_c or bc, groups or g
    return (cdiv(L, g * v), cdiv(C, bc), B), dict(BLOCK_C=bc, G=g, V=v, LOG2_V=v.bit_length() - 1)


def launch_fwd_groups(x: Tensor, w: Tensor, bias: Optional[Tensor], y: Tensor, causal: bool, silu: bool,
                      block_c: Optional[int] = None, groups: Optional[int] = None, num_warps: int = 4) -> Tensor:
    """y (B, C, L) = forward of x (B, C, L) by the grouped kernel; x and y need time stride 1 (or L == 1).

    block_c, groups: the tile (BLOCK_C channels by G groups of V steps), default from group_tile."""
    grid, tile = _group_grid(x, block_c, groups)
    short_conv1d_fwd_groups_kernel[grid](
        x, w, bias if bias is not None else w, y, x.shape[1], x.shape[2], x.stride(0), x.stride(1), y.stride(0),
        y.stride(1), *w.stride(), W=w.shape[1], LEFT=_left(w.shape[1], causal), HAS_BIAS=bias is not None,
        SILU=silu, num_warps=num_warps, **tile,
    )
    return y


def launch_fwd_per_tap(x: Tensor, w: Tensor, bias: Optional[Tensor], y: Tensor, causal: bool, silu: bool) -> Tensor:
    """y (B, C, L) = forward of x (B, C, L) by the per-tap kernel (any strides of x and y)."""
    B, C, L = x.shape
    bc, bl = _blocks(C, L, x.stride(1) == 1 and C > 1)
    grid = (cdiv(L, bl), cdiv(C, bc), B)
    short_conv1d_fwd_kernel[grid](
        x, w, bias if bias is not None else w, y, C, L, *x.stride(), *y.stride(), *w.stride(),
        W=w.shape[1], LEFT=_left(w.shape[1], causal), HAS_BIAS=bias is not None, SILU=silu,
        BLOCK_C=bc, BLOCK_L=bl, num_warps=4,
    )
    return y


def short_conv1d_fwd(x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool, silu: bool) -> Tensor:
    """Launch the forward kernel (grouped when uses_groups, else per-tap); the output has x's memory layout."""
    y = _poisoned(torch.empty_like(x))
    if uses_groups(w.shape[1], x, y):
        return launch_fwd_groups(x, w, bias, y, causal, silu)
    return launch_fwd_per_tap(x, w, bias, y, causal, silu)


def short_conv1d_bwd(dz: Tensor, x: Tensor, w: Tensor, causal: bool):
    """(dx, dw) for dz = dL/d(pre-activation output); grouped kernel when uses_groups(W, dz, x, dx)."""
    B, C, L = x.shape
    dx = _poisoned(torch.empty_like(x))
    if uses_groups(w.shape[1], dz, x, dx):
        grid, tile = _group_grid(x, None, None)
        part = _partial_sums(B * grid[0], C, w.shape[1], device=x.device)
        short_conv1d_bwd_groups_kernel[grid](
            dz, x, w, dx, part, C, L, grid[0], dz.stride(0), dz.stride(1), x.stride(0), x.stride(1), dx.stride(0),
            dx.stride(1), *w.stride(), W=w.shape[1], LEFT=_left(w.shape[1], causal), num_warps=4, **tile,
        )
        return dx, part.sum(0)
    bc, bl = _blocks(C, L, x.stride(1) == 1 and C > 1)
    n_l = cdiv(L, bl)
    part = _partial_sums(B * n_l, C, w.shape[1], device=x.device)
    short_conv1d_bwd_kernel[(n_l, cdiv(C, bc), B)](
        dz, x, w, dx, part, C, L, n_l, *dz.stride(), *x.stride(), *dx.stride(), *w.stride(),
        W=w.shape[1], LEFT=_left(w.shape[1], causal), BLOCK_C=bc, BLOCK_L=bl, num_warps=4,
    )
    return dx, part.sum(0)


def short_conv1d_silu_bwd(dy: Tensor, x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool):
    """(dz, db): the gradient before the SiLU (laid out like x, in x's dtype) and, with a bias, its sum over
    (B, L) in fp32 (else None). Grouped kernel when uses_groups(W, dy, x, dz)."""
    B, C, L = x.shape
    dz = _poisoned(torch.empty_like(x))
    if uses_groups(w.shape[1], dy, x, dz):
        grid, tile = _group_grid(x, None, None)
        part = _partial_sums(B * grid[0] if bias is not None else 1, C, device=x.device)
        short_conv1d_silu_bwd_groups_kernel[grid](
            dy, x, w, bias if bias is not None else w, dz, part, C, L, grid[0], dy.stride(0), dy.stride(1),
            x.stride(0), x.stride(1), dz.stride(0), dz.stride(1), *w.stride(), W=w.shape[1],
            LEFT=_left(w.shape[1], causal), HAS_BIAS=bias is not None, num_warps=4, **tile,
        )
        return dz, part.sum(0) if bias is not None else None
    bc, bl = _blocks(C, L, x.stride(1) == 1 and C > 1)
    n_l = cdiv(L, bl)
    part = _partial_sums(B * n_l if bias is not None else 1, C, device=x.device)
    short_conv1d_silu_bwd_kernel[(n_l, cdiv(C, bc), B)](
        dy, x, w, bias if bias is not None else w, dz, part, C, L, n_l, *dy.stride(), *x.stride(), *dz.stride(),
        *w.stride(), W=w.shape[1], LEFT=_left(w.shape[1], causal), HAS_BIAS=bias is not None,
        BLOCK_C=bc, BLOCK_L=bl, num_warps=4,
    )
    return dz, part.sum(0) if bias is not None else None


def _backward(dy: Tensor, x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool, activation: Optional[str]):
    """(dx, dw in w's dtype, db in bias's dtype or None)."""
    db = None
    if activation == "silu":
        dz, db = short_conv1d_silu_bwd(dy, x, w, bias, causal)
    else:
        dz = dy
        if bias is not None:
            db = dz.sum(dim=(0, 2), dtype=torch.float32)
    dx, dw = short_conv1d_bwd(dz, x, w, causal)
    return dx, dw.to(w.dtype), db.to(bias.dtype) if bias is not None else None


class _ShortConv1d(torch.autograd.Function):
    """Eager path: the Triton kernels without the custom ops' per-call dispatcher cost."""

    @staticmethod
    def forward(ctx, x, w, bias, causal, activation):
        ctx.save_for_backward(x, w, bias)
        ctx.causal, ctx.activation = causal, activation
        return short_conv1d_fwd(x, w, bias, causal, activation == "silu")

    @staticmethod
    def backward(ctx, dy):
        x, w, bias = ctx.saved_tensors
        dx, dw, db = _backward(dy, x, w, bias, ctx.causal, ctx.activation)
        return dx, dw, db, None, None


# Under torch.compile the kernels run as opaque custom ops (no graph break, no tracing into Triton).
@torch.library.custom_op("lkconv::short_conv1d_fwd", mutates_args=())
def _short_conv1d_fwd_op(x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool, silu: bool) -> Tensor:
    return short_conv1d_fwd(x, w, bias, causal, silu)


@_short_conv1d_fwd_op.register_fake
def _(x, w, bias, causal, silu):
    return torch.empty_like(x)


@torch.library.custom_op("lkconv::short_conv1d_bwd", mutates_args=())
def _short_conv1d_bwd_op(dy: Tensor, x: Tensor, w: Tensor, bias: Optional[Tensor], causal: bool,
                         silu: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """(dx, dw, db); db is empty (0,) without a bias (custom ops return tensors only)."""
    dx, dw, db = _backward(dy, x, w, bias, causal, "silu" if silu else None)
    return dx, dw, db if db is not None else w.new_empty(0)


@_short_conv1d_bwd_op.register_fake
def _(dy, x, w, bias, causal, silu):
    return torch.empty_like(x), torch.empty_like(w), w.new_empty(bias.shape[0] if bias is not None else 0)


def _setup_context(ctx, inputs, output):
    x, w, bias, causal, silu = inputs
    ctx.save_for_backward(x, w, bias)
    ctx.causal, ctx.silu, ctx.has_bias = causal, silu, bias is not None


def _op_backward(ctx, dy):
    x, w, bias = ctx.saved_tensors
    dx, dw, db = _short_conv1d_bwd_op(dy, x, w, bias, ctx.causal, ctx.silu)
    return dx, dw, db if ctx.has_bias else None, None, None


_short_conv1d_fwd_op.register_autograd(_op_backward, setup_context=_setup_context)


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
    if bias is not None and bias.stride(0) != 1:
        bias = bias.contiguous()  # the kernels read bias[c] at unit stride
    kernels = can_launch(xc) and xc.dtype in SUPPORTED_DTYPES and xc.numel() > 0
    if kernels and torch.compiler.is_compiling():
        y = _short_conv1d_fwd_op(xc, w, bias, causal, activation == "silu")
    elif kernels:
        y = _ShortConv1d.apply(xc, w, bias, causal, activation)
    else:
        y = short_conv1d_reference(xc, w, bias, causal, activation)
        if y.stride() != xc.stride():  # keep x's layout, as the kernels do
            y = torch.empty_like(xc).copy_(y)
    return y.transpose(1, 2) if layout == "BLC" else y
