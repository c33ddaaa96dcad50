"""Direct depthwise 2D convolution on CUDA cores (Triton): forward, input gradient, weight gradient.

How the kernels reuse data. A program owns a *strip* of ``R`` output lines along one spatial axis (the
reuse axis A, with ``KA`` kernel taps) for a 2D tile of (channel, position along the other axis B). The taps
along A are unrolled at compile time: every input line loaded along A feeds up to ``min(R, KA)`` output
lines from registers, so one load serves ~R*KA/(R+KA-1) FMAs instead of one. Taps along B are a runtime
loop. In NCHW the tile is (channels, W) so that warps read contiguous rows; in NHWC it is (positions,
channels) and either spatial axis may be the reuse axis (the one with more taps is chosen).

The input gradient is the same forward kernel run on the output gradient with the flipped kernel; a
strided convolution splits into ``sh*sw`` phases, each a stride-1 convolution with a sub-sampled kernel
written through a strided view of dx. The weight gradient keeps ``JB*KA`` per-thread partial sums, walks a
chunk of strips once per pass of JB kernel columns, and reduces each tile once per pass; the passes of one chunk
run as neighbouring programs, so that the input they all read comes from memory once and from L2 after. One more
launch adds the chunks' partial sums in a fixed order (:mod:`.partial_sum`, deterministic). Large
kernels on small planes take :mod:`.direct_wgrad`'s batch-summed weight gradient instead (:func:`_plan_wgrad`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

from ..._triton import cdiv, next_power_of_2, triton_available
from .. import _streams
from .._launch import FastLauncher, strided_copy
from .partial_sum import sum_partials

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_INT32_MAX = 2**31 - 1


if triton is not None:

    @triton.jit
    def _in_range(i, n):
        """0 <= i < n (two signed compares: on Triton 3.6 the unsigned-compare form ran up to 4x slower)."""
        return (i >= 0) & (i < n)

    @triton.jit
    def _strip_origin(t, P: tl.constexpr, R: tl.constexpr):
        """First output line of strip t: strips interleave P phases so that dilated taps share lines."""
        return (t // P) * (R * P) + t % P

    @triton.jit
    def _fwd_strip(
        x_ptr, w_ptr, b_ptr, y_ptr, n, a0, co, bo, c_ok,
        A_IN, B_IN, A_OUT, B_OUT, sxn, sxc, sxb, syn, syc, syb, pad_a, pad_b,
        SXA: tl.constexpr, SYA: tl.constexpr, SWC: tl.constexpr, SWA: tl.constexpr, SWB: tl.constexpr,
        KA: tl.constexpr, KB: tl.constexpr, SA: tl.constexpr, SB: tl.constexpr,
        DA: tl.constexpr, DB: tl.constexpr, P: tl.constexpr, UNIT: tl.constexpr, NQ: tl.constexpr,
        PSU: tl.constexpr, DU: tl.constexpr,
        R: tl.constexpr, MULT_DIV: tl.constexpr, GROUP: tl.constexpr,
        BLOCK_0: tl.constexpr, BLOCK_1: tl.constexpr,
        MASKED: tl.constexpr, HAS_BIAS: tl.constexpr, INT64: tl.constexpr,
        FIXED: tl.constexpr, A0: tl.constexpr, PAD_A0: tl.constexpr, A_IN0: tl.constexpr, A_OUT0: tl.constexpr,
    ):
        """One strip of R output lines starting at line a0 (FIXED: at A0, with pad_a = PAD_A0, A_IN = A_IN0 and
        A_OUT = A_OUT0, so that input lines in the zero border and output lines past the end are known at compile
        time: they are neither loaded, multiplied nor stored)."""
        accs = ()
        for r in tl.static_range(R):
            accs = accs + (tl.zeros([BLOCK_0, BLOCK_1], dtype=tl.float32),)

        if FIXED:
            ia0 = A0 * SA - PAD_A0  # compile time; line q of the strip is input line ia0 + q*UNIT
            x_base = x_ptr + n.to(tl.int64) * sxn + ia0 * SXA
        else:
            ia0 = a0 * SA - pad_a
            x_base = x_ptr + n.to(tl.int64) * sxn + ia0.to(tl.int64) * SXA
        for g in tl.static_range(GROUP):
            src = (co // MULT_DIV) * GROUP + g
            w_c = w_ptr + (co * GROUP + g) * SWC
            for j in range(KB):
                ib = bo * SB + j * DB - pad_b
                if INT64:
                    x_j = x_base + (src.to(tl.int64) * sxc + ib.to(tl.int64) * sxb)
                else:
                    x_j = x_base + (src * sxc + ib * sxb)
                if MASKED:
                    m_j = _in_range(ib, B_IN) & c_ok
                else:
                    m_j = c_ok
                ws = ()
                for i in tl.static_range(KA):
                    ws = ws + (tl.load(w_c + (i * SWA) + j * SWB, mask=c_ok, other=0.0),)
                xs = ()
                for q in tl.static_range(NQ):
                    if FIXED:  # border lines: a zero placeholder that no FMA reads (conditions written inline stay
                        # compile-time on Triton 3.6, a helper's result does not)
                        if (A0 * SA + q * UNIT >= PAD_A0) & (A0 * SA + q * UNIT < PAD_A0 + A_IN0):
                            xs = xs + (tl.load(x_j + q * UNIT * SXA, mask=m_j, other=0.0).to(tl.float32),)
                        else:
                            xs = xs + (tl.zeros([BLOCK_0, BLOCK_1], dtype=tl.float32),)
                    else:
                        if MASKED:
                            m_q = m_j & _in_range(ia0 + q * UNIT, A_IN)
                        else:
                            m_q = m_j
                        xs = xs + (tl.load(x_j + q * UNIT * SXA, mask=m_q, other=0.0).to(tl.float32),)
                new = ()
                for r in tl.static_range(R):
                    acc = accs[r]
                    for i in tl.static_range(KA):  # input line of (r, i): (r*P*SA + i*DA) / UNIT
                        if FIXED:
                            off = A0 * SA + (r * PSU + i * DU) * UNIT
                            if (off >= PAD_A0) & (off < PAD_A0 + A_IN0) & (A0 + r * P < A_OUT0):
                                acc = acc + xs[r * PSU + i * DU] * ws[i]
                        else:
                            acc = acc + xs[r * PSU + i * DU] * ws[i]
                    new = new + (acc,)
                accs = new

        if HAS_BIAS:
            bias = tl.load(b_ptr + co, mask=c_ok, other=0.0).to(tl.float32)
        if FIXED:
            y_base = y_ptr + n.to(tl.int64) * syn + A0 * SYA
        else:
            y_base = y_ptr + n.to(tl.int64) * syn + a0.to(tl.int64) * SYA
        if INT64:
            y_nc = y_base + (co.to(tl.int64) * syc + bo.to(tl.int64) * syb)
        else:
            y_nc = y_base + (co * syc + bo * syb)
        m_out = c_ok & (bo < B_OUT)
        for r in tl.static_range(R):
            out = accs[r]
            if HAS_BIAS:
                out = out + bias
            if FIXED:
                if A0 + r * P < A_OUT0:
                    tl.store(y_nc + r * P * SYA, out.to(y_ptr.dtype.element_ty), mask=m_out)
            else:
                tl.store(y_nc + r * P * SYA, out.to(y_ptr.dtype.element_ty), mask=m_out & (a0 + r * P < A_OUT))

    @triton.jit
    def depthwise_conv2d_fwd_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr,
        C_OUT, N_STRIPS, A_IN, B_IN, A_OUT, B_OUT,
        sxn, sxc, sxb, syn, syc, syb,
        pad_a, pad_b,
        SXA: tl.constexpr, SYA: tl.constexpr, SWC: tl.constexpr, SWA: tl.constexpr, SWB: tl.constexpr,
        KA: tl.constexpr, KB: tl.constexpr, SA: tl.constexpr, SB: tl.constexpr,
        DA: tl.constexpr, DB: tl.constexpr, P: tl.constexpr, UNIT: tl.constexpr, NQ: tl.constexpr,
        PSU: tl.constexpr, DU: tl.constexpr,
        R: tl.constexpr, MULT_DIV: tl.constexpr, GROUP: tl.constexpr,
        BLOCK_0: tl.constexpr, BLOCK_1: tl.constexpr, CH_AXIS: tl.constexpr,
        MASKED: tl.constexpr, HAS_BIAS: tl.constexpr, INT64: tl.constexpr,
        FIXED_STRIPS: tl.constexpr, FIXED_A0: tl.constexpr, PAD_A0: tl.constexpr, A_IN0: tl.constexpr,
        A_OUT0: tl.constexpr,
    ):
        """y[n, co, a, b] = sum_{g, i, j} x[n, src(co, g), a*SA + i*DA - pad_a, b*SB + j*DB - pad_b] * w[co*GROUP + g, i, j]

        with src(co, g) = (co // MULT_DIV) * GROUP + g and x zero outside its bounds (MASKED) or already
        zero-padded so that every read is in bounds (not MASKED). Strides along the reuse axis A and the
        weight strides are compile-time constants so that every tap's address is an immediate offset.
        FIXED_STRIPS > 0: the launch holds that many strips, starting at output lines FIXED_A0, FIXED_A0 + R, ...
        (P = 1), with pad_a = PAD_A0, A_IN = A_IN0 and A_OUT = A_OUT0, and branches into one body per strip
        compiled with its position, so that taps that read the zero border are left out (:func:`_fwd_strip`);
        grid (N * FIXED_STRIPS, ...). Otherwise strips are placed at run time. Grid: (N * N_STRIPS, blocks along B,
        channel blocks).
        """
        pid_s = tl.program_id(0)
        pid_b = tl.program_id(1)
        pid_c = tl.program_id(2)
        if CH_AXIS == 1:
            co = pid_c * BLOCK_1 + tl.arange(0, BLOCK_1)[None, :]
            bo = pid_b * BLOCK_0 + tl.arange(0, BLOCK_0)[:, None]
        else:
            co = pid_c * BLOCK_0 + tl.arange(0, BLOCK_0)[:, None]
            bo = pid_b * BLOCK_1 + tl.arange(0, BLOCK_1)[None, :]
        c_ok = co < C_OUT
        if FIXED_STRIPS > 0:
            n = pid_s // FIXED_STRIPS
            t = pid_s % FIXED_STRIPS
            for s in tl.static_range(FIXED_STRIPS):
                if t == s:
                    _fwd_strip(x_ptr, w_ptr, b_ptr, y_ptr, n, 0, co, bo, c_ok,
                               A_IN, B_IN, A_OUT, B_OUT, sxn, sxc, sxb, syn, syc, syb, pad_a, pad_b,
                               SXA, SYA, SWC, SWA, SWB, KA, KB, SA, SB, DA, DB, P, UNIT, NQ, PSU, DU, R, MULT_DIV,
                               GROUP, BLOCK_0, BLOCK_1, MASKED, HAS_BIAS, INT64, True, FIXED_A0 + s * R, PAD_A0,
                               A_IN0, A_OUT0)
        else:
            n = pid_s // N_STRIPS
            a0 = _strip_origin(pid_s % N_STRIPS, P, R)
            _fwd_strip(x_ptr, w_ptr, b_ptr, y_ptr, n, a0, co, bo, c_ok,
                       A_IN, B_IN, A_OUT, B_OUT, sxn, sxc, sxb, syn, syc, syb, pad_a, pad_b,
                       SXA, SYA, SWC, SWA, SWB, KA, KB, SA, SB, DA, DB, P, UNIT, NQ, PSU, DU, R, MULT_DIV,
                       GROUP, BLOCK_0, BLOCK_1, MASKED, HAS_BIAS, INT64, False, 0, 0, 0, 0)

    @triton.jit
    def depthwise_conv2d_wgrad_kernel(
        x_ptr, dy_ptr, part_ptr,
        C_OUT, N_STRIPS, TOTAL_STRIPS, STRIPS_PER_PROG, N_BBLOCKS, N_SPLIT, A_IN, B_IN, A_OUT, B_OUT,
        sxn, sxc, sxb, syn, syc, syb,
        pad_a, pad_b,
        SXA: tl.constexpr, SYA: tl.constexpr,
        KA: tl.constexpr, KB: tl.constexpr, SA: tl.constexpr, SB: tl.constexpr,
        DA: tl.constexpr, DB: tl.constexpr, P: tl.constexpr, UNIT: tl.constexpr, NQ: tl.constexpr,
        PSU: tl.constexpr, DU: tl.constexpr,
        R: tl.constexpr, JB: tl.constexpr, MULT_DIV: tl.constexpr,
        BLOCK_0: tl.constexpr, BLOCK_1: tl.constexpr, CH_AXIS: tl.constexpr, MASKED: tl.constexpr,
        INT64: tl.constexpr,
    ):
        """part[k, co, i, j] = sum over this program's strips and B block of dy[n, co, a, b] * x[n, co // MULT_DIV, a*SA + i*DA - pad_a, b*SB + j*DB - pad_b]

        x is zero outside its bounds (MASKED) or pre-padded so that every read is in bounds. The kernel columns
        are taken JB at a time (passes); the N_SPLIT programs of one chunk take every N_SPLIT-th pass each, and
        being neighbours in the grid they read the chunk's lines at about the same time: one read from memory,
        the others from L2. Grid: (strip chunks * N_SPLIT, blocks along B, channel blocks); k = chunk * N_BBLOCKS +
        B block.
        """
        pid_k = tl.program_id(0)
        pid_b = tl.program_id(1)
        pid_c = tl.program_id(2)
        if CH_AXIS == 1:
            co = pid_c * BLOCK_1 + tl.arange(0, BLOCK_1)[None, :]
            bo = pid_b * BLOCK_0 + tl.arange(0, BLOCK_0)[:, None]
            co_1d = pid_c * BLOCK_1 + tl.arange(0, BLOCK_1)
        else:
            co = pid_c * BLOCK_0 + tl.arange(0, BLOCK_0)[:, None]
            bo = pid_b * BLOCK_1 + tl.arange(0, BLOCK_1)[None, :]
            co_1d = pid_c * BLOCK_0 + tl.arange(0, BLOCK_0)
        c_ok = co < C_OUT
        m_dy = c_ok & (bo < B_OUT)
        src = co // MULT_DIV
        if INT64:
            dy_cb = co.to(tl.int64) * syc + bo.to(tl.int64) * syb
        else:
            dy_cb = co * syc + bo * syb
        chunk = pid_k // N_SPLIT
        s_begin = chunk * STRIPS_PER_PROG
        s_end = tl.minimum(s_begin + STRIPS_PER_PROG, TOTAL_STRIPS)
        part_k = part_ptr + (chunk * N_BBLOCKS + pid_b).to(tl.int64) * C_OUT * KA * KB + co_1d * (KA * KB)

        for jb in range(pid_k % N_SPLIT * JB, KB, N_SPLIT * JB):
            accs = ()
            for t in tl.static_range(JB * KA):
                accs = accs + (tl.zeros([BLOCK_0, BLOCK_1], dtype=tl.float32),)
            for s in range(s_begin, s_end):
                n = s // N_STRIPS
                a0 = _strip_origin(s % N_STRIPS, P, R)
                dy_n = dy_ptr + n.to(tl.int64) * syn + a0.to(tl.int64) * SYA + dy_cb
                dys = ()
                for r in tl.static_range(R):
                    dys = dys + (tl.load(dy_n + r * P * SYA, mask=m_dy & (a0 + r * P < A_OUT), other=0.0).to(tl.float32),)
                ia0 = a0 * SA - pad_a
                x_n = x_ptr + n.to(tl.int64) * sxn + ia0.to(tl.int64) * SXA
                for jj in tl.static_range(JB):
                    ib = bo * SB + (jb + jj) * DB - pad_b
                    if INT64:
                        x_j = x_n + (src.to(tl.int64) * sxc + ib.to(tl.int64) * sxb)
                    else:
                        x_j = x_n + (src * sxc + ib * sxb)
                    if MASKED:
                        m_j = _in_range(ib, B_IN) & c_ok & (jb + jj < KB)
                    else:
                        m_j = c_ok & (jb + jj < KB)
                    xs = ()
                    for q in tl.static_range(NQ):
                        if MASKED:
                            m_q = m_j & _in_range(ia0 + q * UNIT, A_IN)
                        else:
                            m_q = m_j
                        xs = xs + (tl.load(x_j + q * UNIT * SXA, mask=m_q, other=0.0).to(tl.float32),)
                    new = ()
                    for t in tl.static_range(JB * KA):
                        acc = accs[t]
                        if t // KA == jj:
                            for r in tl.static_range(R):  # input line of (r, i): (r*P*SA + i*DA) / UNIT
                                acc = acc + xs[r * PSU + (t % KA) * DU] * dys[r]
                        new = new + (acc,)
                    accs = new
            for t in tl.static_range(JB * KA):
                tot = tl.sum(accs[t], axis=1 - CH_AXIS)
                tl.store(part_k + (t % KA) * KB + jb + t // KA, tot, mask=(co_1d < C_OUT) & (jb + t // KA < KB))


_launch_fwd = FastLauncher(depthwise_conv2d_fwd_kernel) if triton is not None else None
_launch_wgrad = FastLauncher(depthwise_conv2d_wgrad_kernel) if triton is not None else None


# forward launches of up to this many strips compile each strip with its position: in one launch that branches into
# one body per strip, or, where the bodies are large (R * KA above _ONE_LAUNCH_TAPS), one launch per strip. One
# kernel holding two large bodies compiles about 4x slower (slak_t.s1.long, Triton 3.6: about 200 s against 40-50 s
# per strip kernel); separate launches lose a tail per launch on short kernels (unireplknet_t.s1 forward, H100:
# 0.194 ms in two launches, 0.151 ms in one)
_FIXED_STRIPS_MAX = 2
_ONE_LAUNCH_TAPS = 512


@dataclass(frozen=True)
class DirectConfig:
    """Tile shape of one launch.

    r: output lines per strip; block_0 x block_1: the (channel, position) tile (positions, channel in NHWC);
    prepad: copy the input into a zero-bordered buffer so that the inner loop needs no bounds checks;
    strips_per_prog / jb / split: weight gradient only (strips per program; kernel columns per pass; programs
    that share one chunk of strips, each taking every split-th pass, 0: one per pass);
    skip_border: forward and input gradient, where one or two strips span the output along A (no dilation
    phases) and the input is not pre-padded: each strip is compiled with its position (see _FIXED_STRIPS_MAX),
    so that taps that only read the zero border are left out.
    """

    r: int
    block_0: int
    block_1: int
    num_warps: int
    prepad: bool = False
    strips_per_prog: int = 0
    jb: int = 1
    skip_border: bool = True
    split: int = 0


@dataclass(frozen=True)
class _Axes:
    """A problem seen along (A = reuse axis, B = loop axis); everything the kernels need besides pointers."""

    a_in: int
    b_in: int
    a_out: int
    b_out: int
    ka: int
    kb: int
    sa: int
    sb: int
    da: int
    db: int
    pad_a: int
    pad_b: int
    ch_axis: int
    swap: bool  # True when A is W

    @property
    def p(self) -> int:
        return self.da if self.sa == 1 else 1

    @property
    def unit(self) -> int:
        return math.gcd(self.p * self.sa, self.da)

    def nq(self, r: int) -> int:
        return ((r - 1) * self.p * self.sa + (self.ka - 1) * self.da) // self.unit + 1

    def n_strips(self, r: int) -> int:
        p = self.p
        return p * cdiv(self.a_out, r * p)


def _axes(x: torch.Tensor, kh, kw, stride, dilation, pad_t, pad_l, out_hw) -> _Axes:
    return _axes_from(tuple(x.shape), x.stride(), kh, kw, stride, dilation, pad_t, pad_l, out_hw)


def _axes_from(x_shape, x_stride, kh, kw, stride, dilation, pad_t, pad_l, out_hw) -> _Axes:
    h, w = x_shape[-2:]
    ho, wo = out_hw
    nhwc = x_shape[1] > 1 and x_stride[1] == 1
    if nhwc:
        swap = kw > kh
    else:
        swap = abs(x_stride[2]) < abs(x_stride[3])  # A must be the axis with the larger stride
    if not swap:
        return _Axes(h, w, ho, wo, kh, kw, stride[0], stride[1], dilation[0], dilation[1], pad_t, pad_l,
                     1 if nhwc else 0, False)
    return _Axes(w, h, wo, ho, kw, kh, stride[1], stride[0], dilation[1], dilation[0], pad_l, pad_t,
                 1 if nhwc else 0, True)


def _pow2_at_most(v: int, cap: int) -> int:
    return min(cap, next_power_of_2(max(1, v)))


@functools.lru_cache(maxsize=4096)
def choose_config(ax: _Axes, c_out: int, direction: str = "fwd", elem_size: int = 4) -> DirectConfig:
    """Heuristic tile shape: long strips along the reuse axis, ~128 threads, one or two outputs per thread.

    Measured with benchmarks/tune_direct.py (benchmarks/results/: tune_direct_h200_run*.json, h100_2026-11-24/):
    bounds checks in the inner loop are cheaper than a zero-padded copy of the input except for 16-bit inputs
    with the largest kernels on planes at least half the size of their border (forward, K >= 21) or large
    kernels on large planes (weight gradient); NHWC wants 8x32 (position x channel) tiles for small kernels'
    forward (16 channels where 32 would leave lanes idle), 4x32 for small kernels' weight gradient in one pass or
    on wide rows, and 16-channel tiles otherwise; the weight gradient wants all kernel columns in one pass for
    small kernels (no re-reads of the input), two for NHWC and large NCHW planes, else one.
    """
    lines = cdiv(ax.a_out, ax.p)
    # tall kernels (more than 32 taps along A) get strips of up to ~1536 / ka lines: each strip re-reads ka - 1
    # halo lines (slak_t.s1.long, 51x5, channels_last fp32, H100: 28 lines against 14, forward 0.416 against
    # 0.538 ms, weight gradient 0.663 against 0.777 ms)
    tall = ax.ka > 32
    r_max = 8 if ax.ka == 1 else max(4, min(32, (1536 if tall else 1024) // ax.ka))
    if direction == "wgrad" and not tall:
        r_max = min(r_max, 16)
    best = None
    for r in range(max(1, r_max // 2), r_max + 1):
        score = ((cdiv(lines, r) * r - lines) / max(lines, 1), -r)
        if best is None or score < best[0]:
            best = (score, r)
    r = max(1, min(best[1], lines))
    big = ax.ka * ax.kb >= 169
    all_columns = direction == "wgrad" and ax.ka * ax.kb <= 64 and ax.da == 1  # wgrad: every kernel column in one pass
    block_32 = max(16, _pow2_at_most(c_out, 32))  # 32-channel tiles (16 for at most 16 channels)
    if block_32 == 32 and cdiv(c_out, 16) * 16 < cdiv(c_out, 32) * 32:
        # 16-channel tiles where 32 would leave lanes idle (unireplknet_t.s1, 80 channels, channels_last fp32,
        # H100: 8x16 tiles 0.178 / 0.180 ms forward / input gradient against 0.206 / 0.206 with 4x32)
        block_lean = 16
    else:
        block_lean = block_32
    num_warps = 0  # 0: one output per thread
    if ax.ch_axis == 0:
        block_1 = max(16, _pow2_at_most(ax.b_out, 128))
        block_0 = max(1, min(128 // block_1, _pow2_at_most(c_out, 64)))
    elif all_columns or (direction == "wgrad" and not big and ax.b_out >= 128):
        # small kernels' weight gradient: 4 positions x 32 channels (8 x 16 up to 16 channels), 4 warps, where every
        # kernel column fits one pass or the output rows are at least 128 wide (channels_last fp32, H100 BT/BU:
        # yolov13_n.dsconv 0.077, downsample.s2 0.348, puyun.lka_latlon 0.411, cfsr.convmod 0.245 ms against
        # 0.102, 0.389, 0.521, 0.269 with the 8x32 / 8x16 tiles before; convnext_t.s1 0.188 against 0.181;
        # van_b0.lka_dil's 56-wide rows ran 0.428 against 0.308 with 8x16)
        block_1 = block_32
        block_0 = max(1, min(128 // block_1, _pow2_at_most(ax.b_out, 64)))
    elif direction == "fwd" and not big:
        # small kernels: 8 positions x 32 channels (16 where 32 would leave lanes idle), 4 warps at stride 1
        # (cfsr.convmod, 48 channels, and puyun.lka_latlon, channels_last fp32, H100 BT: forward 0.105 / 0.149 ms
        # against 0.214 / 0.181 with 8x32 tiles in 8 warps; convnext_t.s1 0.084 either way), 8 at larger strides
        # (downsample.s2, BU: 0.181 against 0.284 ms in 4 warps)
        block_1 = block_lean
        block_0 = max(1, min(8, _pow2_at_most(ax.b_out, 64)))
        num_warps = 4 if ax.sa == 1 and ax.sb == 1 else 8
    else:
        block_1 = 16 if direction == "wgrad" else block_lean
        block_0 = max(1, min(128 // block_1, _pow2_at_most(ax.b_out, 64)))
    num_warps = num_warps or max(1, min(8, block_0 * block_1 // 32))
    if direction == "wgrad":
        large_plane = ax.a_out * ax.b_out >= 1024
        # NHWC with 17..32 taps along A: two columns only without bounds checks (replknet_31b.s1, H100: 62
        # masked partial sums ran 1.6x slower than one column, 2.5x slower than pre-padded)
        prepad = big and large_plane and (elem_size == 2 or (ax.ch_axis == 1 and 16 < ax.ka <= 32))
        if all_columns:
            jb = ax.kb
        elif ax.ch_axis == 1:
            jb = 2 if ax.ka <= 16 or (prepad and ax.ka <= 32) else 1
        elif ax.ka <= 32 and large_plane:
            jb = 2
        else:
            jb = 1
    else:
        jb = 1
        # 16-bit inputs, K >= 21, where the zero border adds at most twice the plane (H100, AY: replknet_31b.s1
        # bf16 1.636 against 1.755 ms; s2 and s3, whose borders are 3x and 7x the plane, 0.682 against 0.760 and
        # 0.354 against 0.418 ms without the copy)
        span_a = max((ax.a_out - 1) * ax.sa + (ax.ka - 1) * ax.da + 1, ax.pad_a + ax.a_in)
        span_b = max((ax.b_out - 1) * ax.sb + (ax.kb - 1) * ax.db + 1, ax.pad_b + ax.b_in)
        prepad = elem_size == 2 and ax.ka * ax.kb >= 400 and span_a * span_b <= 3 * ax.a_in * ax.b_in
    return DirectConfig(r, block_0, block_1, num_warps, prepad, 0, jb)


def _prepad_plan(ax: _Axes, a_cover: int, b_cover: int):
    """F.pad argument that makes every read of every tile (overhang included) in bounds, and the new axes."""
    a_need = (a_cover - 1) * ax.sa + (ax.ka - 1) * ax.da + 1
    b_need = (b_cover - 1) * ax.sb + (ax.kb - 1) * ax.db + 1
    a_end = max(a_need, ax.pad_a + ax.a_in) - (ax.pad_a + ax.a_in)
    b_end = max(b_need, ax.pad_b + ax.b_in) - (ax.pad_b + ax.b_in)
    pads = (ax.pad_a, a_end, ax.pad_b, b_end) if ax.swap else (ax.pad_b, b_end, ax.pad_a, a_end)
    new = _Axes(ax.a_in + ax.pad_a + a_end, ax.b_in + ax.pad_b + b_end, ax.a_out, ax.b_out, ax.ka, ax.kb,
                ax.sa, ax.sb, ax.da, ax.db, 0, 0, ax.ch_axis, ax.swap)
    return pads, new


def _tile_grid(ax: _Axes, cfg: DirectConfig, c_out: int):
    """(blocks along B, channel blocks, B positions covered)."""
    if ax.ch_axis == 1:
        n_b, n_c, bb = cdiv(ax.b_out, cfg.block_0), cdiv(c_out, cfg.block_1), cfg.block_0
    else:
        n_b, n_c, bb = cdiv(ax.b_out, cfg.block_1), cdiv(c_out, cfg.block_0), cfg.block_1
    if n_b > 65535 or n_c > 65535:
        raise ValueError(f"direct: problem too wide for one launch ({n_b} x {n_c} tiles)")
    return n_b, n_c, n_b * bb


@dataclass(frozen=True)
class _FwdPlan:
    """Everything about one forward launch that depends only on shapes, strides and arguments (cached)."""

    grid: Tuple[int, int, int]
    ints: Tuple[int, ...]
    consts: Tuple[Tuple[str, object], ...]  # of every launch but FIXED_A0, which ``a0s`` gives per launch
    w_offset: Tuple[int, int]  # first tap (h, w) of the weight view
    w_nhwc: bool  # weights copied to (kh, kw, C, 1) so that channel loads coalesce
    x_pads: Optional[Tuple[int, int, int, int]]  # F.pad argument when the input is pre-padded
    w_f32: bool = False  # 16-bit weights copied to fp32 (dense), so that the inner loop converts none
    a0s: Tuple[int, ...] = (0,)  # FIXED_A0 of each launch (one launch per strip: each strip's first line)

    @functools.cached_property
    def launches(self) -> Tuple[Tuple[tuple, dict], ...]:
        """((plan key, kwargs), ...): one launch per entry of ``a0s``."""
        return tuple(((self, a0), dict(self.consts, FIXED_A0=a0)) for a0 in self.a0s)


@functools.lru_cache(maxsize=1024)
def _plan_fwd(x_shape, x_stride, y_shape, y_stride, w_shape, w_stride, elem_size, stride, dilation, pad_t, pad_l,
              mult_div, group, taps, has_bias, config) -> _FwdPlan:
    """taps = ((h0, h_step), (w0, w_step)): kernel tap t along H reads weight row h0 + t*h_step (same for W)."""
    n, c_out, ho, wo = y_shape
    (h0, h_step), (w0, w_step) = taps
    kh, kw = _tap_count(w_shape[2], h0, h_step), _tap_count(w_shape[3], w0, w_step)
    ax = _axes_from(x_shape, x_stride, kh, kw, stride, dilation, pad_t, pad_l, (ho, wo))
    cfg = config or choose_config(ax, c_out, "fwd", elem_size)
    w_nhwc = ax.ch_axis == 1
    # 16-bit weights of 100 taps or more go to the kernel as fp32: a loaded 16-bit value costs two more
    # instructions (zero default, widening) in an inner loop that issues about one load per five FMAs
    w_f32 = elem_size == 2 and w_shape[2] * w_shape[3] >= 100  # the whole weight: input-gradient phases share it
    if w_nhwc:  # copy laid out (kh, kw, C*group, 1)
        swc, swh, sww = 1, w_shape[3] * w_shape[0], w_shape[0]
    elif w_f32:  # dense copy
        swc, swh, sww = w_shape[2] * w_shape[3], w_shape[3], 1
    else:
        swc, swh, sww = w_stride[0], w_stride[2], w_stride[3]
    sw_tap_h, sw_tap_w = swh * h_step, sww * w_step
    swa, swb = (sw_tap_w, sw_tap_h) if ax.swap else (sw_tap_h, sw_tap_w)
    n_strips = ax.n_strips(cfg.r)
    n_b, n_c, b_cover = _tile_grid(ax, cfg, c_out)
    x_pads, ax, strides, consts = _launch_layout(ax, cfg, n_strips, b_cover, x_shape, x_stride, y_shape, y_stride)
    consts.update(SWC=swc, SWA=swa, SWB=swb, MULT_DIV=mult_div, GROUP=group, HAS_BIAS=has_bias)
    fixed = cfg.skip_border and not cfg.prepad and ax.p == 1 and 0 < n_strips <= _FIXED_STRIPS_MAX
    consts.update(PAD_A0=ax.pad_a if fixed else 0, A_IN0=ax.a_in if fixed else 0, A_OUT0=ax.a_out if fixed else 0)
    ints = (c_out, n_strips, ax.a_in, ax.b_in, ax.a_out, ax.b_out, *strides, ax.pad_a, ax.pad_b)
    if fixed and n_strips > 1 and cfg.r * ax.ka * group > _ONE_LAUNCH_TAPS:  # one launch per strip
        consts.update(FIXED_STRIPS=1)
        return _FwdPlan((n, n_b, n_c), ints, tuple(consts.items()), (h0, w0), w_nhwc, x_pads, w_f32,
                        tuple(t * cfg.r for t in range(n_strips)))
    consts.update(FIXED_STRIPS=n_strips if fixed else 0)
    return _FwdPlan((n * n_strips, n_b, n_c), ints, tuple(consts.items()), (h0, w0), w_nhwc, x_pads, w_f32)


def _launch_layout(ax: _Axes, cfg: DirectConfig, n_strips: int, b_cover: int, x_shape, x_stride, o_shape, o_stride):
    """What both kernels share: the pre-padding plan, (n, c, b) strides of input and output (the A strides are
    compile-time constants) and the compile-time geometry. Returns (F.pad argument or None, axes, strides, consts)."""
    x_pads = None
    if cfg.prepad:
        x_pads, ax = _prepad_plan(ax, n_strips * cfg.r, b_cover)
        x_shape, x_stride = _padded_layout(x_shape, x_stride, x_pads)
    sxn, sxc, sxa, sxb = _strides_of(x_stride, ax.swap)
    son, soc, soa, sob = _strides_of(o_stride, ax.swap)
    int64 = _span(x_shape, x_stride) > _INT32_MAX // 2 or _span(o_shape, o_stride) > _INT32_MAX // 2
    consts = dict(
        SXA=sxa, SYA=soa,
        KA=ax.ka, KB=ax.kb, SA=ax.sa, SB=ax.sb, DA=ax.da, DB=ax.db, P=ax.p, UNIT=ax.unit, NQ=ax.nq(cfg.r),
        PSU=ax.p * ax.sa // ax.unit, DU=ax.da // ax.unit, R=cfg.r, BLOCK_0=cfg.block_0, BLOCK_1=cfg.block_1,
        CH_AXIS=ax.ch_axis, MASKED=not cfg.prepad, INT64=int64, num_warps=cfg.num_warps,
    )
    return x_pads, ax, (sxn, sxc, sxb, son, soc, sob), consts


def _tap_count(k: int, first: int, step: int) -> int:
    """Number of taps first, first+step, ... inside [0, k) (step may be negative)."""
    if step > 0:
        return (k - 1 - first) // step + 1
    return first // (-step) + 1


def _span(shape, stride) -> int:
    return sum((s - 1) * abs(st) for s, st in zip(shape, stride) if s > 0) + 1


def _dense_strides(shape, nhwc: bool):
    n, c, h, w = shape
    return (c * h * w, 1, c * w, c) if nhwc else (c * h * w, h * w, w, 1)


def _padded_layout(shape, stride, pads):
    """Shape and strides of :func:`_pad_input`'s result (the input's memory format, as the kernels read it)."""
    n, c, h, w = shape
    shape = (n, c, h + pads[2] + pads[3], w + pads[0] + pads[1])
    return shape, _dense_strides(shape, c > 1 and stride[1] == 1)


def _pad_input(x: torch.Tensor, pads) -> torch.Tensor:
    """Zero-bordered copy of x, dense in the layout :func:`_padded_layout` predicts.

    F.pad may pick the other layout for ambiguous inputs (a 1x1 plane is both NCHW and NHWC).
    """
    nhwc = x.shape[1] > 1 and x.stride(1) == 1
    y = torch.nn.functional.pad(x, pads)
    return y.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)


def _strides_of(stride, swap: bool):
    """(n, c, a, b) strides of an NCHW-indexed tensor."""
    sn, sc, sh, sw = stride
    return (sn, sc, sw, sh) if swap else (sn, sc, sh, sw)


def launch_fwd(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    y: torch.Tensor,
    stride: Sequence[int],
    dilation: Sequence[int],
    pad_t: int,
    pad_l: int,
    mult_div: int,
    group: int,
    taps=((0, 1), (0, 1)),
    config: Optional[DirectConfig] = None,
) -> torch.Tensor:
    """Run the forward kernel: y (N, C_out, Ho, Wo) <- x (N, C_src, H, W) with weight (C_out*group, 1, kh, kw).

    ``taps`` selects (first tap, step) of the kernel along H and W: the input gradient uses it to apply a
    reversed, sub-sampled kernel through negative strides, without copying the weight. Pads may be negative.
    y may be any strided view; it is written in place.
    """
    plan = _plan_fwd(tuple(x.shape), x.stride(), tuple(y.shape), y.stride(), tuple(weight.shape), weight.stride(),
                     x.element_size(), tuple(stride), tuple(dilation), pad_t, pad_l, mult_div, group, taps,
                     bias is not None, config)
    return run_planned_fwd(plan, x, weight, bias, y)


def _kernel_weight(plan: _FwdPlan, weight: torch.Tensor) -> torch.Tensor:
    """The weight as the plan's kernel reads it: (kh, kw, C, 1) dense for channels_last, fp32 for w_f32."""
    if plan.w_nhwc:
        weight = weight.permute(2, 3, 0, 1)
        return weight.to(torch.float32, memory_format=torch.contiguous_format) if plan.w_f32 else weight.contiguous()
    if plan.w_f32:  # a dtype change always copies; the copy is dense
        return weight.to(torch.float32, memory_format=torch.contiguous_format)
    return weight


def run_planned_fwd(plan: _FwdPlan, x, weight, bias, y, kernel_weight=None) -> torch.Tensor:
    """Launch a planned forward (the tensors must have the shapes and strides the plan was made for).
    kernel_weight: :func:`_kernel_weight` of ``weight`` for this plan, if already made."""
    weight = _kernel_weight(plan, weight) if kernel_weight is None else kernel_weight
    if plan.w_nhwc:
        w_view = weight[plan.w_offset[0]:, plan.w_offset[1]:] if any(plan.w_offset) else weight
    else:
        w_view = weight[:, :, plan.w_offset[0]:, plan.w_offset[1]:] if any(plan.w_offset) else weight
    if plan.x_pads is not None:
        x = _pad_input(x, plan.x_pads)
    args = (x, w_view, bias if bias is not None else w_view, y, *plan.ints)
    scratch = lambda: strided_copy(y)  # noqa: E731
    launches = plan.launches
    if (len(launches) > 1 and _streams.worth_forking(y, y.numel() * launches[0][1]["KA"] * launches[0][1]["KB"])
            and all(_launch_fwd.checked(key, plan.grid, args) for key, _ in launches)):
        # each launch writes its own output lines: side by side they fill each other's last wave. A launch's
        # first (checked) run compares the whole output and so runs alone, before any fork.
        _streams.run_forked(y.device, [functools.partial(_launch_fwd, key, plan.grid, args, kwargs, 3, scratch)
                                       for key, kwargs in launches], _streams.LAUNCH_SIDE)
        return y
    for key, kwargs in launches:
        _launch_fwd(key, plan.grid, args, kwargs, 3, scratch)
    return y


def plan_conv_fwd(x, weight, bias, y_shape, y_stride, stride, pad, dilation) -> _FwdPlan:
    """The forward plan of :func:`conv_fwd` for an output of ``y_shape``/``y_stride`` (see run_planned_fwd)."""
    return _plan_fwd(tuple(x.shape), x.stride(), tuple(y_shape), tuple(y_stride), tuple(weight.shape),
                     weight.stride(), x.element_size(), tuple(stride), tuple(dilation), pad[0], pad[2],
                     weight.shape[0] // x.shape[1], 1, ((0, 1), (0, 1)), bias is not None, None)



def conv_fwd(x, weight, bias, stride, pad, dilation, out: torch.Tensor, config=None) -> torch.Tensor:
    """Forward into ``out`` (pre-allocated, any strides). weight: (C*m, 1, kh, kw)."""
    launch_fwd(x, weight, bias, out, stride, dilation, pad[0], pad[2], weight.shape[0] // x.shape[1], 1,
               config=config)
    return out


def _dgrad_phase(k: int, s: int, d: int, p: int, phase: int):
    """Taps of one input-gradient phase along one axis.

    Returns (first tap, tap step, new dilation, new pad) or None when the phase gets no tap: the phase is a
    stride-1 correlation of dy (dilation d', pad p') with the kernel taps first, first + step, ... (the
    sub-sampled kernel reversed).
    """
    taps = [i for i in range(k) if (i * d - phase - p) % s == 0]
    if not taps:
        return None
    g = math.gcd(d, s)
    p_new = (taps[-1] * d - phase - p) // s
    return taps[-1], -(s // g), d // g, p_new


@functools.lru_cache(maxsize=1024)
def _dgrad_phases(kh, kw, stride, pad_t, pad_l, dilation):
    out = []
    for ph in range(stride[0]):
        for pw in range(stride[1]):
            th = _dgrad_phase(kh, stride[0], dilation[0], pad_t, ph)
            tw = _dgrad_phase(kw, stride[1], dilation[1], pad_l, pw)
            out.append((ph, pw, th, tw))
    return tuple(out)


def conv_dgrad(grad_out, x_shape, weight, stride, pad, dilation, out: torch.Tensor, config=None) -> torch.Tensor:
    """Input gradient into ``out`` (N, C, H, W); stride > 1 splits into stride_h*stride_w phases."""
    return run_planned_dgrad(plan_conv_dgrad(grad_out, out, weight, stride, pad, dilation, config), stride,
                             grad_out, weight, out)


def plan_conv_dgrad(grad_out, out, weight, stride, pad, dilation, config=None) -> tuple:
    """:func:`conv_dgrad` as a list of steps for these tensors' shapes and strides (see run_planned_dgrad):
    ((phase h, phase w), forward plan, or None for a phase that gets no tap and is zeroed)."""
    m = weight.shape[0] // out.shape[1]
    sh, sw = stride
    steps = []
    for ph, pw, th, tw in _dgrad_phases(weight.shape[2], weight.shape[3], tuple(stride), pad[0], pad[2],
                                        tuple(dilation)):
        view = out if (sh, sw) == (1, 1) else out[:, :, ph::sh, pw::sw]
        if view.numel() == 0:
            continue
        if th is None or tw is None:
            steps.append(((ph, pw), None))
            continue
        (i0, si, dh, p_h), (j0, sj, dw, p_w) = th, tw
        plan = _plan_fwd(tuple(grad_out.shape), grad_out.stride(), tuple(view.shape), view.stride(),
                         tuple(weight.shape), weight.stride(), grad_out.element_size(), (1, 1), (dh, dw), p_h, p_w,
                         1, m, ((i0, si), (j0, sj)), False, config)
        steps.append(((ph, pw), plan))
    return tuple(steps)


def run_planned_dgrad(steps, stride, grad_out, weight, out) -> torch.Tensor:
    sh, sw = stride
    kernel_weight = None  # the phases share one weight layout: made once
    for (ph, pw), plan in steps:
        view = out if (sh, sw) == (1, 1) else out[:, :, ph::sh, pw::sw]
        if plan is None:
            view.zero_()
        else:
            if kernel_weight is None:
                kernel_weight = _kernel_weight(plan, weight)
            run_planned_fwd(plan, grad_out, weight, None, view, kernel_weight)
    return out


@dataclass(frozen=True)
class _WgradPlan:
    """One weight-gradient launch of either kernel: part (chunks, C_out, ka, kb) of partial sums is written by
    ``launch`` and summed over chunks (:func:`run_planned_wgrad`)."""

    grid: Tuple[int, int, int]
    part_shape: Tuple[int, int, int, int]
    ints: Tuple[int, ...]
    consts: Tuple[Tuple[str, object], ...]
    x_pads: Optional[Tuple[int, int, int, int]]
    dy_nhwc: Optional[bool]  # layout grad_out must be converted to, if any
    swap: bool
    launch: FastLauncher

    @functools.cached_property
    def kwargs(self) -> dict:
        return dict(self.consts)


@functools.lru_cache(maxsize=1024)
def _plan_wgrad(x_shape, x_stride, dy_shape, dy_stride, kh, kw, elem_size, stride, dilation, pad_t, pad_l, config,
                sms, per_prog=0, split=0) -> _WgradPlan:
    """The weight-gradient launch: :mod:`.direct_wgrad`'s kernel for a PlanesConfig (or by default where
    :func:`direct_wgrad.preferred` and its column offsets fit 32 bits), else this module's. per_prog > 0 sets the
    strips (or items) each program walks, split > 0 the programs that share a chunk's passes (strip kernel only),
    in place of the config's."""
    from . import direct_wgrad

    n, c_out, ho, wo = dy_shape
    ax = _axes_from(x_shape, x_stride, kh, kw, stride, dilation, pad_t, pad_l, (ho, wo))
    dy_is_nhwc = c_out > 1 and dy_stride[1] == 1
    dy_nhwc = None
    if c_out > 1 and ax.ch_axis != int(dy_is_nhwc):
        dy_nhwc = bool(ax.ch_axis)
        dy_stride = _dense_strides(dy_shape, dy_nhwc)
    mult = c_out // x_shape[1]
    dy_strides = _strides_of(dy_stride, ax.swap)
    if isinstance(config, direct_wgrad.PlanesConfig) or (
            config is None and direct_wgrad.preferred(ax) and direct_wgrad.columns_fit(ax, dy_strides)):
        cfg = config or direct_wgrad.choose_config(ax, c_out)
        if per_prog > 0:
            cfg = dataclasses.replace(cfg, items_per_prog=per_prog)
        int64 = _span(x_shape, x_stride) > _INT32_MAX // 2 or _span(dy_shape, dy_stride) > _INT32_MAX // 2
        return direct_wgrad.make_plan(ax, cfg, n, c_out, mult, _strides_of(x_stride, ax.swap), dy_strides, int64,
                                      dy_nhwc, sms)
    cfg = config or choose_config(ax, c_out, "wgrad", elem_size)
    if per_prog > 0:
        cfg = dataclasses.replace(cfg, strips_per_prog=per_prog)
    if split > 0:
        cfg = dataclasses.replace(cfg, split=split)
    n_strips = ax.n_strips(cfg.r)
    total = n * n_strips
    n_b, n_c, b_cover = _tile_grid(ax, cfg, c_out)
    passes = cdiv(ax.kb, cfg.jb)
    split = min(passes, cfg.split) if cfg.split > 0 else passes
    per = cfg.strips_per_prog
    if per <= 0:  # enough chunks to fill the machine, long enough to amortize the reduction (H100, fp32 NCHW,
        # CF: counting the pass programs, 4 per SM, slak_t.s1.long ran 0.858 ms against 0.612 with this count)
        want_chunks = max(1, (4 * sms) // max(1, n_b * n_c))
        per = max(1, cdiv(total, want_chunks))
    chunks = cdiv(total, per)
    if chunks * split > 2**31 - 1:
        raise ValueError(f"direct: too many weight-gradient programs ({chunks} x {split})")
    x_pads, ax, strides, consts = _launch_layout(ax, cfg, n_strips, b_cover, x_shape, x_stride, dy_shape, dy_stride)
    consts.update(JB=cfg.jb, MULT_DIV=mult)
    ints = (c_out, n_strips, total, per, n_b, split, ax.a_in, ax.b_in, ax.a_out, ax.b_out, *strides, ax.pad_a,
            ax.pad_b)
    return _WgradPlan((chunks * split, n_b, n_c), (chunks * n_b, c_out, ax.ka, ax.kb), ints, tuple(consts.items()),
                      x_pads, dy_nhwc, ax.swap, _launch_wgrad)


@functools.lru_cache(maxsize=16)
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4


def conv_wgrad(grad_out, x, weight_shape, stride, pad, dilation, config=None, dtype=torch.float32) -> torch.Tensor:
    """Weight gradient (C*m, 1, kh, kw) in ``dtype``. config: a DirectConfig, a direct_wgrad.PlanesConfig, or None."""
    return run_planned_wgrad(plan_conv_wgrad(grad_out, x, weight_shape, stride, pad, dilation, config), grad_out, x,
                             dtype)


def plan_conv_wgrad(grad_out, x, weight_shape, stride, pad, dilation, config=None, per_prog=0,
                    split=0) -> _WgradPlan:
    """The launch plan of :func:`conv_wgrad` for these tensors (per_prog, split: see :func:`_plan_wgrad`)."""
    return _plan_wgrad(tuple(x.shape), x.stride(), tuple(grad_out.shape), grad_out.stride(), weight_shape[-2],
                       weight_shape[-1], x.element_size(), tuple(stride), tuple(dilation), pad[0], pad[2], config,
                       _sm_count(x.device), per_prog, split)


def run_planned_wgrad(plan: _WgradPlan, grad_out, x, dtype=torch.float32) -> torch.Tensor:
    """(C_out, 1, kh, kw) weight gradient in ``dtype`` of a plan of either kernel."""
    if plan.dy_nhwc is not None:
        grad_out = grad_out.contiguous(memory_format=torch.channels_last if plan.dy_nhwc else torch.contiguous_format)
    if plan.x_pads is not None:
        x = _pad_input(x, plan.x_pads)
    part = torch.empty(plan.part_shape, device=x.device, dtype=torch.float32)
    if part.shape[0] == 0:  # an empty batch: no gradient
        _, c_out, ka, kb = plan.part_shape
        return torch.zeros((c_out, 1, kb, ka) if plan.swap else (c_out, 1, ka, kb), dtype=dtype, device=x.device)
    plan.launch(plan, plan.grid, (x, grad_out, part, *plan.ints), plan.kwargs, 2, lambda: part.clone())
    return sum_partials(part, plan.swap, dtype)


def unsupported_reason_for(prob) -> Optional[str]:
    """None when the direct kernels can serve this Problem, else why not."""
    from ..._triton import interpreting

    if not triton_available():
        return "Triton is not installed"
    if prob.device.type == "cuda" and interpreting():
        return "TRITON_INTERPRET=1 runs Triton on the CPU only"
    if prob.device.type not in ("cuda", "cpu") or (prob.device.type == "cpu" and not interpreting()):
        return f"tensors on {prob.device} (Triton kernels need CUDA, or TRITON_INTERPRET=1 on CPU)"
    if prob.dtype not in SUPPORTED_DTYPES:
        return f"dtype {prob.dtype} (direct supports float32, float16, bfloat16)"
    return None
