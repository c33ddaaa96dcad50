"""Pieces the implicit-GEMM kernels share (Triton): where an input row starts, the banded Toeplitz tile, the
product that accumulates a tile, and the bounds of a loop of products."""
from __future__ import annotations

from ..._triton import triton_available

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

if triton is not None:

    @triton.jit
    def row_geometry(sxh, W_IN, ROW_W: tl.constexpr):
        """(row stride, columns read): ROW_W for both where the rows are dense and ROW_W wide (known when
        compiling, so that masked loads of 16-byte aligned rows vectorize), else the run-time sxh and W_IN."""
        if ROW_W > 0:
            return ROW_W, ROW_W
        else:
            return sxh, W_IN

    @triton.jit
    def toeplitz_band(kk, wn, SHIFT, sww, KW: tl.constexpr, DW: tl.constexpr, COL0: tl.constexpr,
                      COL_STEP: tl.constexpr):
        """(band, tap offsets) of the Toeplitz tile T[kk, wn] = k[.., j] where kk + SHIFT - wn = j*DW: where the
        tile holds a tap, and that tap's column offset (COL0 + COL_STEP*j) * sww in its kernel row (clamped off
        the band)."""
        diff = kk[:, None] + SHIFT - wn[None, :]
        band = (diff >= 0) & (diff % DW == 0) & (diff < KW * DW)
        taps = (COL0 + COL_STEP * tl.minimum(tl.maximum(diff, 0) // DW, KW - 1)) * sww
        return band, taps

    @triton.jit
    def kernel_taps(w_c, di, dj, ok, swh, sww, KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr,
                    DW: tl.constexpr, ROW0: tl.constexpr, ROW_STEP: tl.constexpr, COL0: tl.constexpr,
                    COL_STEP: tl.constexpr):
        """The kernel's tap at row offset di = i*DH and column offset dj = j*DW (any shapes that broadcast), read
        from channel w_c as k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j]; 0 off the kernel or where ok is false."""
        tap = (di >= 0) & (di % DH == 0) & (di < KH * DH) & (dj >= 0) & (dj % DW == 0) & (dj < KW * DW) & ok
        i = tl.minimum(tl.maximum(di, 0) // DH, KH - 1)
        j = tl.minimum(tl.maximum(dj, 0) // DW, KW - 1)
        return tl.load(w_c + (ROW0 + ROW_STEP * i) * swh + (COL0 + COL_STEP * j) * sww, mask=tap, other=0.0)

    @triton.jit
    def accumulate(acc, a, t, PREC: tl.constexpr, DOT_F32: tl.constexpr):
        """acc + a @ t in float32: a's dtype on the tensor cores (t cast to it) at precision PREC; with DOT_F32 both
        operands in float32 first (exact for 16-bit operands; the CPU interpreter's 16-bit dot is unreliable)."""
        if DOT_F32:
            return acc + tl.dot(a.to(tl.float32), t.to(tl.float32), input_precision="ieee")
        else:
            return tl.dot(a, t.to(a.dtype), acc, input_precision=PREC)

    @triton.jit
    def step_bounds(first, end, STEP: tl.constexpr, COUNTED: tl.constexpr):
        """(lo, stop, inc) of a loop over first, first + STEP, ... below end: those values themselves or, COUNTED,
        the step index from 0 with at least one step, known to the compiler. Then no path around the loop joins
        the products' results, which would make ptxas wait for each product (sm_90); the extra step of an empty
        range must add zeros. :func:`step_start` maps the loop variable back."""
        if COUNTED:
            return 0, tl.maximum(tl.cdiv(end - first, STEP), 1), 1
        else:
            return first, end, STEP

    @triton.jit
    def step_start(it, first, STEP: tl.constexpr, COUNTED: tl.constexpr):
        """The value first + k*STEP of step it of a loop bounded by :func:`step_bounds`."""
        if COUNTED:
            return first + it * STEP
        else:
            return it
