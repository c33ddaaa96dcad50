"""Long depthwise 1D convolution for transforms too long to keep on chip (N > fused_fft.MAX_N points): the FFT
in three Triton kernels that meet in global memory, on tensor cores.

A transform of N = M * Q points (Q a power of two, M any multiple of the rows a row program takes; N a multiple
of SIZE_STEP, see transform_size) views the zero-padded sequence as an (M, Q) row-major matrix
S[na, nb] = s[na*Q + nb] and, with F_m[a, b] = exp(-2 pi i a b / m) and U[ka, nb] = exp(-2 pi i ka nb / N):

    A = (F_M @ S) * U                    columns: an M-point DFT of every column, then the twiddles
    X[ka + M*kb] = DFT_Q(A[ka, :])[kb]   rows: a Q-point DFT of every row
    s[na*Q + nb] = (conj(F_M) @ (IDFT_Q(X rows) * conj(U)))[na, nb]    the inverse, the other way round

1. ``staged_columns_kernel``: the columns' DFT of the rows that hold samples, times U, into a workspace
   W (C * groups, 2, M, Q) (real, imaginary planes; float32, or bfloat16 with bfloat16 products).
2. ``staged_rows_kernel``: per row of W, the Q-point transform on chip (fused_fft's four-step helpers,
   Q = N1 * N2), the product with the kernel's spectrum (read at ka + M*kb from its half spectrum, mirrored),
   the inverse row transform and conj(U), back into the same row of W.
3. ``staged_output_kernel``: conj(F_M) @ W for the output's rows only, plus the skip term, into the output.

Two real sequences of a channel (batch entries 2g and 2g + 1) travel as one complex one, as in fused_fft.
Backward: dx is the same three kernels on dy with the conjugate spectrum; dk = Re IDFT(sum DZ conj(X)): kernel 1
on dy and on x, ``staged_correlation_rows_kernel`` sums each row's DZ conj(X) over the batch and inverts it
(rows), and kernel 3 (columns) writes the real part at lags 0 .. Lk - 1. With StagedConfig.joint_backward that
row kernel also makes dx's rows from its transforms of dy, in place, for kernel 3.

Per sequence pair the workspace holds N complex values (8 N bytes in float32, 4 N in bfloat16). The first kernel
writes it, the second reads and rewrites it, and the third reads it. torch.fft's chain of padding, transforms,
products and casts moves several times more.
Which kernel bounds the time, per shape and configuration: benchmarks/profile_staged.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..._triton import cdiv, next_power_of_2, triton_available
from ..depthwise2d.fft import next_fast_len
from . import fused_fft
from .fused_fft import (_dft_constants, _embeds, _empty_like_seq, _operand_dtype, _precision, _register_cap,
                        cached_constants, phase_planes)

if triton_available():
    import triton
    import triton.language as tl

    from .fused_fft import _cmm, _inverse_block, _kernel_block, _mm_acc, _spectrum_block
else:  # pragma: no cover
    triton = None

MIN_N = 4096
MIN_M = 4  # the column kernels pad M to a power of two >= 16 (the smallest tensor-core products)
FULL_M = 16  # the default split keeps M at least this: the column kernels' products unpadded at powers of two
MAX_M = 512  # F_M (2, M, M) is read in [64, 64] tiles; N up to MAX_M * MAX_Q points
MIN_Q = 256
MAX_Q = 4096  # a row's transform, its spectrum block and its output stay on chip
PREFERRED_Q = 1024
ROW_ELEMENTS = 4096  # complex elements of the rows a row kernel's program holds, by default
SIZE_STEP = ROW_ELEMENTS  # N is a multiple of it: M = N / Q is then a multiple of the default rows per program


if triton is not None:

    @triton.jit
    def _pair_member(pid, G, B, C, sib, sic, CHANNELS: tl.constexpr):
        """(channel, batch entry, stride to the second member, whether there is one) of workspace sequence pid:
        batch entries (2g, 2g + 1) of channel pid // G, or with CHANNELS channels (2j, 2j + 1) of batch entry
        pid % G, j = pid // G."""
        if CHANNELS:
            c = 2 * (pid // G)
            b = pid % G
            second = sic
            paired = c + 1 < C
        else:
            c = pid // G
            b = 2 * (pid % G)
            second = sib
            paired = b + 1 < B
        return c, b, second, paired

    @triton.jit
    def _pair_scales(scale_ptr, c, b, C, paired, SCALED: tl.constexpr):
        """The two members' scales (scale_ptr: (B, C) float32, entries (b, c) and (b, c + 1)), or 1 and 1."""
        if SCALED:
            row = scale_ptr + b * C  # B * C entries: int32 offsets
            return tl.load(row + c), tl.load(row + c + 1, mask=paired, other=1.0)
        else:
            return 1.0, 1.0

    @triton.jit
    def _store_output_pair(accr, acci, t, c, b, paired, second_in, scale_ptr, in_ptr, d_ptr, out_ptr, C, L, sib,
                           sic, sob, soc, sd, HAS_D: tl.constexpr, CHANNELS: tl.constexpr, SCALED: tl.constexpr):
        """The output kernels' last step: a pair's two real outputs (accr, acci, at positions t of its first member's
        sequence) times their scales (_pair_scales), plus D times the input (HAS_D), stored where 0 <= t < L (the
        second member's only where there is one)."""
        sa, sb = _pair_scales(scale_ptr, c, b, C, paired, SCALED)
        accr = accr * sa
        acci = acci * sb
        ok = (t >= 0) & (t < L)
        ok_i = ok & paired
        if HAS_D:
            d = tl.load(d_ptr + c * sd).to(tl.float32)
            if CHANNELS:
                d_i = tl.load(d_ptr + (c + 1) * sd, mask=paired, other=0.0).to(tl.float32)
            else:
                d_i = d
            x = in_ptr + c.to(tl.int64) * sic + b.to(tl.int64) * sib + t
            accr += d * tl.load(x, mask=ok, other=0.0).to(tl.float32)
            acci += d_i * tl.load(x + second_in, mask=ok_i, other=0.0).to(tl.float32)
        if CHANNELS:
            second_out = soc
        else:
            second_out = sob
        dst = out_ptr + c.to(tl.int64) * soc + b.to(tl.int64) * sob + t
        tl.store(dst, accr.to(out_ptr.dtype.element_ty), mask=ok)
        tl.store(dst + second_out, acci.to(out_ptr.dtype.element_ty), mask=ok_i)

    @triton.jit
    def staged_columns_kernel(
        in_ptr, w_ptr, fm_ptr, u_ptr, scale_ptr, B, C, G, L, IN_SHIFT, ROWS, sib, sic,
        M: tl.constexpr, Q: tl.constexpr, BKA: tl.constexpr, BQ: tl.constexpr, BR: tl.constexpr,
        PREC: tl.constexpr, CHANNELS: tl.constexpr, SCALED: tl.constexpr,
    ):
        """W[pid, :, ka, nb] = U[ka, nb] * sum_na F_M[ka, na] s[na*Q + nb] for ka in this program's BKA rows and
        nb in its BQ columns, s[n] = in[b, c, n - IN_SHIFT] + i (the pair's second member) (zero outside [0, L) and
        where there is no second member), the pair as _pair_member gives it, each member divided by its scale
        (SCALED, _pair_scales); only the ROWS rows from IN_SHIFT // Q on hold samples. Grid (C * G or
        ceil(C / 2) * G, ceil(M / BKA), Q / BQ); rows ka >= M of the last row block are left out."""
        pid = tl.program_id(0)
        c, b, second, paired = _pair_member(pid, G, B, C, sib, sic, CHANNELS)
        sa, sb = _pair_scales(scale_ptr, c, b, C, paired, SCALED)
        ka = tl.program_id(1) * BKA + tl.arange(0, BKA)
        nb = tl.program_id(2) * BQ + tl.arange(0, BQ)
        src = in_ptr + c.to(tl.int64) * sic + b.to(tl.int64) * sib
        row0 = IN_SHIFT // Q
        accr = tl.zeros([BKA, BQ], dtype=tl.float32)
        acci = tl.zeros([BKA, BQ], dtype=tl.float32)
        for r0 in range(0, ROWS, BR):
            na = row0 + r0 + tl.arange(0, BR)
            t = na[:, None] * Q + nb[None, :] - IN_SHIFT
            ok = (t >= 0) & (t < L)
            zr = tl.load(src + t, mask=ok, other=0.0).to(tl.float32) / sa
            f = fm_ptr + ka[:, None] * M + na[None, :]
            f_ok = (ka < M)[:, None] & (na < M)[None, :]
            fr = tl.load(f, mask=f_ok, other=0.0)
            fi = tl.load(f + M * M, mask=f_ok, other=0.0)
            if paired:
                pr, pi = _cmm(fr, fi, zr, tl.load(src + second + t, mask=ok, other=0.0).to(tl.float32) / sb, PREC)
                accr += pr
                acci += pi
            else:  # the imaginary part is zero: two real products instead of three
                accr = _mm_acc(fr, zr, accr, PREC)
                acci = _mm_acc(fi, zr, acci, PREC)
        u = u_ptr + ka[:, None] * Q + nb[None, :]
        ka_ok = (ka < M)[:, None]
        ur = tl.load(u, mask=ka_ok, other=0.0)
        ui = tl.load(u + M * Q, mask=ka_ok, other=0.0)
        dst = w_ptr + pid.to(tl.int64) * (2 * M * Q) + ka[:, None] * Q + nb[None, :]
        ty = w_ptr.dtype.element_ty
        tl.store(dst, (accr * ur - acci * ui).to(ty), mask=ka_ok)
        tl.store(dst + M * Q, (accr * ui + acci * ur).to(ty), mask=ka_ok)

    @triton.jit
    def _column_tile_offsets(row0, R: tl.constexpr, N2: tl.constexpr, P: tl.constexpr, Q: tl.constexpr):
        """[R, N2, P]: the offsets na*Q + p of elements na = (row0 + r)*N2 + n2 of P consecutive workspace columns,
        p fastest (whole sectors)."""
        r = row0 + tl.arange(0, R)
        return (r[:, None, None] * N2 + tl.arange(0, N2)[None, :, None]) * Q + tl.arange(0, P)[None, None, :]

    @triton.jit
    def _side_by_side(a, R: tl.constexpr, N2: tl.constexpr, P: tl.constexpr):
        """[R, N2, P] -> [R, P*N2], column p*N2 + n2: P sequences side by side, the four-step helpers' layout."""
        return tl.reshape(tl.permute(a, (0, 2, 1)), (R, P * N2))

    @triton.jit
    def _columns_last(a, R: tl.constexpr, P: tl.constexpr, N2: tl.constexpr):
        """[R*P, N2] or [R, P*N2] (r, p, n2 in row-major order) -> [R, N2, P]."""
        return tl.permute(tl.reshape(a, (R, P, N2)), (0, 2, 1))

    @triton.jit
    def staged_columns_fourstep_kernel(
        in_ptr, w_ptr, u_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr, scale_ptr, B, C, G, L, IN_SHIFT, ROW0, sib, sic,
        M: tl.constexpr, Q: tl.constexpr, M1: tl.constexpr, M2: tl.constexpr, R: tl.constexpr, BK: tl.constexpr,
        BQ: tl.constexpr, PREC: tl.constexpr, EMB: tl.constexpr, CHANNELS: tl.constexpr, SCALED: tl.constexpr,
    ):
        """staged_columns_kernel with each column's M-point DFT in four steps (M = M1 * M2, the row transforms'
        helpers on BQ columns side by side): M1 + M2 complex multiply-adds per point instead of M. Column element
        na = m1*M2 + m2; rows m1 = ROW0 .. ROW0 + R - 1 hold the samples. Grid (sequences, Q / BQ)."""
        pid = tl.program_id(0)
        c, b, second, paired = _pair_member(pid, G, B, C, sib, sic, CHANNELS)
        sa, sb = _pair_scales(scale_ptr, c, b, C, paired, SCALED)
        nb0 = tl.program_id(1) * BQ
        src = in_ptr + c.to(tl.int64) * sic + b.to(tl.int64) * sib
        t = _column_tile_offsets(ROW0, R, M2, BQ, Q) + nb0 - IN_SHIFT
        ok = (t >= 0) & (t < L)
        zr = _side_by_side(tl.load(src + t, mask=ok, other=0.0).to(tl.float32) / sa, R, M2, BQ)
        zi = _side_by_side(tl.load(src + second + t, mask=ok & paired, other=0.0).to(tl.float32) / sb, R, M2, BQ)
        dst = w_ptr + pid.to(tl.int64) * (2 * M * Q)
        ty = w_ptr.dtype.element_ty
        for k0 in range(0, M1, BK):
            xr, xi = _spectrum_block(zr, zi, ROW0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M1, M2, R, BK, BQ, PREC, EMB)
            xr = _columns_last(xr, BK, BQ, M2)
            xi = _columns_last(xi, BK, BQ, M2)
            ka = (k0 + tl.arange(0, BK))[:, None, None] + M1 * tl.arange(0, M2)[None, :, None]
            off = ka * Q + nb0 + tl.arange(0, BQ)[None, None, :]
            ur = tl.load(u_ptr + off)
            ui = tl.load(u_ptr + M * Q + off)
            tl.store(dst + off, (xr * ur - xi * ui).to(ty))
            tl.store(dst + M * Q + off, (xr * ui + xi * ur).to(ty))

    @triton.jit
    def staged_output_fourstep_kernel(
        w_ptr, in_ptr, d_ptr, out_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr, scale_ptr, B, C, G, L, OUT_SHIFT, ROW0, sib,
        sic, sob, soc, sd, M: tl.constexpr, Q: tl.constexpr, M1: tl.constexpr, M2: tl.constexpr, R: tl.constexpr,
        BK: tl.constexpr, BQ: tl.constexpr, PREC: tl.constexpr, EMB: tl.constexpr, HAS_D: tl.constexpr,
        CHANNELS: tl.constexpr, SCALED: tl.constexpr,
    ):
        """staged_output_kernel with each column's inverse M-point DFT in four steps, for output rows m1 = ROW0 ..
        ROW0 + R - 1 (column elements na = m1*M2 + m2) of BQ columns. Grid (sequences, Q / BQ)."""
        pid = tl.program_id(0)
        c, b, second_in, paired = _pair_member(pid, G, B, C, sib, sic, CHANNELS)
        nb0 = tl.program_id(1) * BQ
        src = w_ptr + pid.to(tl.int64) * (2 * M * Q)
        accr = tl.zeros([R, BQ * M2], dtype=tl.float32)
        acci = tl.zeros([R, BQ * M2], dtype=tl.float32)
        for k0 in range(0, M1, BK):
            ka = (k0 + tl.arange(0, BK))[:, None, None] + M1 * tl.arange(0, M2)[None, :, None]
            off = ka * Q + nb0 + tl.arange(0, BQ)[None, None, :]
            yr = tl.reshape(tl.permute(tl.load(src + off).to(tl.float32), (0, 2, 1)), (BK * BQ, M2))
            yi = tl.reshape(tl.permute(tl.load(src + M * Q + off).to(tl.float32), (0, 2, 1)), (BK * BQ, M2))
            er, ei = _inverse_block(yr, yi, k0, ROW0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M1, M2, R, BK, BQ, PREC, EMB)
            accr += er
            acci += ei
        t = _column_tile_offsets(ROW0, R, M2, BQ, Q) + nb0 - OUT_SHIFT
        _store_output_pair(_columns_last(accr, R, BQ, M2), _columns_last(acci, R, BQ, M2), t, c, b, paired,
                           second_in, scale_ptr, in_ptr, d_ptr, out_ptr, C, L, sib, sic, sob, soc, sd, HAS_D, CHANNELS,
                           SCALED)

    @triton.jit
    def _row_program(M: tl.constexpr, P: tl.constexpr):
        """(first row ka0, sequence index) of a row kernel's program on a one-axis grid of M / P row blocks per
        sequence, row blocks fastest (a sequence's rows side by side, as a (M / P, sequences) grid would run
        them, without its 65535 cap on the second axis)."""
        pid = tl.program_id(0)
        return (pid % (M // P)) * P, pid // (M // P)

    @triton.jit
    def _row_offsets(N1: tl.constexpr, N2: tl.constexpr, P: tl.constexpr):
        """[N1, P*N2]: offsets of P consecutive workspace rows side by side, each in its (N1, N2) view
        (column p*N2 + n2 of row n1 holds element n1*N2 + n2 of row p)."""
        col = tl.arange(0, P * N2)
        return tl.arange(0, N1)[:, None] * N2 + ((col // N2) * (N1 * N2) + col % N2)[None, :]

    @triton.jit
    def _load_rows(row, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, P: tl.constexpr):
        """P consecutive workspace rows from row (real planes at row, imaginary at row + M*Q) side by side as in
        _row_offsets: (real, imaginary) [N1, P*N2] float32."""
        off = _row_offsets(N1, N2, P)
        return tl.load(row + off).to(tl.float32), tl.load(row + M * N1 * N2 + off).to(tl.float32)

    @triton.jit
    def _row_spectrum_block(row, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M: tl.constexpr, N1: tl.constexpr,
                            N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, PREC: tl.constexpr,
                            EMB: tl.constexpr):
        """Spectrum rows k1 = k0 .. k0 + BK - 1 of the (N1, N2) views of the Q-point DFTs of P consecutive
        workspace rows from row (real planes at row, imaginary at row + M*Q): (real, imaginary) [BK*P, N2], row
        k1*P + p holding row p's."""
        zr, zi = _load_rows(row, M, N1, N2, P)
        return _spectrum_block(zr, zi, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC, EMB)

    @triton.jit
    def _row_twiddles(u_ptr, v_ptr, ka0, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, P: tl.constexpr,
                      FACTORED: tl.constexpr):
        """U[ka, n1*N2 + n2] for rows ka = ka0 .. ka0 + P - 1 side by side as in _row_offsets: (real, imaginary)
        [N1, P*N2], read from the table U (2, M, Q) at u_ptr, or (FACTORED) made as A[ka, n1] * B[ka, n2] from
        A = exp(-2 pi i ka n1 N2 / N) (2, M, N1) at u_ptr and B = exp(-2 pi i ka n2 / N) (2, M, N2) at v_ptr:
        N1 + N2 values per row read instead of N1 * N2."""
        if FACTORED:
            col = tl.arange(0, P * N2)
            ka = ka0 + col // N2
            a = u_ptr + ka[None, :] * N1 + tl.arange(0, N1)[:, None]  # N1 * P distinct values, each N2 times
            ar = tl.load(a)
            ai = tl.load(a + M * N1)
            b = v_ptr + ka * N2 + col % N2
            br = tl.load(b)[None, :]
            bi = tl.load(b + M * N2)[None, :]
            return ar * br - ai * bi, ar * bi + ai * br
        else:
            u = u_ptr + ka0 * (N1 * N2) + _row_offsets(N1, N2, P)
            return tl.load(u), tl.load(u + M * N1 * N2)

    @triton.jit
    def _store_rows(row, accr, acci, ka0, u_ptr, v_ptr, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr,
                    P: tl.constexpr, FACTORED: tl.constexpr):
        """Rows ka0 .. ka0 + P - 1 of the workspace from row on = (accr + i acci) [N1, P*N2] (side by side as in
        _row_offsets) times conj(U[ka, :]) (_row_twiddles), in the workspace's dtype."""
        off = _row_offsets(N1, N2, P)
        ur, ui = _row_twiddles(u_ptr, v_ptr, ka0, M, N1, N2, P, FACTORED)
        ty = row.dtype.element_ty
        tl.store(row + off, (accr * ur + acci * ui).to(ty))
        tl.store(row + M * N1 * N2 + off, (acci * ur - accr * ui).to(ty))

    @triton.jit
    def _row_kernel_block(kc, ka0, k0, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr,
                          P: tl.constexpr, CONJ: tl.constexpr):
        """K[ka + M*kb] / N (conjugate with CONJ) for rows ka = ka0 .. ka0 + P - 1 and their spectrum rows k1 = k0 ..
        k0 + BK - 1, kb = k1 + N1*k2: (real, imaginary) [BK*P, N2], row k1*P + p, from the channel's half spectrum
        kc."""
        r = tl.arange(0, BK * P)
        kb = (k0 + r // P)[:, None] + N1 * tl.arange(0, N2)[None, :]
        return _kernel_block(kc, (ka0 + r % P)[:, None] + M * kb, M * N1 * N2, CONJ)

    @triton.jit
    def _row_order_block(kc, ka0, k0, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr,
                         P: tl.constexpr):
        """K[ka + M*kb] for rows ka = ka0 .. ka0 + P - 1 and spectrum rows k1 = k0 .. k0 + BK - 1 (kb = k1 + N1*k2)
        from one channel's spectrum kc in the row kernels' order (row_spectrum: K[ka + M*kb] at ka*Q + k1*N2 + k2
        of the real plane, the imaginary plane M*Q after it): (real, imaginary) [BK*P, N2], row k1*P + p."""
        r = tl.arange(0, BK * P)
        off = (ka0 + r % P)[:, None] * (N1 * N2) + (k0 + r // P)[:, None] * N2 + tl.arange(0, N2)[None, :]
        return tl.load(kc + off), tl.load(kc + M * N1 * N2 + off)

    @triton.jit
    def _channel_kernel_block(kf_ptr, c, ka0, k0, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr,
                              BK: tl.constexpr, P: tl.constexpr, CONJ: tl.constexpr, SPEC_ROWS: tl.constexpr):
        """K_c[ka + M*kb] / N (conjugate with CONJ) of channel c for rows ka0 .. ka0 + P - 1 and spectrum rows
        k0 .. k0 + BK - 1: (real, imaginary) [BK*P, N2], row k1*P + p, read from the half spectra kf (C, N/2 + 1, 2)
        or (SPEC_ROWS) from the spectra in the row kernels' order (row_spectrum, already / N)."""
        if SPEC_ROWS:
            kr, ki = _row_order_block(kf_ptr + c.to(tl.int64) * (2 * M * N1 * N2), ka0, k0, M, N1, N2, BK, P)
            if CONJ:
                ki = -ki
        else:
            kr, ki = _row_kernel_block(kf_ptr + c.to(tl.int64) * (M * N1 * N2 + 2), ka0, k0, M, N1, N2, BK, P, CONJ)
        return kr, ki

    @triton.jit
    def _pair_kernel_blocks(kf_ptr, ksc_ptr, j, C, ka0, k0, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr,
                            BK: tl.constexpr, P: tl.constexpr, CONJ: tl.constexpr, SPEC_ROWS: tl.constexpr):
        """Ka = K_2j / (N ksc[2j]) and Kb = K_2j+1 / (N ksc[2j + 1]) (conjugate with CONJ), the spectra as
        _channel_kernel_block reads them, divided by the kernels' scales ksc (C,) so that both members' products
        are of one size; Kb = 0 past the C channels, and a kernel of scale 0 (all zero) is 0:
        (ar, ai, br, bi) [BK*P, N2]."""
        cb = tl.minimum(2 * j + 1, C - 1)  # the last pair of an odd C: read in bounds, then zero
        ar, ai = _channel_kernel_block(kf_ptr, 2 * j, ka0, k0, M, N1, N2, BK, P, CONJ, SPEC_ROWS)
        br, bi = _channel_kernel_block(kf_ptr, cb, ka0, k0, M, N1, N2, BK, P, CONJ, SPEC_ROWS)
        sa = tl.load(ksc_ptr + 2 * j)
        sb = tl.load(ksc_ptr + cb)
        inv_a = tl.where(sa > 0, 1.0 / sa, 0.0)  # 0: an all-zero kernel
        inv_b = tl.where((2 * j + 1 < C) & (sb > 0), 1.0 / sb, 0.0)
        return ar * inv_a, ai * inv_a, br * inv_b, bi * inv_b

    @triton.jit
    def _pair_product(ar, ai, br, bi, kar, kai, kbr, kbi):
        """A Ka + i B Kb: the spectrum of the pair a * ka + i (b * kb) from its members' spectra (A, B) and kernels'
        (Ka, Kb): (real, imaginary)."""
        return ar * kar - ai * kai - (br * kbi + bi * kbr), ar * kai + ai * kar + br * kbr - bi * kbi

    @triton.jit
    def _mirror_rows(row, ka0, ph_ptr, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, P: tl.constexpr):
        """Rows whose Q-point DFTs are conj(X[-f]), f = ka + M*kb, for rows ka = ka0 .. ka0 + P - 1 of a workspace
        (row: its row ka0, real plane) whose rows' DFTs are X[ka + M*kb]: conj(W[(M - ka) % M, nb]) times
        exp(-2 pi i nb / Q) (ph_ptr: (2, Q) float32), or times 1 for ka = 0; side by side as in _row_offsets:
        (real, imaginary) [N1, P*N2] float32. (-f lies at row M - ka, column Q - 1 - kb, for ka > 0, and
        conj(DFT(a)[Q - 1 - kb]) = DFT(conj(a) exp(-2 pi i n / Q))[kb].)"""
        col = tl.arange(0, P * N2)
        ka = ka0 + col // N2
        nb = tl.arange(0, N1)[:, None] * N2 + (col % N2)[None, :]
        off = (((M - ka) % M) - ka0)[None, :] * (N1 * N2) + nb
        wr = tl.load(row + off).to(tl.float32)
        wi = -tl.load(row + M * N1 * N2 + off).to(tl.float32)
        first = (ka == 0)[None, :]
        pr = tl.where(first, 1.0, tl.load(ph_ptr + nb))
        pi = tl.where(first, 0.0, tl.load(ph_ptr + N1 * N2 + nb))
        return wr * pr - wi * pi, wr * pi + wi * pr

    @triton.jit
    def staged_rows_kernel(
        w_ptr, kf_ptr, u_ptr, v_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr, G,
        M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, CONJ: tl.constexpr,
        PREC: tl.constexpr, EMB: tl.constexpr, FACTORED: tl.constexpr, GP: tl.constexpr, SPEC_ROWS: tl.constexpr,
    ):
        """Rows ka = ka0 .. ka0 + P - 1 of W[c*G + g] (Q = N1*N2 points each) become
        IDFT_Q(DFT_Q(row) * K[ka + M*kb]) * conj(U[ka, :]), K the channel's kernel spectrum / N (conjugate with
        CONJ), read as _channel_kernel_block reads it, U as _row_twiddles gives it. Rows are read whole before
        they are written. Each program takes GP groups g of one channel in turn; with one spectrum block per row
        (BK = N1) it reads their K once. Grid M / P * C * ceil(G / GP) (_row_program): a channel's rows and groups
        run side by side and share the spectrum's cache lines."""
        ka0, seq = _row_program(M, P)
        chunks = (G + GP - 1) // GP
        c = seq // chunks
        g0 = (seq % chunks) * GP
        if BK == N1 and GP > 1:
            kr0, ki0 = _channel_kernel_block(kf_ptr, c, ka0, 0, M, N1, N2, BK, P, CONJ, SPEC_ROWS)
        for gi in range(0, GP):
            if g0 + gi < G:
                row = w_ptr + (c * G + g0 + gi).to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2)
                zr, zi = _load_rows(row, M, N1, N2, P)
                accr = tl.zeros([N1, P * N2], dtype=tl.float32)
                acci = tl.zeros([N1, P * N2], dtype=tl.float32)
                for k0 in range(0, N1, BK):
                    xr, xi = _spectrum_block(zr, zi, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC,
                                             EMB)
                    if BK == N1 and GP > 1:
                        kr, ki = kr0, ki0
                    else:
                        kr, ki = _channel_kernel_block(kf_ptr, c, ka0, k0, M, N1, N2, BK, P, CONJ, SPEC_ROWS)
                    dr, di = _inverse_block(xr * kr - xi * ki, xr * ki + xi * kr, k0, 0, f1_ptr, f2_ptr, tw_ptr,
                                            g2_ptr, N1, N2, N1, BK, P, PREC, EMB)
                    accr += dr
                    acci += di
                _store_rows(row, accr, acci, ka0, u_ptr, v_ptr, M, N1, N2, P, FACTORED)

    @triton.jit
    def staged_correlation_rows_kernel(
        wz_ptr, wx_ptr, out_ptr, kf_ptr, u_ptr, v_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr, G,
        M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, PREC: tl.constexpr,
        EMB: tl.constexpr, JOINT: tl.constexpr, FACTORED: tl.constexpr, SPEC_ROWS: tl.constexpr,
    ):
        """Rows ka = ka0 .. ka0 + P - 1 of out[c] = IDFT_Q(sum over g of DFT_Q(Wz[c*G + g] row ka)
        * conj(DFT_Q(Wx[c*G + g] row ka))) / N * conj(U[ka, :]): the weight gradient's summed correlation
        spectrum, inverted along the rows. JOINT (one spectrum block, BK = N1): the input gradient's rows too, from
        the same transforms of Wz: each Wz row becomes IDFT_Q(DFT_Q(row) * conj(K[ka + M*kb])) * conj(U[ka, :]), as
        staged_rows_kernel with CONJ makes it, in place. Grid M / P * C (_row_program)."""
        ka0, c = _row_program(M, P)
        accr = tl.zeros([N1, P * N2], dtype=tl.float32)
        acci = tl.zeros([N1, P * N2], dtype=tl.float32)
        inv_n = 1.0 / (M * N1 * N2)
        for k0 in range(0, N1, BK):
            sr = tl.zeros([BK * P, N2], dtype=tl.float32)
            si = tl.zeros([BK * P, N2], dtype=tl.float32)
            if JOINT:
                kr, ki = _channel_kernel_block(kf_ptr, c, ka0, k0, M, N1, N2, BK, P, True, SPEC_ROWS)
            for g in range(0, G):
                off = (c * G + g).to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2)
                zr, zi = _row_spectrum_block(wz_ptr + off, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M, N1, N2, BK, P, PREC,
                                             EMB)
                xr, xi = _row_spectrum_block(wx_ptr + off, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M, N1, N2, BK, P, PREC,
                                             EMB)
                sr += zr * xr + zi * xi  # Z conj(X)
                si += zi * xr - zr * xi
                if JOINT:  # the whole row's spectrum is this one block: its inverse is the input gradient's row
                    dr, di = _inverse_block(zr * kr - zi * ki, zr * ki + zi * kr, k0, 0, f1_ptr, f2_ptr, tw_ptr,
                                            g2_ptr, N1, N2, N1, BK, P, PREC, EMB)
                    _store_rows(wz_ptr + off, dr, di, ka0, u_ptr, v_ptr, M, N1, N2, P, FACTORED)
            dr, di = _inverse_block(sr * inv_n, si * inv_n, k0, 0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P,
                                    PREC, EMB)
            accr += dr
            acci += di
        _store_rows(out_ptr + c.to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2), accr, acci, ka0, u_ptr, v_ptr, M,
                    N1, N2, P, FACTORED)

    @triton.jit
    def staged_spectrum_rows_kernel(
        w_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr,
        M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, PREC: tl.constexpr,
        EMB: tl.constexpr,
    ):
        """Rows ka = ka0 .. ka0 + P - 1 of W[j] become their Q-point DFTs / N in the row kernels' order: X[ka + M*kb]
        / N at ka*Q + k1*N2 + k2 (kb = k1 + N1*k2), in place (rows are read whole first). On the column kernel's
        workspace of a channel's kernel, this is its spectrum K / N (row_spectrum). Grid M / P * channels
        (_row_program)."""
        ka0, seq = _row_program(M, P)
        row = w_ptr + seq.to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2)
        zr, zi = _load_rows(row, M, N1, N2, P)
        inv_n = 1.0 / (M * N1 * N2)
        r = tl.arange(0, BK * P)
        ty = w_ptr.dtype.element_ty
        for k0 in range(0, N1, BK):
            xr, xi = _spectrum_block(zr, zi, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC, EMB)
            off = (r % P)[:, None] * (N1 * N2) + (k0 + r // P)[:, None] * N2 + tl.arange(0, N2)[None, :]
            tl.store(row + off, (xr * inv_n).to(ty))
            tl.store(row + M * N1 * N2 + off, (xi * inv_n).to(ty))

    @triton.jit
    def _paired_rows_spectra(row, ka0, ph_ptr, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M: tl.constexpr, N1: tl.constexpr,
                             N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, PREC: tl.constexpr,
                             EMB: tl.constexpr):
        """The two members' spectra of a channel-pair sequence s = a + i b at rows ka0 .. ka0 + P - 1 and spectrum
        rows k0 .. k0 + BK - 1, from the workspace rows (row: row ka0) and their mirrors: A = (S + Sm) / 2,
        B = (S - Sm) / 2i with S = X[f], Sm = conj(X[-f]): (ar, ai, br, bi) [BK*P, N2]."""
        zr, zi = _load_rows(row, M, N1, N2, P)
        sr, si = _spectrum_block(zr, zi, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC, EMB)
        zr, zi = _mirror_rows(row, ka0, ph_ptr, M, N1, N2, P)
        mr, mi = _spectrum_block(zr, zi, 0, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC, EMB)
        return (sr + mr) * 0.5, (si + mi) * 0.5, (si - mi) * 0.5, (mr - sr) * 0.5

    @triton.jit
    def staged_paired_rows_kernel(
        w_ptr, out_ptr, kf_ptr, ksc_ptr, ph_ptr, u_ptr, v_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr, G, C,
        M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, CONJ: tl.constexpr,
        PREC: tl.constexpr, EMB: tl.constexpr, FACTORED: tl.constexpr, SPEC_ROWS: tl.constexpr,
    ):
        """staged_rows_kernel for channel pairs: W[j*G + g] holds s = x[g, 2j] + i x[g, 2j + 1], whose two kernels
        differ. With the members' spectra (A, B) apart (_paired_rows_spectra), the pair's product is A Ka + i B Kb
        (Ka, Kb divided by the kernels' scales ksc, see _pair_kernel_blocks); rows ka0 .. ka0 + P - 1 of
        out[j*G + g] become its IDFT_Q times conj(U[ka, :]).
        Each program reads mirror rows that another one writes: out must not be W.
        Grid M / P * ceil(C / 2) * G (_row_program)."""
        ka0, seq = _row_program(M, P)
        j = seq // G
        base = seq.to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2)
        row = w_ptr + base
        accr = tl.zeros([N1, P * N2], dtype=tl.float32)
        acci = tl.zeros([N1, P * N2], dtype=tl.float32)
        for k0 in range(0, N1, BK):  # rows read per block: one block at Q <= 1024, and fewer live registers
            ar, ai, br, bi = _paired_rows_spectra(row, ka0, ph_ptr, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M, N1, N2, BK,
                                                  P, PREC, EMB)
            kar, kai, kbr, kbi = _pair_kernel_blocks(kf_ptr, ksc_ptr, j, C, ka0, k0, M, N1, N2, BK, P, CONJ,
                                                     SPEC_ROWS)
            pr, pi = _pair_product(ar, ai, br, bi, kar, kai, kbr, kbi)
            er, ei = _inverse_block(pr, pi, k0, 0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC, EMB)
            accr += er
            acci += ei
        _store_rows(out_ptr + base, accr, acci, ka0, u_ptr, v_ptr, M, N1, N2, P, FACTORED)

    @triton.jit
    def staged_paired_correlation_rows_kernel(
        wz_ptr, wx_ptr, out_ptr, dx_ptr, kf_ptr, ksc_ptr, ph_ptr, u_ptr, v_ptr, f1_ptr, f2_ptr, tw_ptr, g2_ptr,
        wgt_ptr, G, C, M: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, BK: tl.constexpr, P: tl.constexpr,
        PREC: tl.constexpr, EMB: tl.constexpr, JOINT: tl.constexpr, FACTORED: tl.constexpr, SPEC_ROWS: tl.constexpr,
    ):
        """staged_correlation_rows_kernel for channel pairs: with dy's pair split into (DYa, DYb) and x's into
        (Xa, Xb) (_paired_rows_spectra), rows ka0 .. ka0 + P - 1 of out[j] = IDFT_Q(sum over g of DYa conj(Xa)
        + i DYb conj(Xb)) / N * conj(U[ka, :]), each term times its weight wgt (B, C) (the scales its sequences were
        divided by, over their largest product in the channel): the real part is channel 2j's weight gradient,
        the imaginary part channel 2j + 1's, each still to be multiplied by that largest product. JOINT (one
        spectrum block): the input gradient's rows from the same transforms of dy, as
        staged_paired_rows_kernel with CONJ makes them, into dx_ptr (not in place: other programs read wz's rows
        as mirrors). Grid M / P * ceil(C / 2) (_row_program)."""
        ka0, j = _row_program(M, P)
        accr = tl.zeros([N1, P * N2], dtype=tl.float32)
        acci = tl.zeros([N1, P * N2], dtype=tl.float32)
        inv_n = 1.0 / (M * N1 * N2)
        for k0 in range(0, N1, BK):
            sr = tl.zeros([BK * P, N2], dtype=tl.float32)
            si = tl.zeros([BK * P, N2], dtype=tl.float32)
            for g in range(0, G):
                off = (j * G + g).to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2)
                ar, ai, br, bi = _paired_rows_spectra(wz_ptr + off, ka0, ph_ptr, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M,
                                                      N1, N2, BK, P, PREC, EMB)
                if JOINT:  # DYa conj(Ka) + i DYb conj(Kb); K read per entry, to keep fewer registers live
                    kar, kai, kbr, kbi = _pair_kernel_blocks(kf_ptr, ksc_ptr, j, C, ka0, k0, M, N1, N2, BK, P, True,
                                                             SPEC_ROWS)
                    pr, pi = _pair_product(ar, ai, br, bi, kar, kai, kbr, kbi)
                    er, ei = _inverse_block(pr, pi, k0, 0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P, PREC,
                                            EMB)
                    _store_rows(dx_ptr + off, er, ei, ka0, u_ptr, v_ptr, M, N1, N2, P, FACTORED)
                cr, ci, dr, di = _paired_rows_spectra(wx_ptr + off, ka0, ph_ptr, k0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, M,
                                                      N1, N2, BK, P, PREC, EMB)
                # DYa conj(Xa) + i DYb conj(Xb), each term weighted (wgt: dy's scale times x's, over the channel's
                # largest such product)
                wa, wb = _pair_scales(wgt_ptr, 2 * j, g, C, 2 * j + 1 < C, True)
                sr += wa * (ar * cr + ai * ci) - wb * (bi * dr - br * di)
                si += wa * (ai * cr - ar * ci) + wb * (br * dr + bi * di)
            er, ei = _inverse_block(sr * inv_n, si * inv_n, k0, 0, f1_ptr, f2_ptr, tw_ptr, g2_ptr, N1, N2, N1, BK, P,
                                    PREC, EMB)
            accr += er
            acci += ei
        _store_rows(out_ptr + j.to(tl.int64) * (2 * M * N1 * N2) + ka0 * (N1 * N2), accr, acci, ka0, u_ptr, v_ptr, M,
                    N1, N2, P, FACTORED)

    @triton.jit
    def staged_output_kernel(
        w_ptr, fm_ptr, in_ptr, d_ptr, out_ptr, scale_ptr, B, C, G, L, OUT_SHIFT, sib, sic, sob, soc, sd,
        M: tl.constexpr, Q: tl.constexpr, BR: tl.constexpr, BQ: tl.constexpr, BKA: tl.constexpr,
        PREC: tl.constexpr, HAS_D: tl.constexpr, CHANNELS: tl.constexpr, SCALED: tl.constexpr,
    ):
        """out[first member] + i out[second member] = (conj(F_M) @ W[pid])[na, nb] (+ D[channel] in[..]) at
        t = na*Q + nb - OUT_SHIFT in [0, L), the pair as _pair_member gives it, for this program's BR rows na from
        OUT_SHIFT // Q on and BQ columns nb, each member times its scale (SCALED, _pair_scales); the imaginary part
        is dropped where there is no second member. Grid (C * G or ceil(C / 2) * G, Q / BQ, row blocks)."""
        pid = tl.program_id(0)
        c, b, second_in, paired = _pair_member(pid, G, B, C, sib, sic, CHANNELS)
        nb = tl.program_id(1) * BQ + tl.arange(0, BQ)
        na = OUT_SHIFT // Q + tl.program_id(2) * BR + tl.arange(0, BR)
        src = w_ptr + pid.to(tl.int64) * (2 * M * Q)
        accr = tl.zeros([BR, BQ], dtype=tl.float32)
        acci = tl.zeros([BR, BQ], dtype=tl.float32)
        g_ok = (na < M)[:, None]
        for k0 in range(0, M, BKA):
            ka = k0 + tl.arange(0, BKA)
            w = src + ka[:, None] * Q + nb[None, :]
            f = fm_ptr + na[:, None] * M + ka[None, :]  # F_M is symmetric
            f_ok = g_ok & (ka < M)[None, :]
            gr = tl.load(f, mask=f_ok, other=0.0)
            gi = tl.load(f + M * M, mask=f_ok, other=0.0)
            w_ok = (ka < M)[:, None]  # the last step's rows past M
            wr = tl.load(w, mask=w_ok, other=0.0).to(tl.float32)
            wi = tl.load(w + M * Q, mask=w_ok, other=0.0).to(tl.float32)
            if paired:
                pr, pi = _cmm(gr, -gi, wr, wi, PREC)
                accr += pr
                acci += pi
            else:  # Re(conj(F) W) = Fr Wr + Fi Wi: only the real part is stored, two real products
                accr = _mm_acc(gr, wr, _mm_acc(gi, wi, accr, PREC), PREC)
        _store_output_pair(accr, acci, na[:, None] * Q + nb[None, :] - OUT_SHIFT, c, b, paired, second_in,
                           scale_ptr, in_ptr, d_ptr, out_ptr, C, L, sib, sic, sob, soc, sd, HAS_D, CHANNELS, SCALED)


@dataclass(frozen=True)
class StagedConfig:
    """Tiles and options of the staged kernels; a field at 0 takes the default given with it.

    row_length: Q, the points of each on-chip row transform (0: by N, see _row_length).
    block_cols: columns per program of the column kernels (BQ; 0: 128 where M >= 256, else 64: on dna_256k's
        M = 512 the first column kernel ran 0.41 against 0.58 ms, on sgconv_16k's M = 32 0.146 against 0.133 ms;
        H100, 2026-12-07, EB and EC).
    column_rows: spectrum rows per program of the first column kernel, and rows per product step of both (BKA).
    output_rows: output rows per program of the last column kernel (BR).
    block_rows: spectrum rows per block of the row transforms (0: 32, or N1 where smaller; 64-row blocks spill at
        the register cap).
    rows_per_program: workspace rows a row kernel's program transforms side by side: wider products, fewer reads
        of the DFT constants per row, whole cache lines of the kernel spectrum (0: ROW_ELEMENTS // Q).
    column_warps, row_warps: warps of the column kernels and of the row kernels.
    row_registers: the row kernels' register cap per thread. 0 leaves it to the compiler, which takes about
        180-255 and so fits one program per SM; 128 fits two programs of 8 warps, with a few bytes spilled
        (benchmarks/kernel_resources.py --staged).
    precision, products: as in fused_fft.FusedConfig.
    workspace: its dtype, "float32", "bfloat16" or "" (bfloat16 with bfloat16 products, which round its values
        to bfloat16 anyway; else float32).
    joint_backward: the input gradient's rows made in the weight gradient's row kernel, from its transforms of dy
        (one column pass and one row transform of dy fewer), where a row's spectrum is one block (block_rows =
        N1).
    twiddles: how the row kernels get the twiddles U[ka, nb] of their rows: "table" (U read whole, 8 bytes per
        point from L2) or "factored" (U[ka, n1*N2 + n2] = A[ka, n1] B[ka, n2] from two small tables).
    groups_per_program: sequence pairs of a channel a row kernel's program transforms in turn (GP), reading the
        rows' kernel spectrum once where a row's spectrum is one block.
    spectrum: how the kernel's spectrum is made and read: "half" (torch.fft.rfft, the first N/2 + 1 entries per
        channel, read at ka + M*kb and mirrored) or "rows" (row_spectrum: the staged kernels' own transform of each
        channel, in float32, kept whole in the row kernels' order and read in rows: no padded copy of k and no
        strided reads, for twice the stored spectrum).
    columns: how the column kernels make each column's M-point DFT: "dense" (F_M @ the column: M complex
        multiply-adds per point, on tensor cores) or "fourstep" (M = M1 * M2 in two small DFTs with twiddles
        between, M1 + M2 per point, where M is a power of two >= 256, as dna_256k's 512 rows of 1024; dense
        elsewhere), with block_cols columns side by side per program (0: 16), in the row kernels' warps and
        register cap.
    pairing: which two real sequences travel as one complex one: "batch" (entries 2g and 2g + 1 of a channel,
        which share a kernel; an odd batch leaves one pair half empty) or "channels" (channels 2j and 2j + 1 of a
        batch entry: no empty halves at batch 1, for one more row transform per row, of the mirror rows; each
        sequence and each kernel is scaled to its own size around the shared transform, sequence_scales). A
        pair's two members share the transform's rounding, so with "batch" an entry far smaller than its partner
        is less accurate than alone. Channel pairs write the row transforms to a second workspace (other
        programs read the rows as mirrors) and take one group per row program (groups_per_program applies to
        batch pairs)."""

    row_length: int = 0
    block_cols: int = 0
    column_rows: int = 64
    output_rows: int = 64
    block_rows: int = 0
    rows_per_program: int = 0
    column_warps: int = 4
    row_warps: int = 8
    row_registers: int = 128
    precision: str = ""
    products: str = "karatsuba"
    workspace: str = ""
    joint_backward: bool = False
    twiddles: str = "table"
    groups_per_program: int = 1
    spectrum: str = "half"
    pairing: str = "batch"
    columns: str = "dense"


WORKSPACE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
TWIDDLES = ("table", "factored")
SPECTRA = ("half", "rows")
PAIRINGS = ("batch", "channels")
COLUMN_FORMS = ("dense", "fourstep")
MIN_FOURSTEP_M = 256  # M1, M2 >= 16: the smallest tensor-core products


def _row_lengths(n: int) -> list:
    """The row lengths Q that split N: powers of two in [MIN_Q, MAX_Q] dividing N with N / Q in [MIN_M, MAX_M]."""
    return [q for q in (1 << e for e in range(MIN_Q.bit_length() - 1, MAX_Q.bit_length()))
            if n % q == 0 and MIN_M <= n // q <= MAX_M]


def _row_length(n: int) -> int:
    """Q: of the row lengths that split N (_row_lengths) with M = N / Q >= FULL_M where there are any, the nearest
    to PREFERRED_Q. Longer rows need more live registers than a row kernel keeps at two programs per SM: on an
    H100 (2026-12-07, EB) 2048- and 4096-point rows ran 3-7x slower per byte than 1024-point ones."""
    fits = _row_lengths(n)
    fits = [q for q in fits if n // q >= FULL_M] or fits
    if not fits:
        raise ValueError(f"no (M, Q) split of N = {n} with M in [{MIN_M}, {MAX_M}] and Q a power of two in "
                         f"[{MIN_Q}, {MAX_Q}]")
    return min(fits, key=lambda q: abs(q.bit_length() - PREFERRED_Q.bit_length()))


def supports(n: int) -> bool:
    """Whether the staged kernels take an N-point transform: N a multiple of SIZE_STEP in [MIN_N, MAX_M * MAX_Q]."""
    return MIN_N <= n <= MAX_M * MAX_Q and n % SIZE_STEP == 0


def transform_size(length: int, lk: int) -> int:
    """N for the staged kernels: the smallest multiple of SIZE_STEP >= L + Lk - 1 (no wrap-around) whose quotient
    has no prime factor above 7 (torch.fft makes the kernel's spectrum), at least MIN_N. L = Lk = 6000 takes
    12288 points, not the 16384 of a power of two."""
    return max(MIN_N, next_fast_len(cdiv(length + lk - 1, SIZE_STEP)) * SIZE_STEP)


def _outer_constants(m: int, q: int, device: torch.device, dtype: torch.dtype) -> Tuple[Tensor, ...]:
    """F_M (2, M, M) in the products' operand dtype; U (2, M, Q) = exp(-2 pi i ka nb / N) and its factors
    A (2, M, N1) = exp(-2 pi i ka n1 N2 / N), B (2, M, N2) = exp(-2 pi i ka n2 / N), float32 (N = M Q,
    (N1, N2) = the rows' factors)."""
    n1, n2 = fused_fft._factors(q)
    return cached_constants(("staged", m, q, device, dtype), device,
                            lambda: (phase_planes(m, m, m, device).to(dtype), phase_planes(m, q, m * q, device),
                                     phase_planes(m, n1, m * q, device, step=n2), phase_planes(m, n2, m * q, device)))


def _mirror_phases(q: int, device: torch.device) -> Tensor:
    """(2, Q) float32: exp(-2 pi i nb / Q), the phase of the mirror rows (_mirror_rows)."""
    return cached_constants(("staged-mirror", q, device), device,
                            lambda: (phase_planes(2, q, q, device)[:, 1].contiguous(),))[0]


@dataclass(frozen=True)
class _Plan:
    n: int
    m: int
    q: int
    n1: int
    n2: int
    bk: int
    bq: int
    rows: int
    prec: str
    emb: bool
    workspace: torch.dtype
    fourstep: bool  # the column kernels' four-step form (StagedConfig.columns, where M allows it)
    cfg: StagedConfig


def _plan(n: int, dtype: torch.dtype, cfg: StagedConfig) -> _Plan:
    q = cfg.row_length or _row_length(n)
    if q not in _row_lengths(n):
        raise ValueError(f"row_length must be a power of two in [{MIN_Q}, {MAX_Q}] dividing N = {n} with "
                         f"N / row_length in [{MIN_M}, {MAX_M}] (here {_row_lengths(n)}), got {q}")
    n1, n2 = fused_fft._factors(q)
    bk = cfg.block_rows or min(n1, 32)
    if bk < 16 or bk & (bk - 1) or bk > n1:
        raise ValueError(f"block_rows must be a power of two in [16, {n1}] (0: {min(n1, 32)}), got {cfg.block_rows}")
    if cfg.columns not in COLUMN_FORMS:
        raise ValueError(f"columns must be one of {COLUMN_FORMS}, got {cfg.columns!r}")
    m = n // q
    fourstep = cfg.columns == "fourstep" and m >= MIN_FOURSTEP_M and m & (m - 1) == 0
    bq = cfg.block_cols or (16 if fourstep else 128 if m >= 256 else 64)
    if bq < 16 or bq & (bq - 1) or bq > q:
        raise ValueError(f"block_cols must be a power of two in [16, {q}], got {cfg.block_cols}")
    for name in ("column_rows", "output_rows"):
        v = getattr(cfg, name)
        if v < 16 or v & (v - 1):
            raise ValueError(f"{name} must be a power of two >= 16, got {v}")
    rows = cfg.rows_per_program or max(1, ROW_ELEMENTS // q)
    if rows < 1 or rows & (rows - 1) or (n // q) % rows:
        raise ValueError(f"rows_per_program must be a power of two dividing M = {n // q}, got {rows}")
    if cfg.groups_per_program < 1:
        raise ValueError(f"groups_per_program must be >= 1, got {cfg.groups_per_program}")
    if cfg.twiddles not in TWIDDLES:
        raise ValueError(f"twiddles must be one of {TWIDDLES}, got {cfg.twiddles!r}")
    if cfg.spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {cfg.spectrum!r}")
    if cfg.pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {cfg.pairing!r}")
    prec = cfg.precision or _precision(dtype)
    if cfg.workspace not in ("", *WORKSPACE_DTYPES):
        raise ValueError(f"workspace must be one of {('', *WORKSPACE_DTYPES)}, got {cfg.workspace!r}")
    ws = WORKSPACE_DTYPES[cfg.workspace or ("bfloat16" if prec == "bf16" else "float32")]
    return _Plan(n, n // q, q, n1, n2, bk, bq, rows, prec, _embeds(cfg), ws, fourstep, cfg)


def _row_twiddle_tables(p: _Plan, device: torch.device) -> Tuple[Tensor, Tensor]:
    """The row kernels' twiddle arguments (u_ptr, v_ptr): (U, U) or, with factored twiddles, (A, B)."""
    consts = _outer_constants(p.m, p.q, device, _operand_dtype(p.prec))
    return consts[2:] if p.cfg.twiddles == "factored" else (consts[1], consts[1])


def _row_register_cap(cfg: StagedConfig) -> dict:
    """The row kernels' maxnreg launch option (none where Triton's backend takes none, or row_registers is 0)."""
    return {"maxnreg": cfg.row_registers} if cfg.row_registers and _register_cap() else {}


def _column_rows(p: _Plan) -> int:
    """BKA: rows per program and per product step of the column kernels, M padded to a power of two >= 16 at most."""
    return min(p.cfg.column_rows, max(16, next_power_of_2(p.m)))


def _row_span(p: _Plan, shift: int, length: int) -> int:
    """Rows of the (M, Q) view that positions shift .. shift + length - 1 touch."""
    return (shift + length - 1) // p.q - shift // p.q + 1


def _pairs(p: _Plan, bsz: int, c: int) -> Tuple[int, int]:
    """(sequences outer, G): the workspace holds outer * G complex sequences, outer = C channels of ceil(B / 2)
    batch pairs each, or ceil(C / 2) channel pairs of B batch entries each (StagedConfig.pairing)."""
    return (cdiv(c, 2), bsz) if p.cfg.pairing == "channels" else (c, cdiv(bsz, 2))


def _fourstep_rows(p: _Plan, shift: int, length: int) -> Tuple[int, int, int, int]:
    """(M1, M2, first row m1, rows R) of a four-step column transform whose column elements na = m1*M2 + m2 hold
    positions shift .. shift + length - 1: R a power of two >= 16 (rows past M1 are masked)."""
    m1, m2 = fused_fft._factors(p.m)
    row0 = shift // (m2 * p.q)
    span = (shift + length - 1) // (m2 * p.q) - row0 + 1
    return m1, m2, row0, max(16, next_power_of_2(span))


MIN_SCALE, MAX_SCALE = 2.0 ** -126, 2.0 ** 126  # float32's normal range: 1 / scale stays finite


def _peaks(t: Tensor) -> Tensor:
    """(B, C) float32: the largest magnitude of each sequence of t (B, C, L)."""
    return torch.linalg.vector_norm(t.detach(), ord=float("inf"), dim=-1).float()


def _powers_of_two(peak: Tensor, zero: float) -> Tensor:
    """A power of two near each peak, within [MIN_SCALE, MAX_SCALE]; ``zero`` where the peak is 0, 1 where it is
    not finite (the sequence's infinities and NaNs then travel as they would unscaled)."""
    scale = torch.exp2(torch.floor(torch.log2(peak))).clamp(MIN_SCALE, MAX_SCALE)
    scale = torch.where(peak == 0, torch.full_like(scale, zero), scale)
    return torch.where(torch.isfinite(peak), scale, torch.ones_like(scale)).contiguous()


def sequence_scales(t: Tensor) -> Tensor:
    """(B, C) float32: for each sequence of t (B, C, L), a power of two near its largest magnitude (1 for an
    all-zero sequence). Channel pairs divide each member by its scale before the shared transform and multiply it
    back after, exactly, so that neither member's error is set by the other's size."""
    return _powers_of_two(_peaks(t), 1.0)


def kernel_scales(k: Tensor) -> Tensor:
    """(C,) float32: a power of two near each channel's largest kernel tap in k (C, Lk); 0 for an all-zero kernel
    (whose channel then gets exactly its skip term)."""
    return _powers_of_two(_peaks(k.unsqueeze(0)), 0.0)[0]


def pair_kernel_scales(k: Tensor, config: Optional[StagedConfig]) -> Optional[Tensor]:
    """kernel_scales(k) where the config pairs channels (they are read only then), else None."""
    return kernel_scales(k) if config is not None and config.pairing == "channels" else None


def _spectrum_scales(kf: Tensor, c: int) -> Tensor:
    """kernel_scales from a kernel spectrum given without its kernel's (the largest spectrum entry instead)."""
    return _powers_of_two(_peaks(kf.reshape(1, c, -1)), 0.0)[0]


def _output_scales(peaks: Tensor, kscale: Tensor) -> Tensor:
    """(B, C) float32: what a channel pair's outputs are multiplied by after the shared transform of sequences
    with these peaks (each divided by its sequence scale) with kernels divided by kscale: the product of the two
    scales, 0 for an all-zero sequence."""
    return (_powers_of_two(peaks, 0.0).double() * kscale.double()).float().contiguous()


def _check_kernel_scales(kscale: Tensor, c: int) -> None:
    if kscale.shape != (c,) or kscale.dtype != torch.float32 or not kscale.is_contiguous():
        raise ValueError(f"kscale must be kernel_scales(k): a contiguous float32 ({c},) tensor, got {kscale.dtype} "
                         f"{tuple(kscale.shape)}")


def _columns(p: _Plan, src: Tensor, in_shift: int, scale: Optional[Tensor] = None) -> Tensor:
    """Kernel 1 on src (B, C, L): the workspace W (sequences, 2, M, Q) in the plan's workspace dtype (_pairs), each
    sequence divided by its scale (B, C) where one is given."""
    bsz, c, length = src.shape
    outer, groups = _pairs(p, bsz, c)
    w = torch.empty((outer * groups, 2, p.m, p.q), dtype=p.workspace, device=src.device)
    flags = dict(CHANNELS=p.cfg.pairing == "channels", SCALED=scale is not None)
    scale = scale if scale is not None else w
    if p.fourstep:
        m1, m2, row0, r = _fourstep_rows(p, in_shift, length)
        u = _outer_constants(p.m, p.q, src.device, _operand_dtype(p.prec))[1]
        staged_columns_fourstep_kernel[(outer * groups, p.q // p.bq)](
            src, w, u, *_dft_constants(m1, m2, src.device, _operand_dtype(p.prec)), scale, bsz, c, groups, length,
            in_shift, row0, src.stride(0), src.stride(1), M=p.m, Q=p.q, M1=m1, M2=m2, R=r, BK=min(m1, 32), BQ=p.bq,
            PREC=p.prec, EMB=p.emb, **flags, num_warps=p.cfg.row_warps, **_row_register_cap(p.cfg))
        return w
    fm, u = _outer_constants(p.m, p.q, src.device, _operand_dtype(p.prec))[:2]
    bka = _column_rows(p)
    rows = _row_span(p, in_shift, length)
    staged_columns_kernel[(outer * groups, cdiv(p.m, bka), p.q // p.bq)](
        src, w, fm, u, scale, bsz, c, groups, length, in_shift, rows, src.stride(0), src.stride(1),
        M=p.m, Q=p.q, BKA=bka, BQ=p.bq, BR=min(bka, 64), PREC=p.prec, **flags, num_warps=p.cfg.column_warps)
    return w


def _output(p: _Plan, w: Tensor, out: Tensor, src: Tensor, D: Optional[Tensor], out_shift: int,
            scale: Optional[Tensor] = None) -> Tensor:
    """Kernel 3: out (B, C, L) from the workspace w (sequences, 2, M, Q; _pairs), each sequence times its scale
    (B, C) where one is given, plus D * src when D is given."""
    bsz, c, length = out.shape
    outer, groups = _pairs(p, bsz, c)
    if w.shape[0] != outer * groups:
        raise ValueError(f"workspace of {w.shape[0]} sequences for {outer} x {groups}")
    flags = dict(HAS_D=D is not None, CHANNELS=p.cfg.pairing == "channels", SCALED=scale is not None)
    scale = scale if scale is not None else w
    if p.fourstep:
        m1, m2, row0, r = _fourstep_rows(p, out_shift, length)
        staged_output_fourstep_kernel[(outer * groups, p.q // p.bq)](
            w, src if D is not None else out, D if D is not None else out, out,
            *_dft_constants(m1, m2, out.device, _operand_dtype(p.prec)), scale, bsz, c, groups, length, out_shift,
            row0, src.stride(0) if D is not None else 0, src.stride(1) if D is not None else 0, out.stride(0),
            out.stride(1), D.stride(0) if D is not None else 0, M=p.m, Q=p.q, M1=m1, M2=m2, R=r, BK=min(m1, 32),
            BQ=p.bq, PREC=p.prec, EMB=p.emb, **flags, num_warps=p.cfg.row_warps, **_row_register_cap(p.cfg))
        return out
    fm = _outer_constants(p.m, p.q, out.device, _operand_dtype(p.prec))[0]
    rows = _row_span(p, out_shift, length)
    br = min(p.cfg.output_rows, max(16, next_power_of_2(rows)))
    staged_output_kernel[(outer * groups, p.q // p.bq, cdiv(rows, br))](
        w, fm, src if D is not None else out, D if D is not None else out, out, scale, bsz, c, groups, length,
        out_shift, src.stride(0) if D is not None else 0, src.stride(1) if D is not None else 0, out.stride(0),
        out.stride(1), D.stride(0) if D is not None else 0, M=p.m, Q=p.q, BR=br, BQ=p.bq, BKA=_column_rows(p),
        PREC=p.prec, **flags, num_warps=p.cfg.column_warps)
    return out


def _check_kernel_spectrum(p: _Plan, kf: Tensor, c: int) -> None:
    """kf as the plan's StagedConfig.spectrum says: kernel_spectrum(k, N) or row_spectrum(k, N, ...)."""
    if p.cfg.spectrum != "rows":
        return fused_fft._check_spectrum(kf, c, p.n)
    want = (c, 2, p.m, p.q)
    if tuple(kf.shape) != want or not kf.is_contiguous() or kf.dtype != torch.float32:
        raise ValueError(f"kf must be row_spectrum(k, {p.n}, ...) with row length {p.q}: a contiguous float32 {want} "
                         f"tensor, got {kf.dtype} {tuple(kf.shape)} with strides {kf.stride()}")


def row_spectrum(k: Tensor, n: int, config: Optional[StagedConfig] = None) -> Tensor:
    """(C, 2, M, Q) float32: DFT_N(k[c]) / N of k (C, Lk) zero-padded to N points, made by the staged kernels (each
    channel a sequence of its own: no channel's error scales with another's) in float32 with split-bfloat16
    products (about 16 bits, as torch.fft's float32; tf32 where PyTorch's flag allows it), kept in the row
    kernels' order: K_c[ka + M*kb] at [c, :, ka, k1*N2 + k2], kb = k1 + N1*k2 (N = M Q, Q = N1 N2 as the
    plan of ``config`` splits them). The row kernels read it with StagedConfig.spectrum = "rows"."""
    cfg = config or StagedConfig()
    p = _plan(n, torch.float32, replace(cfg, precision="", workspace="float32", pairing="batch"))
    if k.dim() != 2:
        raise ValueError(f"k must be (C, Lk), got {tuple(k.shape)}")
    if k.shape[1] > n:
        raise ValueError(f"k has {k.shape[1]} taps, more than the transform's {n} points")
    src = (k if k.stride(-1) == 1 else k.contiguous()).unsqueeze(0)  # (1, C, Lk): one half-empty pair a channel
    ks = _columns(p, src, 0)
    f1, f2, tw, g2 = _dft_constants(p.n1, p.n2, k.device, _operand_dtype(p.prec))
    staged_spectrum_rows_kernel[(p.m // p.rows * ks.shape[0],)](
        ks, f1, f2, tw, g2, M=p.m, N1=p.n1, N2=p.n2, BK=p.bk, P=p.rows, PREC=p.prec, EMB=p.emb,
        num_warps=p.cfg.row_warps, **_row_register_cap(p.cfg))
    return ks


def convolve(src: Tensor, kf: Tensor, D: Optional[Tensor], in_shift: int, out_shift: int, conj: bool, n: int,
             config: Optional[StagedConfig] = None, kscale: Optional[Tensor] = None) -> Tensor:
    """out[b, c, t] = IDFT_N(DFT_N(s) * K)[t + out_shift] (+ D[c] src[b, c, t]), s[t] = src[b, c, t - in_shift],
    K = the kernel spectrum kf (kernel_spectrum(k, N), or row_spectrum with StagedConfig.spectrum = "rows";
    conjugate with conj): (B, C, L) in src's dtype. Channel pairs take each sequence and each kernel at its own
    scale (sequence_scales of src, and kscale (C,) of k: kernel_scales(k), computed from kf when not given)."""
    p = _plan(n, src.dtype, config or StagedConfig())
    c = src.shape[1]
    _check_kernel_spectrum(p, kf, c)
    if p.cfg.pairing == "channels":
        kscale = kscale if kscale is not None else _spectrum_scales(kf, c)
        _check_kernel_scales(kscale, c)
    return _convolve(p, src, kf, D, in_shift, out_shift, conj, kscale)


def _convolve(p: _Plan, src: Tensor, kf: Tensor, D: Optional[Tensor], in_shift: int, out_shift: int, conj: bool,
              kscale: Optional[Tensor], peaks: Optional[Tensor] = None) -> Tensor:
    """convolve after its checks; channel pairs with kscale, and src's peaks (_peaks) where already known."""
    c = src.shape[1]
    if p.cfg.pairing != "channels":
        w = _columns(p, src, in_shift)
        return _output(p, _rows(p, w, kf, conj, c), _empty_like_seq(src), src, D, out_shift)
    peaks = peaks if peaks is not None else _peaks(src)
    w = _rows(p, _columns(p, src, in_shift, _powers_of_two(peaks, 1.0)), kf, conj, c, kscale)
    return _output(p, w, _empty_like_seq(src), src, D, out_shift, _output_scales(peaks, kscale))


def _rows(p: _Plan, w: Tensor, kf: Tensor, conj: bool, c: int, kscale: Optional[Tensor] = None) -> Tensor:
    """Kernel 2 on the workspace w (sequences, 2, M, Q) of C channels with the kernel spectrum kf: w itself,
    transformed in place, or with channel pairs (whose row programs read each other's rows) a new workspace, the
    spectra divided by the kernels' scales kscale (C,)."""
    f1, f2, tw, g2 = _dft_constants(p.n1, p.n2, w.device, _operand_dtype(p.prec))
    common = dict(M=p.m, N1=p.n1, N2=p.n2, BK=p.bk, P=p.rows, CONJ=conj, PREC=p.prec, EMB=p.emb,
                  FACTORED=p.cfg.twiddles == "factored", SPEC_ROWS=p.cfg.spectrum == "rows",
                  num_warps=p.cfg.row_warps, **_row_register_cap(p.cfg))
    if p.cfg.pairing == "channels":
        out = torch.empty_like(w)
        staged_paired_rows_kernel[(p.m // p.rows * w.shape[0],)](
            w, out, kf, kscale, _mirror_phases(p.q, w.device), *_row_twiddle_tables(p, w.device), f1, f2, tw, g2,
            w.shape[0] // cdiv(c, 2), c, **common)
        return out
    groups = w.shape[0] // c
    gp = min(p.cfg.groups_per_program, groups)
    staged_rows_kernel[(p.m // p.rows * c * cdiv(groups, gp),)](
        w, kf, *_row_twiddle_tables(p, w.device), f1, f2, tw, g2, groups, GP=gp, **common)
    return w


def backward(dy: Tensor, x: Tensor, kf: Tensor, D: Optional[Tensor], shift: int, lk: int, n: int,
             config: Optional[StagedConfig] = None, need_dx: bool = True, need_dk: bool = True,
             kscale: Optional[Tensor] = None):
    """(dx in dy's dtype, dk (C, Lk) float32), each None when not needed, of long_conv1d with a kernel centred on tap
    ``shift``: dx = the correlation of dy with k (+ D dy), dk[c, s] = sum over b, t of dy[b, c, t]
    x[b, c, t + shift - s]. kf and kscale as in convolve. With StagedConfig.joint_backward and one spectrum block
    per row, one row kernel makes both from the same transforms of dy."""
    p = _plan(n, x.dtype, config or StagedConfig())
    bsz, c, _ = x.shape
    _check_kernel_spectrum(p, kf, c)
    channels = p.cfg.pairing == "channels"
    if channels:
        kscale = kscale if kscale is not None else _spectrum_scales(kf, c)
        _check_kernel_scales(kscale, c)
    joint = need_dx and need_dk and p.cfg.joint_backward and p.bk == p.n1
    pz = _peaks(dy) if channels else None  # each sequence's largest magnitude, read once
    dx = None
    if need_dx and not joint:
        dx = _convolve(p, dy, kf, D, shift, 0, True, kscale, pz)
    if not need_dk:
        return dx, None
    px = _peaks(x) if channels else None
    wz = _columns(p, dy, shift, _powers_of_two(pz, 1.0) if channels else None)
    wx = _columns(p, x, 0, _powers_of_two(px, 1.0) if channels else None)
    f1, f2, tw, g2 = _dft_constants(p.n1, p.n2, x.device, _operand_dtype(p.prec))
    common = dict(M=p.m, N1=p.n1, N2=p.n2, BK=p.bk, P=p.rows, PREC=p.prec, EMB=p.emb, JOINT=joint,
                  FACTORED=p.cfg.twiddles == "factored", SPEC_ROWS=p.cfg.spectrum == "rows",
                  num_warps=p.cfg.row_warps, **_row_register_cap(p.cfg))
    dk_scale = None
    if channels:  # one spectrum per channel pair: the real part is channel 2j's, the imaginary part 2j + 1's
        spec = torch.empty((cdiv(c, 2), 2, p.m, p.q), dtype=torch.float32, device=x.device)
        wdx = torch.empty_like(wz) if joint else wz
        # each batch entry's term at its own size (0 for an all-zero sequence), over the channel's largest
        products = _powers_of_two(pz, 0.0).double() * _powers_of_two(px, 0.0).double()
        top = products.amax(dim=0, keepdim=True)
        wgt = torch.where(top > 0, products / torch.where(top > 0, top, 1.0), 0.0).float().contiguous()
        dk_scale = top.float()
        staged_paired_correlation_rows_kernel[(p.m // p.rows * cdiv(c, 2),)](
            wz, wx, spec, wdx, kf, kscale, _mirror_phases(p.q, x.device), *_row_twiddle_tables(p, x.device), f1, f2,
            tw, g2, wgt, bsz, c, **common)
    else:
        spec = torch.empty((c, 2, p.m, p.q), dtype=torch.float32, device=x.device)
        wdx = wz
        staged_correlation_rows_kernel[(p.m // p.rows * c,)](
            wz, wx, spec, kf, *_row_twiddle_tables(p, x.device), f1, f2, tw, g2, cdiv(bsz, 2), **common)
    if joint:
        dx = _output(p, wdx, _empty_like_seq(dy), dy, D, 0, _output_scales(pz, kscale) if channels else None)
    dk = torch.empty((1, c, lk), dtype=torch.float32, device=x.device)
    return dx, _output(p, spec, dk, dk, None, 0, dk_scale.contiguous() if channels else None)[0]
