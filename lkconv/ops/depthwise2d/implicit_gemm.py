"""Depthwise 2D convolution on tensor cores (Triton): the banded-Toeplitz implicit GEMM.

For one channel and kernel row i, a block of output rows (any images, any output rows: the GEMM's M) times
BN output columns is one matrix product:

    y[m, w0:w0+BN] += X_i[m, w0-p : w0-p+BK] @ T_i          T_i[kk, w] = k[i, (kk - w) / d]  (0 off the band)

where X_i holds the input rows m shifted by i*d. The input is first copied into an NCHW buffer (any input
layout) whose 16-element-aligned rows carry the zero columns of the padding and cover every tile, so the
kernel's loads vectorize (masked loads of the input itself ran 2-3x slower on an H100; a buffer kept between
calls, whose interior alone is rewritten, copied no faster). The padding's rows are not in the buffer: a load
masks whole rows, which keeps it vectorized, and a masked row costs no memory traffic. Each T_i tile is
gathered from the weight row inside the loop over kernel rows (faster than reading precomputed factors);
BK = BN + (kw-1)*d rounded up to a power of two, so tensor cores do BK/kw times the useful multiply-adds.
Where the padding is a large part of a row (27x27 on 14 columns) most of such a band is zeros; whole-row tiles
(:func:`column_plan`) instead multiply every input column of a row (BK = W as a power of two; rows read in place
where they are dense and 16-byte aligned, else copied BK wide and aligned) by every output column, with the left
padding moved into the Toeplitz tiles as a shift.
Stacking many (image, row) pairs into M keeps the tiles full at any batch size; where the padding holds many of
the (output row, kernel row) pairs, M enumerates output rows first, so that a tile spans few of them and skips
the kernel rows that reach no input row (:class:`IgemmConfig` ``order``). Narrow whole rows (16 columns) make
small products; several kernel rows then enter one, [X_i X_{i+1}] @ [T_i; T_{i+1}] (``kernel_rows``). The input
gradient is the same product with the reversed kernel (stride 1). The weight gradient accumulates
G_i = X_i^T @ dY over the output rows that kernel row i reaches (the same input buffer, and dY with zero columns
up to whole column blocks), for one or several kernel rows per loaded dY tile, and sums G_i's diagonals:
dk[i, j] = sum_w G_i[w + j*d, w].

On small planes two more forms take the forward and input gradient: where the kernel reaches every row of the
plane, tiles of several output rows multiply one input row at a time by a row of the plane's block-Toeplitz matrix
(igemm_row_blocks.py); where the plane is at most 256 elements and mostly covered by the kernel, tiles of
flattened outputs multiply chunks of the flattened input by the plane's doubly-block-Toeplitz matrix
(igemm_planes.py). igemm_tiles.py chooses the form and the tile (:class:`IgemmConfig`).

The band lies along the kernel's width. A tall kernel (51 x 5) would put a 5-wide band on the tensor cores
(BK = 32 for 5 useful taps), so every direction is computed on the transposed problem instead (H and W
swapped, through a transposing copy of the input; the output is stored through its own transposed view where
the GEMM's rows enumerate images first, else copied back) when that saves enough tensor-core work or when
only the transposed band fits: :func:`transposes`.

Non-finite inputs: an Inf in the input makes its whole column tile NaN (the band's zero entries multiply it;
with row blocks or whole planes, every output of the tile whose input rows or chunks hold it), where a direct
convolution gives Inf or NaN only at the outputs whose window holds it.

Precision: bf16/fp16 operands with fp32 accumulation; float32 operands use split-precision ``tf32x3`` (about
float32 accuracy), or plain ``tf32`` only when PyTorch's ``torch.backends.cuda.matmul.allow_tf32`` is set.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import torch

from ..._triton import cdiv, interpreting, next_power_of_2, triton_available
from .._launch import FastLauncher, strided_copy
from .igemm_tiles import (  # noqa: F401 - the tiling's names, also read as implicit_gemm.<name>
    COLUMN_FORMS, DEFAULT_CONFIG, MAX_BAND_TILE, MAX_ROW_TILE_BN, PLANE_BK, PLANE_MAX, SHARED_MEMORY_BUDGET,
    TOEPLITZ_FORMS, IgemmConfig, _dense_plane, _fit, _kernel_rows, _order, _plane, _precision, _reaching_fraction,
    _row_block, _row_tiles, _rows, _takes_row_blocks, _tiles, _warps, _wgrad_kernel_rows, band_row_block_tile,
    check_config, column_plan, column_tile, image_rows, prefetches, row_block_kernel_rows, takes_toeplitz_left)

if triton_available():
    import triton
    import triton.language as tl

    from .igemm_planes import (depthwise_conv2d_igemm_plane_kernel, plane_canvas_kernel,
                               plane_shifted_canvas_kernel)
    from .igemm_row_blocks import depthwise_conv2d_igemm_row_block_kernel, row_block_table_kernel
    from .toeplitz_tiles import accumulate, row_geometry, toeplitz_band
else:  # pragma: no cover
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

if triton is not None:

    @triton.jit
    def depthwise_conv2d_igemm_fwd_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr, t_ptr,
        M, HO, WO, C_OUT, H_IN, W_IN, TOP, SHIFT,
        sxn, sxc, sxh, swc, swh, sww, syn, syc, syh, syw, stc,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
        ROW0: tl.constexpr, ROW_STEP: tl.constexpr, COL0: tl.constexpr, COL_STEP: tl.constexpr,
        MULT_DIV: tl.constexpr, GROUP: tl.constexpr,
        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr, HAS_BIAS: tl.constexpr,
        DOT_F32: tl.constexpr, STAGES: tl.constexpr, TABLE: tl.constexpr, ROWS_FIRST: tl.constexpr,
        MASK_COLS: tl.constexpr, KR: tl.constexpr, ROW_W: tl.constexpr,
    ):
        """y[n, co, h, w0 + wn] = sum_{g, i, kk} xp[n, src, h + i*DH - TOP, w0 + kk] * T_i[kk, wn]

        xp: band tiles (SHIFT 0): the column-bordered input of :func:`_source_rows` (NCHW, H_IN rows, unit column
        stride, every column tile in bounds); whole-row tiles (one column block, MASK_COLS): the input's own
        rows (unit column stride), columns kk < W_IN, with T_i shifted by SHIFT = the left padding. Rows outside
        [0, H_IN) read as zeros through a mask that is constant along each row, so the band's loads stay
        vectorized; src = (co // MULT_DIV) * GROUP + g; rows m = n*HO + h, or with ROWS_FIRST
        m = h*N + n: a tile then spans few output rows h, and its loop runs only over the kernel rows that reach
        an input row of one of them (the others would add only masked zeros); T_i the banded Toeplitz
        tile of kernel row i of channel co*GROUP + g, gathered from the weight through the taps
        k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j]: T_i[kk, wn] = k[.., j] where kk + SHIFT - wn = j*DW; with TABLE, T_i is
        read whole from t_ptr (channel stride stc; :func:`_toeplitz_table`) instead of gathered. KR kernel rows
        enter one product: [X_i .. X_{i+KR-1}] (BM x KR*BK) @ [T_i; ..; T_{i+KR-1}] (KR*BK x BN), kernel rows
        past the loop's end masked to zeros in both. ROW_W > 0: xp's rows are dense and ROW_W columns wide
        (W_IN = sxh = ROW_W, known when compiling, so that the column mask of 16-byte aligned rows stays constant
        over 16-byte vectors and the loads vectorize).
        Grid: (M blocks * column blocks, C_OUT).
        """
        pid = tl.program_id(0)
        co = tl.program_id(1)
        n_cb = tl.cdiv(WO, BN)
        pid_m, pid_n = pid // n_cb, pid % n_cb
        m = pid_m * BM + tl.arange(0, BM)
        m_ld = tl.minimum(m, M - 1)  # rows past the end re-read the last row; their results are not stored
        if ROWS_FIRST:
            n_imgs = M // HO
            h = m_ld // n_imgs
            n_img = m_ld % n_imgs
            h_lo = (pid_m * BM) // n_imgs
            h_hi = (tl.minimum(pid_m * BM + BM, M) - 1) // n_imgs
            i_lo = (tl.maximum(TOP - h_hi, 0) + DH - 1) // DH  # first kernel row reaching input row >= 0
            last = H_IN - 1 + TOP - h_lo  # (last kernel row reaching input row < H_IN) * DH
            i_hi = tl.where(last >= 0, tl.minimum(tl.maximum(last, 0) // DH + 1, KH), 0)
        else:
            n_img = m_ld // HO
            h = m_ld % HO
            i_lo = 0
            i_hi = KH
        w0 = pid_n * BN
        q = tl.arange(0, KR * BK)  # K index of one product: kernel row i + q // BK, column kk = q % BK
        kr = q // BK
        kk = q % BK
        wn = tl.arange(0, BN)
        row_stride, w_in = row_geometry(sxh, W_IN, ROW_W)
        r0 = h - TOP  # input row of kernel row 0
        rows = n_img.to(tl.int64) * sxn + r0.to(tl.int64) * row_stride
        step = tl.zeros([], dtype=tl.int64) + DH * row_stride  # int64 addressing (row_stride may be a constant)
        band, w_taps = toeplitz_band(kk, wn, SHIFT, sww, KW, DW, COL0, COL_STEP)
        w_taps += kr[:, None] * (ROW_STEP * swh)
        acc = tl.zeros([BM, BN], dtype=tl.float32)
        for g in tl.static_range(GROUP):
            src = (co // MULT_DIV) * GROUP + g
            a_ptrs = x_ptr + src.to(tl.int64) * sxc + rows[:, None] + (kr.to(tl.int64) * step + w0 + kk)[None, :]
            w_c = w_ptr + (co * GROUP + g).to(tl.int64) * swc + w_taps
            t_c = t_ptr + (co * GROUP + g).to(tl.int64) * stc + q[:, None] * BN + wn[None, :]
            for i in tl.range(i_lo, i_hi, KR, num_stages=STAGES):
                k_ok = i + kr < i_hi  # kernel rows past the loop's end add zeros
                r = r0[:, None] + (i + kr)[None, :] * DH
                a_ok = (r >= 0) & (r < H_IN) & k_ok[None, :]
                if MASK_COLS:  # whole rows read in place: columns past the input's are not read
                    a_ok = a_ok & ((w0 + kk) < w_in)[None, :]
                a = tl.load(a_ptrs + i * step, mask=a_ok, other=0.0)
                if TABLE:
                    t = tl.load(t_c + i * (BK * BN), mask=k_ok[:, None], other=0.0)
                else:
                    t = tl.load(w_c + (ROW0 + ROW_STEP * i) * swh, mask=band & k_ok[:, None], other=0.0)
                acc = accumulate(acc, a, t, PREC, DOT_F32)
        if HAS_BIAS:
            acc += tl.load(b_ptr + co).to(tl.float32)
        y = (y_ptr + n_img.to(tl.int64)[:, None] * syn + co.to(tl.int64) * syc + h.to(tl.int64)[:, None] * syh
             + (w0 + wn)[None, :] * syw)  # rows past M point at the last row and are masked
        tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=(m < M)[:, None] & ((w0 + wn) < WO)[None, :])

    @triton.jit
    def zero_bordered_copy_kernel(
        x_ptr, out_ptr, C, H, W, HEIGHT, WIDTH, top, left,
        sxn, sxc, sxh, sxw, son, soc, soh, sow,
        BC: tl.constexpr, BW: tl.constexpr,
    ):
        """out (N, C, HEIGHT, WIDTH) = x placed at (top, left) in zeros.

        Grid (N*HEIGHT, channel blocks, column blocks): a [BC channels, BW columns] tile of one output row, so
        reads are coalesced for NCHW (along columns) and channels_last (along channels) inputs alike."""
        row = tl.program_id(0)
        n, r = row // HEIGHT, row % HEIGHT
        c = tl.program_id(1) * BC + tl.arange(0, BC)[:, None]
        col = tl.program_id(2) * BW + tl.arange(0, BW)[None, :]
        src_r, src_c = r - top, col - left
        ok = (c < C) & (src_r >= 0) & (src_r < H) & (src_c >= 0) & (src_c < W)
        v = tl.load(x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc + src_r.to(tl.int64) * sxh
                    + src_c.to(tl.int64) * sxw, mask=ok, other=0.0)
        out = out_ptr + n.to(tl.int64) * son + c.to(tl.int64) * soc + r.to(tl.int64) * soh + col.to(tl.int64) * sow
        tl.store(out, v, mask=(c < C) & (col < WIDTH))

    @triton.jit
    def row_padded_copy_kernel(x_ptr, out_ptr, ROWS, W, WIDTH: tl.constexpr, BR: tl.constexpr):
        """out (ROWS, WIDTH) = the dense rows x (ROWS, W) followed by zeros in columns W..WIDTH-1: a block of BR
        whole rows per program, read and written as contiguous runs."""
        r = (tl.program_id(0) * BR + tl.arange(0, BR)).to(tl.int64)
        col = tl.arange(0, WIDTH)
        ok = (r < ROWS)[:, None]
        v = tl.load(x_ptr + r[:, None] * W + col[None, :], mask=ok & (col < W)[None, :], other=0.0)
        tl.store(out_ptr + r[:, None] * WIDTH + col[None, :], v, mask=ok)

    @triton.jit
    def zero_bordered_transpose_copy_kernel(
        x_ptr, out_ptr, C, H, W, HEIGHT, WIDTH, top, left,
        sxn, sxc, sxh, sxw, son, soc, soh, sow,
        BR: tl.constexpr, BCOL: tl.constexpr,
    ):
        """zero_bordered_copy_kernel for an x whose unit-stride dimension is its rows (a transposed view):
        each [BR rows, BCOL columns] tile of one (n, c) plane is read along x's rows and stored along out's
        columns, so both sides stay coalesced. Grid (N*C, row blocks, column blocks)."""
        nc = tl.program_id(0)
        n, c = nc // C, nc % C
        r = tl.program_id(1) * BR + tl.arange(0, BR)
        col = tl.program_id(2) * BCOL + tl.arange(0, BCOL)
        src_r, src_c = r - top, col - left
        ok = ((src_c >= 0) & (src_c < W))[:, None] & ((src_r >= 0) & (src_r < H))[None, :]
        src = (x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc + src_c.to(tl.int64)[:, None] * sxw
               + src_r.to(tl.int64)[None, :] * sxh)
        v = tl.load(src, mask=ok, other=0.0)  # [BCOL, BR]: consecutive lanes walk x's unit-stride rows
        out = (out_ptr + n.to(tl.int64) * son + c.to(tl.int64) * soc + r.to(tl.int64)[:, None] * soh
               + col.to(tl.int64)[None, :] * sow)
        tl.store(out, tl.trans(v), mask=(r < HEIGHT)[:, None] & (col < WIDTH)[None, :])

    @triton.jit
    def depthwise_conv2d_igemm_wgrad_kernel(
        x_ptr, dy_ptr, part_ptr,
        M, HO, WO, C_OUT, ROWS_PER_PROG, H_IN, W_IN, TOP, SHIFT,
        sxn, sxc, sxh, syn, syc, syh,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr, MULT_DIV: tl.constexpr,
        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr,
        MASK_COLS: tl.constexpr, KR: tl.constexpr, X_W: tl.constexpr, DY_W: tl.constexpr,
    ):
        """part[k, co, i, j] = sum over this program's rows and columns of dy[n, co, h, w] * xp[n, co // MULT_DIV, h + i*DH - TOP, w + j*DW]

        Band tiles (SHIFT 0): xp is the column-bordered input of :func:`_source_rows` (H_IN rows) and dy the output
        gradient with zero columns up to a whole number of column blocks (:func:`_padded_rows`), so that both loads
        are masked by rows alone and stay vectorized. Whole-row tiles (one column block, MASK_COLS): xp and dy are
        the tensors' own rows (unit column stride), masked to columns < W_IN and < WO, and the diagonals are
        shifted by SHIFT = the left padding: dk[i, j] = sum_w G_i[w + j*DW - SHIFT, w].
        The GEMM's rows enumerate (output row h, image n) as m = h*N + n. A program computes KR kernel rows
        i0 .. i0+KR-1 at once, G = [X_i0 .. X_{i0+KR-1}]^T @ dY (KR*BK x BN, each dY tile loaded once for all
        of them), over the output rows whose input row h + i*DH - TOP lies in [0, H_IN) for one of them (rows
        out of that range for a kernel row enter as zeros), split into chunks of ROWS_PER_PROG.
        X_W > 0 (DY_W > 0): xp's (dy's) rows are dense and X_W (DY_W) columns wide, known when compiling (as the
        forward's ROW_W), so that masked loads of 16-byte aligned rows vectorize.
        Grid: (row chunks * column blocks, cdiv(KH, KR), C_OUT); k = program_id(0).
        """
        x_row, w_in = row_geometry(sxh, W_IN, X_W)
        dy_row, wo = row_geometry(syh, WO, DY_W)
        pid = tl.program_id(0)
        i0 = tl.program_id(1) * KR
        co = tl.program_id(2)
        n_imgs = M // HO
        n_cb = tl.cdiv(WO, BN)
        chunk, pid_n = pid // n_cb, pid % n_cb
        w0 = pid_n * BN
        i_last = tl.minimum(i0 + KR, KH) - 1
        h_first = tl.maximum(TOP - i_last * DH, 0)
        h_end = tl.minimum(H_IN + TOP - i0 * DH, HO)
        start = h_first * n_imgs + chunk * ROWS_PER_PROG
        end = tl.minimum(start + ROWS_PER_PROG, h_end * n_imgs)
        q = tl.arange(0, KR * BK)  # G's rows: kernel row i0 + q // BK, column kk = q % BK
        kr = q // BK
        kk = q % BK
        wn = tl.arange(0, BN)
        x_c = x_ptr + (co // MULT_DIV).to(tl.int64) * sxc + w0 + (kr * DH).to(tl.int64) * x_row + kk
        dy_c = dy_ptr + co.to(tl.int64) * syc + w0
        g = tl.zeros([KR * BK, BN], dtype=tl.float32)
        for m0 in range(start, end, BM):
            m = m0 + tl.arange(0, BM)
            m_ok = m < end
            m_ld = tl.minimum(m, end - 1)
            h = m_ld // n_imgs
            n_img = m_ld % n_imgs
            a_ptrs = x_c[None, :] + (n_img.to(tl.int64) * sxn + (h + i0 * DH - TOP).to(tl.int64) * x_row)[:, None]
            d_ptrs = dy_c + (n_img.to(tl.int64) * syn + h.to(tl.int64) * dy_row)[:, None] + wn[None, :]
            if KR == 1:  # every row of the range reaches the input (rows past the end re-read the last one)
                a_ok = (kk >= 0)[None, :]
            else:  # rows out of a kernel row's reach enter as zeros
                r = h[:, None] + (i0 + kr)[None, :] * DH - TOP
                a_ok = (r >= 0) & (r < H_IN)
            d_ok = m_ok[:, None]
            if MASK_COLS:  # whole rows read in place: columns past x's and dy's are not read
                a_ok = a_ok & ((w0 + kk) < w_in)[None, :]
                d_ok = d_ok & ((w0 + wn) < wo)[None, :]
            if KR == 1 and not MASK_COLS:
                a = tl.load(a_ptrs)
            else:
                a = tl.load(a_ptrs, mask=a_ok, other=0.0)
            d = tl.load(d_ptrs, mask=d_ok, other=0.0)
            if DOT_F32:
                g += tl.dot(tl.trans(a.to(tl.float32)), d.to(tl.float32), input_precision="ieee")
            else:
                g += tl.dot(tl.trans(a), d.to(a.dtype), input_precision=PREC)
        diff = kk[:, None] + SHIFT - wn[None, :]
        for k in tl.static_range(KR):
            if i0 + k < KH:
                part = part_ptr + ((pid.to(tl.int64) * C_OUT + co) * KH + i0 + k) * KW
                on_row = (kr == k)[:, None]
                for j in range(KW):
                    tl.store(part + j, tl.sum(tl.sum(tl.where(on_row & (diff == j * DW), g, 0.0), axis=1), axis=0))


def _row_source(x: torch.Tensor, width: int, form: str) -> torch.Tensor:
    """Rows of x as whole-row tiles read them: for "rows_in_place" x itself where its columns are unit-stride
    (the kernels mask columns >= x's width); for "rows" x itself where its rows are already ``width`` dense
    columns, or dense and 16-byte aligned (:func:`_dense_aligned_width`: the kernels mask the columns past x's
    with the width compiled in, and the loads still vectorize), else a copy in rows of ``width`` columns (zeros
    past x's), so that loads need no column mask and vectorize."""
    if _reads_in_place(tuple(x.shape), x.stride(), width, form, _dense_aligned_width(x)):
        return x
    return _row_padded(x, width)


def _reads_in_place(shape: tuple, stride: tuple, width: int, form: str, aligned_width: int) -> bool:
    """Whether :func:`_row_source` reads a tensor of this shape and stride in place (aligned_width: its
    :func:`_dense_aligned_width`)."""
    unit = stride[3] == 1 or shape[3] == 1
    return unit and (form == "rows_in_place" or shape[3] == width or (form == "rows" and aligned_width > 0))


def _dense_aligned_width(x: torch.Tensor) -> int:
    """x's row width where x is NCHW-contiguous with 16-byte aligned rows (a kernel may then take the width as a
    compile-time constant and vectorize masked loads of those rows), else 0."""
    w = x.shape[3]
    if x.is_contiguous() and (w * x.element_size()) % 16 == 0 and x.data_ptr() % 16 == 0:
        return w
    return 0


def _row_padded(x: torch.Tensor, width: int) -> torch.Tensor:
    """(N, C, H, width) NCHW copy of x (any strides; width >= x's) with zeros in columns past x's."""
    n, c, h, w = x.shape
    if not x.is_contiguous() or x.numel() == 0:
        return _padded_rows(x, 0, 0, h, width)
    out = torch.empty((n, c, h, width), dtype=x.dtype, device=x.device)
    rows = n * c * h
    br = max(1, 4096 // next_power_of_2(width))
    grid = (cdiv(rows, br),)
    _launch_row_copy(("rows", rows, w, width), grid, (x, out, rows, w), dict(WIDTH=width, BR=br, num_warps=4), 1,
                     lambda: strided_copy(out))
    return out


def _bordered_copy(x: torch.Tensor, out: torch.Tensor, top: int, left: int) -> torch.Tensor:
    """out (N, C, HEIGHT, WIDTH, any strides) <- x (N, C, H, W, any strides) placed at (top, left) in zeros;
    negative offsets crop x. A transposed view of a dense tensor (unit-stride rows) is copied by tiles that
    stay coalesced on both sides."""
    n, c, h, w = x.shape
    height, width = out.shape[2:]
    if out.numel() == 0:
        return out
    ints = (c, h, w, height, width, top, left, *x.stride(), *out.stride())
    scratch = lambda: strided_copy(out)  # noqa: E731
    if x.stride(3) != 1 and x.stride(2) == 1 and h > 1:
        br, bcol = min(next_power_of_2(height), 64), min(next_power_of_2(width), 64)
        grid = (n * c, cdiv(height, br), cdiv(width, bcol))
        _launch_transpose_copy(ints, grid, (x, out, *ints), dict(BR=br, BCOL=bcol, num_warps=4), 1, scratch)
        return out
    bw = min(next_power_of_2(width), 1024)
    bc = max(1, min(next_power_of_2(c), 4096 // bw))
    grid = (n * height, cdiv(c, bc), cdiv(width, bw))
    _launch_bordered_copy(ints, grid, (x, out, *ints), dict(BC=bc, BW=bw, num_warps=4), 1, scratch)
    return out


def _padded_rows(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """(N, C, height, width) NCHW copy of x (any strides) placed at (top, left) in zeros; negative offsets crop x."""
    out = torch.empty((x.shape[0], x.shape[1], height, width), dtype=x.dtype, device=x.device)
    return _bordered_copy(x, out, top, left)


def _source_strides(shape: tuple, stride: tuple, source: str, width: int) -> tuple:
    """(N, C, H) strides of the rows a kernel reads: the tensor's own (source "x"), or those of its dense
    (N, C, H, width) copy (:func:`_source_rows`)."""
    return stride[:3] if source == "x" else (shape[1] * shape[2] * width, shape[2] * width, width)


def _source_rows(t: torch.Tensor, source: str, width: int, left: int = 0) -> torch.Tensor:
    """The rows a planned launch reads: t itself ("x"), t copied ``width`` columns wide ("rows"), or band tiles'
    buffer of t's rows with zero columns, t at column ``left``, ``width`` = :func:`_band_width` ("band"; the
    padding's rows are left to the kernels' row masks)."""
    if source == "x":
        return t
    if source == "rows":
        return _row_padded(t, width)
    return _padded_rows(t, 0, left, t.shape[2], width)


def _band_width(wo: int, kw: int, dw: int, bn: int, bk: int) -> int:
    """Columns of band tiles' zero-bordered buffer (:func:`_source_rows`) for an output wo wide of a kernel kw wide:
    every BK-wide tile at a column block of BN in bounds, 16-element aligned."""
    return -(-max(wo + (kw - 1) * dw, (cdiv(wo, bn) - 1) * bn + bk) // 16) * 16


@dataclass(frozen=True)
class _FwdPlan:
    """Everything a forward launch derives from the tensors' metadata (made once per call signature): where the
    kernel reads x's rows (source "x": in place; "rows": a copy BK wide; "band": the zero-bordered buffer, width
    columns), the Toeplitz tiles (table or gathered), the grid, the integer arguments after the five tensors and
    the constexprs."""

    kernel: str  # "rows": depthwise_conv2d_igemm_fwd_kernel; "row_block": the block-Toeplitz kernel; "plane"
    source: str
    width: int
    kh: int
    kw: int
    bn: int
    bk: int
    shift: int
    table: bool
    grid: tuple
    ints: tuple
    consts: tuple  # (name, value) pairs, num_warps included
    # (launch, shape, grid, ints, consts) of the launch that lays the taps out for the kernel, in x's dtype
    # (:func:`_taps_layout`): the plane's canvas or the row blocks' table
    taps_layout: tuple = ()
    scratch: tuple = ()  # plane tiles placing their taps themselves: the shape of their canvases


@functools.lru_cache(maxsize=4096)
def _fwd_plan(x_shape, x_stride, itemsize, aligned_width, y_shape, y_stride, w_shape, w_stride, dilation, pad_t,
              pad_l, mult_div, group, taps, has_bias, cfg: "IgemmConfig", prec: str, dot_f32: bool) -> _FwdPlan:
    n, c_out, ho, wo = y_shape
    (h0, hs), (w0, ws) = taps
    kh = (w_shape[2] - 1 - h0) // hs + 1 if hs > 0 else h0 // (-hs) + 1
    kw = (w_shape[3] - 1 - w0) // ws + 1 if ws > 0 else w0 // (-ws) + 1
    check_config(cfg)
    if cfg.toeplitz_left and itemsize != 2:
        raise ValueError(f"toeplitz_left takes 16-bit operands (fp32's three tf32 products move the tile through shared "
                         f"memory three times, past its size on wide row blocks), got {itemsize}-byte elements")
    h_in = x_shape[2]
    if _plane(cfg, h_in, x_shape[3], x_stride, ho, wo, kh, kw, tuple(dilation), itemsize):
        canvas_taps = cfg.toeplitz in ("", "canvas")
        left = takes_toeplitz_left(cfg, "plane", kh, itemsize, False)
        if left and not canvas_taps:
            raise ValueError("toeplitz_left with plane tiles reads the taps' canvas: it needs toeplitz '' or 'canvas', "
                             f"got {cfg.toeplitz!r}")
        local = cfg.toeplitz == "local_canvas"
        shifted = cfg.toeplitz == "shifted_canvas"
        bn, bk = cfg.bn or (64 if canvas_taps or local or shifted else 32), cfg.plane_bk or PLANE_BK
        bm, stages = _fit(image_rows(cfg, n), cfg.stages, bk, bn, itemsize, shifted)
        wop = max(8, next_power_of_2(wo)) if shifted else wo  # the flattened outputs' row pitch
        grid = (cdiv(n, bm) * cdiv(ho * wop, bn), c_out, 1)
        taps = dict(KH=kh, KW=kw, DH=dilation[0], DW=dilation[1], ROW0=h0, ROW_STEP=hs, COL0=w0, COL_STEP=ws)
        canvas, scratch = (), ()  # canvas: the taps_layout of the plane's canvas
        w_strides = (w_stride[0], w_stride[2], w_stride[3])
        ch, cw = h_in + ho - 1, x_shape[3] + wo - 1
        run = cfg.canvas_run
        cwp = cdiv(x_shape[3] + wop + run - 2, run) * run if shifted else 0  # the shifted canvas's row length
        if local:
            if ch * cw > LOCAL_CANVAS_MAX:
                raise ValueError(f"toeplitz='local_canvas' places each program's canvas in registers first: "
                                 f"{ch} x {cw} elements (input {h_in} x {x_shape[3]}, output {ho} x {wo}) exceed "
                                 f"{LOCAL_CANVAS_MAX}")
            scratch = (grid[0] * c_out * group, ch * cw)
        layout_ints = (ho, pad_t, pad_l, *w_strides)
        if canvas_taps:  # the taps placed in a zeroed canvas per channel (igemm_planes.py)
            canvas = _taps_layout(_launch_plane_canvas, c_out * group, ch * cw, layout_ints, CH=ch, CW=cw, WO=wo,
                                  **taps)
        elif shifted:  # run copies of the reversed canvas shifted by 0..run-1 elements (igemm_planes.py)
            canvas = _taps_layout(_launch_plane_shifted_canvas, c_out * group, run * ch * cwp, layout_ints, CH=ch,
                                  CWP=cwp, W_IN=x_shape[3], RUN=run, **taps)
        if canvas:
            w_strides = (canvas[1][1], 0, 0)
        ints = (n, c_out, h_in, ho, pad_t, pad_l, *x_stride, *w_strides, *y_stride)
        consts = dict(
            W_IN=x_shape[3], WO=wo, **taps, MULT_DIV=mult_div, GROUP=group, BM=bm, BN=bn, BK=bk, PREC=prec,
            HAS_BIAS=has_bias, DOT_F32=dot_f32, STAGES=stages,
            PLANE=_dense_plane(x_shape, x_stride) if cfg.plane_runs else 0,
            CANVAS=3 if shifted else 2 if local else int(bool(canvas)),
            PREFETCH=(not (shifted or left)
                      and prefetches(cfg, "plane_canvas" if canvas or local else "plane")),
            CANVAS_BLOCK=next_power_of_2(ch * cw) if local else 1, WOP=wop, CWP=cwp, COPY=ch * cwp, RUN=run,
            T_LEFT=left, num_warps=cfg.num_warps or 4)
        return _FwdPlan("plane", "x", x_shape[3], kh, kw, bn, bk, pad_l, False, grid, ints, tuple(consts.items()),
                        taps_layout=canvas, scratch=scratch)
    form, bn, bk = column_plan(cfg, kw, dilation[1], wo, x_shape[3])
    kr = _kernel_rows(cfg, kh, bk, form)
    bm, stages = _fit(_rows(cfg, bk, bn, itemsize, form), cfg.stages, kr * bk, bn, itemsize, cfg.toeplitz == "table")
    if form != "band":  # the input's rows; the band's left padding becomes a shift of the Toeplitz tiles
        source = "x" if _reads_in_place(x_shape, x_stride, bk, form, aligned_width) else "rows"
        width, w_in, shift = (x_shape[3] if source == "x" else bk), x_shape[3], pad_l
    else:
        source, shift = "band", 0
        width = w_in = _band_width(wo, kw, dilation[1], bn, bk)
    xs = _source_strides(x_shape, x_stride, source, width)
    in_place = source == "x" and width != bk  # x's own rows, narrower than BK: columns masked
    row_w = aligned_width if in_place else 0
    table = cfg.toeplitz == "table"
    rb = _row_block(cfg, kh, dilation[0], h_in, x_shape[3], form, itemsize,
                    form != "band" or _band_block_width(pad_l, bn, kw, dilation[1]) <= bk)
    if cfg.toeplitz_left and rb == 1:
        raise ValueError("toeplitz_left is taken by plane tiles and row blocks: this problem's tiles are single output "
                         "rows (set plane=True or row_block > 1)")
    if rb > 1:
        return _row_block_plan(form, x_shape, x_stride, itemsize, aligned_width, y_shape, y_stride, w_stride, dilation,
                               pad_t, pad_l, mult_div, group, (h0, hs, w0, ws), kh, kw, has_bias, cfg, prec, dot_f32,
                               bn, bk, rb, (source, width, in_place, row_w))
    stc = kh * bk * bn if table else w_stride[0]
    m = n * ho
    grid = (cdiv(m, bm) * cdiv(wo, bn), c_out, 1)
    ints = (m, ho, wo, c_out, h_in, w_in, pad_t, shift, *xs, w_stride[0], w_stride[2], w_stride[3], *y_stride, stc)
    consts = dict(
        KH=kh, KW=kw, DH=dilation[0], DW=dilation[1], ROW0=h0, ROW_STEP=hs, COL0=w0, COL_STEP=ws,
        MULT_DIV=mult_div, GROUP=group, BM=bm, BN=bn, BK=bk, PREC=prec, HAS_BIAS=has_bias, DOT_F32=dot_f32,
        STAGES=stages, TABLE=table, ROWS_FIRST=_order(cfg, ho, kh, dilation[0], pad_t, h_in) == "rows",
        MASK_COLS=in_place, KR=kr, ROW_W=row_w, num_warps=_warps(cfg, bm, bk, form))
    return _FwdPlan("rows", source, width, kh, kw, bn, bk, shift, table, grid, ints, tuple(consts.items()))


BAND_ALIGN = 8  # elements: band row blocks read their bands from a column aligned to this (16 bytes of bf16)
LOCAL_CANVAS_MAX = 4096  # elements of a canvas that a plane program places itself (toeplitz="local_canvas")


def _taps_layout(launch, channels: int, size: int, ints: tuple, **consts) -> tuple:
    """(launch, shape, grid, ints, consts) of the launch that lays out ``size`` elements of taps per channel (its
    grid: channels x blocks of at most 1024 elements, 4 warps), as _FwdPlan.taps_layout holds it."""
    block = min(1024, next_power_of_2(size))
    return (launch, (channels, size), (channels, cdiv(size, block), 1), ints,
            tuple(dict(consts, BLOCK=block, num_warps=4).items()))


def _band_block_width(pad_l: int, bn: int, kw: int, dw: int) -> int:
    """BK of band row blocks: the band of BN outputs read from a column BAND_ALIGN-aligned left of the padding."""
    col_off = cdiv(pad_l, BAND_ALIGN) * BAND_ALIGN
    return max(16, next_power_of_2(col_off - pad_l + bn + (kw - 1) * dw))


def _row_block_plan(form, x_shape, x_stride, itemsize, aligned_width, y_shape, y_stride, w_stride, dilation, pad_t,
                    pad_l, mult_div, group, taps, kh, kw, has_bias, cfg, prec, dot_f32, bn, bk, rb, rows) -> _FwdPlan:
    """Row blocks (igemm_row_blocks.py): R output rows per tile. Whole rows (form "rows"/"rows_in_place"; rows =
    (source, width, in_place, row_w) as _fwd_plan reads them): BM images per tile. Band column blocks (form "band"):
    BM (image, column block) pairs per tile, each block's band read in place from BAND_ALIGN-aligned columns where
    x's columns are unit-stride, else from a copy of its rows, 16-element aligned; optionally from a table of Toeplitz
    tiles (toeplitz "table")."""
    n, c_out, ho, wo = y_shape
    h0, hs, w0, ws = taps
    h_in, w_in = x_shape[2], x_shape[3]
    table = cfg.toeplitz == "table"
    left = takes_toeplitz_left(cfg, form, kh, itemsize, table)
    if form == "band":
        col_off, n_cb = cdiv(pad_l, BAND_ALIGN) * BAND_ALIGN, cdiv(wo, bn)
        bk = _band_block_width(pad_l, bn, kw, dilation[1])
        if x_stride[3] == 1 or w_in == 1:
            source, width, row_w = "x", w_in, aligned_width
        else:
            source = "rows"
            width = row_w = cdiv(w_in, 16) * 16
        mask_cols, prefetch_form = True, "band_row_block"
        bm, warps = band_row_block_tile(cfg, n * n_cb)
    else:
        if table:
            raise ValueError("toeplitz='table' with row blocks (row_block > 1) needs band tiles (columns='band'): "
                             "whole-row row blocks gather their Toeplitz tiles")
        col_off, n_cb = 0, 1
        source, width, mask_cols, row_w = rows
        prefetch_form = "row_block"
        bm, warps = image_rows(cfg, n), cfg.num_warps or 4
    kr = row_block_kernel_rows(cfg, bk, rb * bn, itemsize)  # input rows per product
    bm, stages = _fit(bm, cfg.stages, kr * bk, rb * bn, itemsize, table)
    xs = _source_strides(x_shape, x_stride, source, width)
    grid = (cdiv(n * n_cb, bm) * cdiv(ho, rb), c_out, 1)
    taps_c = dict(KH=kh, KW=kw, DH=dilation[0], DW=dilation[1], ROW0=h0, ROW_STEP=hs, COL0=w0, COL_STEP=ws)
    shift = pad_l - col_off
    w_strides, layout = (w_stride[0], w_stride[2], w_stride[3]), ()
    if table:  # every kernel-row offset a product meets, from -(R-1) to (R-1) + (kh-1)*dh + KR
        rows_t = 2 * (rb - 1) + (kh - 1) * dilation[0] + kr + 1
        layout = _taps_layout(_launch_row_block_table, c_out * group, rows_t * bk * bn, (shift, *w_strides, rows_t),
                              **taps_c, R=rb, BK=bk, BN=bn)
        w_strides = (rows_t * bk * bn, 0, 0)
    ints = (n, n_cb, ho, wo, c_out, h_in, w_in, pad_t, shift, *xs, *w_strides, *y_stride)
    consts = dict(
        **taps_c, MULT_DIV=mult_div, GROUP=group, BM=bm, BN=bn, BK=bk, R=rb, PREC=prec, HAS_BIAS=has_bias,
        DOT_F32=dot_f32, STAGES=stages, MASK_COLS=mask_cols, ROW_W=row_w, COL_OFF=col_off,
        PREFETCH=prefetches(cfg, prefetch_form) and not (table or left), KR=kr, TABLE=table, T_LEFT=left,
        num_warps=warps)
    return _FwdPlan("row_block", source, width, kh, kw, bn, bk, shift, table, grid, ints, tuple(consts.items()),
                    taps_layout=layout)


def launch_fwd(x, weight, bias, y, dilation, pad_t, pad_l, mult_div, group, taps=((0, 1), (0, 1)),
               config: Optional[IgemmConfig] = None) -> torch.Tensor:
    """y (N, C_out, Ho, Wo) <- x with weight (C_out*group, 1, kh, kw) read through ``taps`` (see direct.launch_fwd).

    Band tiles: x (any layout) is first copied into an NCHW buffer of its rows with zero columns, wide enough for
    every column tile and 16-element aligned, so the kernel's loads vectorize; the padding's rows are masked
    whole. Whole-row tiles (:func:`column_plan`) read rows of BK columns (:func:`_row_source`). The launch itself
    is planned once per call signature (:func:`_fwd_plan`) and made directly (:class:`FastLauncher`).
    """
    plan = _fwd_plan(tuple(x.shape), x.stride(), x.element_size(), _dense_aligned_width(x), tuple(y.shape),
                     y.stride(), tuple(weight.shape), weight.stride(), tuple(dilation), pad_t, pad_l, mult_div, group,
                     tuple(map(tuple, taps)), bias is not None, config or DEFAULT_CONFIG, _precision(x.dtype),
                     interpreting())
    xp = _source_rows(x, plan.source, plan.width, pad_l)
    b = bias if bias is not None else weight
    taps_src = _laid_out_taps(plan, weight, x.dtype) if plan.taps_layout else weight
    if plan.kernel == "plane":
        cv = torch.empty(plan.scratch, dtype=x.dtype, device=x.device) if plan.scratch else weight
        _launch_fwd_plane(plan, plan.grid, (xp, taps_src, b, y, cv, *plan.ints), dict(plan.consts), 3,
                          lambda: strided_copy(y))
        return y
    if plan.kernel == "row_block":
        _launch_fwd_row_block(plan, plan.grid, (xp, taps_src, b, y, *plan.ints), dict(plan.consts), 3,
                              lambda: strided_copy(y))
        return y
    table = weight
    if plan.table:  # in x's dtype, the one the products use
        table = _toeplitz_table(weight, taps, plan.kh, plan.kw, dilation[1], plan.bk, plan.bn, plan.shift).to(x.dtype)
    _launch_fwd(plan, plan.grid, (xp, weight, b, y, table, *plan.ints), dict(plan.consts), 3, lambda: strided_copy(y))
    return y


def _laid_out_taps(plan: _FwdPlan, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The taps laid out as plan.taps_layout says (the plane's canvas or the row blocks' table), in dtype."""
    launch, shape, grid, ints, consts = plan.taps_layout
    out = torch.empty(shape, dtype=dtype, device=weight.device)
    launch(plan.taps_layout, grid, (weight, out, *ints), dict(consts), 1, lambda: strided_copy(out))
    return out


_launch_fwd = FastLauncher(depthwise_conv2d_igemm_fwd_kernel) if triton is not None else None
_launch_fwd_row_block = FastLauncher(depthwise_conv2d_igemm_row_block_kernel) if triton is not None else None
_launch_fwd_plane = FastLauncher(depthwise_conv2d_igemm_plane_kernel) if triton is not None else None
_launch_plane_canvas = FastLauncher(plane_canvas_kernel) if triton is not None else None
_launch_plane_shifted_canvas = FastLauncher(plane_shifted_canvas_kernel) if triton is not None else None
_launch_row_block_table = FastLauncher(row_block_table_kernel) if triton is not None else None
_launch_row_copy = FastLauncher(row_padded_copy_kernel) if triton is not None else None
_launch_bordered_copy = FastLauncher(zero_bordered_copy_kernel) if triton is not None else None
_launch_transpose_copy = FastLauncher(zero_bordered_transpose_copy_kernel) if triton is not None else None


def _toeplitz_table(weight, taps, kh: int, kw: int, dw: int, bk: int, bn: int, shift: int = 0) -> torch.Tensor:
    """(C, kh, BK, BN) in the weight's dtype: T_i[kk, wn] = k[ROW0 + ROW_STEP*i, COL0 + COL_STEP*j] where
    kk + shift - wn = j*dw (0 <= j < kw), else 0 — every banded tile the forward kernel multiplies by."""
    (h0, hs), (w0, ws) = taps
    rows = torch.arange(kh, device=weight.device) * hs + h0
    cols = torch.arange(kw, device=weight.device) * ws + w0
    k = weight[:, 0].index_select(1, rows).index_select(2, cols)  # (C, kh, kw) in tap order
    diff = torch.arange(bk, device=weight.device)[:, None] + shift - torch.arange(bn, device=weight.device)[None, :]
    j = torch.div(diff, dw, rounding_mode="floor")
    band = (diff >= 0) & (diff % dw == 0) & (j < kw)
    table = torch.where(band, k[:, :, j.clamp(0, kw - 1)], torch.zeros((), dtype=k.dtype, device=k.device))
    return table.contiguous()  # (not k * band: an Inf tap would turn the band's zeros into NaN)


def _nchw_target(out: torch.Tensor) -> torch.Tensor:
    """out itself when it is NCHW-contiguous, else an NCHW buffer (the kernel's stores then stay coalesced)."""
    return out if out.is_contiguous() else torch.empty(out.shape, dtype=out.dtype, device=out.device)


def _band_fits(kw: int, dw: int, wo: int, itemsize: int) -> bool:
    """Whether the Toeplitz tiles of a kw-wide kernel (dilation dw, output width wo) fit the kernels."""
    bn, bk = _tiles(kw, dw, wo)
    return (16 * bk + 2 * bk * bn) * itemsize <= SHARED_MEMORY_BUDGET and bk * bn <= MAX_BAND_TILE


def _tensor_core_work(kh: int, kw: int, dw: int, ho: int, wo: int) -> int:
    """Multiply-adds the tensor cores do per image: each of ho output rows takes kh band products of
    cdiv(wo, BN) column blocks, BN x BK each."""
    bn, bk = _tiles(kw, dw, wo)
    return ho * kh * cdiv(wo, bn) * bn * bk


TRANSPOSE_GAIN = 1.25  # the transposed problem must save this factor of tensor-core work to pay for its copies


@functools.lru_cache(maxsize=1024)
def transposes(kh: int, kw: int, dilation: tuple, ho: int, wo: int, itemsize: int) -> Optional[bool]:
    """Whether to compute the convolution with H and W swapped (a kh x kw kernel as kw x kh): True when only the
    transposed band fits, or when it needs TRANSPOSE_GAIN times less tensor-core work (a tall kernel such as
    51 x 5 puts a 5-wide band on the tensor cores, 2.5x the work of its 5 x 51 transpose); None when neither
    orientation fits."""
    fits = _band_fits(kw, dilation[1], wo, itemsize)
    fits_t = _band_fits(kh, dilation[0], ho, itemsize)
    if not fits_t:
        return False if fits else None
    if not fits:
        return True
    work = _tensor_core_work(kh, kw, dilation[1], ho, wo)
    return _tensor_core_work(kw, kh, dilation[0], wo, ho) * TRANSPOSE_GAIN < work


def _oriented(kh, kw, dilation, ho, wo, itemsize) -> bool:
    """transposes(...), raising where neither orientation fits (unsupported_reason_for refuses those calls)."""
    t = transposes(kh, kw, tuple(dilation), ho, wo, itemsize)
    if t is None:
        raise ValueError(f"implicit_gemm cannot serve a {kh}x{kw} kernel with dilation {tuple(dilation)}: its "
                         f"Toeplitz tiles do not fit in either orientation")
    return t


def _t(t: torch.Tensor) -> torch.Tensor:
    """The (N, C, W, H) view of an (N, C, H, W) tensor."""
    return t.transpose(2, 3)


def _transposed_buffer(out: torch.Tensor) -> torch.Tensor:
    """An NCHW buffer shaped like out with H and W swapped."""
    n, c, h, w = out.shape
    return torch.empty((n, c, w, h), dtype=out.dtype, device=out.device)


def _transposed_target(out: torch.Tensor, config: Optional[IgemmConfig], kh: int, dh: int, top: int, h_in: int,
                       w_in: int) -> torch.Tensor:
    """Where the transposed problem (kh kernel rows, dilation dh, top padding, h_in input rows of w_in columns)
    stores its output: out's own (N, C, W, H) view where out is NCHW-contiguous and the GEMM's rows enumerate
    images first (a tile's rows are then neighbouring columns of out, and no copy back is needed; not for row
    blocks, whose tiles span images), else an NCHW buffer."""
    cfg = config or DEFAULT_CONFIG
    row_blocks = _takes_row_blocks(cfg, kh, dh, h_in, w_in)
    if out.is_contiguous() and not row_blocks and _order(cfg, out.shape[3], kh, dh, top, h_in) == "images":
        return _t(out)
    return _transposed_buffer(out)


def _from_transposed(yt: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out, holding the transposed problem's output yt (:func:`_transposed_target`)."""
    return out if yt.data_ptr() == out.data_ptr() and yt.shape == _t(out).shape else _bordered_copy(_t(yt), out, 0, 0)


def conv_fwd(x, weight, bias, stride, pad, dilation, out, config: Optional[IgemmConfig] = None):
    mult = weight.shape[0] // x.shape[1]
    if _oriented(*weight.shape[2:], dilation, *out.shape[2:], x.element_size()):
        yt = _transposed_target(out, config, weight.shape[3], dilation[1], pad[2], x.shape[3], x.shape[2])
        launch_fwd(_t(x), _t(weight), bias, yt, tuple(dilation)[::-1], pad[2], pad[0], mult, 1, config=config)
        return _from_transposed(yt, out)
    y = _nchw_target(out)
    launch_fwd(x, weight, bias, y, dilation, pad[0], pad[2], mult, 1, config=config)
    return out if y is out else out.copy_(y)


def conv_dgrad(grad_out, x_shape, weight, stride, pad, dilation, out, config: Optional[IgemmConfig] = None):
    """Stride 1: dx = the forward of dy with the reversed kernel and pad (k-1)*d - p."""
    kh, kw = weight.shape[-2:]
    p_t = (kh - 1) * dilation[0] - pad[0]
    p_l = (kw - 1) * dilation[1] - pad[2]
    group = weight.shape[0] // x_shape[1]
    if _oriented(kh, kw, dilation, *out.shape[2:], out.element_size()):
        dxt = _transposed_target(out, config, kw, dilation[1], p_l, grad_out.shape[3], grad_out.shape[2])
        launch_fwd(_t(grad_out), _t(weight), None, dxt, tuple(dilation)[::-1], p_l, p_t, 1, group,
                   ((kw - 1, -1), (kh - 1, -1)), config)
        return _from_transposed(dxt, out)
    dx = _nchw_target(out)
    launch_fwd(grad_out, weight, None, dx, dilation, p_t, p_l, 1, group, ((kh - 1, -1), (kw - 1, -1)), config)
    return out if dx is out else out.copy_(dx)


def conv_wgrad(grad_out, x, weight_shape, stride, pad, dilation,
               config: Optional[IgemmConfig] = None) -> torch.Tensor:
    """dk (C_out, 1, kh, kw) in float32; in the transposed orientation of :func:`transposes` when it pays.
    config: only its ``columns`` (band or whole-row tiles, :func:`column_plan`) and ``kernel_rows`` (kernel rows per
    program, :func:`_wgrad_kernel_rows`) are read."""
    kh, kw = weight_shape[-2:]
    cfg = config or DEFAULT_CONFIG
    if _oriented(kh, kw, dilation, *grad_out.shape[2:], x.element_size()):
        c_out = grad_out.shape[1]
        dk = _wgrad(_t(grad_out), _t(x), (c_out, 1, kw, kh), (pad[2], pad[3], pad[0], pad[1]),
                    tuple(dilation)[::-1], cfg)
        return _t(dk).contiguous()
    return _wgrad(grad_out, x, weight_shape, pad, dilation, cfg)


@dataclass(frozen=True)
class _WgradPlan:
    """A weight-gradient launch from the tensors' metadata: where x's and dy's rows are read (source "x": in
    place; "rows": a copy; "band": the zero-bordered buffers), the partial sums' shape, grid, integer arguments
    after the three tensors and constexprs."""

    x_source: str
    x_width: int
    dy_source: str
    dy_width: int
    part_shape: tuple
    grid: tuple
    ints: tuple
    consts: tuple


@functools.lru_cache(maxsize=4096)
def _wgrad_plan(dy_shape, dy_stride, dy_aligned, x_shape, x_stride, x_aligned, itemsize, weight_shape, pad, dilation,
                cfg: "IgemmConfig", sms: int, prec: str, dot_f32: bool) -> _WgradPlan:
    n, c_out, ho, wo = dy_shape
    kh, kw = weight_shape[-2:]
    check_config(cfg)
    form, bn, bk = column_plan(IgemmConfig(columns=cfg.columns), kw, dilation[1], wo, x_shape[3])
    bm = 64
    kr = _wgrad_kernel_rows(cfg, kh, bk, bn)
    m = n * ho
    n_cb = cdiv(wo, bn)
    chunks = max(1, min(cdiv(m, bm), (4 * sms) // max(1, n_cb * cdiv(kh, kr) * c_out) or 1))
    rows = cdiv(cdiv(m, chunks), bm) * bm
    chunks = cdiv(m, rows)
    h_in = x_shape[2]
    if form != "band":
        x_source = "x" if _reads_in_place(x_shape, x_stride, bk, form, x_aligned) else "rows"
        dy_source = "x" if _reads_in_place(dy_shape, dy_stride, bn, form, dy_aligned) else "rows"
        x_width = x_shape[3] if x_source == "x" else bk
        dy_width = wo if dy_source == "x" else bn
        w_in, shift = x_shape[3], pad[2]
    else:  # the zero-bordered buffer; dy with zero columns up to whole column blocks
        x_source = dy_source = "band"
        x_width = _band_width(wo, kw, dilation[1], bn, bk)
        dy_width = n_cb * bn
        w_in, shift = x_width, 0
    xs = _source_strides(x_shape, x_stride, x_source, x_width)
    ys = _source_strides(dy_shape, dy_stride, dy_source, dy_width)
    in_place = form != "band" and (x_width != bk or dy_width != bn)  # rows narrower than the tile: masked
    ints = (m, ho, wo, c_out, rows, h_in, w_in, pad[0], shift, *xs, *ys)
    consts = dict(
        KH=kh, KW=kw, DH=dilation[0], DW=dilation[1], MULT_DIV=c_out // x_shape[1], BM=bm, BN=bn, BK=bk, PREC=prec,
        DOT_F32=dot_f32, MASK_COLS=in_place, KR=kr,
        X_W=x_aligned if in_place and x_source == "x" else 0, DY_W=dy_aligned if in_place and dy_source == "x" else 0,
        num_warps=4)
    return _WgradPlan(x_source, x_width, dy_source, dy_width, (chunks * n_cb, c_out, kh, kw),
                      (chunks * n_cb, cdiv(kh, kr), c_out), ints, tuple(consts.items()))


def _wgrad(grad_out, x, weight_shape, pad, dilation, cfg: IgemmConfig) -> torch.Tensor:
    """grad_out, x: any strides (transposed views included: copied into NCHW row buffers where the tiles need)."""
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 4
    plan = _wgrad_plan(tuple(grad_out.shape), grad_out.stride(), _dense_aligned_width(grad_out), tuple(x.shape),
                       x.stride(), _dense_aligned_width(x), x.element_size(), tuple(weight_shape), tuple(pad),
                       tuple(dilation), cfg, sms, _precision(x.dtype), interpreting())
    xp = _source_rows(x, plan.x_source, plan.x_width, pad[2])
    dyp = _source_rows(grad_out, plan.dy_source, plan.dy_width)
    part = torch.empty(plan.part_shape, device=x.device, dtype=torch.float32)
    _launch_wgrad(plan, plan.grid, (xp, dyp, part, *plan.ints), dict(plan.consts), 2, lambda: strided_copy(part))
    c_out, kh, kw = plan.part_shape[1:]
    return part.sum(0).reshape(c_out, 1, kh, kw)


_launch_wgrad = FastLauncher(depthwise_conv2d_igemm_wgrad_kernel) if triton is not None else None


def unsupported_reason_for(prob) -> Optional[str]:
    """None when the implicit-GEMM kernels can serve this Problem, else why not."""
    if not triton_available():
        return "Triton is not installed"
    if prob.device.type == "cuda" and interpreting():
        return "TRITON_INTERPRET=1 runs Triton on the CPU only"
    if prob.device.type != "cuda" and not (prob.device.type == "cpu" and interpreting()):
        return f"tensors on {prob.device} (Triton kernels need CUDA, or TRITON_INTERPRET=1 on CPU)"
    if prob.dtype not in SUPPORTED_DTYPES:
        return f"dtype {prob.dtype} (implicit_gemm supports float32, float16, bfloat16)"
    if prob.stride != (1, 1):
        return f"stride {prob.stride} (implicit_gemm supports stride 1)"
    if prob.c * prob.mult > 65535:
        return f"{prob.c * prob.mult} output channels (the kernels' grids take at most 65535)"
    itemsize = torch.empty((), dtype=prob.dtype).element_size()
    ho, wo = (prob.h, prob.w) if prob.direction == "dgrad" else (prob.ho, prob.wo)
    if transposes(prob.kh, prob.kw, prob.dilation, ho, wo, itemsize) is None:
        return (f"kernel {prob.kh}x{prob.kw} with dilation {prob.dilation} too large: its Toeplitz tiles do not "
                f"fit the kernels' shared memory and registers in either orientation")
    return None
