"""Long depthwise 1D convolution in fused Triton kernels: the FFT, the spectral product and the inverse FFT of
a whole sequence on chip, as matrix products on tensor cores (the four-step or "Monarch" FFT).

A transform of size N = N1 * N2 (powers of two) views the zero-padded sequence as an (N1, N2) row-major matrix
S[n1, n2] = s[n1*N2 + n2] and computes, with F_m[a, b] = exp(-2 pi i a b / m) and T[k1, n2] = exp(-2 pi i k1 n2 / N):

    X = ((F_N1 @ S) * T) @ F_N2          X[k1, k2] = DFT(s)[k1 + N1*k2]
    s = conj(F_N1) @ ((X @ conj(F_N2)) * conj(T)) / N      (the inverse)

Between the two F_N1 products every spectrum row k1 is independent, so the kernels walk the spectrum in blocks
of BK rows: a block of F_N1 @ S, its twiddles and row transforms, the spectral product, the inverse row
transforms, and that block's share of the last product, accumulated into the output rows. Only the sequence's
rows, the output rows and one block of the spectrum are live at a time; only the rows of S that hold samples
enter the first product and only the stored output rows leave the last. The kernel's spectrum comes from
torch.fft.rfft (C transforms, unscaled, natural order, N/2 + 1 entries); the kernels read it at k1 + N1*k2,
mirrored above N/2 (a real kernel's K[N - j] = conj(K[j])), and scale it by 1/N, so no transform reorders its
output. With N >= L + Lk - 1 the circular convolution is the linear one.

Two real sequences travel as one complex one, s = x_a + i x_b: the kernel is real, so the real and imaginary
parts of the result are the two convolutions (rounding errors are relative to the pair's norm). A program
transforms P such pairs side by side (the first product's right operand is [R, P*N2], the row transforms'
left one [BK*P, N2]), so each block of DFT constants it reads serves 2P sequences. Complex products take
three real ones (Karatsuba), or, with "embedded" products, act on the complex operand's (real, imaginary)
columns interleaved: a right factor M becomes the real (2m, 2m) matrix [[Mr, Mi], [-Mi, Mr]] (per element pair),
a left factor F the sum Fr @ [Sr, Si] + Fi @ [-Si, Sr] of two products accumulated in place.

Backward: dx is the same kernel on dy with the conjugate spectrum (a correlation); dk = Re IDFT(sum DZ conj(X))
over the pairs (the real part of a pair's correlation is the sum of its two sequences' correlations) comes
from a second kernel that sums each spectrum block over its batch chunk (grid channels x blocks x chunks),
reduced and inverted with torch.fft (C transforms); dD = sum dy x rides along in its first block. The joint
backward (FusedConfig.joint_backward) makes those sums in the input gradient's kernel instead, from its own
transform of dy: three transforms per sequence pair instead of four, each program summing over its chunk of the
batch.

Precision (see _precision): bfloat16 inputs use bfloat16 products; float16 and float32 use split bfloat16
products ("bf16x3", about 16 significant bits) or tf32 where PyTorch's tf32 flag allows it for float32.
Transforms of N = MIN_N .. MAX_N; longer ones run the staged kernels (:mod:`.staged_fft`) through fused_fwd and
fused_bwd, and past those torch.fft.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..._triton import can_launch, cdiv, interpreting, next_power_of_2, triton_available
from ...testing import poisoning

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MIN_N = 256  # N1, N2 >= 16: the smallest tensor-core products
# (256, 64) transforms. At 32768 points the complex output rows (256 x 64) no longer fit in registers: the
# kernels spill 6-13 KB per thread (benchmarks/kernel_resources.py), run slower than torch.fft on an H100
# (sgconv_16k bf16: 2.57 against 1.90 ms) and take minutes to compile.
MAX_N = 16384
MAX_N2 = 64  # the row transforms' F_N2 (N2 x N2 complex) is read whole by every block
MAX_ROW_ELEMENTS = 256 * 64  # rows x P*N2 of a program's accumulators: pairs shrink to stay within it
HELD_ROWS_BYTES = 96 * 1024  # input rows held on chip across blocks (the rest: read again per block)
PRODUCTS = ("karatsuba", "embedded")  # how a complex matrix product is made of real ones (FusedConfig.products)


if triton is not None:

    @triton.jit
    def _mm_acc(a, b, acc, PREC: tl.constexpr):
        """acc + a @ b, accumulated in float32 in the product itself. PREC: a tl.dot input_precision, "bf16" (both
        operands rounded to bfloat16) or "bf16x3" (each operand split into bfloat16 high and low parts, three
        products: about 16 significant bits, like tf32x3's three products at the cost of one and a half tf32
        ones)."""
        if PREC == "bf16":
            return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), acc)
        elif PREC == "bf16x3":
            a_hi = a.to(tl.bfloat16)
            b_hi = b.to(tl.bfloat16)
            a_lo = (a - a_hi.to(tl.float32)).to(tl.bfloat16)
            b_lo = (b - b_hi.to(tl.float32)).to(tl.bfloat16)
            return tl.dot(a_hi, b_hi, tl.dot(a_lo, b_hi, tl.dot(a_hi, b_lo, acc)))
        else:
            return tl.dot(a, b, acc, input_precision=PREC)

    @triton.jit
    def _mm(a, b, PREC: tl.constexpr):
        """a @ b, see _mm_acc."""
        return _mm_acc(a, b, tl.zeros((a.shape[0], b.shape[1]), dtype=tl.float32), PREC)

    @triton.jit
    def _natural_index(k0, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr):
        """[BK, N2]: the natural-order spectrum index k1 + N1*k2 of spectrum rows k1 = k0 .. k0 + BK - 1."""
        return (k0 + tl.arange(0, BK))[:, None] + N1 * tl.arange(0, N2)[None, :]

    @triton.jit
    def _interleave(re, im, ROWS: tl.constexpr, COLS: tl.constexpr):
        """[ROWS, COLS] x 2 -> [ROWS, 2*COLS] with re at even and im at odd columns."""
        return tl.reshape(tl.join(re, im), (ROWS, 2 * COLS))

    @triton.jit
    def _deinterleave(a, ROWS: tl.constexpr, COLS: tl.constexpr):
        """_interleave's inverse: [ROWS, 2*COLS] -> (even columns, odd columns) [ROWS, COLS]."""
        return tl.split(tl.reshape(a, (ROWS, COLS, 2)))

    @triton.jit
    def _cmm(ar, ai, br, bi, PREC: tl.constexpr):
        """(ar + i ai) @ (br + i bi) in three real products (Karatsuba): real = ar br - ai bi,
        imaginary = (ar + ai)(br + bi) - ar br - ai bi. A loop-invariant right factor costs three operand
        copies (br, bi, br + bi) whatever the sign of the left one."""
        m1 = _mm(ar, br, PREC)
        m2 = _mm(ai, bi, PREC)
        return m1 - m2, _mm(ar + ai, br + bi, PREC) - m1 - m2

    @triton.jit
    def _pair_rows(src, b0, B, L, shift, row0, sb, N2: tl.constexpr, R: tl.constexpr, P: tl.constexpr):
        """([R, P*N2] float32) x 2: rows row0 .. row0 + R - 1 of the (N1, N2) views of s_j[n] = src_j[n - shift]
        (zero outside [0, L)) side by side, for sequences j = b0 + p (real part) and b0 + P + p (imaginary part),
        p = column // N2; sequences past B are zero. src is the channel's base, sb the batch stride."""
        col = tl.arange(0, P * N2)
        t = (row0 + tl.arange(0, R))[:, None] * N2 + (col % N2)[None, :] - shift
        ok = (t >= 0) & (t < L)
        br = b0 + col // N2
        bi = br + P
        re = tl.load(src + br[None, :].to(tl.int64) * sb + t, mask=ok & (br < B)[None, :], other=0.0)
        im = tl.load(src + bi[None, :].to(tl.int64) * sb + t, mask=ok & (bi < B)[None, :], other=0.0)
        return re.to(tl.float32), im.to(tl.float32)

    @triton.jit
    def _rowwise(ar, ai, cr, ci, BK: tl.constexpr, P: tl.constexpr, N2: tl.constexpr):
        """(ar + i ai) * (cr + i ci) for a [BK*P, N2] or [BK, P*N2] block and a [BK, N2] factor c that every
        sequence p shares: the product as [BK*P, N2]."""
        ar = tl.reshape(ar, (BK, P, N2))
        ai = tl.reshape(ai, (BK, P, N2))
        cr = cr[:, None, :]
        ci = ci[:, None, :]
        return tl.reshape(ar * cr - ai * ci, (BK * P, N2)), tl.reshape(ar * ci + ai * cr, (BK * P, N2))

    @triton.jit
    def _spectrum_block(zr, zi, row0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1: tl.constexpr, N2: tl.constexpr,
                        R: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, PREC: tl.constexpr,
                        EMB: tl.constexpr):
        """Spectrum rows k1 = k0 .. k0 + BK - 1 of the P complex sequences whose only nonzero rows row0 ..
        row0 + R - 1 are (zr, zi) [R, P*N2]: (real, imaginary) [BK*P, N2], row k1*P + p holding X_p[k1, :].
        EMB: complex products as real ones on interleaved (real, imaginary) columns (see the module docstring),
        else Karatsuba's three."""
        k1 = k0 + tl.arange(0, BK)
        n1 = row0 + tl.arange(0, R)
        n2 = tl.arange(0, N2)
        f = f1_ptr + k1[:, None] * N1 + n1[None, :]  # F_N1[k1, n1]
        f_ok = (n1 < N1)[None, :]
        fr = tl.load(f, mask=f_ok, other=0.0)
        fi = tl.load(f + N1 * N1, mask=f_ok, other=0.0)
        tw = tw_ptr + k1[:, None] * N2 + n2[None, :]
        if EMB:  # F @ S = Fr @ [Sr, Si] + Fi @ [-Si, Sr], then the rows times the embedded F_N2
            a = _mm_acc(fr, _interleave(zr, zi, R, P * N2),
                        _mm(fi, _interleave(-zi, zr, R, P * N2), PREC), PREC)
            ar, ai = _deinterleave(a, BK, P * N2)
            br, bi = _rowwise(ar, ai, tl.load(tw), tl.load(tw + N1 * N2), BK, P, N2)
            e = tl.arange(0, 2 * N2)
            x = _mm(_interleave(br, bi, BK * P, N2), tl.load(g2_ptr + e[:, None] * (2 * N2) + e[None, :]), PREC)
            return _deinterleave(x, BK * P, N2)
        else:
            ar, ai = _cmm(fr, fi, zr, zi, PREC)
            br, bi = _rowwise(ar, ai, tl.load(tw), tl.load(tw + N1 * N2), BK, P, N2)
            f2 = f2_ptr + n2[:, None] * N2 + n2[None, :]
            return _cmm(br, bi, tl.load(f2), tl.load(f2 + N2 * N2), PREC)

    @triton.jit
    def _inverse_block(yr, yi, k0, row0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1: tl.constexpr, N2: tl.constexpr,
                       R: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, PREC: tl.constexpr,
                       EMB: tl.constexpr):
        """The share of spectrum rows k0 .. k0 + BK - 1 ((yr, yi) [BK*P, N2] as _spectrum_block returns them) in
        rows row0 .. row0 + R - 1 of the (N1, N2) views of N * IDFT(Y_p): (real, imaginary) [R, P*N2]. Rows past
        N1 get nothing. EMB as in _spectrum_block."""
        n2 = tl.arange(0, N2)
        k1 = k0 + tl.arange(0, BK)
        tw = tw_ptr + k1[:, None] * N2 + n2[None, :]
        n1 = row0 + tl.arange(0, R)
        g = f1_ptr + n1[:, None] * N1 + k1[None, :]  # F_N1 is symmetric: F_N1[n1, k1] = F_N1[k1, n1]
        g_ok = (n1 < N1)[:, None]
        if EMB:  # Y @ conj(F_N2) = conj(conj(Y) @ F_N2); then conj(F) @ D = Fr @ [Dr, Di] + Fi @ [Di, -Dr]
            e = tl.arange(0, 2 * N2)
            g2 = tl.load(g2_ptr + e[:, None] * (2 * N2) + e[None, :])
            cr, ci = _deinterleave(_mm(_interleave(yr, -yi, BK * P, N2), g2, PREC), BK * P, N2)
            dr, di = _rowwise(cr, -ci, tl.load(tw), -tl.load(tw + N1 * N2), BK, P, N2)  # times conj(T)
            dr = tl.reshape(dr, (BK, P * N2))
            di = tl.reshape(di, (BK, P * N2))
            gr = tl.load(g, mask=g_ok, other=0.0)
            gi = tl.load(g + N1 * N1, mask=g_ok, other=0.0)
            o = _mm_acc(gr, _interleave(dr, di, BK, P * N2), _mm(gi, _interleave(di, -dr, BK, P * N2), PREC), PREC)
            return _deinterleave(o, R, P * N2)
        else:
            f2 = f2_ptr + n2[:, None] * N2 + n2[None, :]
            cr, ci = _cmm(yr, -yi, tl.load(f2), tl.load(f2 + N2 * N2), PREC)  # Y @ conj(F_N2) = conj(conj(Y) @ F_N2)
            dr, di = _rowwise(cr, -ci, tl.load(tw), -tl.load(tw + N1 * N2), BK, P, N2)  # times conj(T)
            return _cmm(tl.load(g, mask=g_ok, other=0.0), -tl.load(g + N1 * N1, mask=g_ok, other=0.0),
                        tl.reshape(dr, (BK, P * N2)), tl.reshape(di, (BK, P * N2)), PREC)

    @triton.jit
    def _kernel_block(kc, j, N: tl.constexpr, CONJ: tl.constexpr):
        """K[j] / N (or conj(K[j]) / N with CONJ) for a tile j of natural-order indices in [0, N): (real, imaginary),
        read from the channel's half spectrum kc (N/2 + 1 (re, im) pairs) and mirrored above N/2,
        K[N - j] = conj(K[j]) for a real kernel."""
        upper = j > N // 2
        kb = kc + 2 * tl.where(upper, N - j, j)
        inv_n = 1.0 / N
        ki = tl.load(kb + 1) * inv_n
        if CONJ:
            upper = j <= N // 2
        return tl.load(kb) * inv_n, tl.where(upper, -ki, ki)

    @triton.jit
    def _correlation(zr, zi, xr, xi, BK: tl.constexpr, P: tl.constexpr, N2: tl.constexpr):
        """sum over the P sequences of Z * conj(X) for [BK*P, N2] spectrum blocks: (real, imaginary) [BK, N2]."""
        pr = tl.reshape(zr * xr + zi * xi, (BK, P, N2))
        pi = tl.reshape(zi * xr - zr * xi, (BK, P, N2))
        return tl.sum(pr, axis=1), tl.sum(pi, axis=1)

    @triton.jit
    def long_conv1d_fused_kernel(
        in_ptr, kf_ptr, d_ptr, out_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr, x_ptr, sp_ptr, dd_ptr,
        B, C, L, IN_SHIFT, OUT_SHIFT, GROUPS_PER_PROG, sib, sic, sob, soc, sd, sxb, sxc,
        N1: tl.constexpr, N2: tl.constexpr, R_IN: tl.constexpr, R_OUT: tl.constexpr, BK: tl.constexpr,
        P: tl.constexpr, CONJ: tl.constexpr, HAS_D: tl.constexpr, PREC: tl.constexpr, HOLD_ROWS: tl.constexpr,
        EMB: tl.constexpr, JOINT: tl.constexpr, R_X: tl.constexpr, DD: tl.constexpr,
    ):
        """out[b, c, t] = IDFT(DFT(s) * K)[t + OUT_SHIFT] (+ D[c] in[b, c, t]), s[n] = in[b, c, n - IN_SHIFT],
        K = kf[c] (the kernel's unscaled spectrum, (re, im) pairs of its first N/2 + 1 entries, read at
        k1 + N1*k2 and mirrored, K[N - j] = conj(K[j]); the 1/N of the inverse is applied to it) or its conjugate
        (CONJ).
        Forward: in = x, IN_SHIFT = 0, OUT_SHIFT = shift. Input gradient: in = dy, IN_SHIFT = shift, OUT_SHIFT = 0,
        CONJ. Grid (C, chunks of groups): a group is 2P sequences, transformed as P complex sequences (the
        kernel is real, so real and imaginary parts stay apart); each program runs the GROUPS_PER_PROG groups of
        its chunk in turn. HOLD_ROWS: the input rows are read once per group and held, else once per block.
        JOINT (input gradient only): the weight gradient's spectrum sums ride along, as long_conv1d_fused_dk_kernel
        makes them but summed over the program's chunk of the batch into sp[chunk, c] (in = dy, x the input, R_X
        its rows), with dd[chunk, c] = the chunk's sum of dy x when DD; the spectrum of dy serves both."""
        c = tl.program_id(0)
        chunk = tl.program_id(1)
        in_row0 = IN_SHIFT // N2
        out_row0 = OUT_SHIFT // N2
        src = in_ptr + c.to(tl.int64) * sic
        kc = kf_ptr + c.to(tl.int64) * (N1 * N2 + 2)  # N/2 + 1 (re, im) pairs per channel
        xs = x_ptr + c.to(tl.int64) * sxc
        sp = sp_ptr + (chunk * C + c).to(tl.int64) * (2 * N1 * N2)
        dd = 0.0
        for i in range(0, GROUPS_PER_PROG):
            b0 = (chunk * GROUPS_PER_PROG + i) * 2 * P
            if b0 < B:
                accr = tl.zeros([R_OUT, P * N2], dtype=tl.float32)
                acci = tl.zeros([R_OUT, P * N2], dtype=tl.float32)
                if HOLD_ROWS:
                    zr, zi = _pair_rows(src, b0, B, L, IN_SHIFT, in_row0, sib, N2, R_IN, P)
                for k0 in range(0, N1, BK):
                    if not HOLD_ROWS:  # read again for every block, from cache (k0 in the bound keeps it there)
                        zr, zi = _pair_rows(src, b0, B, L - k0 // N1, IN_SHIFT, in_row0, sib, N2,
                                            R_IN, P)
                    xr, xi = _spectrum_block(zr, zi, in_row0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, R_IN, BK, P,
                                             PREC, EMB)
                    if JOINT:  # this block of the weight gradient's sum of DY conj(X), kept in sp across groups
                        ur, ui = _pair_rows(xs, b0, B, L - k0 // N1, 0, 0, sxb, N2, R_X, P)
                        qr, qi = _spectrum_block(ur, ui, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, R_X, BK, P,
                                                 PREC, EMB)
                        pr, pi = _correlation(xr, xi, qr, qi, BK, P, N2)
                        j = 2 * _natural_index(k0, N1, N2, BK)
                        if i > 0:  # the chunk's first group writes, the others add
                            # other threads stored these elements for the previous group: a barrier orders
                            # their global stores before these loads (Triton places barriers for shared memory only)
                            tl.debug_barrier()
                            pr += tl.load(sp + j)
                            pi += tl.load(sp + j + 1)
                        tl.store(sp + j, pr)
                        tl.store(sp + j + 1, pi)
                    kr, ki = _kernel_block(kc, _natural_index(k0, N1, N2, BK), N1 * N2, CONJ)
                    yr, yi = _rowwise(xr, xi, kr, ki, BK, P, N2)
                    dr, di = _inverse_block(yr, yi, k0, out_row0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, R_OUT,
                                            BK, P, PREC, EMB)
                    accr += dr
                    acci += di
                if HAS_D:  # the input at the output rows' positions
                    d = tl.load(d_ptr + c * sd).to(tl.float32)
                    vr, vi = _pair_rows(src, b0, B, L, OUT_SHIFT, out_row0, sib, N2, R_OUT, P)
                    accr += d * vr
                    acci += d * vi
                col = tl.arange(0, P * N2)
                t = (out_row0 + tl.arange(0, R_OUT))[:, None] * N2 + (col % N2)[None, :] - OUT_SHIFT
                ok = (t >= 0) & (t < L)
                br = (b0 + col // N2)[None, :]
                bi = br + P
                ok_r = ok & (br < B)
                ok_i = ok & (bi < B)
                dst = out_ptr + c.to(tl.int64) * soc + t
                tl.store(dst + br.to(tl.int64) * sob, accr.to(out_ptr.dtype.element_ty), mask=ok_r)
                tl.store(dst + bi.to(tl.int64) * sob, acci.to(out_ptr.dtype.element_ty), mask=ok_i)
                if JOINT:
                    if DD:
                        wr, wi = _pair_rows(src, b0, B, L, 0, 0, sib, N2, R_X, P)
                        ur, ui = _pair_rows(xs, b0, B, L, 0, 0, sxb, N2, R_X, P)
                        dd += tl.sum(tl.sum(wr * ur + wi * ui, axis=1), axis=0)
        if JOINT:
            if DD:
                tl.store(dd_ptr + chunk * C + c, dd)

    @triton.jit
    def long_conv1d_fused_dk_kernel(
        x_ptr, dy_ptr, sp_ptr, dd_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr,
        B, C, L, shift, GROUPS_PER_PROG, sxb, sxc, syb, syc,
        N1: tl.constexpr, N2: tl.constexpr, R_X: tl.constexpr, R_DY: tl.constexpr, BK: tl.constexpr,
        P: tl.constexpr, HAS_D: tl.constexpr, PREC: tl.constexpr, EMB: tl.constexpr,
    ):
        """sp[chunk, c, k1 + N1*k2, :] = sum over the chunk's groups of DZ * conj(X) for spectrum rows
        k1 = blk*BK .. blk*BK + BK - 1 ((real, imaginary) pairs), with dz[n] = dy[b, c, n - shift] and both
        taken as P complex sequences per group as in long_conv1d_fused_kernel: the real part of the inverse of
        the sum is the sum over sequences of their correlations. With HAS_D, the first block's programs also
        write dd[chunk, c] = sum over the chunk of sum_t dy x. Grid (C, N1 / BK blocks, chunks of groups)."""
        c = tl.program_id(0)
        blk = tl.program_id(1)
        chunk = tl.program_id(2)
        k0 = blk * BK
        sr = tl.zeros([BK, N2], dtype=tl.float32)
        si = tl.zeros([BK, N2], dtype=tl.float32)
        dd = 0.0
        xs = x_ptr + c.to(tl.int64) * sxc
        ys = dy_ptr + c.to(tl.int64) * syc
        for i in range(0, GROUPS_PER_PROG):
            b0 = (chunk * GROUPS_PER_PROG + i) * 2 * P
            if b0 < B:
                vr, vi = _pair_rows(ys, b0, B, L, shift, shift // N2, syb, N2, R_DY, P)
                zr, zi = _spectrum_block(vr, vi, shift // N2, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, R_DY, BK, P,
                                         PREC, EMB)
                ur, ui = _pair_rows(xs, b0, B, L, 0, 0, sxb, N2, R_X, P)
                xr, xi = _spectrum_block(ur, ui, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, R_X, BK, P, PREC, EMB)
                pr, pi = _correlation(zr, zi, xr, xi, BK, P, N2)  # DZ * conj(X)
                sr += pr
                si += pi
                if HAS_D:
                    if blk == 0:
                        wr, wi = _pair_rows(ys, b0, B, L, 0, 0, syb, N2, R_X, P)
                        dd += tl.sum(tl.sum(wr * ur + wi * ui, axis=1), axis=0)
        j = _natural_index(k0, N1, N2, BK)
        out = sp_ptr + (chunk * C + c).to(tl.int64) * (2 * N1 * N2) + 2 * j
        tl.store(out, sr)
        tl.store(out + 1, si)
        if HAS_D:
            if blk == 0:
                tl.store(dd_ptr + chunk * C + c, dd)


def transform_size(length: int, lk: int) -> int:
    """N: the power of two >= L + Lk - 1 (no wrap-around), at least MIN_N."""
    return max(MIN_N, 1 << (length + lk - 2).bit_length())


def unsupported_reason(x: Tensor, k: Tensor, causal: bool = True) -> Optional[str]:
    """None when the fused kernels can serve long_conv1d(x, k, causal=causal), else why not."""
    if not can_launch(x):
        return f"tensors on {x.device} (Triton kernels need CUDA, or TRITON_INTERPRET=1 on CPU)"
    if x.dtype not in SUPPORTED_DTYPES:
        return f"dtype {x.dtype} (the fused kernels support float32, float16, bfloat16)"
    n = transform_size(x.shape[-1], k.shape[-1])
    if n > MAX_N:
        from . import staged_fft

        n = staged_fft.transform_size(x.shape[-1], k.shape[-1])
        if not staged_fft.supports(n):
            return f"L + Lk - 1 = {x.shape[-1] + k.shape[-1] - 1} needs a transform of {n} points, more than the " \
                   f"staged kernels take"
    if x.numel() == 0:
        return "an empty input"
    return None


def _factors(n: int) -> Tuple[int, int]:
    """(N1, N2), powers of two with N1 * N2 = n: N2 = the square root rounded down, at most MAX_N2 (the work
    per pair, about 3 N (N1 + 2 N2) multiply-adds for a causal forward, is least at N1 = 2 N2 and the same at
    N1 = N2 or 4 N2)."""
    n2 = min(1 << (n.bit_length() - 1) // 2, MAX_N2)
    return n // n2, n2


_DFT_CONSTANTS: dict = {}  # (name, sizes, device, operand dtype) -> constant tensors


def _embedded(m: Tensor) -> Tensor:
    """(2M, 2M) real matrix of a complex (2, M, M) one (real, imaginary planes) acting on interleaved rows:
    [ar, ai] @ E = [Re(a @ M), Im(a @ M)], i.e. E[2i, 2j] = E[2i+1, 2j+1] = Mr, E[2i, 2j+1] = Mi,
    E[2i+1, 2j] = -Mi."""
    mr, mi = m[0], m[1]
    return torch.stack((torch.stack((mr, mi), -1), torch.stack((-mi, mr), -1)), 1).reshape(2 * m.shape[1], -1)


def phase_planes(a: int, b: int, m: int, device: torch.device, step: int = 1) -> Tensor:
    """(2, a, b) float32: real and imaginary planes of exp(-2 pi i r s step / m), r < a, s < b, from exact integer
    phases (r s step mod m) in float64; computed on the device itself (no host-to-device copy, which a CUDA-graph
    capture would not allow)."""
    r = torch.arange(a, dtype=torch.int64, device=device)
    s = torch.arange(b, dtype=torch.int64, device=device) * step
    ang = ((r[:, None] * s[None, :]) % m).to(torch.float64) * (-2 * math.pi / m)
    return torch.stack((torch.cos(ang), torch.sin(ang))).to(torch.float32).contiguous()


def cached_constants(key: tuple, device: torch.device, make) -> tuple:
    """make(), computed once per key and kept; not kept when computed inside a CUDA-graph capture, whose tensors
    hold values only once replayed."""
    hit = _DFT_CONSTANTS.get(key)
    if hit is not None:
        return hit
    consts = make()
    if device.type == "cuda":
        if torch.cuda.is_current_stream_capturing():
            return consts
        torch.cuda.current_stream(device).synchronize()  # ready for launches on any stream from now on
    _DFT_CONSTANTS[key] = consts
    return consts


def _dft_constants(n1: int, n2: int, device: torch.device,
                   dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """F_N1 (2, N1, N1), F_N2 (2, N2, N2) and T (2, N1, N2) (phase_planes); and (2 N2, 2 N2): F_N2 embedded as a
    real matrix (_embedded). The product operands (F_N1, F_N2 and the embedded F_N2) in ``dtype`` (bfloat16 for
    bfloat16 products: the values the products round them to, in half the bytes each block reads), T in
    float32. Kept per (N1, N2, device, dtype) (about 30 small launches each time otherwise)."""
    def make():
        f2 = phase_planes(n2, n2, n2, device)
        return (phase_planes(n1, n1, n1, device).to(dtype), f2.to(dtype), phase_planes(n1, n2, n1 * n2, device),
                _embedded(f2).to(dtype))

    return cached_constants(("four-step", n1, n2, device, dtype), device, make)


def kernel_spectrum(k: Tensor, n: int) -> Tensor:
    """(C, N/2 + 1, 2) float32: the first N/2 + 1 entries of DFT_N(k) as (real, imaginary) pairs, a view of
    torch.fft.rfft's output (no copy); the kernels mirror it (K[N - j] = conj(K[j])), scale it by 1/N and read
    it at k1 + N1*k2."""
    return torch.view_as_real(torch.fft.rfft(k.to(torch.float32), n=n))


def _precision(dtype: torch.dtype) -> str:
    """The products' precision by input dtype: bfloat16 operands for bfloat16 (the input's own precision);
    split bfloat16 ("bf16x3", about 16 bits) for float16 and float32, or tf32 where PyTorch's
    ``torch.backends.cuda.matmul.allow_tf32`` allows it for float32; exact float32 under the interpreter."""
    if interpreting():
        return "ieee"
    if dtype == torch.bfloat16:
        return "bf16"
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "bf16x3"


def _operand_dtype(prec: str) -> torch.dtype:
    """The dtype the DFT matrices are read in: bfloat16 where the products round their operands to it."""
    return torch.bfloat16 if prec == "bf16" else torch.float32


def _geometry(length: int, lk: int, causal: bool):
    """(N, N1, N2, shift, rows of [0, L), rows of [shift, shift + L)): the row counts are powers of two >= 16."""
    n = transform_size(length, lk)
    n1, n2 = _factors(n)
    shift = 0 if causal else (lk - 1) // 2
    rows = max(16, next_power_of_2(cdiv(length, n2)))
    rows_shifted = max(16, next_power_of_2((shift + length - 1) // n2 - shift // n2 + 1))
    return n, n1, n2, shift, rows, rows_shifted


@dataclass(frozen=True)
class FusedConfig:
    """Spectrum rows per block, sequence pairs transformed together (P: a program's products have P times
    wider operands, fewer reloads of the DFT constants per sequence), warps, pipeline stages, and groups of 2P
    sequences per program (0: enough (channel, chunk) programs for about four per SM); precision: a tl.dot
    input_precision, "bf16" or "bf16x3" (see _mm; "": by dtype, see _precision); products: "karatsuba" (three
    real products per complex one) or "embedded" (real products on interleaved (real, imaginary) columns: four
    products' multiply-adds in two or one larger ones, with fewer operand copies and element-wise steps);
    joint_backward: the input gradient's kernel also makes the weight gradient's spectrum sums from the same
    transform of dy (three transforms per sequence pair instead of four, in one launch with more live registers).

    Defaults from benchmarks/tune_long1d.py on an H100 (2026-11-24): 32-row blocks and eight warps; pairs 0
    means two pairs with bfloat16 products (four for sequences of up to about 1024 samples), else one."""

    block_rows: int = 32
    pairs: int = 0
    num_warps: int = 8
    num_stages: int = 1
    groups_per_program: int = 0
    precision: str = ""
    products: str = "karatsuba"
    joint_backward: bool = False


def _chunks(groups: int, programs_per_chunk: int, device: torch.device, per: int) -> Tuple[int, int]:
    """(chunks, groups per chunk) of the batch's groups."""
    if per <= 0:
        sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
        per = cdiv(groups, max(1, min(groups, cdiv(4 * sms, max(1, programs_per_chunk)))))
    per = max(1, min(per, groups))
    return cdiv(groups, per), per


def _block_rows(cfg: "FusedConfig", n1: int) -> int:
    bk = cfg.block_rows
    if bk < 16 or bk & (bk - 1):
        raise ValueError(f"block_rows must be a power of two >= 16, got {bk}")
    return min(bk, n1)


def _pairs(cfg: "FusedConfig", bsz: int, rows: int, n2: int, prec: str) -> int:
    """P: the configured pairs (0: by precision and size, see FusedConfig), at most what the batch fills and
    what keeps rows x P*N2 <= MAX_ROW_ELEMENTS."""
    p = cfg.pairs
    if p == 0:
        p = 1 if prec != "bf16" else 4 if rows * n2 <= 1024 else 2
    if p < 1 or p & (p - 1):
        raise ValueError(f"pairs must be a power of two >= 1, got {p}")
    p = min(p, next_power_of_2(cdiv(bsz, 2)))
    while p > 1 and rows * n2 * p > MAX_ROW_ELEMENTS:
        p //= 2
    return p


def _embeds(cfg: "FusedConfig") -> bool:
    if cfg.products not in PRODUCTS:
        raise ValueError(f"products must be one of {PRODUCTS}, got {cfg.products!r}")
    return cfg.products == "embedded"


def _check_spectrum(kf: Tensor, c: int, n: int) -> None:
    if kf.shape != (c, n // 2 + 1, 2) or kf.dtype != torch.float32 or not kf.is_contiguous():
        raise ValueError(f"kf must be kernel_spectrum(k, {n}): a contiguous float32 ({c}, {n // 2 + 1}, 2) tensor, "
                         f"got {kf.dtype} {tuple(kf.shape)} with strides {kf.stride()}")


def _plan(cfg: "FusedConfig", kf: Tensor, x: Tensor, rows: int, n1: int, n2: int, per_block: bool):
    """(block rows, precision, pairs, chunks, groups per chunk) of a launch on x (B, C, L), after checking kf;
    per_block: the grid has a program per spectrum block too (the dk kernel)."""
    bsz, c, _ = x.shape
    _check_spectrum(kf, c, n1 * n2)
    bk = _block_rows(cfg, n1)
    prec = cfg.precision or _precision(x.dtype)
    p = _pairs(cfg, bsz, rows, n2, prec)
    programs = c * (n1 // bk if per_block else 1)
    chunks, per = _chunks(cdiv(bsz, 2 * p), programs, x.device, cfg.groups_per_program)
    return bk, prec, p, chunks, per


def _launch_conv(src, kf, D, out, in_shift, out_shift, r_in, r_out, conj, n1, n2, cfg, x=None, need_dD=False):
    """(out, sp, dd): out = the convolution (conj: the correlation) of src, see long_conv1d_fused_kernel. With x
    (the input gradient: src = dy, out = dx) the weight gradient's sums ride along: sp (chunks, C, N, 2) and, with
    need_dD, dd (chunks, C); else None."""
    bsz, c, length = src.shape
    bk, prec, p, chunks, per = _plan(cfg, kf, src, max(r_in, r_out), n1, n2, False)
    emb = _embeds(cfg)
    f1, f2, tw, g2 = _dft_constants(n1, n2, src.device, _operand_dtype(prec))
    joint = x is not None
    sp = torch.empty((chunks, c, n1 * n2, 2), dtype=torch.float32, device=src.device) if joint else None
    dd = torch.empty((chunks, c), dtype=torch.float32, device=src.device) if joint and need_dD else None
    long_conv1d_fused_kernel[(c, chunks)](
        src, kf, D if D is not None else kf, out, f1, f2, tw, g2, x if joint else src, out if sp is None else sp,
        out if dd is None else dd,
        bsz, c, length, in_shift, out_shift, per, src.stride(0), src.stride(1), out.stride(0), out.stride(1),
        D.stride(0) if D is not None else 0, x.stride(0) if joint else 0, x.stride(1) if joint else 0,
        N1=n1, N2=n2, R_IN=r_in, R_OUT=r_out, BK=bk, P=p, CONJ=conj, HAS_D=D is not None, PREC=prec,
        HOLD_ROWS=_holds_rows(r_in * p * n2, prec, emb), EMB=emb, JOINT=joint, R_X=r_out if joint else 16,
        DD=joint and need_dD, num_warps=cfg.num_warps, num_stages=cfg.num_stages, **_register_cap())
    return out, sp, dd


_OPERAND_BYTES = {"bf16": 2, "bf16x3": 4, "tf32": 4, "ieee": 4, "tf32x3": 8}  # per element, split parts included


def _holds_rows(elements: int, prec: str, embedded: bool = False) -> bool:
    """Whether long_conv1d_fused_kernel holds its input rows across the spectrum blocks: their operand copies in
    shared memory (Karatsuba: real, imaginary, sum; embedded: two of twice the width) stay within
    HELD_ROWS_BYTES."""
    return (4 if embedded else 3) * elements * _OPERAND_BYTES.get(prec, 8) <= HELD_ROWS_BYTES


@functools.lru_cache(maxsize=1)
def _register_cap() -> dict:
    """maxnreg=255 for both kernels' compiled launches where Triton's CUDA backend takes it: left to itself
    ptxas has given a float32 dk kernel 32 registers and kilobytes of spills (benchmarks/kernel_resources.py)."""
    if interpreting():
        return {}
    try:
        from triton.backends.nvidia.compiler import CUDAOptions
    except Exception:  # pragma: no cover - another backend
        return {}
    return {"maxnreg": 255} if "maxnreg" in getattr(CUDAOptions, "__dataclass_fields__", {}) else {}


def _empty_like_seq(x: Tensor) -> Tensor:
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if poisoning():
        out.fill_(float("nan"))
    return out


def _only(config, kind):
    """config when it is a ``kind``, else None (the defaults)."""
    return config if isinstance(config, kind) else None


def _staged(n: int, config) -> bool:
    """Whether a call runs the staged kernels: transforms past MAX_N, or a StagedConfig given."""
    from .staged_fft import StagedConfig

    return n > MAX_N or isinstance(config, StagedConfig)


def call_transform_size(length: int, lk: int, config=None) -> int:
    """N of a call with this config: the staged kernels' transform_size where they serve it (a multiple of 4096,
    not always a power of two), else transform_size. kf = kernel_spectrum(k, N)."""
    n = transform_size(length, lk)
    if _staged(n, config):
        from .staged_fft import transform_size as staged_size

        return staged_size(length, lk)
    return n


def call_kernel_spectrum(k: Tensor, length: int, config=None) -> Tensor:
    """kf for a call on (B, C, L = length) data with this config: kernel_spectrum(k, N) at
    N = call_transform_size(L, Lk, config), or staged_fft.row_spectrum where the staged kernels serve the call
    with a StagedConfig whose spectrum is "rows"."""
    n = call_transform_size(length, k.shape[-1], config)
    if _staged(transform_size(length, k.shape[-1]), config):
        from . import staged_fft

        cfg = _only(config, staged_fft.StagedConfig)
        if cfg is not None and cfg.spectrum == "rows":
            return staged_fft.row_spectrum(k, n, cfg)
    return kernel_spectrum(k, n)


def fused_fwd(x: Tensor, k: Tensor, D: Optional[Tensor], causal: bool, kf: Tensor, config=None) -> Tensor:
    """y (B, C, L) contiguous, x's dtype, for x with unit stride along L and kf = call_kernel_spectrum(k, L,
    config). config: a
    FusedConfig, or a staged_fft.StagedConfig (transforms past MAX_N take the staged kernels whatever it is)."""
    n, n1, n2, shift, rows, rows_shifted = _geometry(x.shape[-1], k.shape[-1], causal)
    if _staged(n, config):
        from . import staged_fft

        cfg = _only(config, staged_fft.StagedConfig)
        return staged_fft.convolve(x, kf, D, 0, shift, False, staged_fft.transform_size(x.shape[-1], k.shape[-1]),
                                   cfg, staged_fft.pair_kernel_scales(k, cfg))
    return _launch_conv(x, kf, D, _empty_like_seq(x), 0, shift, rows, rows_shifted, False, n1, n2,
                        _only(config, FusedConfig) or FusedConfig())[0]


def fused_bwd(dy: Tensor, x: Tensor, k: Tensor, D: Optional[Tensor], causal: bool, kf: Tensor, need_dk: bool,
              config=None, need_dx: bool = True, need_dD: bool = True):
    """(dx, dk float32, dD float32), each None when not needed (dD also without D), for dy and x with unit
    stride along L. config as in fused_fwd."""
    bsz, c, length = x.shape
    lk = k.shape[-1]
    n, n1, n2, shift, rows, rows_shifted = _geometry(length, lk, causal)
    need_dD = need_dD and D is not None
    if _staged(n, config):
        from . import staged_fft

        cfg = _only(config, staged_fft.StagedConfig)
        dx, dk = staged_fft.backward(dy, x, kf, D, shift, lk, staged_fft.transform_size(length, lk), cfg, need_dx,
                                     need_dk, staged_fft.pair_kernel_scales(k, cfg))
        return dx, dk, _skip_gradient(dy, x) if need_dD else None
    cfg = _only(config, FusedConfig) or FusedConfig()
    if need_dx and need_dk and cfg.joint_backward:
        dx, sp, dd = _launch_conv(dy, kf, D, _empty_like_seq(x), shift, 0, rows_shifted, rows, True, n1, n2, cfg, x,
                                  need_dD)
        return dx, _weight_gradient(sp, n, lk), dd.sum(0) if need_dD else None
    dx = None
    if need_dx:
        dx = _launch_conv(dy, kf, D, _empty_like_seq(x), shift, 0, rows_shifted, rows, True, n1, n2, cfg)[0]
    if not need_dk:
        return dx, None, _skip_gradient(dy, x) if need_dD else None
    bk, prec, p, chunks, per = _plan(cfg, kf, x, max(rows, rows_shifted), n1, n2, True)
    sp = torch.empty((chunks, c, n, 2), dtype=torch.float32, device=x.device)
    dd = torch.empty((chunks, c), dtype=torch.float32, device=x.device) if need_dD else sp
    f1, f2, tw, g2 = _dft_constants(n1, n2, x.device, _operand_dtype(prec))
    long_conv1d_fused_dk_kernel[(c, n1 // bk, chunks)](
        x, dy, sp, dd, f1, f2, tw, g2, bsz, c, length, shift, per, x.stride(0), x.stride(1), dy.stride(0),
        dy.stride(1), N1=n1, N2=n2, R_X=rows, R_DY=rows_shifted, BK=bk, P=p, HAS_D=need_dD,
        PREC=prec, EMB=_embeds(cfg), num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        **_register_cap())
    return dx, _weight_gradient(sp, n, lk), dd.sum(0) if need_dD else None


def _skip_gradient(dy: Tensor, x: Tensor) -> Tensor:
    """dD (C,) float32 = sum over b, t of dy x, where no kernel makes it alongside."""
    return (dy.float() * x.float()).sum(dim=(0, 2))


def _weight_gradient(sp: Tensor, n: int, lk: int) -> Tensor:
    """dk (C, Lk) float32 from the kernels' spectrum sums sp (chunks, C, N, 2): Re IDFT of their sum."""
    s = sp[0] if sp.shape[0] == 1 else sp.sum(0)  # (C, N, 2) in natural order
    return torch.fft.ifft(torch.view_as_complex(s), n=n).real[:, :lk]


class FusedLongConv1d(torch.autograd.Function):
    """long_conv1d through the fused kernels (or the staged ones: past MAX_N, or with a staged_fft.StagedConfig
    as config); x is (B, C, L) with unit stride along L. First derivatives only."""

    @staticmethod
    def forward(ctx, x, k, D, causal, config=None):
        kf = call_kernel_spectrum(k, x.shape[-1], config)
        ctx.save_for_backward(x, k, D, kf)
        ctx.causal = causal
        ctx.config = config
        return fused_fwd(x, k, D, causal, kf, config)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, k, D, kf = ctx.saved_tensors
        dy = dy if dy.stride(-1) == 1 else dy.contiguous()
        need = ctx.needs_input_grad
        dx, dk, dD = fused_bwd(dy, x, k, D, ctx.causal, kf, need[1], ctx.config, need_dx=need[0], need_dD=need[2])
        return (dx, dk.to(k.dtype) if dk is not None else None, dD.to(D.dtype) if dD is not None else None, None,
                None)
