"""RepLKNet blocks against an independent plain-PyTorch rendering of the official definitions
(https://github.com/DingXiaoH/RepLKNet-pytorch, replknet.py)."""
import pytest
import torch
from torch import nn

from lkconv.nn import DepthwiseConv2d
from lkconv.nn.replknet import ConvFFN, RepLKBlock, ReparamLargeKernelConv
from lkconv.testing import rel_error

from .helpers import (
    check_bf16_autocast_backward, check_bf16_autocast_eval, check_channels_last, check_drop_path_per_sample,
    check_fwd_bwd, count_depthwise_calls, depthwise_convs, load_same, randomize,
)

FP32_TOL = 1e-5
BF16_TOL = 3e-2


# ---------------------------------------------------------------- official definitions, plain torch.nn


def ref_conv_bn(cin, cout, k, stride, padding, groups):
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(cin, cout, k, stride, padding, 1, groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(cout))
    return seq


class RefReparamLargeKernelConv(nn.Module):
    def __init__(self, cin, cout, k, stride, groups, small_kernel, small_kernel_merged=False):
        super().__init__()
        self.kernel_size, self.small_kernel = k, small_kernel
        if small_kernel_merged:
            self.lkb_reparam = nn.Conv2d(cin, cout, k, stride, k // 2, 1, groups, bias=True)
        else:
            self.lkb_origin = ref_conv_bn(cin, cout, k, stride, k // 2, groups)
            if small_kernel is not None:
                self.small_conv = ref_conv_bn(cin, cout, small_kernel, stride, small_kernel // 2, groups)

    def forward(self, x):
        if hasattr(self, "lkb_reparam"):
            return self.lkb_reparam(x)
        out = self.lkb_origin(x)
        if hasattr(self, "small_conv"):
            out += self.small_conv(x)
        return out


class RefRepLKBlock(nn.Module):
    def __init__(self, cin, dw, lk, small, small_kernel_merged=False):
        super().__init__()
        self.pw1 = ref_conv_bn(cin, dw, 1, 1, 0, 1)
        self.pw1.add_module("nonlinear", nn.ReLU())
        self.pw2 = ref_conv_bn(dw, cin, 1, 1, 0, 1)
        self.large_kernel = RefReparamLargeKernelConv(dw, dw, lk, 1, dw, small, small_kernel_merged)
        self.lk_nonlinear = nn.ReLU()
        self.prelkb_bn = nn.BatchNorm2d(cin)

    def forward(self, x):
        out = self.pw2(self.lk_nonlinear(self.large_kernel(self.pw1(self.prelkb_bn(x)))))
        return x + out


class RefConvFFN(nn.Module):
    def __init__(self, cin, hidden, cout):
        super().__init__()
        self.preffn_bn = nn.BatchNorm2d(cin)
        self.pw1 = ref_conv_bn(cin, hidden, 1, 1, 0, 1)
        self.pw2 = ref_conv_bn(hidden, cout, 1, 1, 0, 1)
        self.nonlinear = nn.GELU()

    def forward(self, x):
        return x + self.pw2(self.nonlinear(self.pw1(self.preffn_bn(x))))


# ---------------------------------------------------------------- ReparamLargeKernelConv

LK_CASES = [  # (cin, cout, k, stride, groups, small)
    (4, 4, 7, 1, 4, 3),
    (3, 3, 9, 2, 3, 5),
    (4, 8, 5, 1, 4, 3),  # depth multiplier 2
    (3, 3, 7, 1, 3, None),
    (4, 6, 5, 1, 2, 3),  # grouped, not depthwise: plain nn.Conv2d
    (2, 2, 6, 1, 2, 2),  # even kernels
]


@pytest.mark.parametrize("cin,cout,k,stride,groups,small", LK_CASES)
@pytest.mark.parametrize("train", [True, False])
def test_lk_conv_matches_official(cin, cout, k, stride, groups, small, train):
    mine = randomize(ReparamLargeKernelConv(cin, cout, k, stride, groups, small))
    ref = load_same(mine, RefReparamLargeKernelConv(cin, cout, k, stride, groups, small))
    check_fwd_bwd(mine, ref, (2, cin, 11, 10), train)


def test_lk_conv_uses_lkconv(monkeypatch):
    mine = ReparamLargeKernelConv(4, 4, 7, 1, 4, 3)
    assert all(isinstance(m, DepthwiseConv2d) for m in depthwise_convs(mine))
    assert len(depthwise_convs(mine)) == 2
    calls = count_depthwise_calls(monkeypatch)
    mine(torch.randn(1, 4, 8, 8))
    assert calls.count("fwd") == 2


@pytest.mark.parametrize("cin,cout,k,stride,groups,small", LK_CASES)
def test_lk_conv_merge(cin, cout, k, stride, groups, small):
    mine = randomize(ReparamLargeKernelConv(cin, cout, k, stride, groups, small)).eval()
    x = torch.randn(2, cin, 12, 13)
    with torch.no_grad():
        before = mine(x)
        mine.reparameterize()
        after = mine(x)
    assert rel_error(after, before) < FP32_TOL
    assert not hasattr(mine, "lkb_origin") and not hasattr(mine, "small_conv")
    assert isinstance(mine.lkb_reparam, DepthwiseConv2d) == (groups == cin)
    # the merged module has the official deploy layout (small_kernel_merged=True)
    deploy_ref = load_same(mine, RefReparamLargeKernelConv(cin, cout, k, stride, groups, small, True))
    with torch.no_grad():
        assert rel_error(deploy_ref(x), before) < FP32_TOL
    mine.merge_kernel()  # a second call is a no-op
    with torch.no_grad():
        assert torch.equal(mine(x), after)


def test_lk_conv_small_kernel_merged_loads_official_deploy():
    mine = randomize(ReparamLargeKernelConv(4, 4, 9, 1, 4, 5, small_kernel_merged=True))
    ref = load_same(mine, RefReparamLargeKernelConv(4, 4, 9, 1, 4, 5, True))
    check_fwd_bwd(mine, ref, (2, 4, 10, 10), train=True)


# ---------------------------------------------------------------- RepLKBlock / ConvFFN


@pytest.mark.parametrize("cin,dw,lk,small", [(4, 6, 9, 3), (3, 3, 7, None), (2, 4, 13, 5)])
@pytest.mark.parametrize("train", [True, False])
def test_replk_block_matches_official(cin, dw, lk, small, train):
    mine = randomize(RepLKBlock(cin, dw, lk, small, drop_path=0.0))
    ref = load_same(mine, RefRepLKBlock(cin, dw, lk, small))
    check_fwd_bwd(mine, ref, (2, cin, 9, 11), train)


def test_replk_block_reparameterize():
    import lkconv

    mine = randomize(RepLKBlock(4, 6, 9, 3, drop_path=0.1)).eval()
    x = torch.randn(2, 4, 10, 9)
    with torch.no_grad():
        before = mine(x)
        lkconv.reparameterize(mine)
        after = mine(x)
    assert rel_error(after, before) < FP32_TOL
    deploy_ref = load_same(mine, RefRepLKBlock(4, 6, 9, 3, small_kernel_merged=True)).eval()
    with torch.no_grad():
        assert rel_error(deploy_ref(x), before) < FP32_TOL


@pytest.mark.parametrize("train", [True, False])
def test_convffn_matches_official(train):
    mine = randomize(ConvFFN(4, 12, 4, drop_path=0.0))
    ref = load_same(mine, RefConvFFN(4, 12, 4))
    check_fwd_bwd(mine, ref, (3, 4, 5, 6), train)


@pytest.mark.parametrize("block", ["replk", "ffn"])
def test_drop_path_per_sample(block):
    mine = RepLKBlock(3, 3, 7, 3, drop_path=0.5) if block == "replk" else ConvFFN(3, 6, 3, drop_path=0.5)
    mine = randomize(mine).train()
    x = torch.randn(64, 3, 6, 6)
    check_drop_path_per_sample(mine, x)


@pytest.mark.parametrize("make", [
    lambda: ReparamLargeKernelConv(4, 4, 7, 1, 4, 3),
    lambda: RepLKBlock(4, 4, 7, 3, drop_path=0.0),
    lambda: ConvFFN(4, 8, 4, drop_path=0.0),
])
def test_channels_last(make):
    mine = randomize(make()).eval()
    x = torch.randn(2, 4, 9, 8)
    with torch.no_grad():
        check_channels_last(mine, x)


@pytest.mark.parametrize("merged", [False, True])
def test_bf16_autocast(merged):
    mine = randomize(RepLKBlock(4, 6, 9, 3, drop_path=0.0)).eval()
    ref = load_same(mine, RefRepLKBlock(4, 6, 9, 3)).eval()
    if merged:
        mine.reparameterize()
    x = torch.randn(2, 4, 10, 10)
    check_bf16_autocast_eval(mine, ref, x, BF16_TOL, bf16_input=False)


def test_bf16_autocast_backward():
    mine = randomize(ReparamLargeKernelConv(4, 4, 7, 1, 4, 3)).train()
    check_bf16_autocast_backward(mine, torch.randn(2, 4, 8, 8, requires_grad=True), bf16_input=True)


@pytest.mark.parametrize("kwargs,name", [
    (dict(in_channels=4, out_channels=4, kernel_size=7, stride=1, groups=4, small_kernel=9), "small_kernel"),
    (dict(in_channels=4, out_channels=4, kernel_size=7, stride=1, groups=4, small_kernel=4), "small_kernel"),
    (dict(in_channels=4, out_channels=4, kernel_size=7, stride=1, groups=3, small_kernel=3), "groups"),
    (dict(in_channels=4, out_channels=6, kernel_size=7, stride=1, groups=4, small_kernel=3), "groups"),
    (dict(in_channels=4, out_channels=4, kernel_size=0, stride=1, groups=4, small_kernel=None), "kernel_size"),
    (dict(in_channels=4, out_channels=4, kernel_size=(7, 7), stride=1, groups=4, small_kernel=3), "kernel_size"),
    (dict(in_channels=4, out_channels=4, kernel_size=7, stride=0, groups=4, small_kernel=3), "stride"),
])
def test_lk_conv_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ReparamLargeKernelConv(**kwargs)


def test_block_bad_config():
    with pytest.raises(ValueError, match="out_channels"):
        ConvFFN(4, 8, 5, drop_path=0.0)
    with pytest.raises(ValueError, match="drop_path"):
        RepLKBlock(4, 4, 7, 3, drop_path=1.0)
    with pytest.raises(ValueError, match="dw_channels"):
        RepLKBlock(4, 0, 7, 3, drop_path=0.0)
    with pytest.raises(ValueError, match="small_kernel"):
        RepLKBlock(4, 4, 7, 8, drop_path=0.0)
