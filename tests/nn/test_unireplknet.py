"""UniRepLKNet blocks against an independent plain-PyTorch rendering of the official definitions
(https://github.com/AILab-CVC/UniRepLKNet, unireplknet.py)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lkconv
from lkconv.nn import DepthwiseConv2d
from lkconv.nn.unireplknet import DilatedReparamBlock, UniRepLKNetBlock
from lkconv.testing import rel_error

from .helpers import (
    check_bf16_autocast_backward, check_bf16_autocast_eval, check_channels_last, check_drop_path_per_sample,
    check_fwd_bwd, count_depthwise_calls, depthwise_convs, load_same, randomize,
)

FP32_TOL = 1e-5
BF16_TOL = 3e-2


# ---------------------------------------------------------------- official definitions, plain torch.nn


class RefGRN(nn.Module):
    def __init__(self, dim, use_bias=True):
        super().__init__()
        self.use_bias = use_bias
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        if use_bias:
            self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        if self.use_bias:
            return (self.gamma * nx + 1) * x + self.beta
        return (self.gamma * nx + 1) * x


class ToNHWC(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


class ToNCHW(nn.Module):
    def forward(self, x):
        return x.permute(0, 3, 1, 2)


class RefSE(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.down = nn.Conv2d(c, hidden, 1, 1, bias=True)
        self.up = nn.Conv2d(hidden, c, 1, 1, bias=True)
        self.c = c
        self.nonlinear = nn.ReLU(inplace=True)

    def forward(self, inputs):
        x = F.adaptive_avg_pool2d(inputs, (1, 1))
        x = torch.sigmoid(self.up(self.nonlinear(self.down(x))))
        return inputs * x.view(-1, self.c, 1, 1)


def ref_table(k):
    if k == 17:
        return [5, 9, 3, 3, 3], [1, 2, 4, 5, 7]
    if k == 15:
        return [5, 7, 3, 3, 3], [1, 2, 3, 5, 7]
    if k == 13:
        return [5, 7, 3, 3, 3], [1, 2, 3, 4, 5]
    if k == 11:
        return [5, 5, 3, 3, 3], [1, 2, 3, 4, 5]
    if k == 9:
        return [5, 5, 3, 3], [1, 2, 3, 4]
    if k == 7:
        return [5, 3, 3], [1, 2, 3]
    if k == 5:
        return [3, 3], [1, 2]
    raise AssertionError(k)


class RefDRB(nn.Module):
    def __init__(self, c, k, deploy):
        super().__init__()
        self.lk_origin = nn.Conv2d(c, c, k, 1, k // 2, 1, c, bias=deploy)
        self.kernel_sizes, self.dilates = ref_table(k)
        if not deploy:
            self.origin_bn = nn.BatchNorm2d(c)
            for kk, r in zip(self.kernel_sizes, self.dilates):
                setattr(self, f"dil_conv_k{kk}_{r}",
                        nn.Conv2d(c, c, kk, 1, (r * (kk - 1) + 1) // 2, r, c, bias=False))
                setattr(self, f"dil_bn_k{kk}_{r}", nn.BatchNorm2d(c))

    def forward(self, x):
        if not hasattr(self, "origin_bn"):
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for kk, r in zip(self.kernel_sizes, self.dilates):
            out = out + getattr(self, f"dil_bn_k{kk}_{r}")(getattr(self, f"dil_conv_k{kk}_{r}")(x))
        return out


class RefBlock(nn.Module):
    def __init__(self, dim, k, layer_scale_init_value=1e-6, deploy=False, ffn_factor=4):
        super().__init__()
        if k == 0:
            self.dwconv = nn.Identity()
        elif k >= 7:
            self.dwconv = RefDRB(dim, k, deploy)
        else:
            self.dwconv = nn.Conv2d(dim, dim, k, 1, k // 2, 1, dim, bias=deploy)
        self.norm = nn.Identity() if deploy or k == 0 else nn.BatchNorm2d(dim)
        self.se = RefSE(dim, dim // 4)
        ffn = int(ffn_factor * dim)
        self.pwconv1 = nn.Sequential(ToNHWC(), nn.Linear(dim, ffn))
        self.act = nn.Sequential(nn.GELU(), RefGRN(ffn, use_bias=not deploy))
        if deploy:
            self.pwconv2 = nn.Sequential(nn.Linear(ffn, dim), ToNCHW())
        else:
            self.pwconv2 = nn.Sequential(nn.Linear(ffn, dim, bias=False), ToNCHW(), nn.BatchNorm2d(dim))
        use_gamma = not deploy and layer_scale_init_value is not None and layer_scale_init_value > 0
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim)) if use_gamma else None

    def forward(self, x):
        y = self.se(self.norm(self.dwconv(x)))
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma.view(1, -1, 1, 1) * y
        return x + y


KERNELS = [5, 7, 9, 11, 13, 15, 17]


# ---------------------------------------------------------------- DilatedReparamBlock


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("train", [True, False])
def test_drb_matches_official(k, train):
    mine = randomize(DilatedReparamBlock(3, k, deploy=False))
    ref = load_same(mine, RefDRB(3, k, deploy=False))
    check_fwd_bwd(mine, ref, (2, 3, 12, 11), train)


def test_drb_deploy_matches_official():
    mine = randomize(DilatedReparamBlock(3, 9, deploy=True))
    ref = load_same(mine, RefDRB(3, 9, deploy=True))
    check_fwd_bwd(mine, ref, (2, 3, 10, 10), train=True)


@pytest.mark.parametrize("k", KERNELS)
def test_drb_merge(k):
    mine = randomize(DilatedReparamBlock(4, k, deploy=False)).eval()
    x = torch.randn(2, 4, 13, 12)
    with torch.no_grad():
        before = mine(x)
        mine.reparameterize()
        after = mine(x)
    assert rel_error(after, before) < FP32_TOL
    assert list(dict(mine.named_children())) == ["lk_origin"]
    assert isinstance(mine.lk_origin, DepthwiseConv2d) and mine.lk_origin.bias is not None
    deploy_ref = load_same(mine, RefDRB(4, k, deploy=True))
    with torch.no_grad():
        assert rel_error(deploy_ref(x), before) < FP32_TOL
    mine.merge_dilated_branches()  # no-op the second time
    with torch.no_grad():
        assert torch.equal(mine(x), after)


def test_drb_uses_lkconv(monkeypatch):
    mine = DilatedReparamBlock(4, 13, deploy=False)
    convs = depthwise_convs(mine)
    assert len(convs) == 6 and all(isinstance(m, DepthwiseConv2d) for m in convs)
    calls = count_depthwise_calls(monkeypatch)
    mine(torch.randn(1, 4, 8, 8))
    assert calls.count("fwd") == 6


def test_attempt_use_lk_impl_selects_algorithm():
    on = UniRepLKNetBlock(8, 9, attempt_use_lk_impl=True)
    off = UniRepLKNetBlock(8, 9, attempt_use_lk_impl=False)
    assert {m.algorithm for m in depthwise_convs(on)} == {"auto"}
    assert {m.algorithm for m in depthwise_convs(off)} == {"torch"}
    off.eval().reparameterize()
    assert off.dwconv.lk_origin.algorithm == "torch"


# ---------------------------------------------------------------- UniRepLKNetBlock


@pytest.mark.parametrize("k", [0, 3, 5, 7, 13])
@pytest.mark.parametrize("train", [True, False])
def test_block_matches_official(k, train):
    mine = randomize(UniRepLKNetBlock(8, k))
    ref = load_same(mine, RefBlock(8, k))
    check_fwd_bwd(mine, ref, (2, 8, 9, 10), train)


@pytest.mark.parametrize("layer_scale,ffn_factor", [(None, 2), (0.0, 3), (1e-6, 1.5)])
def test_block_options_match_official(layer_scale, ffn_factor):
    mine = randomize(UniRepLKNetBlock(8, 7, layer_scale_init_value=layer_scale, ffn_factor=ffn_factor))
    assert (mine.gamma is None) == (not layer_scale)
    ref = load_same(mine, RefBlock(8, 7, layer_scale_init_value=layer_scale, ffn_factor=ffn_factor))
    check_fwd_bwd(mine, ref, (2, 8, 7, 7), train=True)


@pytest.mark.parametrize("k", [3, 11])
def test_block_deploy_matches_official(k):
    mine = randomize(UniRepLKNetBlock(8, k, deploy=True))
    ref = load_same(mine, RefBlock(8, k, deploy=True))
    check_fwd_bwd(mine, ref, (2, 8, 8, 9), train=True)


@pytest.mark.parametrize("k", [0, 3, 5, 9, 17])
@pytest.mark.parametrize("layer_scale", [1e-6, None])
def test_block_reparameterize(k, layer_scale):
    mine = randomize(UniRepLKNetBlock(8, k, layer_scale_init_value=layer_scale)).eval()
    x = torch.randn(2, 8, 11, 10)
    with torch.no_grad():
        before = mine(x)
        lkconv.reparameterize(mine)  # walks the block and its DilatedReparamBlock
        after = mine(x)
    assert rel_error(after, before) < FP32_TOL
    assert mine.gamma is None and not hasattr(mine.act[1], "beta")
    assert all(isinstance(m, DepthwiseConv2d) for m in depthwise_convs(mine))
    deploy_ref = load_same(mine, RefBlock(8, k, deploy=True)).eval()
    with torch.no_grad():
        assert rel_error(deploy_ref(x), before) < FP32_TOL
    mine.reparameterize()  # no-op the second time
    with torch.no_grad():
        assert torch.equal(mine(x), after)


def test_sync_bn_block_loads_and_reparameterizes():
    mine = randomize(UniRepLKNetBlock(8, 9, use_sync_bn=True)).eval()
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in mine.modules()) == 1 + 4 + 1 + 1
    ref = load_same(mine, RefBlock(8, 9)).eval()
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        before = mine(x)
        assert rel_error(before, ref(x)) < FP32_TOL
        mine.reparameterize()
        assert rel_error(mine(x), before) < FP32_TOL


def test_with_cp_same_result():
    plain = randomize(UniRepLKNetBlock(8, 7)).train()
    cp = UniRepLKNetBlock(8, 7, with_cp=True).train()
    cp.load_state_dict(plain.state_dict())
    # recomputation in backward updates BatchNorm running statistics a second time, so buffers differ
    check_fwd_bwd(cp, plain, (2, 8, 8, 8), train=True, check_buffers=False)


def test_drop_path_per_sample():
    mine = randomize(UniRepLKNetBlock(4, 7, drop_path=0.5)).train()
    x = torch.randn(64, 4, 6, 6)
    check_drop_path_per_sample(mine, x)


@pytest.mark.parametrize("make", [lambda: DilatedReparamBlock(8, 11, deploy=False),
                                  lambda: UniRepLKNetBlock(8, 13), lambda: UniRepLKNetBlock(8, 5)])
@pytest.mark.parametrize("merged", [False, True])
def test_channels_last(make, merged):
    mine = randomize(make()).eval()
    if merged:
        mine.reparameterize()
    x = torch.randn(2, 8, 9, 12)
    with torch.no_grad():
        check_channels_last(mine, x)


@pytest.mark.parametrize("k", [5, 13])
def test_bf16_autocast(k):
    mine = randomize(UniRepLKNetBlock(8, k)).eval()
    ref = load_same(mine, RefBlock(8, k)).eval()
    x = torch.randn(2, 8, 10, 10)
    check_bf16_autocast_eval(mine, ref, x, BF16_TOL)


def test_bf16_autocast_backward():
    mine = randomize(DilatedReparamBlock(4, 9)).train()
    check_bf16_autocast_backward(mine, torch.randn(2, 4, 10, 10, requires_grad=True), bf16_input=True)


@pytest.mark.parametrize("k", [3, 4, 8, 19, 21, 0, -7, 7.0])
def test_drb_bad_kernel_size(k):
    with pytest.raises(ValueError, match="kernel_size"):
        DilatedReparamBlock(4, k, deploy=False)


@pytest.mark.parametrize("kwargs,name", [
    (dict(dim=8, kernel_size=4), "kernel_size"),
    (dict(dim=8, kernel_size=19), "kernel_size"),
    (dict(dim=8, kernel_size=1), "kernel_size"),
    (dict(dim=3, kernel_size=7), "dim"),
    (dict(dim=8, kernel_size=7, drop_path=1.5), "drop_path"),
    (dict(dim=8, kernel_size=7, ffn_factor=0), "ffn_factor"),
])
def test_block_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        UniRepLKNetBlock(**kwargs)


def test_drb_bad_channels():
    with pytest.raises(ValueError, match="channels"):
        DilatedReparamBlock(0, 7, deploy=False)
