"""SKA (LSNet): Triton kernels (interpreter on CPU) and the public op against float64 references."""
import pytest
import torch

import lkconv.ops.ska as ska_mod
from lkconv._triton import can_launch
from lkconv.ops.ska import ska, ska_reference, triton_ska
from lkconv.ops.ska.reference import ska_bwd_w_reference, ska_bwd_x_reference
from lkconv.testing import poison_outputs, rel_error

# (N, C, WC, k, H, W): odd sizes, C not a multiple of WC, WC > C, even k, k = 1, H or W = 1
SHAPES = [
    (2, 16, 2, 3, 7, 9),
    (1, 6, 4, 3, 5, 11),
    (2, 5, 2, 5, 5, 4),
    (1, 3, 5, 3, 4, 4),
    (2, 4, 1, 4, 5, 6),
    (1, 7, 7, 1, 3, 5),
    (2, 8, 4, 3, 1, 13),
    (1, 4, 2, 3, 9, 1),
]


def _naive(x, w):
    """The official indexing written out: channel c uses weight group c % WC; zero outside the image."""
    n, c, h, wd = x.shape
    wc, kk = w.shape[1:3]
    k = int(round(kk ** 0.5))
    pad = (k - 1) // 2
    xp = torch.zeros(n, c, h + k - 1, wd + k - 1, dtype=x.dtype)
    xp[:, :, pad: pad + h, pad: pad + wd] = x
    y = torch.zeros(n, c, h, wd, dtype=x.dtype)
    for ch in range(c):
        for i in range(k):
            for j in range(k):
                y[:, ch] += xp[:, ch, i: i + h, j: j + wd] * w[:, ch % wc, i * k + j]
    return y


def _inputs(shape, dtype=torch.float64):
    n, c, wc, k, h, w = shape
    return torch.randn(n, c, h, w, dtype=dtype), torch.randn(n, wc, k * k, h, w, dtype=dtype)


def _ref_grads(x, w, dy):
    x = x.detach().double().requires_grad_()
    w = w.detach().double().requires_grad_()
    y = ska_reference(x, w)
    dx, dw = torch.autograd.grad(y, (x, w), dy.double())
    return y.detach(), dx, dw


needs_triton = pytest.mark.skipif(
    not can_launch(torch.empty(0, device="cuda" if torch.cuda.is_available() else "cpu")),
    reason="Triton kernels cannot run here",
)


@pytest.mark.parametrize("shape", SHAPES[:5])
def test_reference_matches_official_indexing(shape):
    x, w = _inputs(shape)
    assert rel_error(ska_reference(x, w), _naive(x, w)) < 1e-12


@pytest.mark.parametrize("shape", SHAPES)
def test_reference_gradients_match_autograd(shape):
    x, w = _inputs(shape)
    k = shape[3]
    dy = torch.randn(x.shape, dtype=torch.float64)
    _, dx, dw = _ref_grads(x, w, dy)
    assert rel_error(ska_bwd_x_reference(dy, w, k), dx) < 1e-12
    assert rel_error(ska_bwd_w_reference(dy, x, shape[2], k), dw) < 1e-12


@needs_triton
@pytest.mark.parametrize(
    "shape, dtype", [(s, torch.float32) for s in SHAPES] + [(s, torch.float64) for s in SHAPES[:2]]
)
def test_triton_kernels_all_directions(shape, dtype, device):
    x, w = _inputs(shape, dtype)
    dy = torch.randn(x.shape, dtype=dtype)
    y_ref, dx_ref, dw_ref = _ref_grads(x, w, dy)
    k, wc = shape[3], shape[2]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    xd, wd, dyd = x.to(device), w.to(device), dy.to(device)
    with poison_outputs():
        y = triton_ska.ska_fwd(xd, wd, k)
        dx = triton_ska.ska_bwd_x(dyd, wd, k, dtype)
        dw = triton_ska.ska_bwd_w(dyd, xd, wc, k, dtype)
    assert y.dtype == dx.dtype == dw.dtype == dtype
    assert rel_error(y, y_ref) < tol, "y"
    assert rel_error(dx, dx_ref) < tol, "dx"
    assert rel_error(dw, dw_ref) < tol, "dw"


@needs_triton
def test_triton_kernels_small_tiles(device):
    """Several channel blocks per group and several pixel blocks per image (forced small tiles)."""
    shape = (1, 8, 2, 3, 4, 5)
    x, w = _inputs(shape, torch.float32)
    dy = torch.randn(x.shape)
    y_ref, dx_ref, dw_ref = _ref_grads(x, w, dy)
    cfg = triton_ska.SkaConfig(block_g=2, block_p=16, num_warps=1)
    xd, wd, dyd = x.to(device), w.to(device), dy.to(device)
    with poison_outputs():
        assert rel_error(triton_ska.ska_fwd(xd, wd, 3, cfg), y_ref) < 1e-5, "y"
        assert rel_error(triton_ska.ska_bwd_x(dyd, wd, 3, torch.float32, cfg), dx_ref) < 1e-5, "dx"
        assert rel_error(triton_ska.ska_bwd_w(dyd, xd, 2, 3, torch.float32, cfg), dw_ref) < 1e-5, "dw"


@needs_triton
def test_triton_kernels_non_contiguous(device):
    """channels_last x, sliced w and a transposed-then-copied-back grad: strides are honoured."""
    n, c, wc, k, h, wdt = 2, 8, 4, 3, 5, 7
    x = torch.randn(n, c, h, wdt).to(memory_format=torch.channels_last)
    w_big = torch.randn(n, 2 * wc, k * k, h, 2 * wdt)
    w = w_big[:, ::2, :, :, 1::2]
    dy = torch.randn(n, c, wdt, h).transpose(2, 3)
    assert not w.is_contiguous() and not dy.is_contiguous() and not x.is_contiguous()
    y_ref, dx_ref, dw_ref = _ref_grads(x, w, dy)
    xd, wd, dyd = x.to(device), w.to(device), dy.to(device)
    with poison_outputs():
        assert rel_error(triton_ska.ska_fwd(xd, wd, k), y_ref) < 1e-5, "y"
        assert rel_error(triton_ska.ska_bwd_x(dyd, wd, k, torch.float32), dx_ref) < 1e-5, "dx"
        assert rel_error(triton_ska.ska_bwd_w(dyd, xd, wc, k, torch.float32), dw_ref) < 1e-5, "dw"


@needs_triton
def test_triton_kernels_bfloat16(device):
    x, w = _inputs((2, 8, 2, 3, 5, 6), torch.bfloat16)
    dy = torch.randn(x.shape, dtype=torch.bfloat16)
    y_ref, dx_ref, dw_ref = _ref_grads(x, w, dy)
    xd, wd, dyd = x.to(device), w.to(device), dy.to(device)
    with poison_outputs():
        assert rel_error(triton_ska.ska_fwd(xd, wd, 3), y_ref) < 1.2e-2, "y"
        assert rel_error(triton_ska.ska_bwd_x(dyd, wd, 3, torch.bfloat16), dx_ref) < 1.2e-2, "dx"
        assert rel_error(triton_ska.ska_bwd_w(dyd, xd, 2, 3, torch.bfloat16), dw_ref) < 1.2e-2, "dw"


@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[3]])
def test_public_op_autograd(shape, device):
    x, w = _inputs(shape, torch.float32)
    dy = torch.randn(x.shape)
    y_ref, dx_ref, dw_ref = _ref_grads(x, w, dy)
    xd = x.to(device).requires_grad_()
    wd = w.to(device).requires_grad_()
    with poison_outputs():
        y = ska(xd, wd)
        y.backward(dy.to(device))
    assert rel_error(y, y_ref) < 1e-5, "y"
    assert rel_error(xd.grad, dx_ref) < 1e-5, "dx"
    assert rel_error(wd.grad, dw_ref) < 1e-5, "dw"


def test_public_op_mixed_dtypes_and_partial_grad(device):
    """x in bfloat16 with float32 kernels (LSNet under autocast): y and dx in bf16, dw in fp32."""
    x, w = _inputs((1, 8, 2, 3, 4, 5), torch.float32)
    x = x.bfloat16()
    dy = torch.randn(x.shape, dtype=torch.bfloat16)
    y_ref, _, dw_ref = _ref_grads(x, w, dy)
    wd = w.to(device).requires_grad_()
    y = ska(x.to(device), wd)
    y.backward(dy.to(device))
    assert y.dtype == torch.bfloat16 and wd.grad.dtype == torch.float32
    assert rel_error(y, y_ref) < 1.2e-2
    assert rel_error(wd.grad, dw_ref) < 1e-5


def test_cpu_fallback_path(monkeypatch):
    """Without a Triton launch the op runs the plain-PyTorch reference, with the same gradients."""
    monkeypatch.setattr(ska_mod, "can_launch", lambda t: False)
    x, w = _inputs((2, 6, 3, 3, 5, 4), torch.float64)
    dy = torch.randn(x.shape, dtype=torch.float64)
    y_ref, dx_ref, dw_ref = _ref_grads(x, w, dy)
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = ska(xr, wr)
    y.backward(dy)
    assert rel_error(y, y_ref) < 1e-12
    assert rel_error(xr.grad, dx_ref) < 1e-12
    assert rel_error(wr.grad, dw_ref) < 1e-12


def test_custom_op_registration():
    x, w = _inputs((1, 4, 2, 3, 3, 4), torch.float64)
    torch.library.opcheck(
        ska_mod.ska_fwd, (x, w.requires_grad_()),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )


@pytest.mark.parametrize(
    "x_shape, w_shape, match",
    [
        ((1, 4, 5, 5), (1, 2, 8, 5, 5), "k\\*k"),
        ((1, 4, 5, 5), (2, 2, 9, 5, 5), "w must be"),
        ((1, 4, 5, 5), (1, 2, 9, 5, 6), "w must be"),
        ((1, 4, 5), (1, 2, 9, 5, 5), "x must be 4-D"),
        ((1, 4, 5, 5), (1, 2, 9, 25), "w must be 5-D"),
        ((1, 4, 5, 5), (1, 0, 9, 5, 5), "WC"),
    ],
)
def test_bad_arguments(x_shape, w_shape, match):
    with pytest.raises(ValueError, match=match):
        ska(torch.randn(x_shape), torch.randn(w_shape))


def test_bad_dtype():
    with pytest.raises(TypeError, match="x dtype"):
        ska(torch.ones(1, 2, 3, 3, dtype=torch.int32), torch.randn(1, 1, 9, 3, 3))
