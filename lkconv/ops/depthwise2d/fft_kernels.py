"""Triton kernels for the FFT algorithm's passes that torch would run as several passes, or slowly.

``frame``: an (N, C, h, w) tensor of any strides and floating dtype into a zeroed, contiguous (N, C, Ph, Pw)
frame, zero-upsampled by a step. torch needs a fill and a copy, and copies channels_last strides at about half
the bandwidth; this writes the frame once, in (channels x columns) tiles that read channels_last rows and write
frame rows contiguously. Reference: :func:`lkconv.ops.depthwise2d.fft.framed_reference`.

``crop``: out (N, C, Ho, Wo), any strides and dtype, = frame[n, c, i*sh, j*sw] (+ bias[c]), the same tiling.

``lag_spectrum``: S[o] = sum_n DY[n, o] * conj(X[n, x(o)]) over the batch, where o runs over the
(C*m, Ph, Pf) points of the output-gradient spectrum and x(o) is the same point of input channel o_c // m.
PyTorch needs a conjugating copy, a product and a reduction (three passes over the spectra); this reads each
spectrum once. Programs split the batch into 8 interleaved groups (partial sums added by torch, deterministically)
so that enough loads are in flight. Reference: :func:`lkconv.ops.depthwise2d.fft.lag_spectrum_reference`.
"""
from __future__ import annotations

import torch

from ..._triton import cdiv, triton_available

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

BLOCK = 512
SPLIT_BATCH = 8  # lag_spectrum: partial sums over the batch per program column, added up afterwards
TILE_C, TILE_Q = 32, 32

if triton is not None:

    @triton.jit
    def frame_kernel(t_ptr, out_ptr, C, H, W, PH, PW, stn, stc, sth, stw, SH, SW,
                     TILE_C: tl.constexpr, TILE_Q: tl.constexpr):
        """One frame row p of TILE_C channels and TILE_Q columns; zeros off the upsampled grid."""
        n = tl.program_id(0) // PH
        p = tl.program_id(0) % PH
        cc = tl.program_id(1) * TILE_C + tl.arange(0, TILE_C)[:, None]
        q = tl.program_id(2) * TILE_Q + tl.arange(0, TILE_Q)[None, :]
        i, j = p // SH, q // SW
        hit = (p % SH == 0) & (i < H) & (q % SW == 0) & (j < W) & (cc < C)
        src = t_ptr + n.to(tl.int64) * stn + cc.to(tl.int64) * stc + i.to(tl.int64) * sth + j.to(tl.int64) * stw
        v = tl.load(src, mask=hit, other=0.0)
        dst = out_ptr + ((n.to(tl.int64) * C + cc) * PH + p) * PW + q
        tl.store(dst, v.to(out_ptr.dtype.element_ty), mask=(cc < C) & (q < PW))

    @triton.jit
    def crop_kernel(src_ptr, out_ptr, b_ptr, sb, C, HO, WO, PH, PW, son, soc, soh, sow, SH, SW,
                    HAS_BIAS: tl.constexpr, TILE_C: tl.constexpr, TILE_Q: tl.constexpr):
        """One output row i of TILE_C channels and TILE_Q columns, read from frame row i*SH."""
        n = tl.program_id(0) // HO
        i = tl.program_id(0) % HO
        cc = tl.program_id(1) * TILE_C + tl.arange(0, TILE_C)[:, None]
        j = tl.program_id(2) * TILE_Q + tl.arange(0, TILE_Q)[None, :]
        live = (cc < C) & (j < WO)
        src = src_ptr + ((n.to(tl.int64) * C + cc) * PH + i * SH) * PW + j * SW
        v = tl.load(src, mask=live, other=0.0)
        if HAS_BIAS:
            v += tl.load(b_ptr + cc * sb, mask=cc < C, other=0.0).to(v.dtype)
        dst = out_ptr + n.to(tl.int64) * son + cc.to(tl.int64) * soc + i.to(tl.int64) * soh + j.to(tl.int64) * sow
        tl.store(dst, v.to(out_ptr.dtype.element_ty), mask=live)

    @triton.jit
    def lag_spectrum_kernel(dy_ptr, x_ptr, out_ptr, N, L, LX, Q, MULT, SPLIT, BLOCK: tl.constexpr):
        """out[k, o] = sum over n = k, k + SPLIT, ... of dy[n, o] * conj(x[n, (o // (Q*MULT)) * Q + o % Q]);
        complex numbers as (re, im) pairs, L complex points per image in dy and out, LX in x."""
        o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        k = tl.program_id(1)
        live = o < L
        xo = (o // (Q * MULT)) * Q + o % Q
        acc_re = tl.zeros([BLOCK], dtype=dy_ptr.dtype.element_ty)
        acc_im = tl.zeros([BLOCK], dtype=dy_ptr.dtype.element_ty)
        # 64-bit pointers stepped image by image: no 32-bit offset overflows
        dyb = dy_ptr + k.to(tl.int64) * L * 2
        xb = x_ptr + k.to(tl.int64) * LX * 2
        for _ in range(k, N, SPLIT):
            dr = tl.load(dyb + 2 * o, mask=live, other=0.0)
            di = tl.load(dyb + 2 * o + 1, mask=live, other=0.0)
            xr = tl.load(xb + 2 * xo, mask=live, other=0.0)
            xi = tl.load(xb + 2 * xo + 1, mask=live, other=0.0)
            acc_re += dr * xr + di * xi
            acc_im += di * xr - dr * xi
            dyb += 2 * L * SPLIT
            xb += 2 * LX * SPLIT
        ob = out_ptr + k.to(tl.int64) * L * 2
        tl.store(ob + 2 * o, acc_re, mask=live)
        tl.store(ob + 2 * o + 1, acc_im, mask=live)


def _tile_grid(n, c, rows, cols):
    return (n * rows, cdiv(c, TILE_C), cdiv(cols, TILE_Q))


def frame(t: torch.Tensor, size, dtype: torch.dtype, step=(1, 1)) -> torch.Tensor:
    """Contiguous (N, C, Ph, Pw) ``dtype`` zeros with t[n, c, i, j] at (i*step[0], j*step[1])."""
    n, c, h, w = t.shape
    out = torch.empty(n, c, size[0], size[1], dtype=dtype, device=t.device)
    if out.numel() == 0:
        return out
    frame_kernel[_tile_grid(n, c, size[0], size[1])](
        t, out, c, h, w, size[0], size[1], *t.stride(), step[0], step[1],
        TILE_C=TILE_C, TILE_Q=TILE_Q, num_warps=4)
    return out


def crop(src: torch.Tensor, out: torch.Tensor, bias, step=(1, 1)) -> torch.Tensor:
    """out[n, c, i, j] = src[n, c, i*step[0], j*step[1]] (+ bias[c]) for a contiguous frame src; returns out."""
    n, c, ho, wo = out.shape
    if out.numel() == 0:
        return out
    has_bias = bias is not None
    crop_kernel[_tile_grid(n, c, ho, wo)](
        src, out, bias if has_bias else src, bias.stride(0) if has_bias else 0, c, ho, wo, src.shape[2], src.shape[3],
        *out.stride(), step[0], step[1], HAS_BIAS=has_bias, TILE_C=TILE_C, TILE_Q=TILE_Q, num_warps=4)
    return out


def serves(dyf: torch.Tensor, xf: torch.Tensor) -> bool:
    """Can :func:`lag_spectrum` take these spectra? (contiguous, one dtype, one image's floats in int32)"""
    return (dyf.is_contiguous() and xf.is_contiguous() and dyf.dtype == xf.dtype
            and 2 * dyf[0].numel() < 2**31 and 2 * xf[0].numel() < 2**31)


def lag_spectrum(dyf: torch.Tensor, xf: torch.Tensor, m: int) -> torch.Tensor:
    """(C*m, Ph, Pf) complex: sum over the batch of dyf (N, C*m, Ph, Pf) times conj(xf (N, C, Ph, Pf)), both
    contiguous complex64 or complex128 (see :func:`serves`)."""
    n, cm, ph, pf = dyf.shape
    if not serves(dyf, xf):
        raise ValueError("lag_spectrum: dyf and xf must be contiguous spectra of one dtype, under 2^30 points "
                         "per image")
    L, q = cm * ph * pf, ph * pf
    split = max(1, min(n, SPLIT_BATCH))  # images summed in SPLIT_BATCH interleaved groups (more programs in flight)
    part = torch.empty(split, cm, ph, pf, dtype=dyf.dtype, device=dyf.device)
    grid = (cdiv(L, BLOCK), split)
    lag_spectrum_kernel[grid](torch.view_as_real(dyf), torch.view_as_real(xf), torch.view_as_real(part),
                              n, L, xf.shape[1] * q, q, m, split, BLOCK=BLOCK, num_warps=4)
    return part[0] if split == 1 else part.sum(0)
