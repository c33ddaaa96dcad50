"""How the implicit GEMM (implicit_gemm.py) tiles a problem: :class:`IgemmConfig`, its defaults, and the choice of
form (column bands, whole rows, block-Toeplitz row blocks, whole planes), tile sizes, warps and pipeline stages."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import torch

from ..._triton import cdiv, next_power_of_2


def _precision(dtype: torch.dtype) -> str:
    if dtype != torch.float32:
        return "ieee"  # 16-bit operands: exact products, fp32 accumulation
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "tf32x3"


@functools.lru_cache(maxsize=1024)
def _tiles(kw: int, dw: int, wo: int):
    """(BN, BK) for output rows of width wo: the column block with the fewest tensor-core multiply-adds per row,
    cdiv(wo, BN) * BN * BK (BK = BN + (kw-1)*dw as a power of two); ties go to the wider block."""
    best = None
    for bn in (16, 32, 64):
        bk = max(16, next_power_of_2(bn + (kw - 1) * dw))
        score = (-cdiv(wo, bn) * bn * bk, bn)
        if best is None or score > best[0]:
            best = (score, bn, bk)
    return best[1], best[2]


@dataclass(frozen=True)
class IgemmConfig:
    """Forward tile: BM rows (of N*Ho) x BN output columns (0: from the kernel width), warps, pipeline stages;
    toeplitz: "gather" (each T_i tile gathered from the weight row in the loop), "table" (read whole from a
    table of every T_i built per call, :func:`_toeplitz_table`), "canvas" / "local_canvas" (whole-plane tiles
    only: T read from a canvas of the kernel's taps, placed by its own launch or by each program),
    "shifted_canvas" (whole-plane tiles only: T read as aligned runs of shifted copies of a canvas, copied
    asynchronously in the pipeline like the input; outputs flattened with rows a power of two apart), or "" (the
    default: the canvas for whole planes, else gathered); order: how the GEMM's rows enumerate (image, output row)
    pairs, "images" (n*Ho + h: a tile holds neighbouring rows of one image) or "rows" (h*N + n: a
    tile holds one output row of many images, and skips the kernel rows that fall wholly in the padding); ""
    means "rows" where at most 90% of the (output row, kernel row) pairs reach the input (:func:`_order`).

    Default from benchmarks/tune_igemm.py on an H100 (bf16; docs/BENCHMARKS.md): 3 stages, gathered tiles (a
    table was 5-12% slower on replknet_31b.s1, 36-120% on the 51-tap band, 6-41% on unireplknet_t.s1's band row
    blocks). bm 0 means 256 rows for 16-bit
    operands on 64-wide bands with column blocks of at least 32 (each gathered Toeplitz tile then serves twice the
    rows: replknet_31b.s2 0.307 against 0.334 ms, s1 0.618 against 0.651), else 128 (256 lost on 16-wide
    blocks: replknet_31b.s3, unireplknet_t.s1). num_warps 0 means 8 for 256 rows or bands 128 wide (BK; the
    51-tap band: 0.375 against 0.444 ms on slak_t.s1.long, where 4 warps spill), else 4. Stages (then rows) are
    reduced where the tiles would not fit in shared memory. Whole-row tiles take 64 rows and 2 warps on 16-column
    rows, else 128 rows and 4 warps (bf16 forward, H100: replknet_31b.s3 0.075 ms against 0.082 with 4 warps,
    unireplknet_t.s3 0.043 against 0.046; replknet_31b.s2 0.161 with 128 rows against 0.194-0.198 with 64;
    docs/BENCHMARKS.md). Whole rows of at most 32 columns put two kernel rows into each product (replknet_31b.s3
    0.066 against 0.075 ms, s2 0.161-0.163 against 0.168; one on 64 columns: slak_t.s1.wide 0.177 against 0.254).

    columns (:func:`column_plan`): "band" (column blocks of BN outputs, each reading a BK-wide band of the
    zero-bordered input buffer), "rows" (one block of whole output rows against the input's rows: read in place
    where they are dense and 16-byte aligned, with their width compiled in (slak_t.s1.wide bf16, H100: forward
    0.156 against 0.178 ms with the copy, input gradient 0.156 against 0.178, weight gradient 0.193 against
    0.225), else from a buffer of BK-wide aligned rows), "rows_in_place" (whole rows read from the input
    itself through column masks, where its columns are unit-stride), or "" for "rows" where that takes fewer
    tensor-core multiply-adds than the band.

    kernel_rows: how many kernel rows enter one product (K = kernel_rows * BK, :func:`_kernel_rows`); 0: the
    default. With row blocks: how many input rows enter one product (0: one).

    row_block: R > 1 (a power of two) computes tiles of R output rows with the block-Toeplitz kernel of
    igemm_row_blocks.py, one input row (or kernel_rows of them) per product: whole rows of bm images (bm 0:
    :func:`image_rows`), or on band tiles column blocks of BN outputs, bm (image, column block) pairs per tile (bm 0:
    128). With toeplitz "table" band row blocks read their tiles from a table of every kernel-row offset
    (igemm_row_blocks.row_block_table_kernel: plain, pipelined loads); whole-row row blocks do not take tables.
    1: one output row per tile. 0: the default (:func:`_row_block`):
    4 on whole rows of at most 16 columns where every output row reaches every input row (bf16 forward, H100:
    replknet_31b.s3 0.053 against 0.067 ms; on unireplknet_t.s3, whose 13 kernel rows reach about half of its 14,
    0.044-0.064 against 0.041), else 1.

    prefetch: row blocks and canvas planes gather the next step's Toeplitz tiles before each product.

    plane: True multiplies whole flattened planes (igemm_planes.py: BM images x BN flattened outputs per tile, BK
    flattened inputs per step; bn 0: 32, which beat 64 and 128 on unireplknet_t.s3, replknet_31b.s3 and s2) for
    the forward and input gradient; False never; None: the default (:func:`_plane`). plane_runs: where x's planes
    are dense with H*W a multiple of 4, whole-plane tiles read each step's chunk of the flattened input as one
    contiguous run, its plane size compiled in (sm_90: 8-byte asynchronous copies, pipelined, against scalar
    loads through x's strides; ``benchmarks/kernel_resources.py --planes``); the default (bf16 forward, H100,
    unireplknet_t.s3: 0.024 against 0.029 ms). plane_bk: flattened inputs per step of whole-plane tiles (0:
    PLANE_BK). toeplitz "canvas" (with plane=True): whole-plane tiles read T from a zeroed canvas of the kernel's
    taps per channel (igemm_planes.py) instead of testing each tap. canvas_run (toeplitz "shifted_canvas"):
    elements per aligned run of the shifted canvas, 8 (16-byte copies, which bypass L1) or 4 (8-byte copies, cached
    in L1); with 8 the shifted canvas lost to the canvas default (bf16 forward, H100, unireplknet_t.s3: 0.027-0.029
    against 0.022 ms). toeplitz_left (16-bit operands; plane tiles reading the canvas, row blocks gathering their
    tiles): each product is taken transposed, y^T += T^T x^T, so the Toeplitz tile is the tensor cores' left
    operand, read from registers (sm_90 reads only a left operand from registers; the right one always comes from
    shared memory); no prefetch. bf16 forward, H100: replknet_31b.s1 0.466 against 0.482 ms and s2 0.146 against
    0.152-0.154 (band row blocks, R 4), but unireplknet_t.s1 0.134 against 0.123 and unireplknet_t.s3's planes
    0.024-0.030 against 0.021. None: the default (:func:`takes_toeplitz_left`). Tap pairs gathered as 4-byte loads
    (a pair canvas for planes, a pair table for row blocks, with and without the transposed product) lost 1.5-5x on
    the H100 (nineteenth session) and were removed."""

    bm: int = 0
    bn: int = 0
    num_warps: int = 0
    stages: int = 3
    toeplitz: str = ""
    order: str = ""
    columns: str = ""
    kernel_rows: int = 0
    row_block: int = 0
    plane: Optional[bool] = None
    plane_runs: bool = True
    prefetch: Optional[bool] = None
    plane_bk: int = 0
    canvas_run: int = 8
    toeplitz_left: Optional[bool] = None


DEFAULT_CONFIG = IgemmConfig()

SHARED_MEMORY_BUDGET = 160 * 1024
MAX_BAND_TILE = 128 * 64  # BK x BN elements: the weight gradient keeps one such fp32 tile in registers


def column_tile(cfg: "IgemmConfig", kw: int, dw: int, wo: int):
    """(BN, BK) of the forward: cfg.bn with its band width, or for bn 0 the block of :func:`_tiles`."""
    if cfg.bn:
        return cfg.bn, max(16, next_power_of_2(cfg.bn + (kw - 1) * dw))
    return _tiles(kw, dw, wo)


def _row_tiles(w_in: int, wo: int):
    """(BN, BK) of whole-row tiles: every output column against every input column of a row."""
    return max(16, next_power_of_2(wo)), max(16, next_power_of_2(w_in))


MAX_ROW_TILE_BN = 64  # whole-row tiles: the widest output block (the band's widest), as one column block


COLUMN_FORMS = ("", "band", "rows", "rows_in_place")


@functools.lru_cache(maxsize=1024)
def column_plan(cfg: "IgemmConfig", kw: int, dw: int, wo: int, w_in: int):
    """(form, BN, BK) for output rows wo wide computed from input rows w_in wide; form "band", "rows" or
    "rows_in_place" (:class:`IgemmConfig` ``columns``).

    A band tile multiplies BK = BN + (kw-1)*dw columns of the zero-bordered input per BN outputs; a whole-row
    tile multiplies the input row's own w_in columns (BK = w_in as a power of two) by all wo outputs at once.
    Where the padding is a large part of a row (27x27 on 14 columns: 16 against 64 columns per 16 outputs) the
    whole row takes a fraction of the band's tensor-core work. cfg.columns "" takes whole rows where they need
    fewer multiply-adds than the band (ties keep the band).
    """
    if cfg.columns not in COLUMN_FORMS:
        raise ValueError(f"columns must be one of {COLUMN_FORMS}, got {cfg.columns!r}")
    bn, bk = column_tile(cfg, kw, dw, wo)
    if cfg.columns == "band":
        return "band", bn, bk
    rbn, rbk = _row_tiles(w_in, wo)
    fits = rbn <= MAX_ROW_TILE_BN and rbk * rbn <= MAX_BAND_TILE
    if cfg.columns:
        if not fits:
            raise ValueError(f"columns={cfg.columns!r} needs output rows of at most {MAX_ROW_TILE_BN} columns and "
                             f"BK x BN <= {MAX_BAND_TILE} (got {wo} outputs from {w_in} input columns)")
        return cfg.columns, rbn, rbk
    if fits and rbn * rbk < cdiv(wo, bn) * bn * bk:
        return "rows", rbn, rbk
    return "band", bn, bk


def _rows(cfg: "IgemmConfig", bk: int, bn: int, itemsize: int, form: str = "band") -> int:
    """The tile's rows (BM): cfg.bm, or for bm 0 the default of :class:`IgemmConfig`."""
    if cfg.bm:
        return cfg.bm
    if form != "band":
        return 64 if bk <= 16 else 128
    return 256 if itemsize == 2 and bk == 64 and bn >= 32 else 128


def _kernel_rows(cfg: "IgemmConfig", kh: int, bk: int, form: str = "band") -> int:
    """Kernel rows per product (KR): cfg.kernel_rows (at most kh's power of two), or for 0 the default of
    :class:`IgemmConfig`: 2 for whole rows of at most 32 columns, else 1."""
    kr = cfg.kernel_rows or (2 if form != "band" and bk <= 32 else 1)
    return max(1, min(kr, next_power_of_2(kh)))


def _wgrad_kernel_rows(cfg: "IgemmConfig", kh: int, bk: int, bn: int) -> int:
    """Kernel rows per weight-gradient program: cfg.kernel_rows (at most kh's power of two, and the accumulated
    KR*BK x BN tile at most MAX_BAND_TILE), or 1 for 0."""
    kr = _kernel_rows(cfg, kh, bk) if cfg.kernel_rows else 1
    while kr > 1 and kr * bk * bn > MAX_BAND_TILE:
        kr //= 2
    return kr


def _row_block(cfg: "IgemmConfig", kh: int, dh: int, h_in: int, w_in: int, form: str, itemsize: int = 4,
               band_keeps_width: bool = True) -> int:
    """Output rows per block-Toeplitz tile (R): cfg.row_block, or for 0 the default of :class:`IgemmConfig`
    (band_keeps_width: whether band row blocks, reading from an aligned column, keep the band's BK)."""
    if cfg.row_block:
        return cfg.row_block
    if form == "band":
        takes = itemsize == 2 and kh >= BAND_ROW_BLOCK_MIN_KH and _gathers(cfg) and band_keeps_width
        return 4 if takes else 1
    return 4 if _takes_row_blocks(cfg, kh, dh, h_in, w_in) else 1


def _gathers(cfg: "IgemmConfig") -> bool:
    """Whether cfg leaves the Toeplitz tiles gathered (the default or "gather"; not a table or a canvas)."""
    return cfg.toeplitz in ("", "gather")


def _takes_row_blocks(cfg: "IgemmConfig", kh: int, dh: int, h_in: int, w_in: int) -> bool:
    """Whether whole-row tiles of this problem (kh kernel rows at dilation dh, input rows of w_in columns) are row
    blocks: cfg names R > 1, or by default where rows of at most 16 columns meet a kernel that reaches every row."""
    if cfg.row_block:
        return cfg.row_block > 1
    return _gathers(cfg) and w_in <= 16 and _reaches_every_row(kh, dh, h_in)


BAND_ROW_BLOCK_MIN_KH = 13  # band tiles of 16-bit operands take 4-row blocks by default from this many kernel rows


def band_row_block_tile(cfg: "IgemmConfig", pairs: int):
    """(BM, warps) of band row blocks over ``pairs`` (image, column block) pairs: cfg's, or 128 pairs on 8 warps
    where there are at least 128 of them, else their power of two (at least 16) on 4 warps."""
    bm = cfg.bm or (128 if pairs >= 128 else max(16, next_power_of_2(pairs)))
    return bm, cfg.num_warps or (8 if bm >= 128 else 4)


def row_block_kernel_rows(cfg: "IgemmConfig", bk: int, r_bn: int, itemsize: int) -> int:
    """Input rows per row-block product: cfg.kernel_rows (0: one), halved until the gathered Toeplitz tiles (two
    buffers of KR*BK x R*BN) fit half of SHARED_MEMORY_BUDGET."""
    kr = cfg.kernel_rows or 1
    while kr > 1 and 2 * kr * bk * r_bn * itemsize > SHARED_MEMORY_BUDGET // 2:
        kr //= 2
    return kr


def prefetches(cfg: "IgemmConfig", form: str) -> bool:
    """Whether tiles of this form ("plane_canvas", "band_row_block", "row_block") gather the next step's Toeplitz
    tiles before each product: cfg.prefetch, or for None the default (on for canvas planes and band row blocks,
    bf16 forward, H100: unireplknet_t.s3 0.0211 against 0.0235-0.0240 ms, unireplknet_t.s1 0.122 against 0.130)."""
    if cfg.prefetch is not None:
        return cfg.prefetch
    return form in ("plane_canvas", "band_row_block")


LEFT_MIN_KH = 27  # band row blocks of 16-bit operands take the transposed product by default from this many rows


def takes_toeplitz_left(cfg: "IgemmConfig", form: str, kh: int, itemsize: int, table: bool) -> bool:
    """Whether tiles of this form ("plane", "band" row blocks or whole-row ones) take the product transposed
    (:class:`IgemmConfig` ``toeplitz_left``): cfg's choice, or for None band row blocks where 16-bit operands meet
    at least LEFT_MIN_KH kernel rows, the tiles are gathered in the loop and no prefetch is named (bf16 forward,
    H100, 2026-12-07: replknet_31b.s1 0.466-0.467 against 0.482 ms prefetched, three alternating runs;
    unireplknet_t.s1's 13 rows 0.134 against 0.123). Whole-row row blocks keep the plain product: the transposed
    one is not measured there."""
    if cfg.toeplitz_left is not None:
        return cfg.toeplitz_left
    return form == "band" and itemsize == 2 and kh >= LEFT_MIN_KH and not table and not cfg.prefetch


PLANE_BK = 32  # flattened input elements per step of a whole-plane tile
PLANE_MAX = 256  # the default takes whole-plane tiles on planes of at most this many elements


def _plane(cfg: "IgemmConfig", h_in: int, w_in: int, x_stride: tuple, ho: int, wo: int, kh: int, kw: int,
           dilation: tuple, itemsize: int) -> bool:
    """Whether the forward multiplies whole flattened planes (:class:`IgemmConfig` ``plane``). None: for 16-bit
    operands on planes of at most PLANE_MAX elements where the kernel's taps that land in the plane cover at least
    half of it (its Toeplitz matrix is then mostly taps), unless the config names another form (columns, kernel
    rows, order, bn, row blocks or a table) or the row-block default would take the problem (bf16, H100:
    unireplknet_t.s3 0.033 against 0.041 ms; replknet_31b.s3 keeps its row blocks, 0.053 against 0.059;
    unireplknet_t.dil's 9 taps on 196 do not pay, 0.045 against 0.031). The kernel addresses the elements of an
    image and of a plane in 32 bits."""
    dh, dw = dilation
    fits = (h_in - 1) * abs(x_stride[2]) + (w_in - 1) * abs(x_stride[3]) < 2**31 and max(h_in * w_in, ho * wo) < 2**31
    if cfg.plane is not None:
        if cfg.plane and not fits:
            raise ValueError("plane tiles address an image's rows and columns in 32 bits: this input's strides "
                             f"{x_stride} or its plane ({h_in} x {w_in}, output {ho} x {wo}) reach past 2**31")
        return cfg.plane
    named = (cfg.columns or cfg.kernel_rows or cfg.order or cfg.bn or cfg.row_block
             or cfg.toeplitz == "table" or (cfg.toeplitz_left and cfg.toeplitz == "gather"))
    if named or itemsize != 2 or not fits or h_in * w_in > PLANE_MAX or ho * wo > PLANE_MAX:
        return False
    taps = min(kh, cdiv(h_in, dh)) * min(kw, cdiv(w_in, dw))  # at most the taps that land in the plane
    return 2 * taps >= h_in * w_in and not _takes_row_blocks(cfg, kh, dh, h_in, w_in)


TOEPLITZ_FORMS = ("", "gather", "table", "canvas", "local_canvas", "shifted_canvas")


def check_config(cfg: "IgemmConfig") -> None:
    """ValueError naming the first field of cfg that no form accepts, or the fields that do not combine."""
    if cfg.toeplitz not in TOEPLITZ_FORMS:
        raise ValueError(f"toeplitz must be one of {TOEPLITZ_FORMS}, got {cfg.toeplitz!r}")
    if cfg.toeplitz in ("canvas", "local_canvas", "shifted_canvas") and cfg.plane is not True:
        raise ValueError(f"toeplitz={cfg.toeplitz!r} is read by plane tiles only: it needs plane=True")
    if cfg.order not in ("", "images", "rows"):
        raise ValueError(f"order must be '', 'images' or 'rows', got {cfg.order!r}")
    if cfg.columns not in COLUMN_FORMS:
        raise ValueError(f"columns must be one of {COLUMN_FORMS}, got {cfg.columns!r}")
    if cfg.canvas_run not in (4, 8):
        raise ValueError(f"canvas_run must be 4 or 8 (elements per aligned run of the shifted canvas), got "
                         f"{cfg.canvas_run}")
    if cfg.toeplitz_left and cfg.toeplitz not in ("", "gather", "canvas"):
        raise ValueError(f"toeplitz_left takes Toeplitz tiles gathered in the loop (plane tiles from the taps' canvas, "
                         f"row blocks from the weight): it needs toeplitz '', 'gather' or 'canvas', got "
                         f"{cfg.toeplitz!r}")
    if cfg.toeplitz_left and cfg.prefetch:
        raise ValueError("toeplitz_left reads each step's Toeplitz tile into the product's registers: it does not "
                         "combine with prefetch=True")
    if cfg.plane_bk and (cfg.plane_bk < 16 or cfg.plane_bk & (cfg.plane_bk - 1)):
        raise ValueError(f"plane_bk must be 0 or a power of two of at least 16, got {cfg.plane_bk}")
    for name in ("kernel_rows", "row_block"):
        v = getattr(cfg, name)
        if v < 0 or v & (v - 1):
            raise ValueError(f"{name} must be 0 or a power of two, got {v}")
    if cfg.toeplitz == "table" and cfg.plane:
        raise ValueError("plane tiles gather their Toeplitz tiles or read a canvas: they do not combine with "
                         "toeplitz='table'")


def _dense_plane(x_shape: tuple, x_stride: tuple) -> int:
    """H*W where x's planes are dense (NCHW-contiguous within each plane) and H*W is a multiple of 4, else 0."""
    h, w = x_shape[2], x_shape[3]
    dense = (x_stride[3] == 1 or w == 1) and (x_stride[2] == w or h == 1) and (x_stride[1] == h * w or x_shape[1] == 1)
    return h * w if dense and h * w % 4 == 0 else 0


def image_rows(cfg: "IgemmConfig", n: int) -> int:
    """Images per row-block or plane tile: cfg.bm, or for 0 the batch's power of two, from 16 to 64."""
    return cfg.bm or min(64, max(16, next_power_of_2(n)))


def _reaches_every_row(kh: int, dh: int, h_in: int) -> bool:
    """Whether, at stride 1 and "same"-like padding, each output row's kernel covers all h_in input rows: the
    kernel spans at least 2*h_in - 1 rows."""
    return (kh - 1) * dh + 1 >= 2 * h_in - 1


def _warps(cfg: "IgemmConfig", bm: int, bk: int, form: str) -> int:
    """cfg.num_warps, or for 0 the default of :class:`IgemmConfig`."""
    if cfg.num_warps:
        return cfg.num_warps
    if form != "band" and bk <= 16:
        return 2
    return 8 if bk >= 128 or bm >= 256 else 4


def _order(cfg: "IgemmConfig", ho: int, kh: int, dh: int, top: int, h_in: int) -> str:
    """cfg.order, or for "" the default of :class:`IgemmConfig`: "rows" where the padding holds more than 10% of
    the (output row, kernel row) pairs. bf16, H100: replknet_31b.s3 (27x27 on 14 rows; 52% of the pairs reach
    the input) 0.166 against 0.239 ms, s2 (74%) 0.255 against 0.310, s1 (86%) 0.560 against 0.624;
    unireplknet_t.s1 (94%) 0.209 against 0.207 and slak_t.s1.long (98%) 0.381 against 0.369."""
    if cfg.order:
        return cfg.order
    return "rows" if _reaching_fraction(ho, kh, dh, top, h_in) <= 0.9 else "images"


@functools.lru_cache(maxsize=1024)
def _reaching_fraction(ho: int, kh: int, dh: int, top: int, h_in: int) -> float:
    """The fraction of (output row h, kernel row i) pairs whose input row h + i*dh - top lies in [0, h_in)."""
    reach = sum(1 for h in range(ho) for i in range(kh) if 0 <= h + i * dh - top < h_in)
    return reach / max(1, ho * kh)


def _fit(bm: int, stages: int, bk: int, bn: int, itemsize: int, table: bool = False):
    """(bm, stages) reduced until the pipelined input tiles and the Toeplitz tiles (gathered: two buffers; read
    from a table: pipelined like the input) fit SHARED_MEMORY_BUDGET."""
    def need(bm: int, stages: int) -> int:
        return (stages * bm * bk + (stages if table else 2) * bk * bn) * itemsize

    while need(bm, stages) > SHARED_MEMORY_BUDGET and (stages > 1 or bm > 16):
        if stages > 2 or (stages > 1 and bm <= 64):
            stages -= 1
        else:
            bm //= 2
    return bm, stages
