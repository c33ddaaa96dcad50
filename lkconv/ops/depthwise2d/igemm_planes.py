"""Implicit-GEMM forward over whole planes (Triton): one product per channel for small images.

A channel's output plane, flattened (q = h*Wo + w), is its input plane, flattened (p = hi*W + wi), times the
plane's doubly-block-Toeplitz matrix:

    y[n, q] = sum_p x[n, p] * T[p, q],   T[p, q] = k[i, j] where hi + top - h = i*dh and wi + left - w = j*dw

On a 14x14 plane with a 13x13 kernel T is 196 x 196 and 77% taps; row-by-row tiles instead multiply 16 x 16
Toeplitz tiles once per kernel row, reading each input row once per output row and kernel row. Here a tile is BM
images by BN flattened outputs, and the loop runs over BK-long chunks of the flattened input that reach them:
each input element is read once per column block, in any memory layout (x's four strides).

T[p, q] depends on (hi - h, wi - w) alone. With CANVAS the kernel's taps are first placed in a zeroed canvas of
(H + Ho - 1) x (W + Wo - 1) elements per channel (:func:`plane_canvas_kernel`), at row hi - h + Ho - 1 and column
wi - w + Wo - 1; T[p, q] is then canvas[P(p) - Q(q)] with P(p) = hi*CW + wi and Q(q) = h*CW + w - (Ho-1)*CW - (Wo-1)
(CW = W + Wo - 1): one subtraction and an unmasked load per element instead of the tap tests.

Those loads are gathers: Triton keeps the tile in registers, stores it to shared memory for the tensor cores and
waits for each product before the next tile may overwrite it. With the SHIFTED canvas (CANVAS 3) every row of a
Toeplitz tile is read as aligned runs instead, which Triton copies asynchronously in its pipeline like the
input: the outputs are flattened with rows WOP apart (WOP a power of two >= Wo; the columns past Wo are computed
and not stored), the canvas's columns are reversed, so that T[p, q] along an output row is contiguous, and it is
stored in RUN copies shifted by 0..RUN-1 elements (:func:`plane_shifted_canvas_kernel`): row p of the tile starts at
a RUN-element boundary of the copy that its input column selects (RUN 8: 16-byte copies, which bypass L1; RUN 4:
8-byte copies, cached in L1).
"""
from __future__ import annotations

from ..._triton import triton_available

if triton_available():
    import triton
    import triton.language as tl

    from .toeplitz_tiles import accumulate, kernel_taps, step_bounds, step_start
else:  # pragma: no cover
    triton = None

if triton is not None:

    @triton.jit
    def _canvas_tile(w_c, p, q_off, HW, W_IN: tl.constexpr, CW: tl.constexpr, T_LEFT: tl.constexpr = False):
        """T[p, q] (T_LEFT: its transpose, zero from row HW on) read from a channel's canvas (w_c): T's true rows up
        to the plane's end HW (exact for any input read), past it its last row (those inputs read as 0)."""
        p_c = tl.minimum(p, HW - 1)
        if T_LEFT:  # (the select keeps the tile in registers: sm_90 reads a left operand from there)
            t = tl.load(w_c + ((p_c // W_IN) * CW + p_c % W_IN)[None, :] + q_off[:, None])
            return tl.where((p < HW)[None, :], t, 0.0)
        else:
            return tl.load(w_c + ((p_c // W_IN) * CW + p_c % W_IN)[:, None] + q_off[None, :])

    @triton.jit
    def _shifted_canvas_tile(w_c, p, q_part, HW, HO, W_IN: tl.constexpr, CWP: tl.constexpr, COPY: tl.constexpr,
                             RUN: tl.constexpr):
        """T[p, q] read from a channel's shifted canvas (w_c) as aligned runs: row p (clamped to the plane, as in
        :func:`_canvas_tile`) starts at a multiple of RUN elements of copy s = -c0 mod RUN, c0 = W_IN - 1 - wi;
        q_part = w - h * CWP of each output."""
        p_c = tl.minimum(p, HW - 1)
        c0 = W_IN - 1 - p_c % W_IN
        s = (RUN - c0 % RUN) % RUN
        row = tl.multiple_of(s * COPY + (p_c // W_IN + HO - 1) * CWP + c0 + s, RUN)
        return tl.load(w_c + row[:, None] + q_part[None, :])

    @triton.jit
    def _laid_out_tile(w_c, p, q_off, q_part, HW, HO, W_IN: tl.constexpr, CW: tl.constexpr, CWP: tl.constexpr,
                       COPY: tl.constexpr, RUN: tl.constexpr, CANVAS: tl.constexpr, T_LEFT: tl.constexpr = False):
        """T[p, q] read from the taps laid out as CANVAS says: the canvas (1, 2; transposed with T_LEFT) or the shifted
        canvas (3)."""
        if CANVAS == 3:
            return _shifted_canvas_tile(w_c, p, q_part, HW, HO, W_IN, CWP, COPY, RUN)
        else:
            return _canvas_tile(w_c, p, q_off, HW, W_IN, CW, T_LEFT)

    @triton.jit
    def depthwise_conv2d_igemm_plane_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr, cv_ptr,
        N_IMG, C_OUT, H_IN, HO, TOP, LEFT,
        sxn, sxc, sxh, sxw, swc, swh, sww, syn, syc, syh, syw,
        W_IN: tl.constexpr, WO: tl.constexpr,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
        ROW0: tl.constexpr, ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr,
        MULT_DIV: tl.constexpr, GROUP: tl.constexpr,
        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr,
        HAS_BIAS: tl.constexpr, DOT_F32: tl.constexpr, STAGES: tl.constexpr, PLANE: tl.constexpr,
        CANVAS: tl.constexpr, PREFETCH: tl.constexpr, CANVAS_BLOCK: tl.constexpr,
        WOP: tl.constexpr = 0, CWP: tl.constexpr = 0, COPY: tl.constexpr = 0, RUN: tl.constexpr = 8,
        T_LEFT: tl.constexpr = False,
    ):
        """y[n, co, h, w] = sum_{g, hi, wi} x[n, src, hi, wi] * k[i, j] over hi + TOP - h = i*DH and
        wi + LEFT - w = j*DW (taps k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j] of channel co*GROUP + g,
        src = (co // MULT_DIV) * GROUP + g).

        x: (N_IMG, ., H_IN, W_IN), any strides; PLANE > 0: its planes are dense, PLANE = H_IN * W_IN elements
        apart (a multiple of 4, known when compiling: a chunk of the flattened input is then one contiguous, 8-byte
        aligned run, read as such; sxc and sxh, sxw are not read). CANVAS 1: w_ptr is the canvas of
        :func:`plane_canvas_kernel` (channel stride swc; swh, sww, ROW0, ROW_STEP, COL0, COL_STEP not read); CANVAS
        2: each program places its channel's taps (w_ptr, the weight) in its own canvas in cv_ptr (CANVAS_BLOCK >=
        its (H_IN + HO - 1) * (W_IN + WO - 1) elements, at program (pid, co, g)), then reads it after a barrier.
        PREFETCH (with CANVAS): each step reads the next chunk's Toeplitz tile before its product. CANVAS 3: w_ptr
        is the shifted canvas of :func:`plane_shifted_canvas_kernel` (RUN copies of (H_IN + HO - 1) x CWP elements
        per channel, COPY elements each, channel stride swc) and the flattened outputs' rows are WOP apart. T_LEFT
        (CANVAS 1, no PREFETCH): the product is taken transposed, y^T += T^T x^T, so that the Toeplitz tile enters the
        tensor cores as the left operand, from registers (sm_90: one product left in flight at each wait). Grid:
        (image blocks * blocks of BN flattened outputs, C_OUT).
        """
        tl.static_assert(not T_LEFT or (CANVAS == 1 and not PREFETCH), "T_LEFT reads the canvas, without PREFETCH")
        pid = tl.program_id(0)
        co = tl.program_id(1)
        ROWW: tl.constexpr = WOP if CANVAS == 3 else WO  # the flattened outputs' row pitch
        n_out = HO * ROWW
        n_qb = tl.cdiv(n_out, BN)
        pid_m, pid_q = pid // n_qb, pid % n_qb
        n_img = pid_m * BM + tl.arange(0, BM)
        n_ld = tl.minimum(n_img, N_IMG - 1)  # images past the end re-read the last one; not stored
        q0 = pid_q * BN
        q = q0 + tl.arange(0, BN)
        h = q // ROWW
        w = q % ROWW
        q_ok = (q < n_out) & (w < WO)
        # the input rows that reach this block's output rows, as a range of the flattened input
        hi_lo = tl.maximum(q0 // ROWW - TOP, 0)
        hi_end = tl.minimum((tl.minimum(q0 + BN, n_out) - 1) // ROWW - TOP + (KH - 1) * DH + 1, H_IN)
        p_end = hi_end * W_IN
        kk = tl.arange(0, BK)
        CW: tl.constexpr = W_IN + WO - 1  # the canvas's row length
        q_c = tl.minimum(q, n_out - 1)  # outputs past the plane read a real output's column of T; not stored
        q_off = (HO - 1) * CW + (WO - 1) - (q_c // WO) * CW - q_c % WO  # -Q(q)
        q_part = w - tl.minimum(h, HO - 1) * CWP  # (CANVAS 3) rows past the plane read its last row; not stored
        if T_LEFT:
            acc = tl.zeros([BN, BM], dtype=tl.float32)
        else:
            acc = tl.zeros([BM, BN], dtype=tl.float32)
        for g in tl.static_range(GROUP):
            src = (co // MULT_DIV) * GROUP + g
            if PLANE > 0:
                x_c = x_ptr + src.to(tl.int64) * PLANE + n_ld.to(tl.int64)[:, None] * sxn
            else:
                x_c = x_ptr + src.to(tl.int64) * sxc + n_ld.to(tl.int64)[:, None] * sxn
            w_c = w_ptr + (co * GROUP + g).to(tl.int64) * swc
            if CANVAS == 2:  # this program's own canvas, written then read back by its threads
                chw = (H_IN + HO - 1) * CW
                cv_c = cv_ptr + ((pid * C_OUT + co) * GROUP + g).to(tl.int64) * chw
                _place_taps(w_c, cv_c, HO, TOP, LEFT, swh, sww, chw, CW, WO, KH, KW, DH, DW, ROW0, ROW_STEP, COL0,
                            COL_STEP, CANVAS_BLOCK, 0)
                tl.debug_barrier()
                w_c = cv_c
            p_first = (hi_lo * W_IN // BK) * BK
            if CANVAS and PREFETCH:
                t = _laid_out_tile(w_c, p_first + kk, q_off, q_part, H_IN * W_IN, HO, W_IN, CW, CWP, COPY, RUN,
                                   CANVAS)
            # T_LEFT: steps counted, at least one (of zeros where no input reaches the block)
            lo, stop, inc = step_bounds(p_first, p_end, BK, T_LEFT)
            for it in tl.range(lo, stop, inc, num_stages=STAGES):
                p0 = step_start(it, p_first, BK, T_LEFT)
                p = p0 + kk
                hi = p // W_IN
                wi = p % W_IN
                p_ok = p < p_end
                if PLANE > 0:  # the run p0 .. p0+BK-1 of the plane, up to p_end rounded to 4 (within the plane)
                    p_end4 = tl.minimum((p_end + 3) // 4 * 4, PLANE)
                    a = tl.load(x_c + p[None, :], mask=(p < p_end4)[None, :], other=0.0)
                else:
                    a = tl.load(x_c + (hi * sxh + wi * sxw)[None, :], mask=p_ok[None, :], other=0.0)
                if CANVAS and PREFETCH:
                    t_next = _laid_out_tile(w_c, p + BK, q_off, q_part, H_IN * W_IN, HO, W_IN, CW, CWP, COPY, RUN,
                                            CANVAS)
                    acc = accumulate(acc, a, t, PREC, DOT_F32)
                    t = t_next
                elif CANVAS:  # (the shifted canvas: aligned runs, copied asynchronously in the pipeline)
                    t = _laid_out_tile(w_c, p, q_off, q_part, H_IN * W_IN, HO, W_IN, CW, CWP, COPY, RUN, CANVAS,
                                       T_LEFT)
                    if T_LEFT:  # y^T += T^T x^T: the tile enters the product from registers
                        acc = accumulate(acc, t, tl.trans(a), PREC, DOT_F32)
                    else:
                        acc = accumulate(acc, a, t, PREC, DOT_F32)
                else:  # T[p, q]: the tap tests along both axes, the two offsets summed before the gather (through
                    # toeplitz_band twice the strided form compiles to 126 registers for sm_90 at BN 32, against 96)
                    t = kernel_taps(w_c, hi[:, None] + TOP - h[None, :], wi[:, None] + LEFT - w[None, :],
                                    p_ok[:, None] & q_ok[None, :], swh, sww, KH, KW, DH, DW, ROW0, ROW_STEP, COL0,
                                    COL_STEP)
                    acc = accumulate(acc, a, t, PREC, DOT_F32)
        if T_LEFT:
            acc = tl.trans(acc)
        if HAS_BIAS:
            acc += tl.load(b_ptr + co).to(tl.float32)
        y = (y_ptr + n_ld.to(tl.int64)[:, None] * syn + co.to(tl.int64) * syc
             + (h.to(tl.int64) * syh + w.to(tl.int64) * syw)[None, :])
        ok = (n_img < N_IMG)[:, None] & q_ok[None, :]
        tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def plane_canvas_kernel(
        w_ptr, cv_ptr, HO, TOP, LEFT, swc, swh, sww,
        CH: tl.constexpr, CW: tl.constexpr, WO: tl.constexpr,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
        ROW0: tl.constexpr, ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """cv[c, a, b] (CH x CW per channel, dense) = k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j] of channel c where
        a - (HO-1) + TOP = i*DH and b - (WO-1) + LEFT = j*DW (0 <= i < KH, 0 <= j < KW), else 0: the tap joining
        input (hi, wi) to output (h, w) sits at a = hi - h + HO - 1, b = wi - w + WO - 1. Grid: (channels, element
        blocks)."""
        c = tl.program_id(0)
        _place_taps(w_ptr + c.to(tl.int64) * swc, cv_ptr + c.to(tl.int64) * (CH * CW), HO, TOP, LEFT, swh, sww,
                    CH * CW, CW, WO, KH, KW, DH, DW, ROW0, ROW_STEP, COL0, COL_STEP, BLOCK, tl.program_id(1) * BLOCK)

    @triton.jit
    def plane_shifted_canvas_kernel(
        w_ptr, cv_ptr, HO, TOP, LEFT, swc, swh, sww,
        CH: tl.constexpr, CWP: tl.constexpr, W_IN: tl.constexpr, RUN: tl.constexpr,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
        ROW0: tl.constexpr, ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """cv[c, s, a, b] (RUN x CH x CWP per channel, dense) = k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j] of channel c
        where a - (HO-1) + TOP = i*DH and W_IN - 1 + s - b + LEFT = j*DW (0 <= i < KH, 0 <= j < KW), else 0: copy s
        of the canvas with its columns reversed and shifted right by s, so that the tap joining input (hi, wi) to
        output (h, w) sits at a = hi - h + HO - 1, b = W_IN - 1 - wi + s + w. Grid: (channels, element blocks)."""
        c = tl.program_id(0)
        e = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        a = e % (CH * CWP) // CWP
        v = kernel_taps(w_ptr + c.to(tl.int64) * swc, a - (HO - 1) + TOP,
                        W_IN - 1 + e // (CH * CWP) - e % CWP + LEFT, e < RUN * CH * CWP, swh, sww, KH, KW, DH, DW,
                        ROW0, ROW_STEP, COL0, COL_STEP)
        tl.store(cv_ptr + c.to(tl.int64) * (RUN * CH * CWP) + e, v.to(cv_ptr.dtype.element_ty),
                 mask=e < RUN * CH * CWP)

    @triton.jit
    def _place_taps(w_c, cv_c, HO, TOP, LEFT, swh, sww, CHW, CW: tl.constexpr, WO: tl.constexpr,
                    KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr, ROW0: tl.constexpr,
                    ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr, BLOCK: tl.constexpr, e0):
        """Canvas elements e0 .. e0+BLOCK-1 (of CHW) of one channel: cv_c[a*CW + b] = its tap joining input row
        hi, column wi to output h, w with a = hi - h + HO - 1, b = wi - w + WO - 1, or 0."""
        e = e0 + tl.arange(0, BLOCK)
        v = kernel_taps(w_c, e // CW - (HO - 1) + TOP, e % CW - (WO - 1) + LEFT, e < CHW, swh, sww, KH, KW, DH, DW,
                        ROW0, ROW_STEP, COL0, COL_STEP)
        tl.store(cv_c + e, v.to(cv_c.dtype.element_ty), mask=e < CHW)
