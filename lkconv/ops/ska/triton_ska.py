"""Triton kernels for SKA (LSNet's small-kernel aggregation): forward, input gradient, weight gradient.

Paper: "LSNet: See Large, Focus Small" (Wang et al., CVPR 2025); official code:
https://github.com/THU-MIG/lsnet (model/ska.py). Semantics: :mod:`.reference`.

How the work is split. Channel c uses weight group c % WC, so the G = ceil(C / WC) channels of one group
share every weight load. A program owns one (n, group, block of pixels) and a block of the group's
channels: each tap's weight vector (BLOCK_P pixels) is loaded once and broadcast over a
(BLOCK_G channels, BLOCK_P pixels) tile, accumulated in fp32 (fp64 for fp64 inputs).

- forward: y[n, c, p] = sum_t x[n, c, p + off_t] * w[n, g, t, p]
- input gradient: dx[n, c, p] = sum_t dy[n, c, p - off_t] * w[n, g, t, p - off_t]
- weight gradient: dw[n, g, t, p] = sum_{c in group g} dy[n, c, p] * x[n, c, p + off_t]; one program walks
  all channels of its group, so every dw element is written exactly once (no atomics, deterministic).

Tensors may have any strides; outputs are allocated contiguous. Batch and channel offsets use int64.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..._triton import cdiv, next_power_of_2, triton_available
from ...testing import poisoning
from .reference import ska_pads

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover - depends on the install
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


if triton is not None:

    @triton.jit
    def _pixel_tile(N_PBLK, WC, H, W, BLOCK_P: tl.constexpr):
        """(image n, weight group g, flat pixels p, in-bounds mask, rows h, columns w) of program_id(0)."""
        pid = tl.program_id(0)
        ng = pid // N_PBLK
        p = (pid % N_PBLK) * BLOCK_P + tl.arange(0, BLOCK_P)
        return ng // WC, ng % WC, p, p < H * W, p // W, p % W

    @triton.jit
    def ska_fwd_kernel(
        x_ptr, w_ptr, y_ptr,
        C, WC, H, W, N_PBLK,
        sxn, sxc, sxh, sxw,
        swn, swg, swt, swh, sww,
        syn, syc, syh, syw,
        K: tl.constexpr, PAD: tl.constexpr,
        BLOCK_G: tl.constexpr, BLOCK_P: tl.constexpr, ACC: tl.constexpr,
    ):
        """y[n, c, h, w] = sum_{i, j} x[n, c, h + i - PAD, w + j - PAD] * w[n, c % WC, i*K + j, h, w]

        Grid: (N * WC * N_PBLK, channel blocks of the group).
        """
        n, g, p, p_ok, h, w = _pixel_tile(N_PBLK, WC, H, W, BLOCK_P)
        c = g + (tl.program_id(1) * BLOCK_G + tl.arange(0, BLOCK_G)) * WC
        c_ok = c < C
        x_nc = x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64)[:, None] * sxc
        w_ng = w_ptr + n.to(tl.int64) * swn + g.to(tl.int64) * swg
        acc = tl.zeros([BLOCK_G, BLOCK_P], dtype=ACC)
        for t in range(K * K):
            hi = h + (t // K - PAD)
            wi = w + (t % K - PAD)
            inside = p_ok & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            wt = tl.load(w_ng + t * swt + h * swh + w * sww, mask=p_ok, other=0.0).to(ACC)
            xt = tl.load(x_nc + (hi * sxh + wi * sxw)[None, :], mask=c_ok[:, None] & inside[None, :], other=0.0)
            acc += xt.to(ACC) * wt[None, :]
        y_nc = y_ptr + n.to(tl.int64) * syn + c.to(tl.int64)[:, None] * syc
        tl.store(y_nc + (h * syh + w * syw)[None, :], acc.to(y_ptr.dtype.element_ty),
                 mask=c_ok[:, None] & p_ok[None, :])

    @triton.jit
    def ska_bwd_x_kernel(
        dy_ptr, w_ptr, dx_ptr,
        C, WC, H, W, N_PBLK,
        sgn, sgc, sgh, sgw,
        swn, swg, swt, swh, sww,
        sdn, sdc, sdh, sdw,
        K: tl.constexpr, PAD: tl.constexpr,
        BLOCK_G: tl.constexpr, BLOCK_P: tl.constexpr, ACC: tl.constexpr,
    ):
        """dx[n, c, h, w] = sum_{i, j} dy[n, c, ho, wo] * w[n, c % WC, i*K + j, ho, wo]

        with (ho, wo) = (h - i + PAD, w - j + PAD). Grid: (N * WC * N_PBLK, channel blocks of the group).
        """
        n, g, p, p_ok, h, w = _pixel_tile(N_PBLK, WC, H, W, BLOCK_P)
        c = g + (tl.program_id(1) * BLOCK_G + tl.arange(0, BLOCK_G)) * WC
        c_ok = c < C
        dy_nc = dy_ptr + n.to(tl.int64) * sgn + c.to(tl.int64)[:, None] * sgc
        w_ng = w_ptr + n.to(tl.int64) * swn + g.to(tl.int64) * swg
        acc = tl.zeros([BLOCK_G, BLOCK_P], dtype=ACC)
        for t in range(K * K):
            ho = h - (t // K - PAD)
            wo = w - (t % K - PAD)
            inside = p_ok & (ho >= 0) & (ho < H) & (wo >= 0) & (wo < W)
            wt = tl.load(w_ng + t * swt + ho * swh + wo * sww, mask=inside, other=0.0).to(ACC)
            gt = tl.load(dy_nc + (ho * sgh + wo * sgw)[None, :], mask=c_ok[:, None] & inside[None, :], other=0.0)
            acc += gt.to(ACC) * wt[None, :]
        dx_nc = dx_ptr + n.to(tl.int64) * sdn + c.to(tl.int64)[:, None] * sdc
        tl.store(dx_nc + (h * sdh + w * sdw)[None, :], acc.to(dx_ptr.dtype.element_ty),
                 mask=c_ok[:, None] & p_ok[None, :])

    @triton.jit
    def ska_bwd_w_kernel(
        dy_ptr, x_ptr, dw_ptr,
        C, WC, H, W, N_PBLK, G_MAX,
        sgn, sgc, sgh, sgw,
        sxn, sxc, sxh, sxw,
        sdn, sdg, sdt, sdh, sdw,
        K: tl.constexpr, PAD: tl.constexpr,
        BLOCK_G: tl.constexpr, BLOCK_P: tl.constexpr, ACC: tl.constexpr,
    ):
        """dw[n, g, i*K + j, h, w] = sum_{c % WC == g} dy[n, c, h, w] * x[n, c, h + i - PAD, w + j - PAD]

        Grid: (N * WC * N_PBLK,); each program reduces over all G_MAX channel slots of its group.
        """
        n, g, p, p_ok, h, w = _pixel_tile(N_PBLK, WC, H, W, BLOCK_P)
        jj = tl.arange(0, BLOCK_G)
        dy_n = dy_ptr + n.to(tl.int64) * sgn
        x_n = x_ptr + n.to(tl.int64) * sxn
        dw_ng = dw_ptr + n.to(tl.int64) * sdn + g.to(tl.int64) * sdg
        for t in range(K * K):
            hi = h + (t // K - PAD)
            wi = w + (t % K - PAD)
            inside = p_ok & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            acc = tl.zeros([BLOCK_G, BLOCK_P], dtype=ACC)
            for j0 in range(0, G_MAX, BLOCK_G):
                c = g + (j0 + jj) * WC
                c_ok = c < C
                c64 = c.to(tl.int64)[:, None]
                gt = tl.load(dy_n + c64 * sgc + (h * sgh + w * sgw)[None, :],
                             mask=c_ok[:, None] & p_ok[None, :], other=0.0)
                xt = tl.load(x_n + c64 * sxc + (hi * sxh + wi * sxw)[None, :],
                             mask=c_ok[:, None] & inside[None, :], other=0.0)
                acc += gt.to(ACC) * xt.to(ACC)
            tl.store(dw_ng + t * sdt + h * sdh + w * sdw, tl.sum(acc, axis=0).to(dw_ptr.dtype.element_ty),
                     mask=p_ok)


@dataclass(frozen=True)
class SkaConfig:
    """Tile of one launch: BLOCK_G channels of a group x BLOCK_P pixels."""

    block_g: int
    block_p: int
    num_warps: int


def choose_config(hw: int, g_max: int) -> SkaConfig:
    """~1024-element tiles: up to 256 pixels wide, filled up with channels of the group."""
    block_p = max(16, min(256, next_power_of_2(hw)))
    block_g = max(1, min(next_power_of_2(g_max), 1024 // block_p))
    num_warps = 4 if block_g * block_p >= 512 else 2
    return SkaConfig(block_g, block_p, num_warps)


def _acc_type(*tensors: torch.Tensor):
    return tl.float64 if any(t.dtype == torch.float64 for t in tensors) else tl.float32


def _empty(shape, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty(shape, dtype=dtype, device=like.device)
    if poisoning():
        out.fill_(float("nan"))
    return out


def _check_grid(n_prog: int) -> None:
    if n_prog >= 2**31:
        raise ValueError(f"ska: problem too large for one launch ({n_prog} programs)")


def _launch_pixel_kernel(kernel, a: torch.Tensor, w: torch.Tensor, out: torch.Tensor, k: int,
                         config: Optional[SkaConfig]) -> torch.Tensor:
    """Run the forward or input-gradient kernel: ``a`` and ``out`` are (N, C, H, W), w is (N, WC, k*k, H, W)."""
    n, c, h, wd = a.shape
    wc = w.shape[1]
    if out.numel() == 0:
        return out
    g_max = cdiv(c, wc)
    cfg = config or choose_config(h * wd, g_max)
    n_pblk = cdiv(h * wd, cfg.block_p)
    grid = (n * wc * n_pblk, cdiv(g_max, cfg.block_g))
    _check_grid(grid[0])
    kernel[grid](
        a, w, out, c, wc, h, wd, n_pblk, *a.stride(), *w.stride(), *out.stride(),
        K=k, PAD=ska_pads(k)[0], BLOCK_G=cfg.block_g, BLOCK_P=cfg.block_p, ACC=_acc_type(a, w),
        num_warps=cfg.num_warps,
    )
    return out


def ska_fwd(x: torch.Tensor, w: torch.Tensor, k: int, config: Optional[SkaConfig] = None) -> torch.Tensor:
    """y (N, C, H, W) in x's dtype from x (N, C, H, W) and w (N, WC, k*k, H, W); any strides."""
    return _launch_pixel_kernel(ska_fwd_kernel, x, w, _empty(tuple(x.shape), x, x.dtype), k, config)


def ska_bwd_x(grad_out: torch.Tensor, w: torch.Tensor, k: int, dtype: torch.dtype,
              config: Optional[SkaConfig] = None) -> torch.Tensor:
    """dL/dx (N, C, H, W), contiguous, in ``dtype``, from grad_out (N, C, H, W) and w (N, WC, k*k, H, W)."""
    return _launch_pixel_kernel(ska_bwd_x_kernel, grad_out, w, _empty(tuple(grad_out.shape), grad_out, dtype), k,
                                config)


def ska_bwd_w(grad_out: torch.Tensor, x: torch.Tensor, wc: int, k: int, dtype: torch.dtype,
              config: Optional[SkaConfig] = None) -> torch.Tensor:
    """dL/dw (N, WC, k*k, H, W), contiguous, in ``dtype``, from grad_out and x (N, C, H, W)."""
    n, c, h, wd = x.shape
    dw = _empty((n, wc, k * k, h, wd), x, dtype)
    if dw.numel() == 0:
        return dw
    if c == 0:
        return dw.zero_()
    g_max = cdiv(c, wc)
    cfg = config or choose_config(h * wd, g_max)
    n_pblk = cdiv(h * wd, cfg.block_p)
    grid = (n * wc * n_pblk,)
    _check_grid(grid[0])
    ska_bwd_w_kernel[grid](
        grad_out, x, dw, c, wc, h, wd, n_pblk, g_max, *grad_out.stride(), *x.stride(), *dw.stride(),
        K=k, PAD=ska_pads(k)[0], BLOCK_G=cfg.block_g, BLOCK_P=cfg.block_p, ACC=_acc_type(grad_out, x),
        num_warps=cfg.num_warps,
    )
    return dw
