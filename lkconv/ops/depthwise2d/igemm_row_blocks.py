"""Implicit-GEMM forward over blocks of whole output rows (Triton): the plane's block-Toeplitz product.

With whole-row tiles (:func:`implicit_gemm.column_plan`), one channel's output plane is a product of its input
plane (rows hi, BK columns each) with a block-Toeplitz matrix whose block (hi, h) is the row Toeplitz tile of
kernel row i = (hi + top - h) / dh (zero off the kernel's reach). The one-row kernel of implicit_gemm.py multiplies
a single block per loop step (BM x BK x BN: 64 x 16 x 16 on 14-column rows). Here a tile holds R output rows of BM
images, and each step multiplies one input row by the R blocks of its row block:

    y[n, h0 + r, :] += x[n, hi, :] @ T_{(hi + top - h0 - r) / dh}      for r < R, as one (BM x BK) @ (BK x R*BN)

so the loop runs over the input rows that reach the block (R + (kh-1)*dh of them at most) instead of over kh kernel
rows per output row, with R times wider products; the blocks off the kernel's reach multiply as zeros.

Wider rows split into column blocks of BN outputs, each reading a BK-wide band of its input row (the band of
implicit_gemm.py, read in place from a column COL_OFF left of the block's first output, COL_OFF rounded up from the
left padding so that the band's loads stay aligned). The Toeplitz tiles do not depend on the column block, so the
product's rows are (image, column block) pairs: tiles stay full at any batch size, and each input band is read once
per R output rows instead of once per output row and kernel row (13x13 on 56-column rows: 5 reads of each input
element per output at R = 8, against 26 for one-row band tiles).
"""
from __future__ import annotations

from ..._triton import triton_available

if triton_available():
    import triton
    import triton.language as tl

    from .toeplitz_tiles import accumulate, kernel_taps, row_geometry, step_bounds, step_start, toeplitz_band
else:  # pragma: no cover
    triton = None

if triton is not None:

    @triton.jit
    def _block_taps(w_c, d, band, swh, KH: tl.constexpr, DH: tl.constexpr, ROW0: tl.constexpr,
                    ROW_STEP: tl.constexpr):
        """The row block's Toeplitz tiles for one or more input rows: d = i * DH (per product column, or per product
        row and column), the kernel row joining the input row to the column's output row (zero where it is off the
        kernel)."""
        i = tl.minimum(tl.maximum(d, 0) // DH, KH - 1)
        reach = (d >= 0) & (d % DH == 0) & (d < KH * DH)
        return tl.load(w_c + (ROW0 + ROW_STEP * i) * swh, mask=band & reach, other=0.0)

    @triton.jit
    def _row_reach(hi, kr, d0, KR: tl.constexpr):
        """i * DH joining input row hi (+ kr, KR > 1) to each product column's output row: per column for one input
        row per product, per product row and column for several."""
        if KR == 1:
            return (hi + d0)[None, :]
        else:
            return (hi + kr)[:, None] + d0[None, :]

    @triton.jit
    def depthwise_conv2d_igemm_row_block_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr,
        N_IMG, N_CB, HO, WO, C_OUT, H_IN, W_IN, TOP, SHIFT,
        sxn, sxc, sxh, swc, swh, sww, syn, syc, syh, syw,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
        ROW0: tl.constexpr, ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr,
        MULT_DIV: tl.constexpr, GROUP: tl.constexpr,
        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, R: tl.constexpr, PREC: tl.constexpr,
        HAS_BIAS: tl.constexpr, DOT_F32: tl.constexpr, STAGES: tl.constexpr, MASK_COLS: tl.constexpr,
        ROW_W: tl.constexpr, COL_OFF: tl.constexpr, PREFETCH: tl.constexpr, KR: tl.constexpr, TABLE: tl.constexpr,
        T_LEFT: tl.constexpr = False,
    ):
        """y[n, co, h0 + r, wn] = sum_{g, hi, kk} xp[n, src, hi, kk] * k[i, j] over i*DH = hi + TOP - h0 - r and
        kk + SHIFT - wn = j*DW (taps k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j] of channel co*GROUP + g,
        src = (co // MULT_DIV) * GROUP + g).

        xp: the input's rows (H_IN of them, unit column stride), columns 0 <= c < W_IN read (MASK_COLS: the others
        masked; ROW_W > 0: the rows are dense and ROW_W wide, known when compiling, as in implicit_gemm). A tile is
        BM (image, column block) pairs x R output rows x BN columns; column block cb reads the input columns
        cb*BN - COL_OFF + kk (one block of whole rows: N_CB = 1, COL_OFF = 0, SHIFT = the left padding; column
        blocks: SHIFT = left padding - COL_OFF). PREFETCH: each step gathers the next step's Toeplitz tiles before
        its product, so that their loads overlap it. KR input rows enter each product ([x_hi .. x_{hi+KR-1}] against
        their blocks stacked; rows past the reach masked to zeros). TABLE: w_ptr is the table of
        :func:`row_block_table_kernel` (channel stride swc), read as plain loads (no gather, no prefetch). T_LEFT
        (gathered tiles, no PREFETCH): the product is taken transposed, y^T += T^T x^T, so that the gathered Toeplitz
        tile enters the tensor cores as the left operand, from registers (a select keeps it there; sm_90: one
        product left in flight at each wait). Grid: (pair blocks * row blocks, C_OUT).
        """
        pid = tl.program_id(0)
        co = tl.program_id(1)
        n_hb = tl.cdiv(HO, R)
        pid_m, pid_h = pid // n_hb, pid % n_hb
        h0 = pid_h * R
        m = pid_m * BM + tl.arange(0, BM)
        m_ld = tl.minimum(m, N_IMG * N_CB - 1)  # pairs past the end re-read the last one; not stored
        n_ld = m_ld // N_CB
        w0 = (m_ld % N_CB) * BN  # the column block's first output column
        row_stride, w_in = row_geometry(sxh, W_IN, ROW_W)
        row_step = tl.zeros([], dtype=tl.int64) + row_stride  # int64 addressing
        q_k = tl.arange(0, KR * BK)  # the product's K: input row hi + q_k // BK, band column q_k % BK
        kr = q_k // BK
        kk = q_k % BK
        col = (w0 - COL_OFF)[:, None] + kk[None, :]  # the input columns of the band
        row_off = kr.to(tl.int64) * row_step
        q = tl.arange(0, R * BN)  # the product's columns: output row h0 + q // BN, column q % BN
        r = q // BN
        wn = q % BN
        band, w_cols = toeplitz_band(kk, wn, SHIFT, sww, KW, DW, COL0, COL_STEP)
        h_last = tl.minimum(h0 + R, HO) - 1
        hi_lo = tl.maximum(h0 - TOP, 0)  # the input rows that reach an output row of the block
        hi_end = tl.minimum(h_last - TOP + (KH - 1) * DH + 1, H_IN)
        d0 = TOP - h0 - r  # + input row: i * DH for the kernel row joining it to output row h0 + r
        tl.static_assert(not T_LEFT or not (TABLE or PREFETCH), "T_LEFT gathers its tiles, without PREFETCH")
        if T_LEFT:
            acc = tl.zeros([R * BN, BM], dtype=tl.float32)
        else:
            acc = tl.zeros([BM, R * BN], dtype=tl.float32)
        for g in tl.static_range(GROUP):
            src = (co // MULT_DIV) * GROUP + g
            a_base = x_ptr + src.to(tl.int64) * sxc + n_ld.to(tl.int64)[:, None] * sxn + col + row_off[None, :]
            w_c = w_ptr + (co * GROUP + g).to(tl.int64) * swc + w_cols
            if TABLE:  # tile row s = i*DH + R - 1 of the table holds T_i; the product's block r of input row
                # hi + kr reads row hi + kr + TOP - h0 - r + R - 1
                t_c = (w_ptr + (co * GROUP + g).to(tl.int64) * swc + (kr[:, None] - r[None, :]) * (BK * BN)
                       + kk[:, None] * BN + wn[None, :])
            elif PREFETCH:
                t = _block_taps(w_c, _row_reach(hi_lo, kr, d0, KR), band, swh, KH, DH, ROW0, ROW_STEP)
            # T_LEFT: steps counted, at least one (of zeros where no input row reaches the block)
            lo, stop, inc = step_bounds(hi_lo, hi_end, KR, T_LEFT)
            for it in tl.range(lo, stop, inc, num_stages=STAGES):
                hi = step_start(it, hi_lo, KR, T_LEFT)
                if MASK_COLS:  # columns outside the input's are not read
                    if COL_OFF > 0:
                        a_ok = (col >= 0) & (col < w_in)
                    else:
                        a_ok = col < w_in
                    if KR > 1 or T_LEFT:
                        a_ok = a_ok & (hi + kr < hi_end)[None, :]
                    a = tl.load(a_base + hi * row_step, mask=a_ok, other=0.0)
                elif KR > 1 or T_LEFT:
                    a = tl.load(a_base + hi * row_step, mask=(hi + kr < hi_end)[None, :], other=0.0)
                else:
                    a = tl.load(a_base + hi * row_step)
                if TABLE:
                    t = tl.load(t_c + (hi + TOP - h0 + R - 1) * (BK * BN))
                    acc = accumulate(acc, a, t, PREC, DOT_F32)
                elif PREFETCH:  # (past the last row the gather reads in-bounds taps that are not used)
                    t_next = _block_taps(w_c, _row_reach(hi + KR, kr, d0, KR), band, swh, KH, DH, ROW0, ROW_STEP)
                    acc = accumulate(acc, a, t, PREC, DOT_F32)
                    t = t_next
                else:
                    t = _block_taps(w_c, _row_reach(hi, kr, d0, KR), band, swh, KH, DH, ROW0, ROW_STEP)
                    if T_LEFT:  # y^T += T^T x^T: the tile enters the product from registers (zero in the extra step)
                        acc = accumulate(acc, tl.where(hi < hi_end, tl.trans(t), 0.0), tl.trans(a), PREC, DOT_F32)
                    else:
                        acc = accumulate(acc, a, t, PREC, DOT_F32)
        if T_LEFT:
            acc = tl.trans(acc)
        if HAS_BIAS:
            acc += tl.load(b_ptr + co).to(tl.float32)
        h = h0 + r
        y = (y_ptr + n_ld.to(tl.int64)[:, None] * syn + co.to(tl.int64) * syc + h.to(tl.int64)[None, :] * syh
             + (w0[:, None] + wn[None, :]) * syw)
        ok = (m < N_IMG * N_CB)[:, None] & (h < HO)[None, :] & ((w0[:, None] + wn[None, :]) < WO)
        tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def row_block_table_kernel(
        w_ptr, tt_ptr, SHIFT, swc, swh, sww, S,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr, ROW0: tl.constexpr,
        ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr, R: tl.constexpr, BK: tl.constexpr,
        BN: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """tt[c, s, kk, wn] (S x BK x BN per channel, dense) = k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j] of channel c
        where s - (R - 1) = i*DH and kk + SHIFT - wn = j*DW (0 <= i < KH, 0 <= j < KW), else 0: the Toeplitz tile
        of every kernel-row offset a row block's product meets, zero rows around them. Grid: (channels, element
        blocks)."""
        c = tl.program_id(0)
        e = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        v = kernel_taps(w_ptr + c.to(tl.int64) * swc, e // (BK * BN) - (R - 1), (e // BN) % BK + SHIFT - e % BN,
                        e < S * BK * BN, swh, sww, KH, KW, DH, DW, ROW0, ROW_STEP, COL0, COL_STEP)
        tl.store(tt_ptr + c.to(tl.int64) * S * (BK * BN) + e, v.to(tt_ptr.dtype.element_ty), mask=e < S * BK * BN)
