"""Direct weight gradient as a batch-summed forward convolution (Triton, CUDA cores).

    dw[co, i, j] = sum_n sum_{y, x} dy[n, co, y, x] * x[n, co // m, y*sa + i*da - pad_a, x*sb + j*db - pad_b]

For one (n, co) plane this is a convolution of the input whose kernel is the output-gradient plane and whose
output is the kh x kw weight gradient (output step = the convolution's dilation, tap step = its stride). A
program owns R weight lines along the reuse axis A for a (channel, weight position along B) tile and keeps them
as R partial sums per thread. It walks a chunk of (image, block of TA output-gradient lines) items: the TA lines
are unrolled, the output-gradient columns are a runtime loop, so every input line loaded feeds up to
min(R, TA) weight lines, as in the forward kernel. Batch and plane are reduced in registers; one more launch
adds the chunks' partial sums in a fixed order (:mod:`.partial_sum`, deterministic).

:mod:`.direct`'s weight-gradient kernel holds kh*kw partial sums per thread instead, which keeps its strips
short on large kernels; :func:`preferred` picks between the two.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Tuple

from ..._triton import triton_available
from .._launch import FastLauncher
from .direct import _WgradPlan, _pow2_at_most

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None


if triton is not None:

    @triton.jit
    def depthwise_conv2d_wgrad_planes_kernel(
        x_ptr, dy_ptr, part_ptr,
        C_OUT, N_STRIPS, TOTAL_ITEMS, ITEMS_PER_PROG, NY, A_IN, B_IN, A_DY, B_DY, KA, KB,
        sxn, sxc, sxb, syn, syc, syb,
        pad_a, pad_b,
        SXA: tl.constexpr, SYA: tl.constexpr, SA: tl.constexpr, SB: tl.constexpr, DA: tl.constexpr,
        DB: tl.constexpr, UNIT: tl.constexpr, NQ: tl.constexpr, R: tl.constexpr, TA: tl.constexpr,
        MULT_DIV: tl.constexpr, BLOCK_0: tl.constexpr, BLOCK_1: tl.constexpr, CH_AXIS: tl.constexpr,
        INT64: tl.constexpr, WHOLE_A: tl.constexpr, PAD_A0: tl.constexpr, A_IN0: tl.constexpr,
    ):
        """part[k, co, i, j] = sum over chunk k's items (n, y block) of dy[n, co, y, x] * x[n, co // MULT_DIV, y*SA + i*DA - pad_a, x*SB + j*DB - pad_b]

        for this program's R weight lines i and (channel, j) tile; x is zero outside its bounds. WHOLE_A: one
        program holds every weight line and one block every output-gradient line (N_STRIPS = NY = 1), and
        pad_a = PAD_A0, A_IN = A_IN0, so input lines in the zero border are known at compile time: they are neither
        loaded nor multiplied. Grid: (chunks * N_STRIPS, blocks along B, channel blocks).
        """
        pid_k = tl.program_id(0)
        pid_b = tl.program_id(1)
        pid_c = tl.program_id(2)
        chunk = pid_k // N_STRIPS
        i0 = (pid_k % N_STRIPS) * R
        if CH_AXIS == 1:
            co = pid_c * BLOCK_1 + tl.arange(0, BLOCK_1)[None, :]
            jo = pid_b * BLOCK_0 + tl.arange(0, BLOCK_0)[:, None]
        else:
            co = pid_c * BLOCK_0 + tl.arange(0, BLOCK_0)[:, None]
            jo = pid_b * BLOCK_1 + tl.arange(0, BLOCK_1)[None, :]
        c_ok = co < C_OUT
        src = co // MULT_DIV
        if INT64:
            x_c = src.to(tl.int64) * sxc
            dy_c = co.to(tl.int64) * syc
        else:
            x_c = src * sxc
            dy_c = co * syc

        accs = ()
        for r in tl.static_range(R):
            accs = accs + (tl.zeros([BLOCK_0, BLOCK_1], dtype=tl.float32),)

        it_begin = chunk * ITEMS_PER_PROG
        it_end = tl.minimum(it_begin + ITEMS_PER_PROG, TOTAL_ITEMS)
        for it in range(it_begin, it_end):
            n = it // NY
            y0 = (it % NY) * TA
            ia0 = y0 * SA + i0 * DA - pad_a
            x_n = x_ptr + n.to(tl.int64) * sxn + ia0.to(tl.int64) * SXA + x_c
            dy_n = dy_ptr + n.to(tl.int64) * syn + y0.to(tl.int64) * SYA + dy_c
            for xb in range(B_DY):
                ib = xb * SB + jo * DB - pad_b
                if INT64:
                    x_j = x_n + ib.to(tl.int64) * sxb
                else:
                    x_j = x_n + ib * sxb
                # bounds written out rather than through direct._in_range: that form compiles to other register
                # counts (replknet_31b.s1 channels_last: 214 against 175), and the GPU timings are of this one
                m_j = (ib >= 0) & (ib < B_IN) & c_ok
                dy_x = dy_n + xb * syb  # 32-bit (see columns_fit)
                dys = ()
                for t in tl.static_range(TA):
                    if WHOLE_A:  # TA = A_DY
                        dys = dys + (tl.load(dy_x + t * SYA, mask=c_ok, other=0.0).to(tl.float32),)
                    else:
                        dys = dys + (tl.load(dy_x + t * SYA, mask=c_ok & (y0 + t < A_DY), other=0.0).to(tl.float32),)
                xs = ()
                for q in tl.static_range(NQ):
                    if WHOLE_A:  # border lines: a zero placeholder that no FMA reads
                        if (q * UNIT >= PAD_A0) & (q * UNIT < PAD_A0 + A_IN0):
                            xs = xs + (tl.load(x_j + q * UNIT * SXA, mask=m_j, other=0.0).to(tl.float32),)
                        else:
                            xs = xs + (tl.zeros([BLOCK_0, BLOCK_1], dtype=tl.float32),)
                    else:
                        ia = ia0 + q * UNIT
                        xs = xs + (tl.load(x_j + q * UNIT * SXA, mask=m_j & (ia >= 0) & (ia < A_IN),
                                           other=0.0).to(tl.float32),)
                new = ()
                for r in tl.static_range(R):
                    acc = accs[r]
                    for t in tl.static_range(TA):  # input line of (t, r): (t*SA + r*DA) / UNIT
                        if WHOLE_A:
                            if (t * SA + r * DA >= PAD_A0) & (t * SA + r * DA < PAD_A0 + A_IN0):
                                acc = acc + xs[(t * SA + r * DA) // UNIT] * dys[t]
                        else:
                            acc = acc + xs[(t * SA + r * DA) // UNIT] * dys[t]
                    new = new + (acc,)
                accs = new

        part = part_ptr + chunk.to(tl.int64) * C_OUT * KA * KB
        if INT64:
            part = part + co.to(tl.int64) * (KA * KB) + jo
        else:
            part = part + co * (KA * KB) + jo
        m_out = c_ok & (jo < KB)
        for r in tl.static_range(R):
            tl.store(part + (i0 + r) * KB, accs[r], mask=m_out & (i0 + r < KA))


_launch = FastLauncher(depthwise_conv2d_wgrad_planes_kernel) if triton is not None else None


@dataclass(frozen=True)
class PlanesConfig:
    """Tile shape of one launch: r weight lines per program, ta output-gradient lines per unrolled block, a
    block_0 x block_1 (channel, weight position) tile ((position, channel) in NHWC), items_per_prog (image,
    line block) items per program (0: enough programs to fill the machine), skip_border: where one program
    holds every weight line and one block every output-gradient line, products with the input's zero border
    are left out at compile time."""

    r: int
    ta: int
    block_0: int
    block_1: int
    num_warps: int
    items_per_prog: int = 0
    skip_border: bool = True


def _even_split(n: int, cap: int) -> int:
    """The smallest part size that splits n into as few parts of at most cap as possible."""
    return -(-n // -(-n // cap))


def n_lines(r: int, ta: int, sa: int, da: int) -> Tuple[int, int]:
    """(line unit, input lines per block) of ``r`` weight lines against ``ta`` output-gradient lines."""
    unit = math.gcd(sa, da)
    return unit, ((ta - 1) * sa + (r - 1) * da) // unit + 1


@functools.lru_cache(maxsize=4096)
def choose_config(ax, c_out: int) -> PlanesConfig:
    """Heuristic tile: every weight line in one program up to 32 (the input is then read once per item); blocks
    of all output-gradient lines (at most 64) for up to 8 weight lines, else even blocks of at most 16 lines for
    up to 23 weight lines and at most 32 beyond. NCHW tiles span the weight's columns with 256 outputs (two per
    thread) from 32 columns, else 128. NHWC tiles: 64 channels x 4 positions with blocks over 16 lines, 64 x 2
    with short blocks and more than 16 weight lines, 32 x 8 otherwise.

    Measured with benchmarks/tune_direct.py --planes (H100, fp32, h100_2026-11-24f/AQ, AR): replknet_31b.s1 NCHW
    1.50 ms with all 31 lines against 2.17 (16) and 2.96 (8); s2 0.69 ms with 8x32 tiles against 0.80 (4x32),
    s3 0.37 against 0.44, s2 NHWC 0.69 with 4x64 against 0.86 (4x32); unireplknet_t.s1 (13 lines) 0.32 ms with
    16-line blocks against 0.44 (28); slak_t.s1.wide (5 lines) 0.99 ms with 56-line blocks against 1.13 (28).
    channels_last (AW): replknet_31b.s3 0.35 ms with 2x64 against 0.68 (4x64), unireplknet_t.s1 0.41 with 8x32
    against 0.46 (4x64).
    """
    r = _even_split(ax.ka, 32)
    ta = ax.a_out if r <= 8 else _even_split(ax.a_out, 16 if r < 24 else 32)
    ta = min(ta, 64)
    if ax.ch_axis == 0:
        block_1 = max(4, _pow2_at_most(ax.kb, 64))
        outputs = 256 if block_1 >= 32 else 128
        block_0 = max(1, min(outputs // block_1, _pow2_at_most(c_out, 64)))
    else:  # (positions, channels): 4x64 with long blocks (s2), 2x64 / 8x32 with short ones and many / few lines
        block_1 = max(16, _pow2_at_most(c_out, 64 if ta > 16 or r > 16 else 32))
        outputs = 128 if ta <= 16 and r > 16 else 256
        block_0 = max(1, min(outputs // block_1, _pow2_at_most(ax.kb, 64)))
    return PlanesConfig(r, ta, block_0, block_1, max(1, min(4, block_0 * block_1 // 32)))


def preferred(ax) -> bool:
    """Whether this kernel, rather than :mod:`.direct`'s, computes the weight gradient of these axes: kernels of
    100 taps or more, 8 or more of them along the tile's axis, output-gradient planes of up to 64 lines.

    Measured (fp32 NCHW, H100): faster on replknet_31b.s1/s2/s3, unireplknet_t.s1/s3 and slak_t.s1.wide (0.99
    against 2.16 ms); slower on convnext_t.s1 (7x7: 0.34 against 0.22 ms) and slak_t.s1.long (5 columns: 0.87
    against 0.69 ms).
    """
    return ax.ka * ax.kb >= 100 and ax.kb >= 8 and 0 < ax.a_out <= 64


def columns_fit(ax, dy_strides) -> bool:
    """Whether the kernel's 32-bit column offsets (x * stride along B) reach across the output gradient."""
    return abs(dy_strides[3]) * max(ax.b_out - 1, 0) <= 2**31 - 1


@dataclass(frozen=True)
class PlanesPlan(_WgradPlan):
    """A weight-gradient launch of this module's kernel (run by :func:`.direct.run_planned_wgrad`)."""


def make_plan(ax, cfg: PlanesConfig, n: int, c_out: int, mult: int, x_strides, dy_strides, int64: bool, dy_nhwc,
              sms: int) -> PlanesPlan:
    """Launch plan from :mod:`.direct`'s axes; x_strides / dy_strides are (n, c, a, b) strides."""
    ny = -(-ax.a_out // cfg.ta)
    total = n * ny
    n_strips = -(-ax.ka // cfg.r)
    if ax.ch_axis == 1:
        n_b, n_c = -(-ax.kb // cfg.block_0), -(-c_out // cfg.block_1)
    else:
        n_b, n_c = -(-ax.kb // cfg.block_1), -(-c_out // cfg.block_0)
    if n_b > 65535 or n_c > 65535:
        raise ValueError(f"direct: problem too wide for one launch ({n_b} x {n_c} tiles)")
    per = cfg.items_per_prog
    if per <= 0:  # about four programs per SM
        per = max(1, -(-total // max(1, (4 * sms) // (n_strips * n_b * n_c))))
    chunks = -(-total // per)
    if chunks * n_strips > 2**31 - 1:
        raise ValueError(f"direct: too many weight-gradient chunks ({chunks} x {n_strips})")
    if not columns_fit(ax, dy_strides):
        raise ValueError("direct: an output-gradient image spans 2**31 or more elements along one axis")
    unit, nq = n_lines(cfg.r, cfg.ta, ax.sa, ax.da)
    sxn, sxc, sxa, sxb = x_strides
    syn, syc, sya, syb = dy_strides
    consts = dict(SXA=sxa, SYA=sya, SA=ax.sa, SB=ax.sb, DA=ax.da, DB=ax.db, UNIT=unit, NQ=nq, R=cfg.r, TA=cfg.ta,
                  MULT_DIV=mult, BLOCK_0=cfg.block_0, BLOCK_1=cfg.block_1, CH_AXIS=ax.ch_axis,
                  INT64=int64 or c_out * ax.ka * ax.kb > 2**31 - 1, num_warps=cfg.num_warps)
    whole_a = cfg.skip_border and n_strips == 1 and ny == 1
    consts.update(WHOLE_A=whole_a, PAD_A0=ax.pad_a if whole_a else 0, A_IN0=ax.a_in if whole_a else 0)
    ints = (c_out, n_strips, total, per, ny, ax.a_in, ax.b_in, ax.a_out, ax.b_out, ax.ka, ax.kb,
            sxn, sxc, sxb, syn, syc, syb, ax.pad_a, ax.pad_b)
    return PlanesPlan((chunks * n_strips, n_b, n_c), (chunks, c_out, ax.ka, ax.kb), ints, tuple(consts.items()),
                      None, dy_nhwc, ax.swap, _launch)

