"""The implicit-GEMM (Toeplitz, tensor-core) algorithm against the float64 reference in every direction."""
import dataclasses
import itertools

import pytest
import torch

import lkconv
from lkconv.tools import verify

from .helpers import assert_verified

CASES = [
    verify.Case(2, 3, 9, 11, 3, 3, padding=1),
    verify.Case(1, 2, 7, 6, 5, 4, padding="same"),
    verify.Case(2, 3, 9, 11, 3, 5, padding=(1, 2), dilation=(2, 1), mult=2, bias=False),
    verify.Case(1, 2, 12, 13, 7, 7, padding=3, layout="strided"),
    verify.Case(1, 3, 8, 9, 3, 3, padding=2, dilation=(2, 2), padding_mode="circular"),
    verify.Case(1, 2, 20, 19, 9, 9, padding=4, dtype="bf16"),
    verify.Case(1, 2, 20, 19, 9, 9, padding=4, dtype="fp16"),
    verify.Case(1, 1, 1, 9, 1, 5, padding=(0, 2)),
    verify.Case(2, 2, 17, 40, 5, 31, padding=(2, 15)),
    verify.Case(2, 3, 10, 12, 5, 5, padding=2, layout="nhwc"),
    verify.Case(1, 2, 9, 21, 3, 13, padding=(1, 6), layout="nhwc", dtype="bf16"),
    verify.Case(1, 2, 6, 7, 3, 3, padding=(4, 5)),
    # rows the output never reaches ("valid"), and a depth multiplier over rows masked at both ends
    verify.Case(2, 2, 11, 12, 5, 3, padding=0),
    verify.Case(3, 2, 5, 18, 7, 3, padding=(6, 1), dilation=(2, 1), mult=2),
    # tall kernels run transposed (see implicit_gemm.transposes)
    verify.Case(2, 3, 17, 12, 13, 3, padding=(6, 1)),
    verify.Case(1, 2, 19, 9, 9, 2, padding=(8, 0), dilation=(2, 3), mult=2, bias=False),
    verify.Case(1, 2, 20, 11, 15, 3, padding="same", layout="nhwc", dtype="bf16"),
    verify.Case(2, 2, 21, 10, 11, 1, padding=(3, 0), layout="strided"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label() + " " + c.dtype for c in CASES])
def test_implicit_gemm_matches_float64_reference(case, device):
    assert_verified(case, "implicit_gemm", device)


def test_implicit_gemm_refuses_what_it_cannot_serve(device):
    import lkconv

    x = torch.randn(1, 2, 9, 9, device=device)
    w = torch.randn(2, 1, 3, 3, device=device)
    with pytest.raises(ValueError, match="stride"):
        lkconv.depthwise_conv2d(x, w, stride=2, algorithm="implicit_gemm")
    with pytest.raises(ValueError, match="dtype"):
        lkconv.depthwise_conv2d(x.double(), w.double(), algorithm="implicit_gemm")


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "strided"])
@pytest.mark.parametrize("bm", [16, 128, 256])
def test_implicit_gemm_forward_and_input_gradient_match_reference(layout, bm, igemm_device):
    """Forward and input gradient (reversed taps, negative pad crops the buffer) with a depth multiplier,
    dilation and bias, every input layout, against float64."""
    from lkconv.ops.depthwise2d import implicit_gemm

    torch.manual_seed(0)
    cfg = implicit_gemm.IgemmConfig(bm=bm)
    x = torch.randn(2, 2, 9, 23, device=igemm_device)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = x[:, :, :, ::2]
    w = torch.randn(4, 1, 3, 5, device=igemm_device)
    b = torch.randn(4, device=igemm_device)
    for stride, pad, dil in (((1, 1), (2, 2, 1, 1), (2, 1)), ((1, 1), (0, 0, 6, 6), (1, 1))):
        _check_fwd_and_dgrad(x, w, b, stride, pad, dil, cfg)


def _check_fwd_and_dgrad(x, w, b, stride, pad, dil, cfg, dtype=torch.float32):
    """implicit_gemm's forward and input gradient (into NaN-filled outputs) against float64: in float32 within 1e-4;
    in bfloat16 (x, w, b and the output gradient rounded to it, the reference taking the rounded values) within one
    bfloat16 ulp (8e-3 relative, 1e-3 absolute)."""
    from lkconv.ops.depthwise2d import implicit_gemm, reference

    def close(out, ref):
        err = (out.double() - ref).abs()
        return bool((err < 1e-4).all()) if dtype == torch.float32 else bool((err <= 8e-3 * ref.abs() + 1e-3).all())

    x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
    yr = reference.depthwise_conv2d_fwd_torch(x.double(), w.double(), b.double(), stride, pad, dil)
    y = implicit_gemm.conv_fwd(x, w, b, stride, pad, dil,
                               torch.full(yr.shape, float("nan"), dtype=dtype, device=x.device), cfg)
    assert close(y, yr)
    dy = torch.randn_like(y)
    dx = implicit_gemm.conv_dgrad(dy, x.shape, w, stride, pad, dil, torch.full_like(x, float("nan")), cfg)
    dxr = reference.depthwise_conv2d_dgrad_torch(dy.double(), x.double(), w.double(), stride, pad, dil)
    assert close(dx, dxr)
    return y


@pytest.mark.parametrize("bm", [16, 64])
def test_rows_first_order_skips_only_padding(bm, igemm_device):
    """order="rows" (GEMM rows h*N + n, the loop over the kernel rows that reach the input): forward and input
    gradient against float64, with tiles of one to several output rows, rows wholly in the padding (an empty
    loop: bias alone), dilation, a depth multiplier and a crop (padding beyond the kernel's reach)."""
    from lkconv.ops.depthwise2d import implicit_gemm

    torch.manual_seed(0)
    cfg = implicit_gemm.IgemmConfig(bm=bm, order="rows")
    for n, c, h, w, kh, kw, pad, dil, mult in ((8, 2, 6, 9, 3, 3, (4, 4, 1, 1), (1, 1), 1),
                                               (3, 2, 5, 18, 7, 3, (6, 6, 1, 1), (2, 1), 2),
                                               (16, 1, 7, 7, 5, 5, (2, 2, 2, 2), (1, 1), 1),
                                               (2, 3, 11, 12, 9, 3, (0, 0, 1, 1), (1, 1), 1),
                                               (5, 2, 6, 7, 3, 3, (4, 4, 5, 5), (1, 1), 1)):
        x = torch.randn(n, c, h, w, device=igemm_device)
        wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
        _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil, cfg)
    with pytest.raises(ValueError, match="order"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty(5, 2, 10, 15, device=igemm_device),
                               implicit_gemm.IgemmConfig(order="x"))
    _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil,
                         implicit_gemm.IgemmConfig(bm=bm))  # the default order (here "rows")


@pytest.mark.parametrize("toeplitz", ["gather", "table"])
def test_toeplitz_tiles_from_a_table_or_gathered(toeplitz, igemm_device):
    """The forward and the input gradient (reversed taps, a depth multiplier, dilation) with the banded tiles
    read from a prebuilt table and gathered in the loop, against float64."""
    from lkconv.ops.depthwise2d import implicit_gemm

    x = torch.randn(2, 2, 10, 21, device=igemm_device)
    w = torch.randn(4, 1, 3, 7, device=igemm_device)
    b = torch.randn(4, device=igemm_device)
    stride, pad, dil = (1, 1), (2, 2, 6, 6), (2, 2)
    for columns in ("band", "rows"):  # whole rows: the table's tiles shifted by the left padding
        cfg = implicit_gemm.IgemmConfig(bm=16, bn=16, toeplitz=toeplitz, columns=columns)
        y = _check_fwd_and_dgrad(x, w, b, stride, pad, dil, cfg)
    with pytest.raises(ValueError, match="toeplitz"):
        implicit_gemm.conv_fwd(x, w, b, stride, pad, dil, torch.empty_like(y), implicit_gemm.IgemmConfig(toeplitz="x"))


# (n, c, h, w, kh, kw, pad (top, bottom, left, right), dilation, multiplier, layout)
ROW_GEOMETRIES = [
    (2, 2, 7, 14, 9, 9, (4, 4, 4, 4), (1, 1), 1, "nchw"),  # "same", 14 of 16 columns
    (2, 2, 6, 5, 3, 7, (1, 1, 6, 6), (1, 1), 2, "nchw"),  # padding beyond the kernel's reach, a multiplier
    (1, 3, 9, 13, 3, 5, (1, 1, 0, 0), (1, 2), 1, "nhwc"),  # "valid" columns, dilation; copied from channels_last
    (2, 2, 8, 40, 3, 3, (1, 1, 2, 2), (1, 1), 1, "strided"),  # every other column: copied
    (2, 2, 8, 23, 5, 3, (2, 2, 1, 1), (2, 1), 1, "rows"),  # a slice with unit-stride columns: read in place
    (1, 2, 6, 7, 3, 3, (4, 4, 5, 5), (1, 1), 1, "nchw"),  # the input gradient crops (a negative shift)
    (1, 2, 1, 9, 1, 5, (0, 0, 2, 2), (1, 1), 1, "nchw"),  # one row
    (1, 2, 17, 12, 13, 3, (6, 6, 1, 1), (1, 1), 1, "nchw"),  # a tall kernel: the transposed problem
    (2, 2, 6, 12, 5, 5, (2, 2, 2, 2), (1, 1), 1, "nchw"),  # 16-byte aligned rows of 12 of 16 columns: in place with
    # the width known when compiling
]


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "nhwc":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "strided":
        return torch.repeat_interleave(x, 2, dim=3)[:, :, :, ::2]
    if layout == "rows":
        n, c, h, w = x.shape
        big = torch.zeros(n, c, h + 3, w + 5, device=x.device, dtype=x.dtype)
        big[:, :, 1:1 + h, 2:2 + w] = x
        return big[:, :, 1:1 + h, 2:2 + w]
    return x


@pytest.mark.parametrize("columns", ["band", "rows", "rows_in_place"])
@pytest.mark.parametrize("geometry", ROW_GEOMETRIES,
                         ids=[f"{g[2]}x{g[3]}k{g[4]}x{g[5]}-{g[9]}" for g in ROW_GEOMETRIES])
def test_whole_row_and_band_tiles_match_reference(geometry, columns, igemm_device):
    """Forward (with bias), input and weight gradients with whole-row tiles (the left padding as a shift of the
    Toeplitz tiles; rows from an aligned copy, or read in place through column masks) and with band tiles (the
    zero-bordered buffer), into NaN-filled outputs, against float64."""
    from lkconv.ops.depthwise2d import implicit_gemm, reference
    from lkconv.testing import rel_error

    n, c, h, w, kh, kw, pad, dil, mult, layout = geometry
    cfg = implicit_gemm.IgemmConfig(bm=16, columns=columns)
    x = _layout(torch.randn(n, c, h, w, device=igemm_device), layout)
    wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
    b = torch.randn(c * mult, device=igemm_device)
    xd, wd = x.double(), wt.double()
    yr = reference.depthwise_conv2d_fwd_torch(xd, wd, b.double(), (1, 1), pad, dil)
    y = implicit_gemm.conv_fwd(x, wt, b, (1, 1), pad, dil, torch.full(yr.shape, float("nan"), device=igemm_device),
                               cfg)
    assert rel_error(y, yr) < 1e-5, "forward"
    dy = torch.randn(yr.shape, device=igemm_device)
    dxr = reference.depthwise_conv2d_dgrad_torch(dy.double(), xd, wd, (1, 1), pad, dil)
    dx = implicit_gemm.conv_dgrad(dy, x.shape, wt, (1, 1), pad, dil, torch.full_like(x, float("nan")), cfg)
    assert rel_error(dx, dxr) < 1e-5, "input gradient"
    dwr = reference.depthwise_conv2d_wgrad_torch(dy.double(), xd, wd, (1, 1), pad, dil)
    dw = implicit_gemm.conv_wgrad(dy, x, wt.shape, (1, 1), pad, dil, cfg)
    assert rel_error(dw, dwr) < 1e-5, "weight gradient"


def test_whole_rows_where_they_save_tensor_core_work():
    """Whole-row tiles where the padding is a large part of a row; the band elsewhere (ties keep the band)."""
    from lkconv.ops.depthwise2d import implicit_gemm

    plan = lambda kw, wo, w_in, columns="": implicit_gemm.column_plan(  # noqa: E731
        implicit_gemm.IgemmConfig(columns=columns), kw, 1, wo, w_in)
    assert plan(27, 14, 14) == ("rows", 16, 16)  # replknet_31b.s3: 16 input columns per row, not a 64-wide band
    assert plan(29, 28, 28) == ("rows", 32, 32)  # replknet_31b.s2
    assert plan(13, 14, 14) == ("rows", 16, 16)  # unireplknet_t.s3
    assert plan(31, 56, 56) == ("band", 32, 64)  # replknet_31b.s1: the same work either way
    assert plan(13, 56, 56) == ("band", 16, 32)  # unireplknet_t.s1
    assert plan(27, 14, 14, "band") == ("band", 16, 64)
    assert plan(27, 14, 14, "rows_in_place") == ("rows_in_place", 16, 16)
    with pytest.raises(ValueError, match="columns='rows'"):
        plan(3, 100, 100, "rows")
    with pytest.raises(ValueError, match="columns must be"):
        plan(3, 10, 10, "x")


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "strided"])
def test_row_padded_copy_matches_torch(layout, igemm_device):
    """Rows of x in BK-wide aligned rows with zeros past x's columns (dense rows through the row kernel, other
    layouts through the bordered copy); x itself where its rows already are that."""
    from lkconv.ops.depthwise2d import implicit_gemm

    x = _layout(torch.randn(3, 5, 7, 14, device=igemm_device), layout)
    for width in (16, 32):
        out = implicit_gemm._row_source(x, width, "rows")
        assert out.shape == (3, 5, 7, width) and out.is_contiguous()
        assert torch.equal(out[..., :14], x) and not out[..., 14:].any()
    dense = torch.randn(2, 3, 4, 16, device=igemm_device)
    assert implicit_gemm._row_source(dense, 16, "rows") is dense
    sliced = x[..., :13]
    in_place = implicit_gemm._row_source(sliced, 16, "rows_in_place")
    assert (in_place is sliced) == (sliced.stride(3) == 1)  # read in place through column masks


def test_column_tiles_follow_the_output_width():
    from lkconv.ops.depthwise2d import implicit_gemm

    assert implicit_gemm._tiles(31, 1, 56) == (32, 64)  # RepLKNet-31B stage 1
    assert implicit_gemm._tiles(27, 1, 14) == (16, 64)  # stage 3: 14 columns fill a 16-wide block, not 32
    assert implicit_gemm._tiles(51, 1, 56) == (64, 128)


def test_tall_kernels_run_transposed():
    """The band goes along the longer kernel side when that saves tensor-core work, or when only it fits."""
    from lkconv.ops.depthwise2d import implicit_gemm

    assert implicit_gemm.transposes(51, 5, (1, 1), 56, 56, 2) is True  # SLaK 51x5: 2.5x less work as 5x51
    assert implicit_gemm.transposes(5, 51, (1, 1), 56, 56, 2) is False
    assert implicit_gemm.transposes(31, 31, (1, 1), 56, 56, 2) is False  # square: no gain, no copies
    assert implicit_gemm.transposes(1, 11, (1, 1), 56, 56, 4) is False
    assert implicit_gemm.transposes(512, 1, (1, 1), 89, 4, 4) is False  # a 512-tall 1-wide band fits as is
    assert implicit_gemm.transposes(1, 512, (1, 1), 4, 89, 4) is True  # only the transposed band fits
    assert implicit_gemm.transposes(600, 600, (1, 1), 8, 8, 4) is None


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_transposing_copy_matches_torch(layout, igemm_device):
    """_bordered_copy of transposed views (the tiled transposing kernel) into either output layout, with a border
    and with a crop."""
    from lkconv.ops.depthwise2d import implicit_gemm

    x = torch.randn(2, 3, 70, 9, device=igemm_device)
    view = x.transpose(2, 3)  # unit-stride rows
    for top, left, height, width in ((2, 1, 12, 75), (-1, -3, 8, 66)):
        fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        out = torch.full((2, 3, height, width), float("nan"), device=igemm_device).contiguous(memory_format=fmt)
        implicit_gemm._bordered_copy(view, out, top, left)
        ref = torch.zeros(2, 3, height + 80, width + 80, device=igemm_device)
        ref[:, :, 40 + top:40 + top + 9, 40 + left:40 + left + 70] = view
        assert torch.equal(out, ref[:, :, 40:40 + height, 40:40 + width])


def test_default_rows_follow_the_band_and_dtype():
    """256-row tiles for 16-bit operands on 64-wide bands with column blocks of 32 or more, else 128; whole-row
    tiles 64 rows on 2 warps at 16 columns, else 128."""
    from lkconv.ops.depthwise2d import implicit_gemm

    cfg = implicit_gemm.IgemmConfig()
    assert implicit_gemm._rows(cfg, 64, 32, 2) == 256  # replknet_31b.s1/s2 in bf16
    assert implicit_gemm._rows(cfg, 64, 16, 2) == 128  # 14-column rows (replknet_31b.s3)
    assert implicit_gemm._rows(cfg, 32, 16, 2) == 128  # 13x13 on 56 columns
    assert implicit_gemm._rows(cfg, 64, 32, 4) == 128  # float32 operands
    assert implicit_gemm._rows(cfg, 128, 64, 2) == 128  # the 51-tap band
    assert implicit_gemm._rows(implicit_gemm.IgemmConfig(bm=64), 64, 32, 2) == 64
    assert implicit_gemm._rows(cfg, 16, 16, 2, "rows") == 64  # whole-row tiles: 64 rows on 2 warps at 16 columns
    assert implicit_gemm._warps(cfg, 64, 16, "rows") == 2
    assert implicit_gemm._rows(cfg, 32, 32, 2, "rows") == 128  # replknet_31b.s2
    assert implicit_gemm._warps(cfg, 128, 32, "rows") == 4
    assert implicit_gemm._warps(cfg, 256, 64, "band") == 8
    assert implicit_gemm._kernel_rows(cfg, 27, 16, "rows") == 2  # two kernel rows per product on narrow rows
    assert implicit_gemm._kernel_rows(cfg, 29, 32, "rows_in_place") == 2
    assert implicit_gemm._kernel_rows(cfg, 5, 64, "rows") == 1  # slak_t.s1.wide
    assert implicit_gemm._kernel_rows(cfg, 13, 32, "band") == 1
    assert implicit_gemm._kernel_rows(cfg, 1, 16, "rows") == 1  # never more than the kernel's rows
    assert implicit_gemm._kernel_rows(implicit_gemm.IgemmConfig(kernel_rows=8), 5, 64, "band") == 8


def test_default_order_follows_the_padding():
    """Rows first where the padding holds more than 10% of the (output row, kernel row) pairs."""
    from lkconv.ops.depthwise2d import implicit_gemm

    cfg = implicit_gemm.IgemmConfig()
    assert implicit_gemm._reaching_fraction(14, 27, 1, 13, 14) == pytest.approx(14 / 27)  # replknet_31b.s3
    assert implicit_gemm._order(cfg, 14, 27, 1, 13, 14) == "rows"
    assert implicit_gemm._order(cfg, 56, 31, 1, 15, 56) == "rows"  # replknet_31b.s1: 86%
    assert implicit_gemm._order(cfg, 56, 13, 1, 6, 56) == "images"  # unireplknet_t.s1: 94%
    assert implicit_gemm._order(cfg, 9, 3, 1, 0, 11) == "images"  # "valid": every pair reaches the input
    assert implicit_gemm._order(implicit_gemm.IgemmConfig(order="images"), 14, 27, 1, 13, 14) == "images"


def test_tiles_fit_shared_memory():
    from lkconv.ops.depthwise2d import implicit_gemm

    bm, stages = implicit_gemm._fit(128, 3, 128, 64, 4)  # float32, a 51-wide kernel
    assert (stages * bm * 128 + 2 * 128 * 64) * 4 <= implicit_gemm.SHARED_MEMORY_BUDGET and bm >= 64
    assert implicit_gemm._fit(128, 3, 64, 32, 2) == (128, 3)  # bf16, 31-wide: unchanged
    bm, stages = implicit_gemm._fit(128, 3, 128, 64, 4, table=True)  # table tiles are pipelined too
    assert (stages * bm * 128 + stages * 128 * 64) * 4 <= implicit_gemm.SHARED_MEMORY_BUDGET


@pytest.fixture
def igemm_device(device):
    """The test device, where the implicit-GEMM kernels run (CUDA, or the CPU interpreter); else the test skips."""
    if not _can_run(device):
        pytest.skip("implicit_gemm does not run here (needs CUDA, or TRITON_INTERPRET=1 on CPU)")
    return device


def _can_run(device):
    from lkconv.ops.depthwise2d import implicit_gemm
    from lkconv.ops.depthwise2d.problem import Problem

    x, w = torch.empty(1, 1, 4, 4, device=device), torch.empty(1, 1, 3, 3, device=device)
    return implicit_gemm.unsupported_reason_for(Problem.make("fwd", x, w, (1, 1), (1, 1, 1, 1), (1, 1))) is None


def test_implicit_gemm_refuses_bands_that_do_not_fit(device):
    from lkconv.ops.depthwise2d import implicit_gemm
    from lkconv.ops.depthwise2d.problem import Problem

    x = torch.empty(1, 1, 400, 600, device=device)
    ok = Problem.make("fwd", x, torch.empty(1, 1, 1, 51, device=device), (1, 1), (0, 0, 25, 25), (1, 1))
    wide = Problem.make("fwd", x, torch.empty(1, 1, 1, 512, device=device), (1, 1), (0, 0, 0, 0), (1, 1))
    big = Problem.make("fwd", torch.empty(1, 1, 800, 800, device=device), torch.empty(1, 1, 600, 600, device=device),
                       (1, 1), (0, 0, 0, 0), (1, 1))
    if implicit_gemm.unsupported_reason_for(ok) is not None:
        pytest.skip("implicit_gemm does not run here")
    assert implicit_gemm.unsupported_reason_for(wide) is None  # served transposed: a 512-tall, 1-wide band
    assert "either orientation" in implicit_gemm.unsupported_reason_for(big)


@pytest.mark.parametrize("kernel_rows", [2, 4])
@pytest.mark.parametrize("columns", ["band", "rows", "rows_in_place"])
def test_kernel_rows_stacked_into_one_product(columns, kernel_rows, igemm_device):
    """Several kernel rows per product (K = kernel_rows * BK): forward and input gradient against float64, with
    kernel rows not a multiple of kernel_rows (the last product's extra rows masked), both GEMM row orders
    (the rows-first loop starting past kernel row 0), dilation, a depth multiplier and a prebuilt table."""
    from lkconv.ops.depthwise2d import implicit_gemm

    torch.manual_seed(0)
    for n, c, h, w, kh, kw, pad, dil, mult, order, toeplitz in (
            (2, 2, 7, 14, 9, 9, (4, 4, 4, 4), (1, 1), 1, "images", "gather"),
            (8, 2, 6, 9, 5, 3, (4, 4, 1, 1), (1, 1), 1, "rows", "gather"),
            (3, 2, 5, 12, 7, 3, (6, 6, 1, 1), (2, 1), 2, "rows", "table"),
            (2, 1, 6, 7, 3, 3, (1, 1, 1, 1), (1, 1), 1, "images", "table")):
        cfg = implicit_gemm.IgemmConfig(bm=16, order=order, columns=columns, toeplitz=toeplitz,
                                        kernel_rows=kernel_rows)
        x = torch.randn(n, c, h, w, device=igemm_device)
        wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
        _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil, cfg)
    with pytest.raises(ValueError, match="kernel_rows"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty(2, 1, 6, 7, device=igemm_device),
                               implicit_gemm.IgemmConfig(kernel_rows=3))


@pytest.mark.parametrize("kernel_rows", [2, 4])
@pytest.mark.parametrize("columns", ["band", "rows", "rows_in_place"])
def test_weight_gradient_with_kernel_rows_per_program(columns, kernel_rows, igemm_device):
    """The weight gradient with several kernel rows per program (one output-gradient tile for all of them; the
    rows out of a kernel row's reach entering as zeros): kernel rows not a multiple of kernel_rows, padding beyond
    the kernel's reach, dilation, a depth multiplier, against float64."""
    from lkconv.ops.depthwise2d import implicit_gemm, reference
    from lkconv.testing import rel_error

    torch.manual_seed(0)
    for n, c, h, w, kh, kw, pad, dil, mult in ((2, 2, 7, 14, 9, 9, (4, 4, 4, 4), (1, 1), 1),
                                               (3, 2, 5, 12, 7, 3, (6, 6, 1, 1), (2, 1), 2),
                                               (2, 1, 6, 7, 3, 3, (0, 0, 1, 1), (1, 1), 1),
                                               (1, 2, 9, 10, 5, 5, (1, 3, 2, 2), (1, 1), 1),
                                               (16, 1, 9, 10, 5, 5, (2, 2, 2, 2), (1, 1), 1)):  # chunks of rows
        x = torch.randn(n, c, h, w, device=igemm_device)
        wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
        yr = reference.depthwise_conv2d_fwd_torch(x.double(), wt.double(), None, (1, 1), pad, dil)
        dy = torch.randn(yr.shape, device=igemm_device)
        dwr = reference.depthwise_conv2d_wgrad_torch(dy.double(), x.double(), wt.double(), (1, 1), pad, dil)
        cfg = implicit_gemm.IgemmConfig(columns=columns, kernel_rows=kernel_rows)
        dw = implicit_gemm.conv_wgrad(dy, x, wt.shape, (1, 1), pad, dil, cfg)
        assert rel_error(dw, dwr) < 1e-5, (h, w, kh, kw)
    assert implicit_gemm._wgrad_kernel_rows(implicit_gemm.IgemmConfig(kernel_rows=4), 27, 16, 16) == 4
    assert implicit_gemm._wgrad_kernel_rows(implicit_gemm.IgemmConfig(kernel_rows=4), 13, 128, 64) == 1
    assert implicit_gemm._wgrad_kernel_rows(implicit_gemm.IgemmConfig(), 27, 16, 16) == 1


def test_transposed_problem_stores_into_the_output_itself(igemm_device):
    """A transposed problem whose GEMM rows enumerate images first writes out's own (N, C, W, H) view (no copy
    back); rows-first tiles and outputs that are not NCHW-contiguous go through a buffer."""
    from lkconv.ops.depthwise2d import implicit_gemm

    out = torch.empty(2, 3, 17, 12, device=igemm_device)
    t = implicit_gemm._transposed_target(out, implicit_gemm.IgemmConfig(order="images"), 3, 1, 1, 12, 17)
    assert t.data_ptr() == out.data_ptr() and t.shape == (2, 3, 12, 17) and t.stride() == (612, 204, 1, 12)
    assert implicit_gemm._from_transposed(t, out) is out
    t = implicit_gemm._transposed_target(out, None, 3, 1, 1, 12, 17)  # the default order here: images
    assert t.data_ptr() == out.data_ptr()
    for o, cfg in ((out, implicit_gemm.IgemmConfig(order="rows")),
                   (out.contiguous(memory_format=torch.channels_last), None)):
        t = implicit_gemm._transposed_target(o, cfg, 3, 1, 1, 12, 17)
        assert t.data_ptr() != o.data_ptr() and t.is_contiguous() and t.shape == (2, 3, 12, 17)
        t.copy_(torch.randn(t.shape))
        assert torch.equal(implicit_gemm._from_transposed(t, o), t.transpose(2, 3))


def test_dense_aligned_width(igemm_device):
    """The row width a kernel may compile in: NCHW-contiguous tensors with 16-byte aligned rows only."""
    from lkconv.ops.depthwise2d import implicit_gemm

    assert implicit_gemm._dense_aligned_width(torch.empty(2, 3, 5, 12)) == 12  # 48-byte rows
    assert implicit_gemm._dense_aligned_width(torch.empty(2, 3, 5, 56, dtype=torch.bfloat16)) == 56  # 112 bytes
    assert implicit_gemm._dense_aligned_width(torch.empty(2, 3, 5, 14, dtype=torch.bfloat16)) == 0  # 28 bytes
    assert implicit_gemm._dense_aligned_width(torch.empty(2, 3, 5, 16)[..., :12]) == 0  # rows 16 apart
    assert implicit_gemm._dense_aligned_width(torch.empty(2, 3, 5, 12).contiguous(
        memory_format=torch.channels_last)) == 0
    assert implicit_gemm._dense_aligned_width(torch.empty(2 * 3 * 5 * 12 + 1)[1:].view(2, 3, 5, 12)) == 0  # offset
    x = torch.randn(2, 3, 5, 12, device=igemm_device)
    assert implicit_gemm._row_source(x, 16, "rows") is x  # whole rows read in place: no copy
    x = torch.randn(2, 3, 5, 14, device=igemm_device)  # 56-byte rows: copied 16 wide, zeros past column 14
    padded = implicit_gemm._row_source(x, 16, "rows")
    assert padded.shape == (2, 3, 5, 16)
    torch.testing.assert_close(padded[..., :14], x, rtol=0, atol=0)
    assert not padded[..., 14:].any()


def test_planned_launches_pass_every_kernel_parameter_in_order():
    """A direct launch passes the planned integers positionally after the tensors, then the constexprs in the
    kernel's parameter order (FastLauncher): the plans must name exactly the kernel's remaining parameters."""
    from lkconv._triton import triton_available
    from lkconv.ops.depthwise2d import implicit_gemm as ig

    if not triton_available():
        pytest.skip("Triton is not installed")

    def check(kernel, n_tensors, ints, consts):
        names = list(kernel.arg_names)
        consts = [name for name, _ in consts if name != "num_warps"]
        assert len(names) == n_tensors + len(ints) + len(consts), names
        assert names[n_tensors + len(ints):] == consts

    x = torch.empty(2, 3, 9, 12)
    for cfg in (ig.IgemmConfig(), ig.IgemmConfig(columns="band", toeplitz="table"), ig.IgemmConfig(columns="rows")):
        plan = ig._fwd_plan(tuple(x.shape), x.stride(), 4, ig._dense_aligned_width(x), (2, 3, 9, 12),
                            (324, 108, 12, 1), (3, 1, 5, 5), (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)),
                            True, cfg, "ieee", True)
        check(ig.depthwise_conv2d_igemm_fwd_kernel, 5, plan.ints, plan.consts)
        assert len(plan.grid) == 3  # a direct launch (CompiledKernel[grid]) reads grid[0], grid[1], grid[2]
        wplan = ig._wgrad_plan((2, 3, 9, 12), (324, 108, 12, 1), 12, tuple(x.shape), x.stride(), 12, 4, (3, 1, 5, 5),
                               (2, 2, 2, 2), (1, 1), cfg, 4, "ieee", True)
        check(ig.depthwise_conv2d_igemm_wgrad_kernel, 3, wplan.ints, wplan.consts)
        assert len(wplan.grid) == 3
    assert plan.source == "x" and dict(plan.consts)["ROW_W"] == 12  # 48-byte rows of 12 of 16 columns, in place
    plan = ig._fwd_plan(tuple(x.shape), x.stride(), 4, 12, (2, 3, 9, 12), (324, 108, 12, 1), (3, 1, 5, 5),
                        (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)), True,
                        ig.IgemmConfig(columns="rows", row_block=4), "ieee", True)
    assert plan.kernel == "row_block" and plan.grid == (3, 3, 1)  # one block of 2 images, 3 blocks of 4 rows
    check(ig.depthwise_conv2d_igemm_row_block_kernel, 4, plan.ints, plan.consts)
    xw = torch.empty(2, 3, 9, 40)
    plan = ig._fwd_plan(tuple(xw.shape), xw.stride(), 2, 40, (2, 3, 9, 40), (1080, 360, 40, 1), (3, 1, 5, 5),
                        (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)), True,
                        ig.IgemmConfig(bm=16, bn=16, columns="band", row_block=4), "ieee", True)
    consts = dict(plan.consts)
    assert plan.kernel == "row_block" and plan.source == "x" and plan.grid == (3, 3, 1)  # 6 pairs, 3 row blocks
    assert (consts["COL_OFF"], consts["BK"], consts["ROW_W"], plan.shift) == (8, 32, 40, -6)  # 8 + 16 + 4 > 16
    check(ig.depthwise_conv2d_igemm_row_block_kernel, 4, plan.ints, plan.consts)
    plan = ig._fwd_plan(tuple(xw.shape), xw.stride(), 2, 40, (2, 3, 9, 40), (1080, 360, 40, 1), (3, 1, 5, 5),
                        (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)), True,
                        ig.IgemmConfig(bm=16, bn=16, columns="band", row_block=4, toeplitz="table"), "ieee", True)
    launch, shape, grid, ints, consts = plan.taps_layout  # offsets -3 .. 3 + 4 + 1: 12 tiles of 32 x 16 per channel
    assert shape == (3, 12 * 32 * 16) and dict(plan.consts)["TABLE"] and not dict(plan.consts)["PREFETCH"]
    assert launch is ig._launch_row_block_table
    check(ig.row_block_table_kernel, 2, ints, consts)
    plan = ig._fwd_plan(tuple(x.shape), x.stride(), 4, 12, (2, 3, 9, 12), (324, 108, 12, 1), (3, 1, 5, 5),
                        (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)), True, ig.IgemmConfig(plane=True),
                        "ieee", True)
    assert plan.kernel == "plane" and plan.grid == (2, 3, 1)  # one block of 2 images, 108 outputs in blocks of 64
    check(ig.depthwise_conv2d_igemm_plane_kernel, 5, plan.ints, plan.consts)
    launch, shape, grid, ints, consts = plan.taps_layout  # the taps' canvas: (9 + 9 - 1) x (12 + 12 - 1) per channel
    assert shape == (3, 17 * 23) and grid == (3, 1, 1) and launch is ig._launch_plane_canvas
    check(ig.plane_canvas_kernel, 2, ints, consts)
    plan = ig._fwd_plan(tuple(x.shape), x.stride(), 4, 12, (2, 3, 9, 12), (324, 108, 12, 1), (3, 1, 5, 5),
                        (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)), True,
                        ig.IgemmConfig(plane=True, toeplitz="shifted_canvas"), "ieee", True)
    check(ig.depthwise_conv2d_igemm_plane_kernel, 5, plan.ints, plan.consts)
    launch, shape, grid, ints, consts = plan.taps_layout
    assert shape == (3, 8 * 17 * 40) and launch is ig._launch_plane_shifted_canvas  # rows of 12 + 16 + 6 -> 40
    check(ig.plane_shifted_canvas_kernel, 2, ints, consts)
    plan = ig._fwd_plan(tuple(x.shape), x.stride(), 2, 12, (2, 3, 9, 12), (324, 108, 12, 1), (3, 1, 5, 5),
                        (25, 25, 5, 1), (1, 1), 2, 2, 1, 1, ((0, 1), (0, 1)), True,
                        ig.IgemmConfig(plane=True, toeplitz="canvas", toeplitz_left=True), "ieee", True)
    assert dict(plan.consts)["T_LEFT"] and not dict(plan.consts)["PREFETCH"]
    check(ig.depthwise_conv2d_igemm_plane_kernel, 5, plan.ints, plan.consts)
    check(ig.row_padded_copy_kernel, 2, (0, 0), (("WIDTH", 0), ("BR", 0)))
    check(ig.zero_bordered_copy_kernel, 2, (0,) * 15, (("BC", 0), ("BW", 0)))
    check(ig.zero_bordered_transpose_copy_kernel, 2, (0,) * 15, (("BR", 0), ("BCOL", 0)))


@pytest.mark.parametrize("row_block", [2, 4])
@pytest.mark.parametrize("columns", ["rows", "rows_in_place", "band"])
def test_row_blocks_match_reference(columns, row_block, igemm_device):
    """Tiles of several output rows (the plane's block-Toeplitz product, one input row per step), of whole rows or
    of band column blocks (16 outputs: several per row, the last partial, bands reaching past both ends of the row
    and starting left of the padding): forward and input gradient against float64, with output rows not a multiple
    of the block, several image blocks (the last partial), padding beyond the kernel's reach, dilation in both
    directions, a depth multiplier, in-place aligned rows and copied rows; the Toeplitz tiles gathered, read from a
    table (band), and the product taken transposed (the gathered tiles as its left operand, toeplitz_left)."""
    from lkconv.ops.depthwise2d import implicit_gemm

    torch.manual_seed(0)
    for n, c, h, w, kh, kw, pad, dil, mult in ((2, 2, 7, 14, 9, 9, (4, 4, 4, 4), (1, 1), 1),
                                               (20, 1, 6, 12, 5, 5, (2, 2, 2, 2), (1, 1), 1),
                                               (3, 2, 5, 12, 7, 3, (6, 6, 1, 1), (2, 1), 2),
                                               (2, 1, 6, 7, 3, 3, (4, 4, 5, 5), (1, 1), 1),
                                               (3, 2, 6, 40, 5, 9, (2, 2, 4, 4), (1, 1), 1),
                                               (2, 1, 5, 37, 3, 7, (2, 2, 9, 9), (1, 2), 2)):
        cfg = implicit_gemm.IgemmConfig(bm=16, bn=16 if columns == "band" else 0, columns=columns,
                                        row_block=row_block, prefetch=row_block == 4, kernel_rows=row_block // 2)
        if columns == "band":  # the Toeplitz tiles read from a table instead of gathered
            x = torch.randn(n, c, h, w, device=igemm_device)
            wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
            _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil,
                                 dataclasses.replace(cfg, toeplitz="table"))
        x = torch.randn(n, c, h, w, device=igemm_device)
        wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
        _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil, cfg)
        _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil,
                             dataclasses.replace(cfg, toeplitz_left=True, prefetch=False), torch.bfloat16)
    with pytest.raises(ValueError, match="single output rows"):
        implicit_gemm.conv_fwd(x.bfloat16(), wt.bfloat16(), None, (1, 1), pad, dil,
                               torch.empty(2, 1, 14, 15, device=igemm_device, dtype=torch.bfloat16),
                               implicit_gemm.IgemmConfig(row_block=1, columns="rows", toeplitz_left=True))
    with pytest.raises(ValueError, match="row_block"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty(2, 1, 14, 15, device=igemm_device),
                               implicit_gemm.IgemmConfig(row_block=3, columns="rows"))
    with pytest.raises(ValueError, match="table"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty(2, 1, 14, 15, device=igemm_device),
                               implicit_gemm.IgemmConfig(row_block=2, columns="rows", toeplitz="table"))


def _default_plan(h, w, kh, kw, itemsize, cfg=None, dil=1):
    """implicit_gemm's forward plan for an NCHW (3, 2, h, w) input with a kh x kw kernel at dilation dil and
    "same" padding, in `itemsize`-byte operands (cfg None: the default config)."""
    from lkconv.ops.depthwise2d import implicit_gemm as ig

    x = torch.empty(3, 2, h, w)
    return ig._fwd_plan(tuple(x.shape), x.stride(), itemsize, 0, (3, 2, h, w), (2 * h * w, h * w, w, 1),
                        (2, 1, kh, kw), (kh * kw, kh * kw, kw, 1), (dil, dil), (kh - 1) * dil // 2,
                        (kw - 1) * dil // 2, 1, 1, ((0, 1), (0, 1)), False, cfg or ig.DEFAULT_CONFIG, "ieee", True)


def _check_op_against_float64(x, wt, padding, dtype, tol):
    """lkconv.depthwise_conv2d(algorithm="implicit_gemm") in dtype, NCHW and channels_last: output and both
    gradients within tol of float64 PyTorch, relative to each reference's largest magnitude."""
    for fmt in (torch.contiguous_format, torch.channels_last):
        xs = x.to(dtype).contiguous(memory_format=fmt).requires_grad_()
        ws = wt.to(dtype).requires_grad_()
        y = lkconv.depthwise_conv2d(xs, ws, padding=padding, algorithm="implicit_gemm")
        dy = torch.randn_like(y)
        dx, dw = torch.autograd.grad(y, (xs, ws), dy)
        xr, wr = xs.detach().double().requires_grad_(), ws.detach().double().requires_grad_()
        yr = torch.nn.functional.conv2d(xr, wr, padding=padding, groups=x.shape[1])
        dxr, dwr = torch.autograd.grad(yr, (xr, wr), dy.double())
        for got, want in ((y, yr), (dx, dxr), (dw, dwr)):
            assert (got.double() - want).abs().max().item() <= tol * want.abs().max().item(), (dtype, fmt)


def test_default_row_block_where_every_output_row_reaches_every_input_row(igemm_device):
    """The default config takes 4-row block-Toeplitz tiles on whole rows of at most 16 columns whose kernel spans
    2*H - 1 rows or more (each output row reaches every input row), one output row per tile otherwise or with
    row_block=1; the default's forward and input gradient match float64 (fp32 and bf16 through the public op, both
    layouts; the weight gradient too)."""
    from lkconv.ops.depthwise2d import implicit_gemm as ig

    plan = _default_plan(7, 12, 13, 5, 4)
    assert plan.kernel == "row_block" and dict(plan.consts)["R"] == 4
    assert _default_plan(7, 12, 11, 5, 4).kernel == "rows"  # 11 rows < 2*7 - 1
    assert _default_plan(7, 12, 13, 5, 4, ig.IgemmConfig(row_block=1)).kernel == "rows"
    assert _default_plan(7, 12, 13, 5, 4, ig.IgemmConfig(toeplitz="table")).kernel == "rows"
    assert _default_plan(7, 40, 13, 5, 4).kernel == "rows"  # rows of 64 columns
    assert ig._row_block(ig.DEFAULT_CONFIG, 13, 1, 7, 16, "band") == 1  # float32
    # band tiles of 16-bit operands: 4-row blocks of (image, column block) pairs from 13 kernel rows, prefetched
    plan = _default_plan(7, 40, 13, 13, 2)
    consts = dict(plan.consts)
    assert plan.kernel == "row_block" and consts["R"] == 4 and consts["PREFETCH"] and consts["COL_OFF"] == 8
    assert (consts["BM"], consts["num_warps"]) == (16, 4)  # 3 images x 3 column blocks
    assert _default_plan(7, 40, 11, 13, 2).kernel == "rows"
    assert _default_plan(7, 40, 13, 13, 2, ig.IgemmConfig(toeplitz="table")).kernel == "rows"
    # 13 taps at dilation 5 (60 columns) on 64-output blocks, padding 17: read from column 24 the band needs 131
    # columns against the band's 128, so the default keeps one row per tile
    x = torch.empty(2, 2, 80, 80)
    plan = ig._fwd_plan(tuple(x.shape), x.stride(), 2, 0, (2, 2, 54, 54), (5832, 2916, 54, 1), (2, 1, 13, 13),
                        (169, 169, 13, 1), (5, 5), 17, 17, 1, 1, ((0, 1), (0, 1)), False, ig.DEFAULT_CONFIG, "ieee", True)
    assert plan.kernel == "rows" and (plan.bn, plan.bk) == (64, 128)
    assert ig._band_block_width(17, 64, 13, 5) == 256
    assert ig.band_row_block_tile(ig.DEFAULT_CONFIG, 256) == (128, 8)
    assert ig.band_row_block_tile(ig.DEFAULT_CONFIG, 64) == (64, 4)
    torch.manual_seed(1)
    _check_op_against_float64(torch.randn(3, 2, 7, 40, device=igemm_device),
                              torch.randn(2, 1, 13, 13, device=igemm_device), "same", torch.bfloat16, 2e-2)

    torch.manual_seed(0)
    for n, c, h, w, kh, kw in ((5, 3, 7, 12, 13, 5), (2, 2, 6, 14, 11, 13)):
        x = torch.randn(n, c, h, w, device=igemm_device)
        wt = torch.randn(c, 1, kh, kw, device=igemm_device)
        pad = (kh // 2, kh // 2, kw // 2, kw // 2)
        assert _default_plan(h, w, kh, kw, 4).kernel == "row_block"
        _check_fwd_and_dgrad(x, wt, torch.randn(c, device=igemm_device), (1, 1), pad, (1, 1), None)
        for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 5e-2)):
            _check_op_against_float64(x, wt, (kh // 2, kw // 2), dtype, tol)


def test_default_transposed_product_from_27_kernel_rows(igemm_device, monkeypatch):
    """Band row blocks of 16-bit operands take the product transposed (toeplitz_left) by default from 27 kernel
    rows, without prefetch; not below 27 rows, not for float32, not for whole-row row blocks, not where the config
    names prefetch=True, toeplitz_left=False or a table; the default's forward and input gradient match float64 in
    bf16, through the plans asserted (and whole-row row blocks with the product named transposed)."""
    from lkconv.ops.depthwise2d import implicit_gemm as ig

    def consts(h, w, kh, itemsize=2, cfg=None):
        plan = _default_plan(h, w, kh, kh, itemsize, cfg)
        return plan.kernel, dict(plan.consts)

    kernel, c = consts(7, 48, 27)  # band row blocks
    assert kernel == "row_block" and c["T_LEFT"] and not c["PREFETCH"] and c["COL_OFF"] == 16, (kernel, c)
    assert not consts(7, 48, 27, 2, ig.IgemmConfig(toeplitz_left=False))[1]["T_LEFT"]
    assert not consts(7, 48, 27, 2, ig.IgemmConfig(prefetch=True))[1]["T_LEFT"]
    assert not consts(7, 48, 25)[1].get("T_LEFT")
    assert not consts(7, 48, 27, 4)[1].get("T_LEFT")  # float32: three tf32 products through shared memory
    assert not consts(7, 48, 27, 2, ig.IgemmConfig(toeplitz="table", row_block=4, columns="band", bn=16))[1][
        "T_LEFT"]
    kernel, c = consts(7, 12, 27)  # whole-row row blocks (12 columns): the plain product
    assert kernel == "row_block" and not c["T_LEFT"]
    planned = []
    plan_fwd = ig._fwd_plan
    monkeypatch.setattr(ig, "_fwd_plan", lambda *a: planned.append(plan_fwd(*a)) or planned[-1])
    torch.manual_seed(0)
    for n, c, h, w, cfg in ((3, 2, 7, 48, None), (2, 2, 7, 12, ig.IgemmConfig(toeplitz_left=True))):
        x = torch.randn(n, c, h, w, device=igemm_device)
        wt = torch.randn(c, 1, 27, 27, device=igemm_device)
        planned.clear()
        _check_fwd_and_dgrad(x, wt, torch.randn(c, device=igemm_device), (1, 1), (13, 13, 13, 13), (1, 1), cfg,
                             torch.bfloat16)
        assert len(planned) == 2 and all(p.kernel == "row_block" and dict(p.consts)["T_LEFT"] for p in planned)


@pytest.mark.parametrize("toeplitz", ["gather", "canvas", "local_canvas", "shifted_canvas", "canvas_left"])
@pytest.mark.parametrize("bn", [16, 64])
def test_plane_tiles_match_reference(bn, toeplitz, igemm_device):
    """Whole flattened planes per tile (IgemmConfig.plane): forward and input gradient against float64, NCHW and
    channels_last, output blocks that split rows and planes of more than one block, image blocks with a partial
    last one, padding beyond the kernel's reach (a crop), dilation, a depth multiplier, a kernel larger than the
    plane; dense planes read as contiguous runs (plane_runs, where H*W is a multiple of 4: 28 and 48 elements,
    with chunks that end inside a row); the weight gradient of that config still matches (it ignores plane)."""
    from lkconv.ops.depthwise2d import implicit_gemm, reference

    left = toeplitz.endswith("_left")  # the product transposed: the Toeplitz tile as its left operand
    toeplitz = toeplitz[:-len("_left")] if left else toeplitz
    dtype = torch.bfloat16 if left else torch.float32  # (the transposed product takes 16-bit operands only)
    torch.manual_seed(0)
    for n, c, h, w, kh, kw, pad, dil, mult in ((3, 2, 7, 6, 5, 3, (2, 2, 1, 1), (1, 1), 1),
                                               (2, 2, 5, 9, 3, 5, (4, 4, 5, 5), (2, 1), 2),
                                               (17, 1, 6, 5, 13, 13, (6, 6, 6, 6), (1, 1), 1),
                                               (2, 3, 9, 11, 3, 3, (0, 0, 0, 0), (1, 1), 1),
                                               (2, 2, 4, 7, 3, 5, (1, 1, 2, 2), (1, 1), 1),
                                               (2, 2, 6, 7, 3, 3, (4, 4, 1, 1), (1, 1), 1),
                                               (2, 2, 6, 8, 3, 3, (2, 2, 3, 3), (1, 2), 1),
                                               (3, 2, 8, 6, 3, 3, (1, 1, 1, 1), (1, 1), 1)):
        for fmt, runs in ((torch.contiguous_format, False), (torch.contiguous_format, True),
                          (torch.channels_last, True)):
            cfg = implicit_gemm.IgemmConfig(bm=16, bn=bn, plane=True, plane_runs=runs, toeplitz=toeplitz,
                                            prefetch=toeplitz != "gather" and bn == 64 and not left,
                                            canvas_run=4 if bn == 16 else 8, toeplitz_left=left)
            x = torch.randn(n, c, h, w, device=igemm_device).contiguous(memory_format=fmt)
            wt = torch.randn(c * mult, 1, kh, kw, device=igemm_device)
            _check_fwd_and_dgrad(x, wt, torch.randn(c * mult, device=igemm_device), (1, 1), pad, dil, cfg, dtype)
    x4 = torch.empty(2, 3, 4, 7)
    assert implicit_gemm._dense_plane(tuple(x4.shape), x4.stride()) == 28
    assert implicit_gemm._dense_plane((2, 3, 5, 7), (105, 35, 7, 1)) == 0  # 35 elements: not a multiple of 4
    assert implicit_gemm._dense_plane((2, 3, 4, 7), (84, 1, 21, 3)) == 0  # channels_last
    assert implicit_gemm._dense_plane((2, 3, 4, 7), (96, 32, 8, 1)) == 0  # padded rows
    dy = torch.randn(n, c, h, w, device=igemm_device)  # the last case keeps its size
    dw = implicit_gemm.conv_wgrad(dy, x, wt.shape, (1, 1), pad, dil, cfg)
    dwr = reference.depthwise_conv2d_wgrad_torch(dy.double(), x.double(), wt.double(), (1, 1), pad, dil)
    assert (dw.double() - dwr).abs().max() < 1e-4
    with pytest.raises(ValueError, match="table"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty_like(dy),
                               implicit_gemm.IgemmConfig(plane=True, toeplitz="table"))
    with pytest.raises(ValueError, match="local_canvas"):  # a 65 x 65 canvas placed by each program
        implicit_gemm.conv_fwd(torch.randn(1, 1, 33, 33), torch.randn(1, 1, 3, 3), None, (1, 1), (1, 1, 1, 1), (1, 1),
                               torch.empty(1, 1, 33, 33), implicit_gemm.IgemmConfig(plane=True, toeplitz="local_canvas"))
    with pytest.raises(ValueError, match="plane=True"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty_like(dy),
                               implicit_gemm.IgemmConfig(toeplitz="canvas"))
    with pytest.raises(ValueError, match="needs toeplitz '', 'gather' or 'canvas'"):
        implicit_gemm.conv_fwd(x.bfloat16(), wt.bfloat16(), None, (1, 1), pad, dil, torch.empty_like(dy).bfloat16(),
                               implicit_gemm.IgemmConfig(plane=True, toeplitz="shifted_canvas", toeplitz_left=True))
    with pytest.raises(ValueError, match="16-bit"):
        implicit_gemm.conv_fwd(x.float(), wt.float(), None, (1, 1), pad, dil, torch.empty_like(dy).float(),
                               implicit_gemm.IgemmConfig(plane=True, toeplitz="canvas", toeplitz_left=True))
    with pytest.raises(ValueError, match="toeplitz '' or 'canvas'"):
        implicit_gemm.conv_fwd(x.bfloat16(), wt.bfloat16(), None, (1, 1), pad, dil, torch.empty_like(dy).bfloat16(),
                               implicit_gemm.IgemmConfig(plane=True, toeplitz="gather", toeplitz_left=True))
    with pytest.raises(ValueError, match="prefetch"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty_like(dy),
                               implicit_gemm.IgemmConfig(plane=True, toeplitz="canvas", toeplitz_left=True,
                                                         prefetch=True))
    with pytest.raises(ValueError, match="canvas_run"):
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty_like(dy),
                               implicit_gemm.IgemmConfig(plane=True, toeplitz="shifted_canvas", canvas_run=2))
    # an image whose rows reach past 2**31 elements (strides only; nothing is allocated): no 32-bit plane offsets
    huge = (2**31 * 3, 1, 2**28, 1)
    with pytest.raises(ValueError, match="32 bits"):
        implicit_gemm._plane(implicit_gemm.IgemmConfig(plane=True), 9, 11, huge, 9, 11, 3, 3, (1, 1), 2)
    assert not implicit_gemm._plane(implicit_gemm.DEFAULT_CONFIG, 9, 11, huge, 9, 11, 9, 11, (1, 1), 2)
    assert implicit_gemm._plane(implicit_gemm.DEFAULT_CONFIG, 9, 11, (99, 99, 11, 1), 9, 11, 9, 11, (1, 1), 2)
    with pytest.raises(ValueError, match="row_block"):  # checked before the plane form is planned
        implicit_gemm.conv_fwd(x, wt, None, (1, 1), pad, dil, torch.empty_like(dy),
                               implicit_gemm.IgemmConfig(plane=True, row_block=3))
    # dense planes of a channel slice: channel stride the plane size, batch stride larger, data offset
    xs = torch.randn(3, 5, 4, 6, device=igemm_device)[:, 1:3]
    wt = torch.randn(2, 1, 3, 5, device=igemm_device)
    _check_fwd_and_dgrad(xs, wt, torch.randn(2, device=igemm_device), (1, 1), (1, 1, 2, 2), (1, 1),
                         implicit_gemm.IgemmConfig(bm=16, bn=bn, plane=True, plane_runs=True, toeplitz=toeplitz,
                                                   toeplitz_left=left), dtype)


def test_default_plane_tiles_for_16_bit_small_planes_mostly_covered_by_the_kernel(igemm_device):
    """The default takes whole-plane tiles for 16-bit operands on planes of at most 256 elements whose kernel covers
    at least half of the plane, unless row blocks apply (the kernel reaches every row) or the config names
    row blocks, a table or plane=False; through the public op (bf16, both layouts) all three directions match
    float64."""
    from lkconv.ops.depthwise2d import implicit_gemm as ig

    def kernel(h, w, kh, kw, itemsize=2, cfg=None, dil=1):
        return _default_plan(h, w, kh, kw, itemsize, cfg, dil).kernel

    assert kernel(14, 14, 13, 13) == "plane"  # unireplknet_t.s3
    assert kernel(14, 14, 13, 13, itemsize=4) != "plane"
    assert kernel(14, 14, 27, 27) == "row_block"  # replknet_31b.s3
    assert kernel(14, 14, 3, 3, dil=5) != "plane"  # unireplknet_t.dil: 9 taps on 196
    assert kernel(20, 20, 19, 19) != "plane"  # 400 elements
    assert kernel(14, 14, 13, 13, cfg=ig.IgemmConfig(plane=False)) != "plane"
    assert kernel(14, 14, 13, 13, cfg=ig.IgemmConfig(row_block=2)) == "row_block"
    assert kernel(14, 14, 13, 13, cfg=ig.IgemmConfig(toeplitz="table")) != "plane"
    assert kernel(14, 14, 13, 13, cfg=ig.IgemmConfig(columns="band")) != "plane"  # a named form is kept
    assert kernel(14, 14, 13, 13, dil=2) != "plane"  # 7 x 7 taps land in the plane: a quarter of it

    torch.manual_seed(0)
    n, c, h, w, kh, kw = 5, 3, 7, 12, 5, 9
    assert kernel(h, w, kh, kw) == "plane"
    _check_op_against_float64(torch.randn(n, c, h, w, device=igemm_device),
                              torch.randn(c, 1, kh, kw, device=igemm_device), "same", torch.bfloat16, 2e-2)


def _inside(t, fill, layout):
    """(buffer, view): t's values in a view of a larger buffer whose other elements are fill; layout "nchw" (every
    dimension inset), "slice" (dense planes, sliced channels) or "nhwc" (channels_last, channels inset)."""
    n, c, h, w = t.shape
    if layout == "nchw":
        buf = torch.full((n + 1, c + 2, h + 1, w + 3), fill, dtype=t.dtype, device=t.device)
        view = buf[1:, 1:1 + c, :h, 1:1 + w]
    elif layout == "slice":
        buf = torch.full((n, c + 3, h, w), fill, dtype=t.dtype, device=t.device)
        view = buf[:, 2:2 + c]
    else:
        buf = torch.full((n, h, w, c + 2), fill, dtype=t.dtype, device=t.device)
        view = buf[..., 1:1 + c].permute(0, 3, 1, 2)
    view.copy_(t)
    return buf, view


@pytest.mark.parametrize("form", ["plane", "plane_runs", "plane_canvas", "plane_local_canvas", "plane_shifted_canvas",
                                  "plane_shifted_canvas_run4", "plane_canvas_left", "row_block", "band_row_block_left",
                                  "band_row_block", "band_row_block_table"])
def test_small_plane_forms_stay_inside_their_tensors(form, igemm_device):
    """The plane and row-block kernels read only their input's elements (it sits in a NaN-filled buffer) and write
    only their output's (a strided view in a buffer of sentinels), forward and input gradient, against float64."""
    from lkconv.ops.depthwise2d import implicit_gemm as ig, reference

    cfg = {"plane": ig.IgemmConfig(bm=16, bn=16, plane=True, plane_runs=False), "plane_runs": ig.IgemmConfig(bm=16, plane=True,
           plane_runs=True), "row_block": ig.IgemmConfig(bm=16, columns="rows", row_block=4),
           "band_row_block": ig.IgemmConfig(bm=16, bn=16, columns="band", row_block=2, prefetch=True, kernel_rows=2),
           "plane_canvas": ig.IgemmConfig(bm=16, bn=16, plane=True, toeplitz="canvas", prefetch=True),
           "plane_local_canvas": ig.IgemmConfig(bm=16, bn=16, plane=True, toeplitz="local_canvas"),
           "plane_shifted_canvas": ig.IgemmConfig(bm=16, bn=16, plane=True, toeplitz="shifted_canvas"),
           "plane_shifted_canvas_run4": ig.IgemmConfig(bm=16, bn=16, plane=True, toeplitz="shifted_canvas",
                                                       canvas_run=4),
           "plane_canvas_left": ig.IgemmConfig(bm=16, bn=16, plane=True, toeplitz="canvas", toeplitz_left=True),
           "band_row_block_table": ig.IgemmConfig(bm=16, bn=16, columns="band", row_block=4, toeplitz="table"),
           "band_row_block_left": ig.IgemmConfig(bm=16, bn=16, columns="band", row_block=4, kernel_rows=2,
                                                 toeplitz_left=True)}[form]
    torch.manual_seed(0)
    for (n, c, h, w, kh, kw, pad, dil), x_layout, y_layout in itertools.product(
            ((3, 2, 6, 8, 5, 3, (2, 2, 1, 1), (1, 1)), (2, 2, 5, 4, 9, 7, (4, 4, 3, 3), (1, 1)),
             (2, 1, 6, 8, 3, 3, (3, 3, 2, 2), (2, 1)), (2, 1, 6, 7, 3, 3, (4, 4, 5, 5), (1, 1))),
            ("nchw", "slice", "nhwc"), ("nchw", "nhwc")):
        dtype = torch.bfloat16 if cfg.toeplitz_left else torch.float32  # (the transposed product: 16-bit only)
        x, wt, b = (torch.randn(n, c, h, w, device=igemm_device, dtype=dtype),
                    torch.randn(c, 1, kh, kw, device=igemm_device, dtype=dtype), torch.randn(c, device=igemm_device))
        yr = reference.depthwise_conv2d_fwd_torch(x.double(), wt.double(), b.double(), (1, 1), pad, dil)
        dy = torch.randn(yr.shape, device=igemm_device, dtype=dtype)
        dxr = reference.depthwise_conv2d_dgrad_torch(dy.double(), x.double(), wt.double(), (1, 1), pad, dil)
        p_t, p_l = (kh - 1) * dil[0] - pad[0], (kw - 1) * dil[1] - pad[2]
        for src, ref, args in ((x, yr, (b, dil, pad[0], pad[2], 1, 1)),
                               (dy, dxr, (None, dil, p_t, p_l, 1, 1, ((kh - 1, -1), (kw - 1, -1))))):
            _, src_view = _inside(src, float("nan"), x_layout)
            out_buf, out = _inside(torch.zeros(ref.shape, device=igemm_device, dtype=dtype), 12345.0, y_layout)
            ig.launch_fwd(src_view, wt, args[0], out, *args[1:], config=cfg)
            tol = 1e-4 + (8e-3 * ref.abs() if dtype == torch.bfloat16 else 0)  # bfloat16 outputs: one ulp
            assert ((out.double() - ref).abs() <= tol).all(), (form, x_layout, y_layout)
            assert (out_buf == 12345.0).sum().item() == out_buf.numel() - out.numel(), (form, x_layout, y_layout)
