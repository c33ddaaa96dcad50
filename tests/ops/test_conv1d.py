"""long_conv1d (FFT) and short_conv1d (Triton) against float64 references, every gradient."""
import pytest
import torch

import lkconv
from lkconv.ops.conv1d import long_conv1d_reference, short_conv1d_reference
from lkconv.testing import rel_error

DT = {"fp32": (torch.float32, 1e-5), "bf16": (torch.bfloat16, 1.2e-2), "fp16": (torch.float16, 2e-3)}


def _grads(fn, *tensors, grad):
    ts = [t.detach().clone().requires_grad_() if t is not None else None for t in tensors]
    out = fn(*ts)
    out.backward(grad)
    return out, [t.grad if t is not None else None for t in ts]


@pytest.mark.parametrize("length,lk", [(1, 1), (37, 37), (100, 7), (257, 200), (1000, 1000)])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("skip", [True, False])
def test_long_conv1d_matches_direct_sum(length, lk, causal, skip):
    x = torch.randn(2, 3, length, dtype=torch.float64)
    k = torch.randn(3, lk, dtype=torch.float64) / lk ** 0.5
    D = torch.randn(3, dtype=torch.float64) if skip else None
    g = torch.randn(2, 3, length, dtype=torch.float64)
    y, gr = _grads(lambda a, b, c: lkconv.long_conv1d(a, b, c, causal), x, k, D, grad=g)
    yr, grr = _grads(lambda a, b, c: long_conv1d_reference(a, b, c, causal), x, k, D, grad=g)
    assert rel_error(y, yr) < 1e-10
    for a, b in zip(gr, grr):
        if b is not None:
            assert rel_error(a, b) < 1e-10


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_long_conv1d_low_precision(dtype):
    dt, tol = DT[dtype]
    x = torch.randn(2, 4, 333).to(dt)
    k = (torch.randn(4, 333) / 20).to(dt)
    y = lkconv.long_conv1d(x, k)
    assert y.dtype == dt
    assert rel_error(y, long_conv1d_reference(x.double(), k.double())) < max(tol, 1e-5) * 2


def test_long_conv1d_errors():
    x = torch.randn(1, 2, 8)
    with pytest.raises(ValueError, match="x must be a 3-D"):
        lkconv.long_conv1d(torch.randn(2, 8), torch.randn(2, 3))
    with pytest.raises(ValueError, match="k must be"):
        lkconv.long_conv1d(x, torch.randn(3, 3))
    with pytest.raises(ValueError, match="kernel length"):
        lkconv.long_conv1d(x, torch.randn(2, 9))
    with pytest.raises(ValueError, match="D must be"):
        lkconv.long_conv1d(x, torch.randn(2, 3), torch.randn(3))


@pytest.mark.parametrize("width", [1, 2, 4, 5, 9])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("layout", ["BCL", "BLC"])
def test_short_conv1d_matches_reference(width, causal, activation, layout, device):
    B, C, L = 2, 5, 37
    shape = (B, C, L) if layout == "BCL" else (B, L, C)
    x = torch.randn(shape, device=device)
    w = torch.randn(C, width, device=device)
    b = torch.randn(C, device=device)
    g = torch.randn(shape, device=device)
    y, gr = _grads(lambda a, ww, bb: lkconv.short_conv1d(a, ww, bb, causal, activation, layout), x, w, b, grad=g)
    to_bcl = (lambda t: t) if layout == "BCL" else (lambda t: t.transpose(1, 2))
    yr, grr = _grads(lambda a, ww, bb: short_conv1d_reference(to_bcl(a), ww, bb, causal, activation),
                     x.double(), w.double(), b.double(), grad=to_bcl(g).double())
    assert y.shape == x.shape and y.stride() == x.stride()
    assert rel_error(to_bcl(y), yr) < 1e-5
    for name, a, r in zip(("dx", "dw", "db"), gr, grr):
        assert rel_error(a, r) < 1e-5, name


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_short_conv1d_low_precision(dtype, device):
    dt, tol = DT[dtype]
    x = torch.randn(2, 6, 50, device=device).to(dt)
    w = torch.randn(6, 4, device=device).to(dt)
    y = lkconv.short_conv1d(x, w, activation="silu")
    assert y.dtype == dt
    assert rel_error(y, short_conv1d_reference(x.double(), w.double(), None, True, "silu")) < tol


def test_short_conv1d_errors():
    x = torch.randn(1, 3, 10)
    with pytest.raises(ValueError, match="layout must be"):
        lkconv.short_conv1d(x, torch.randn(3, 4), layout="LBC")
    with pytest.raises(ValueError, match=r"w must be \(C, W\)"):
        lkconv.short_conv1d(x, torch.randn(4, 4))
    with pytest.raises(ValueError, match="activation must be"):
        lkconv.short_conv1d(x, torch.randn(3, 4), activation="relu")
    with pytest.raises(TypeError, match="w must match"):
        lkconv.short_conv1d(x, torch.randn(3, 4, dtype=torch.float64))
