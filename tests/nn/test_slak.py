"""SLaK blocks against an independent plain-PyTorch rendering of the official definitions
(https://github.com/VITA-Group/SLaK, models/SLaK.py; its DepthWiseConv2dImplicitGEMM computes a depthwise,
stride-1 conv with padding (kh // 2, kw // 2), rendered here with nn.Conv2d)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lkconv
from lkconv.nn import DepthwiseConv2d
from lkconv.nn.slak import SLaKBlock, SLaKLargeKernelConv
from lkconv.testing import rel_error

from .helpers import (
    check_bf16_autocast_backward, check_bf16_autocast_eval, check_channels_last, check_drop_path_per_sample,
    check_fwd_bwd, count_depthwise_calls, depthwise_convs, load_same, randomize,
)

FP32_TOL = 1e-5
BF16_TOL = 3e-2


# ---------------------------------------------------------------- official definitions, plain torch.nn


def ref_igemm_conv(channels, kernel, bias):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return nn.Conv2d(channels, channels, (kh, kw), padding=(kh // 2, kw // 2), groups=channels, bias=bias)


def ref_conv_bn(channels, kernel, bn=True):
    seq = nn.Sequential()
    seq.add_module("conv", ref_igemm_conv(channels, kernel, False))
    if bn:
        seq.add_module("bn", nn.BatchNorm2d(channels))
    return seq


class RefSLaKConv(nn.Module):
    def __init__(self, c, k, small, small_kernel_merged=False, Decom=False, bn=True):
        super().__init__()
        self.Decom = Decom
        if small_kernel_merged:
            self.lkb_reparam = ref_igemm_conv(c, k, True)
        else:
            if Decom:
                self.LoRA1 = ref_conv_bn(c, (k, small), bn)
                self.LoRA2 = ref_conv_bn(c, (small, k), bn)
            else:
                self.lkb_origin = ref_conv_bn(c, k, bn)
            if small is not None and small < k:
                self.small_conv = ref_conv_bn(c, small, bn)

    def forward(self, x):
        if hasattr(self, "lkb_reparam"):
            return self.lkb_reparam(x)
        if self.Decom:
            out = self.LoRA1(x) + self.LoRA2(x)
        else:
            out = self.lkb_origin(x)
        if hasattr(self, "small_conv"):
            out += self.small_conv(x)
        return out


class RefLayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


class RefBlock(nn.Module):
    def __init__(self, dim, layer_scale_init_value=1e-6, kernel_size=(7, 7), Decom=None, bn=True,
                 small_kernel_merged=False):
        super().__init__()
        self.large_kernel = RefSLaKConv(dim, kernel_size[0], kernel_size[1], small_kernel_merged, Decom, bn)
        self.norm = RefLayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None

    def forward(self, x):
        inp = x
        x = self.large_kernel(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        return inp + x.permute(0, 3, 1, 2)


CASES = [  # (K, small, Decom, bn)
    (7, 3, False, True),
    (9, 3, True, True),
    (11, 5, True, False),
    (7, None, False, True),
    (9, 5, False, False),
    (5, 5, True, True),  # small == K: no small_conv
    (7, 9, False, True),  # small > K: no small_conv (as official)
]


# ---------------------------------------------------------------- SLaKLargeKernelConv


@pytest.mark.parametrize("k,small,decom,bn", CASES)
@pytest.mark.parametrize("train", [True, False])
def test_lk_conv_matches_official(k, small, decom, bn, train):
    mine = randomize(SLaKLargeKernelConv(3, 3, k, 1, 3, small, Decom=decom, bn=bn))
    ref = load_same(mine, RefSLaKConv(3, k, small, Decom=decom, bn=bn))
    check_fwd_bwd(mine, ref, (2, 3, 12, 10), train)


def test_lk_conv_deploy_matches_official():
    mine = randomize(SLaKLargeKernelConv(4, 4, 13, 1, 4, 5, small_kernel_merged=True, Decom=True))
    ref = load_same(mine, RefSLaKConv(4, 13, 5, small_kernel_merged=True))
    check_fwd_bwd(mine, ref, (2, 4, 9, 11), train=True)


def test_lk_conv_uses_lkconv(monkeypatch):
    mine = SLaKLargeKernelConv(4, 4, 13, 1, 4, 5, Decom=True)
    convs = depthwise_convs(mine)
    assert len(convs) == 3 and all(isinstance(m, DepthwiseConv2d) for m in convs)
    assert sorted(tuple(m.kernel_size) for m in convs) == [(5, 5), (5, 13), (13, 5)]
    calls = count_depthwise_calls(monkeypatch)
    mine(torch.randn(1, 4, 8, 8))
    assert calls.count("fwd") == 3


@pytest.mark.parametrize("k,small,decom,bn", CASES)
def test_lk_conv_merge(k, small, decom, bn):
    mine = randomize(SLaKLargeKernelConv(4, 4, k, 1, 4, small, Decom=decom, bn=bn)).eval()
    x = torch.randn(2, 4, 11, 13)
    with torch.no_grad():
        before = mine(x)
        mine.reparameterize()
        after = mine(x)
    assert rel_error(after, before) < FP32_TOL
    assert list(dict(mine.named_children())) == ["lkb_reparam"]
    assert isinstance(mine.lkb_reparam, DepthwiseConv2d)
    deploy_ref = load_same(mine, RefSLaKConv(4, k, small, small_kernel_merged=True))
    with torch.no_grad():
        assert rel_error(deploy_ref(x), before) < FP32_TOL
    mine.merge_kernel()
    with torch.no_grad():
        assert torch.equal(mine(x), after)


# ---------------------------------------------------------------- SLaKBlock


@pytest.mark.parametrize("kernel_size,decom,bn", [((9, 3), True, True), ((7, 3), False, True),
                                                 ((7, 7), None, True), ((11, 5), True, False)])
@pytest.mark.parametrize("train", [True, False])
def test_block_matches_official(kernel_size, decom, bn, train):
    mine = randomize(SLaKBlock(8, kernel_size=kernel_size, Decom=decom, bn=bn))
    ref = load_same(mine, RefBlock(8, kernel_size=kernel_size, Decom=decom, bn=bn))
    check_fwd_bwd(mine, ref, (2, 8, 9, 10), train)


def test_block_without_layer_scale():
    mine = randomize(SLaKBlock(4, layer_scale_init_value=0.0, kernel_size=(9, 5), Decom=True))
    assert mine.gamma is None
    ref = load_same(mine, RefBlock(4, layer_scale_init_value=0.0, kernel_size=(9, 5), Decom=True))
    check_fwd_bwd(mine, ref, (2, 4, 7, 8), train=True)


@pytest.mark.parametrize("decom", [True, False])
def test_block_reparameterize(decom):
    mine = randomize(SLaKBlock(8, drop_path=0.2, kernel_size=(13, 5), Decom=decom)).eval()
    x = torch.randn(2, 8, 10, 9)
    with torch.no_grad():
        before = mine(x)
        lkconv.reparameterize(mine)
        after = mine(x)
    assert rel_error(after, before) < FP32_TOL
    deploy_ref = load_same(mine, RefBlock(8, kernel_size=(13, 5), small_kernel_merged=True)).eval()
    with torch.no_grad():
        assert rel_error(deploy_ref(x), before) < FP32_TOL


def test_drop_path_per_sample():
    mine = randomize(SLaKBlock(4, drop_path=0.5, kernel_size=(7, 3), Decom=True)).train()
    x = torch.randn(64, 4, 6, 6)
    check_drop_path_per_sample(mine, x)


@pytest.mark.parametrize("merged", [False, True])
@pytest.mark.parametrize("make", [lambda: SLaKLargeKernelConv(8, 8, 9, 1, 8, 3, Decom=True),
                                  lambda: SLaKBlock(8, kernel_size=(11, 5), Decom=True)])
def test_channels_last(make, merged):
    mine = randomize(make()).eval()
    if merged:
        mine.reparameterize()
    x = torch.randn(2, 8, 9, 12)
    with torch.no_grad():
        check_channels_last(mine, x)


def test_bf16_autocast():
    mine = randomize(SLaKBlock(8, kernel_size=(11, 5), Decom=True)).eval()
    ref = load_same(mine, RefBlock(8, kernel_size=(11, 5), Decom=True)).eval()
    x = torch.randn(2, 8, 10, 10)
    check_bf16_autocast_eval(mine, ref, x, BF16_TOL)


def test_bf16_autocast_backward():
    mine = randomize(SLaKLargeKernelConv(4, 4, 9, 1, 4, 3, Decom=True)).train()
    check_bf16_autocast_backward(mine, torch.randn(2, 4, 10, 10, requires_grad=True), bf16_input=True)


@pytest.mark.parametrize("kwargs,name", [
    (dict(kernel_size=8, small_kernel=3), "kernel_size"),
    (dict(kernel_size=0, small_kernel=3), "kernel_size"),
    (dict(kernel_size=9, small_kernel=4), "small_kernel"),
    (dict(kernel_size=9, small_kernel=11, Decom=True), "small_kernel"),
    (dict(kernel_size=9, small_kernel=None, Decom=True), "small_kernel"),
    (dict(kernel_size=9, small_kernel=3, out_channels=8), "out_channels"),
    (dict(kernel_size=9, small_kernel=3, groups=2), "groups"),
    (dict(kernel_size=9, small_kernel=3, stride=2), "stride"),
])
def test_lk_conv_bad_config(kwargs, name):
    args = dict(in_channels=4, out_channels=4, stride=1, groups=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        SLaKLargeKernelConv(**args)


def test_block_bad_config():
    with pytest.raises(ValueError, match="kernel_size"):
        SLaKBlock(4, kernel_size=7)
    with pytest.raises(ValueError, match="kernel_size"):
        SLaKBlock(4, kernel_size=(7, 5, 3))
    with pytest.raises(ValueError, match="drop_path"):
        SLaKBlock(4, drop_path=-0.1)
    with pytest.raises(ValueError, match="dim"):
        SLaKBlock(0)
