"""Dcls2d against a plain-PyTorch rendering of the official DCLS construction and convolution."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lkconv.nn.dcls import Dcls2d
from lkconv.testing import rel_error


# ---- the official definitions (DCLS/construct/modules.py, DCLS 0.1.x), in plain PyTorch ------------------------
def official_construct_kernel2d(W, P, SIG, dks, version):
    """Official ConstructKernel2d: (D0, D1, 2, O, I, K) index grid, per-version profile, normalization."""
    o, i, k = W.shape
    rows = torch.arange(dks[0]).expand(dks[1], -1).t()  # row index r at [r, c]
    cols = torch.arange(dks[1]).expand(dks[0], -1)  # column index c at [r, c]
    idx = torch.stack((cols, rows)).expand(o, i, k, -1, -1, -1).permute(4, 5, 3, 0, 1, 2)
    lim = torch.tensor(dks).expand(o, i, k, -1).permute(3, 0, 1, 2)
    P = P + lim // 2
    if version == "v0":
        frac = (P - P.floor()).expand(dks[0], dks[1], -1, -1, -1, -1)
        r1, r2 = frac.select(2, 0), frac.select(2, 1)
        p1, p2 = P.floor().select(0, 0), P.floor().select(0, 1)
        ii, jj = idx.select(2, 1), idx.select(2, 0)
        c1, c2, c3, c4 = ii == p1, jj == p2, ii == p1 + 1, jj == p2 + 1
        w1 = torch.where(c1 * c2, 1.0, 0.0)
        w2 = torch.where(c1 * c4, 1.0, 0.0)
        w3 = torch.where(c3 * c2, 1.0, 0.0)
        w4 = torch.where(c3 * c4, 1.0, 0.0)
        K = w1 + r1 * r2 * (w1 - w2 - w3 + w4) + r1 * (w3 - w1) + r2 * (w2 - w1)
        return (W * K).sum(4).permute(2, 3, 0, 1)
    if version == "v1":
        X = ((1 - (idx - P).abs()).relu()).prod(2)
    elif version == "max":
        X = ((SIG.abs() + 1.0 - (idx - P).abs()).relu()).prod(2)
    else:
        X = ((idx - P) / (SIG.abs() + 0.27)).norm(2, dim=2)
        X = (-0.5 * X ** 2).exp()
    X = X / (X.sum((0, 1)) + 1e-7)
    return (X * W).sum(-1).permute(2, 3, 0, 1)


class OfficialDcls2d(nn.Module):
    """Parameters as the official _DclsNd (weight, P, SIG, bias); forward = F.conv2d path of Dcls2d."""

    def __init__(self, in_channels, out_channels, kernel_count, stride=1, padding=0, dilated_kernel_size=1,
                 groups=1, bias=True, padding_mode="zeros", version="gauss"):
        super().__init__()
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.stride, self.padding, self.dks = pair(stride), pair(padding), pair(dilated_kernel_size)
        self.groups, self.padding_mode, self.version = groups, padding_mode, version
        slot = (out_channels, in_channels // groups, kernel_count)
        self.weight = nn.Parameter(torch.empty(slot))
        self.P = nn.Parameter(torch.empty((2,) + slot))
        if version in ("gauss", "max"):
            self.SIG = nn.Parameter(torch.empty((2,) + slot))
        else:
            self.register_parameter("SIG", None)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        kern = official_construct_kernel2d(self.weight, self.P, self.SIG, self.dks, self.version)
        if self.padding_mode != "zeros":
            pad = (self.padding[1], self.padding[1], self.padding[0], self.padding[0])
            return F.conv2d(F.pad(x, pad, mode=self.padding_mode), kern, self.bias, self.stride, 0, 1, self.groups)
        return F.conv2d(x, kern, self.bias, self.stride, self.padding, 1, self.groups)


# ---- helpers --------------------------------------------------------------------------------------------------
def _randomize(m: nn.Module, dks):
    with torch.no_grad():
        m.weight.normal_()
        m.P.normal_(0.0, max(dks) / 4)
        if m.SIG is not None:
            m.SIG.normal_(0.0, 0.6)
        if m.bias is not None:
            m.bias.normal_()


def _check(ours, ref, x, tol):
    xo = x.clone().requires_grad_()
    xr = x.clone().requires_grad_()
    yo, yr = ours(xo), ref(xr)
    assert yo.shape == yr.shape
    assert rel_error(yo, yr) < tol, "output"
    dy = torch.randn_like(yr)
    yo.backward(dy)
    yr.backward(dy)
    assert rel_error(xo.grad, xr.grad) < tol, "input grad"
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        # lkconv.depthwise_conv2d sums the bias gradient in float32, also for float64 inputs
        t = max(tol, 1e-6) if name == "bias" else tol
        assert rel_error(p.grad, ref_params[name].grad) < t, f"grad of {name}"


CONFIGS = [
    # in, out, kernel_count, stride, padding, dks, groups, bias, padding_mode, version
    (6, 6, 4, 1, 3, 7, 6, True, "zeros", "gauss"),
    (6, 6, 3, 1, (2, 3), (5, 7), 6, False, "zeros", "v1"),
    (4, 8, 3, 2, 2, 5, 4, True, "zeros", "max"),
    (4, 4, 3, 1, 2, (5, 4), 4, True, "circular", "v0"),
    (4, 6, 2, 1, 1, 3, 2, True, "zeros", "gauss"),
    (3, 5, 3, (2, 1), 2, (4, 5), 1, True, "reflect", "v1"),
]


# ---- tests ----------------------------------------------------------------------------------------------------
def test_reference_construction_matches_official():
    from lkconv.ops.dcls.reference import dcls_construct_kernel2d_reference

    for version in ("v0", "v1", "max", "gauss"):
        for dks in ((7, 7), (5, 9), (8, 3)):
            W = torch.randn(3, 2, 4, dtype=torch.float64)
            P = torch.randn(2, 3, 2, 4, dtype=torch.float64) * 2
            SIG = torch.randn(2, 3, 2, 4, dtype=torch.float64) if version in ("max", "gauss") else None
            ours = dcls_construct_kernel2d_reference(W, P, SIG, dks, version)
            assert rel_error(ours, official_construct_kernel2d(W, P, SIG, dks, version)) < 1e-12, (version, dks)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_dcls2d_matches_official(cfg):
    cin, cout, kc, stride, padding, dks, groups, bias, mode, version = cfg
    ref = OfficialDcls2d(cin, cout, kc, stride, padding, dks, groups, bias, mode, version).double()
    dks2 = (dks, dks) if isinstance(dks, int) else dks
    _randomize(ref, dks2)
    ours = Dcls2d(cin, cout, kc, stride, padding, dks, groups, bias, mode, version).double()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, cin, 9, 8, dtype=torch.float64)
    _check(ours, ref, x, 1e-10)


def test_dcls2d_float32_depthwise_gauss():
    ref = OfficialDcls2d(8, 8, 5, 1, 4, 9, 8, True, "zeros", "gauss")
    _randomize(ref, (9, 9))
    ours = Dcls2d(8, 8, 5, 1, 4, 9, 8, True, "zeros", "gauss")
    ours.load_state_dict(ref.state_dict())
    _check(ours, ref, torch.randn(2, 8, 10, 11), 3e-5)


def test_state_dict_and_init_match_official():
    m = Dcls2d(16, 16, kernel_count=26, dilated_kernel_size=17, padding=8, groups=16, version="gauss")
    assert list(m.state_dict()) == ["weight", "P", "SIG", "bias"]
    assert m.weight.shape == (16, 1, 26) and m.P.shape == m.SIG.shape == (2, 16, 1, 26)
    assert torch.all(m.SIG == 0.23)
    assert m.P.abs().max() <= 8 and m.P.std() > 0.3
    bound = 1 / math.sqrt(26)
    assert m.bias.abs().max() <= bound
    assert Dcls2d(4, 4, 3, version="max").SIG.abs().max() == 0
    v1 = Dcls2d(4, 8, 3, dilated_kernel_size=5, groups=2, bias=False, version="v1")
    assert v1.SIG is None and v1.bias is None and list(v1.state_dict()) == ["weight", "P"]
    assert v1.construct_kernel().shape == (8, 2, 5, 5)


def test_clamp_parameters():
    m = Dcls2d(2, 2, 3, dilated_kernel_size=(5, 9), groups=2, version="v1")
    with torch.no_grad():
        m.P.mul_(100)
    m.clamp_parameters()
    assert m.P[0].abs().max() <= 2 and m.P[1].abs().max() <= 4


def test_autocast_depthwise_runs():
    m = Dcls2d(4, 4, 3, padding=2, dilated_kernel_size=5, groups=4)
    x = torch.randn(1, 4, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == torch.bfloat16
    assert rel_error(y.float(), m(x)) < 3e-2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_channels=6, out_channels=6, kernel_count=3, groups=4), "in_channels"),
        (dict(in_channels=4, out_channels=6, kernel_count=3, groups=4), "out_channels"),
        (dict(in_channels=4, out_channels=4, kernel_count=0), "kernel_count"),
        (dict(in_channels=4, out_channels=4, kernel_count=3, version="v3"), "version"),
        (dict(in_channels=4, out_channels=4, kernel_count=3, padding_mode="mirror"), "padding_mode"),
        (dict(in_channels=4, out_channels=4, kernel_count=3, dilated_kernel_size=0), "dilated_kernel_size"),
        (dict(in_channels=4, out_channels=4, kernel_count=3, padding=-1), "padding"),
        (dict(in_channels=4, out_channels=4, kernel_count=3, stride=0), "stride"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dcls2d(**kwargs)
