"""LSNet blocks against a plain-PyTorch rendering of the official definitions (same state_dict)."""
import pytest
import torch
from torch import nn

from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.lsnet import LKP, SKA, LSConv, LSNetConv2dBN
from lkconv.testing import rel_error

from .helpers import compare_to_reference


# ---- the official definitions (THU-MIG/lsnet model/lsnet.py, model/ska.py), in plain PyTorch ----------------
class OfficialConv2dBN(nn.Sequential):
    def __init__(self, a, b, ks=1, stride=1, pad=0, dilation=1, groups=1, bn_weight_init=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, dilation, groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)


def official_ska(x, w):
    """The official Triton kernel's indexing: out[n,c,h,w] = sum x[n,c,h-pad+i,w-pad+j] * w[n, c % wc, i*ks+j, h, w]."""
    n, c, h, wd = x.shape
    wc = w.shape[1]
    ks = int(w.shape[2] ** 0.5)
    pad = (ks - 1) // 2
    xp = nn.functional.pad(x, (pad, ks - 1 - pad, pad, ks - 1 - pad))
    wsel = w[:, torch.arange(c) % wc]  # (n, c, ks*ks, h, w)
    out = torch.zeros_like(x)
    for i in range(ks):
        for j in range(ks):
            out = out + xp[:, :, i: i + h, j: j + wd] * wsel[:, :, i * ks + j]
    return out


class OfficialLKP(nn.Module):
    def __init__(self, dim, lks, sks, groups):
        super().__init__()
        self.cv1 = OfficialConv2dBN(dim, dim // 2)
        self.act = nn.ReLU()
        self.cv2 = OfficialConv2dBN(dim // 2, dim // 2, ks=lks, pad=(lks - 1) // 2, groups=dim // 2)
        self.cv3 = OfficialConv2dBN(dim // 2, dim // 2)
        self.cv4 = nn.Conv2d(dim // 2, sks ** 2 * dim // groups, kernel_size=1)
        self.norm = nn.GroupNorm(num_groups=dim // groups, num_channels=sks ** 2 * dim // groups)
        self.sks, self.groups, self.dim = sks, groups, dim

    def forward(self, x):
        x = self.act(self.cv3(self.cv2(self.act(self.cv1(x)))))
        w = self.norm(self.cv4(x))
        b, _, h, width = w.size()
        return w.view(b, self.dim // self.groups, self.sks ** 2, h, width)


class OfficialLSConv(nn.Module):
    def __init__(self, dim, lks=7, sks=3, groups=8):
        super().__init__()
        self.lkp = OfficialLKP(dim, lks=lks, sks=sks, groups=groups)
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x):
        return self.bn(official_ska(x, self.lkp(x))) + x


# ---- helpers --------------------------------------------------------------------------------------------------
def _randomize(module: nn.Module):
    """Random parameters and BatchNorm statistics, so no term of the block is trivially zero or one."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn_like(p) * (0.3 if "c.weight" in name or "cv4" in name else 1.0))
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.2)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


def _compare(ours: nn.Module, ref: nn.Module, x: torch.Tensor, tol: float, train: bool):
    """ours already holds ref's state; same parameter names in the same order; buffers to ``tol`` too.

    In training mode cv2's BN feeds cv3 (1x1 conv) and cv3's BN with no nonlinearity between, so the gradient of
    cv2.bn.bias is analytically zero: both sides hold rounding noise there, compared with an absolute tolerance.
    """
    ours.train(train)
    ref.train(train)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()], "parameter names"
    compare_to_reference(ours, ref, x, tol, load=False, check_buffers=False, grad_atol=tol * 10 if train else None)
    if train:
        for (name, b), (_, br) in zip(ours.named_buffers(), ref.named_buffers()):
            assert rel_error(b.float(), br.float()) < tol, f"buffer {name}"


# ---- tests ----------------------------------------------------------------------------------------------------
def test_state_dict_names_match_official():
    ours, ref = LSConv(32), OfficialLSConv(32)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert ours.state_dict()[k].shape == v.shape, k
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert isinstance(ours.lkp.cv2.c, DepthwiseConv2d)
    assert ours.lkp.cv2.c.kernel_size == (7, 7)
    assert ours.lkp.cv4.out_channels == 9 * 32 // 8 and ours.lkp.norm.num_groups == 4


@pytest.mark.parametrize("train", [False, True])
def test_lsconv_matches_official(train):
    dim = 16
    ref = OfficialLSConv(dim).double()
    _randomize(ref)
    ours = LSConv(dim).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, dim, 7, 6, dtype=torch.float64)
    _compare(ours, ref, x, 1e-10, train)


@pytest.mark.parametrize("dim, lks, sks, groups", [(12, 5, 3, 4), (10, 3, 2, 5), (8, 3, 5, 8)])
def test_lsconv_other_configs_match_official(dim, lks, sks, groups):
    ref = OfficialLSConv(dim, lks, sks, groups)
    _randomize(ref)
    ours = LSConv(dim, lks, sks, groups)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, dim, 5, 6)
    _compare(ours, ref, x, 1e-5, train=True)


def test_lkp_matches_official():
    ref = OfficialLKP(16, 7, 3, 8)
    _randomize(ref)
    ours = LKP(16, 7, 3, 8)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 16, 9, 8)
    _compare(ours, ref, x, 1e-5, train=False)
    assert ours(x).shape == (2, 2, 9, 9, 8)


def test_ska_module_matches_official_indexing():
    x = torch.randn(2, 12, 5, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 4, 9, 5, 7, dtype=torch.float64, requires_grad=True)
    y = SKA()(x, w)
    yr = official_ska(x, w)
    assert rel_error(y, yr) < 1e-12
    dy = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, w), dy)
    rx, rw = torch.autograd.grad(yr, (x, w), dy)
    assert rel_error(gx, rx) < 1e-12 and rel_error(gw, rw) < 1e-12


def test_conv2d_bn_fuse_and_reparameterize():
    ref = OfficialConv2dBN(6, 6, 3, 1, 1, groups=6)
    _randomize(ref)
    ours = LSNetConv2dBN(6, 6, 3, 1, 1, groups=6)
    ours.load_state_dict(ref.state_dict())
    ours.eval()
    ref.eval()
    x = torch.randn(2, 6, 5, 5)
    fused = ours.fuse()
    assert isinstance(fused, DepthwiseConv2d)
    assert rel_error(fused(x), ref(x)) < 1e-5
    ours.reparameterize()
    assert "bn" not in dict(ours.named_children())
    assert rel_error(ours(x), ref(x)) < 1e-5


def test_autocast_runs():
    m = LSConv(16)
    x = torch.randn(1, 16, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    ref = m(x)
    assert y.shape == x.shape
    assert rel_error(y.float(), ref) < 5e-2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dim=12, groups=8), "groups"),
        (dict(dim=16, lks=4), "lks"),
        (dict(dim=16, sks=0), "sks"),
        (dict(dim=1, groups=1), "dim"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSConv(**kwargs)
