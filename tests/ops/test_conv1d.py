"""long_conv1d (FFT) and short_conv1d (Triton) against float64 references, every gradient."""
import pytest
import torch

import lkconv
from lkconv.ops.conv1d import long_conv1d_reference, short, short_conv1d_reference
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


class _Recorded:
    """A Triton kernel whose launches append its name to calls."""

    def __init__(self, kernel, name, calls):
        self.kernel, self.name, self.calls = kernel, name, calls

    def __getitem__(self, grid):
        self.calls.append(self.name)
        return self.kernel[grid]


@pytest.fixture
def launches(monkeypatch):
    """Names of the short_conv1d kernels launched, in launch order."""
    calls = []
    for name in ("fwd", "fwd_groups", "bwd", "bwd_groups", "silu_bwd", "silu_bwd_groups"):
        attr = f"short_conv1d_{name}_kernel"
        monkeypatch.setattr(short, attr, _Recorded(getattr(short, attr), name, calls))
    return calls


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 26])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_short_conv1d_grouped_forward(width, causal, with_bias, activation, dtype, device, launches):
    """Contiguous time axis: the grouped kernel for W <= 3V + 1 (V = 4 in fp32, 8 in bf16), else the per-tap
    one; L a multiple of V and not, L shorter than the window."""
    dt, tol = DT[dtype]
    grouped = width <= 3 * short.group_size(dt) + 1
    for length in (5, 16, 37):
        x = torch.randn(2, 3, length, device=device).to(dt)
        w = torch.randn(3, width, device=device).to(dt)
        b = torch.randn(3, device=device).to(dt) if with_bias else None
        assert short.uses_groups(width, x) == grouped
        launches.clear()
        y = lkconv.short_conv1d(x, w, b, causal, activation)
        assert launches == ["fwd_groups" if grouped else "fwd"]
        yr = short_conv1d_reference(x.double(), w.double(), b.double() if with_bias else None, causal, activation)
        assert y.dtype == dt and y.stride() == x.stride()
        assert rel_error(y, yr) < tol, f"L={length}"


def _as_stored(t, dtype):
    """t rounded to dtype as a Triton kernel stores it: to nearest even when compiled; the CPU interpreter
    (TRITON_INTERPRET=1) converts float32 to bfloat16 by truncation."""
    if dtype == torch.bfloat16 and t.device.type == "cpu":
        return (t.float().view(torch.int32) & -65536).view(torch.float32).to(dtype)
    return t.to(dtype)


def _grads_through_rounded_dz(x, w, b, causal, g):
    """float64 (dx, dw) of short_conv1d with SiLU when the gradient before the SiLU, dz, is held in x's dtype
    between the two backward kernels (as an unfused conv + SiLU holds it): dz from the float64 pre-activation,
    stored in x's dtype, then the float64 backward of the convolution. With cancellation in dw's few sums
    (W = 1, L = 16: 32 terms) that one rounding alone can move dw by more than the bf16 tolerance."""
    z = short_conv1d_reference(x.double(), w.double(), b.double(), causal)
    s = torch.sigmoid(z)
    dz = _as_stored(g.double() * s * (1 + z * (1 - s)), x.dtype).double()
    _, (dx, dw) = _grads(lambda a, ww: short_conv1d_reference(a, ww, None, causal), x.double(), w.double(),
                         grad=dz)
    return [dx, dw]


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 26])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_short_conv1d_grouped_backward(width, causal, activation, dtype, device, launches):
    """dx, dw and db through the grouped backward kernels (contiguous time, W <= 3V + 1), else the per-tap ones."""
    dt, tol = DT[dtype]
    grouped = width <= 3 * short.group_size(dt) + 1
    for length in (5, 16, 37):
        x = torch.randn(2, 3, length, device=device).to(dt)
        w = torch.randn(3, width, device=device).to(dt)
        b = torch.randn(3, device=device).to(dt)
        g = torch.randn(2, 3, length, device=device).to(dt)
        launches.clear()
        y, gr = _grads(lambda a, ww, bb: lkconv.short_conv1d(a, ww, bb, causal, activation), x, w, b, grad=g)
        suffix = "_groups" if grouped else ""
        assert launches == ["fwd" + suffix] + (["silu_bwd" + suffix] if activation else []) + ["bwd" + suffix]
        yr, grr = _grads(lambda a, ww, bb: short_conv1d_reference(a, ww, bb, causal, activation),
                         x.double(), w.double(), b.double(), grad=g.double())
        if activation:
            grr[:2] = _grads_through_rounded_dz(x, w, b, causal, g)
        assert rel_error(y, yr) < tol, f"y, L={length}"
        for name, a, r in zip(("dx", "dw", "db"), gr, grr):
            assert rel_error(a, r) < tol, f"{name}, L={length}"


@pytest.mark.parametrize("case", ["blc", "strided_time", "strided_channels", "strided_batch"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_short_conv1d_forward_strides(case, dtype, device, launches):
    """Views of x: the grouped kernel whenever time has stride 1, the per-tap kernel otherwise."""
    dt, tol = DT[dtype]
    B, C, L, width = 2, 4, 21, 4
    base = torch.randn(2 * B, 2 * C, 2 * L, device=device).to(dt)
    x = {"blc": torch.randn(B, L, C, device=device).to(dt).transpose(1, 2), "strided_time": base[:B, :C, ::2],
         "strided_channels": base[:B, ::2, :L], "strided_batch": base[::2, :C, 3:3 + L]}[case]
    w = torch.randn(C, width, device=device).to(dt)
    b = torch.randn(C, device=device).to(dt)
    y = lkconv.short_conv1d(x, w, b, True, "silu")
    grouped = x.stride(2) == 1
    assert short.uses_groups(width, x) == grouped
    assert launches == ["fwd_groups" if grouped else "fwd"]
    assert rel_error(y, short_conv1d_reference(x.double(), w.double(), b.double(), True, "silu")) < tol


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


@pytest.mark.parametrize("layout", ["BCL", "BLC"])
def test_short_conv1d_strided_bias(layout, device):
    """A bias view with stride 2 is read as the values it shows."""
    x = torch.randn(1, 3, 10, device=device)
    if layout == "BLC":
        x = x.transpose(1, 2).contiguous()
    w = torch.randn(3, 3, device=device)
    bias = torch.randn(6, device=device)[::2]
    y = lkconv.short_conv1d(x, w, bias, True, None, layout)
    xr = x.transpose(1, 2) if layout == "BLC" else x
    yr = short_conv1d_reference(xr.double(), w.double(), bias.double(), True, None)
    yr = yr.transpose(1, 2) if layout == "BLC" else yr
    assert (y.double() - yr).abs().max() < 1e-5


@pytest.mark.parametrize("length", [10, 16])
def test_short_conv1d_weight_grad_with_inf_input(length, device):
    """An infinite input makes only the taps that touch it infinite (time steps past the end add nothing)."""
    x = torch.zeros(1, 2, length, device=device)
    x[0, :, length - 1] = float("inf")
    w = torch.ones(2, 4, device=device)
    dz = torch.ones(1, 2, length, device=device)
    dw = short.short_conv1d_bwd(dz, x, w, True)[1]
    dwr = torch.zeros(2, 4, dtype=torch.float64)
    dwr[:, 3] = float("inf")
    assert torch.equal(dw.cpu().double(), dwr)


@pytest.mark.parametrize("bias", [True, False])
def test_short_and_long_conv1d_under_torch_compile(bias, device):
    """fullgraph torch.compile: short_conv1d runs as opaque custom ops, long_conv1d's "auto" as torch.fft; the
    compiled forward and gradients equal the eager ones."""
    x = torch.randn(2, 3, 40, device=device, requires_grad=True)
    w = torch.randn(3, 4, device=device, requires_grad=True)
    b = torch.randn(3, device=device, requires_grad=True) if bias else None
    k = torch.randn(3, 40, device=device, requires_grad=True)

    def f(a):
        return lkconv.long_conv1d(lkconv.short_conv1d(a, w, b, True, "silu"), k)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    g = torch.randn(2, 3, 40, device=device)
    leaves = [t for t in (x, w, b, k) if t is not None]
    y1 = compiled(x)
    g1 = torch.autograd.grad(y1, leaves, g)
    y0 = f(x)
    g0 = torch.autograd.grad(y0, leaves, g)
    assert torch.allclose(y1, y0, atol=1e-5, rtol=1e-5)
    for a, r in zip(g1, g0):
        assert torch.allclose(a, r, atol=1e-4, rtol=1e-4)
