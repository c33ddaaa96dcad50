"""FFNet blocks against a plain-PyTorch rendering of the official definitions (ysj9909/FFNet models/ffnet.py)."""
import pytest
import torch
from torch import nn

import lkconv
from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.ffnet import FFNetConv2dBN, FFBlock, FFNetChannelMixer, FFNifiedAttention, FFNetRepVGGDW
from lkconv.testing import rel_error

from .helpers import (
    assert_depthwise_on_lkconv, check_bf16_autocast_backward, check_bf16_autocast_output, check_channels_last,
    compare_to_reference, randomize_bn,
)


# ----------------------------------------------------------------------------------------------------------
# Reference: the official modules, written with torch.nn only.
# ----------------------------------------------------------------------------------------------------------
class RefConv2dBN(nn.Sequential):
    def __init__(self, a, b, ks=1, stride=1, pad=0, dilation=1, groups=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, dilation, groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))


class RefRepVGGDW(nn.Module):
    def __init__(self, in_dim, out_dim, ks=7, stride=1):
        super().__init__()
        self.conv = RefConv2dBN(in_dim, out_dim, ks, stride, ks // 2, groups=in_dim)
        self.conv1 = RefConv2dBN(in_dim, out_dim, ks // 2, stride, (ks // 2) // 2, groups=in_dim)

    def forward(self, x):
        return self.conv(x) + self.conv1(x)


class RefTokenMixer(nn.Module):
    def __init__(self, dim, ks1, ks2, use_gelu=True):
        super().__init__()
        self.fc = RefConv2dBN(dim, dim)
        self.conv1 = RefRepVGGDW(dim, dim, ks1) if ks1 == 7 else nn.Conv2d(dim, dim, ks1, 1, ks1 // 2, groups=dim)
        self.act = nn.GELU() if use_gelu else nn.ReLU()
        self.conv2 = RefRepVGGDW(dim, dim, ks2) if ks2 == 7 else nn.Conv2d(dim, dim, ks2, 1, ks2 // 2, groups=dim)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(self.fc(x))))


class RefChannelMixer(nn.Module):
    def __init__(self, dim, ks, expansion_ratio, use_gelu=True):
        super().__init__()
        hidden = int(dim * expansion_ratio)
        self.conv = RefRepVGGDW(dim, dim, ks) if ks == 7 else RefConv2dBN(dim, dim, ks, 1, ks // 2, groups=dim)
        self.fc1 = nn.Conv2d(dim, hidden, 1, 1, 0)
        self.act = nn.GELU() if use_gelu else nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, dim, 1, 1, 0)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.conv(x))))


class RefSE(nn.Module):
    """timm SEModule(channels, rd_ratio=0.25): rd = make_divisible(channels * 0.25, 8, round_limit=0)."""

    def __init__(self, channels, rd_ratio=0.25):
        super().__init__()
        rd = max(8, int(channels * rd_ratio + 4) // 8 * 8)
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.bn = nn.Identity()
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(rd, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.bn(self.fc1(s)))))


class RefResidual(nn.Module):
    def __init__(self, main, dim, use_layer_scale=True, layer_scale_init_value=1e-5):
        super().__init__()
        self.main = main
        self.use_layer_scale = use_layer_scale
        if use_layer_scale:
            self.layer_scale = nn.Parameter(layer_scale_init_value * torch.ones((dim, 1, 1)))

    def forward(self, x):
        if self.use_layer_scale:
            return self.main(x) * self.layer_scale + x
        return self.main(x) + x


class RefFFBlock(nn.Module):
    def __init__(self, dim, kernel_size, use_se, use_gelu, expansion_ratio, ks1, ks2, use_layer_scale=True):
        super().__init__()
        self.token_mixer = nn.Sequential(
            RefResidual(RefTokenMixer(dim, ks1, ks2, use_gelu), dim, use_layer_scale),
            RefSE(dim, 0.25) if use_se else nn.Identity(),
        )
        self.channel_mixer = RefResidual(RefChannelMixer(dim, kernel_size, expansion_ratio, use_gelu), dim,
                                         use_layer_scale)

    def forward(self, x):
        return self.channel_mixer(self.token_mixer(x))


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
def _randomize(module):
    """Random non-trivial BN statistics/affine params and layer scales (official init has trivial ones)."""
    randomize_bn(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("layer_scale"):
                p.normal_(0, 0.5)
    return module


def _compare(block, ref, x, train):
    _randomize(block)
    block.train(train)
    ref.train(train)
    compare_to_reference(block, ref, x, same_param_names=True, check_buffers=train)


# ----------------------------------------------------------------------------------------------------------
# (1) Same function, names and gradients as the official definition
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "args, shape",
    [
        ((6, 7, 7), (2, 6, 9, 8)),  # both FFNetRepVGGDW (FFNet stages 3-4)
        ((4, 3, 3), (2, 4, 7, 10)),  # plain depthwise (stages 1-2)
        ((5, 7, 5, False), (1, 5, 8, 8)),  # mixed, ReLU
    ],
)
def test_ffnified_attention_matches_official(args, shape, train):
    block = FFNifiedAttention(*args)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefTokenMixer(*args), torch.randn(shape), train)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("args, shape", [((6, 7, 3), (2, 6, 9, 8)), ((4, 3, 2.5, False), (2, 4, 7, 6))])
def test_channel_mixer_matches_official(args, shape, train):
    block = FFNetChannelMixer(*args)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefChannelMixer(*args), torch.randn(shape), train)


@pytest.mark.parametrize("args, shape", [((4, 8, 7, 2), (2, 4, 9, 10)), ((5, 5, 3, 1), (2, 5, 6, 7))])
def test_repvggdw_matches_official(args, shape):
    block = FFNetRepVGGDW(*args)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefRepVGGDW(*args), torch.randn(shape), train=True)


@pytest.mark.parametrize(
    "args, kw",
    [
        ((8, 7, True, True, 3, 7, 7), {}),
        ((6, 3, False, False, 2, 3, 7), {"use_layer_scale": False}),
    ],
)
def test_ffblock_matches_official(args, kw):
    block = FFBlock(*args, **kw)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefFFBlock(*args, **kw), torch.randn(2, args[0], 8, 7), train=True)


@pytest.mark.parametrize("dim, rd", [(8, 8), (40, 8), (56, 16), (88, 24), (100, 24), (128, 32)])
def test_se_reduction_channels(dim, rd):
    """timm's SqueezeExcite(dim, 0.25) rounds dim / 4 to the nearest multiple of 8 (at least 8)."""
    se = FFBlock(dim, 3, True, True, 1, 3, 3).token_mixer[1]
    assert se.fc1.weight.shape == (rd, dim, 1, 1) and se.fc2.weight.shape == (dim, rd, 1, 1)


# ----------------------------------------------------------------------------------------------------------
# (2) Reparameterization
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, shape, fused_keys",
    [
        (lambda: FFNifiedAttention(6, 7, 7), (2, 6, 9, 8),
         {"fc.weight", "fc.bias", "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"}),
        (lambda: FFNifiedAttention(4, 3, 7, False), (2, 4, 8, 8),
         {"fc.weight", "fc.bias", "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"}),
        (lambda: FFNetChannelMixer(5, 7, 3), (2, 5, 7, 9),
         {"conv.weight", "conv.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}),
        (lambda: FFNetChannelMixer(5, 5, 2), (2, 5, 7, 9),
         {"conv.weight", "conv.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}),
        (lambda: FFNetRepVGGDW(4, 8, 7, 2), (2, 4, 11, 9), {"conv.weight", "conv.bias"}),
        (lambda: FFNetRepVGGDW(3, 3, 11), (1, 3, 12, 12), {"conv.weight", "conv.bias"}),
        (lambda: FFNetConv2dBN(4, 6, 3, 2, 1), (2, 4, 9, 9), {"c.weight", "c.bias"}),
    ],
)
def test_reparameterize(make, shape, fused_keys):
    block = _randomize(make()).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        y = block(x)
        block.reparameterize()
        y_fused = block(x)
    assert set(block.state_dict()) == fused_keys
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert_depthwise_on_lkconv(block)
    assert rel_error(y_fused, y) < 1e-5, rel_error(y_fused, y)
    block.reparameterize()  # idempotent
    with torch.no_grad():
        assert rel_error(block(x), y) < 1e-5


def test_reparameterize_model_walk_ffblock():
    block = _randomize(FFBlock(8, 7, True, True, 3, 7, 7)).eval()
    model = nn.Sequential(block, nn.Conv2d(8, 8, 1))
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        y = model(x)
        lkconv.reparameterize(model)
        y_fused = model(x)
    assert not any(isinstance(m, (nn.BatchNorm2d, FFNetRepVGGDW, FFNetConv2dBN)) for m in model.modules())
    mixer = block.token_mixer[0].main
    assert isinstance(mixer.conv1, DepthwiseConv2d) and mixer.conv1.kernel_size == (7, 7)
    assert rel_error(y_fused, y) < 1e-5, rel_error(y_fused, y)


def test_repvggdw_fused_kernel_is_sum_of_branches():
    """The 3x3 branch lands in the centre of the 7x7 kernel."""
    block = _randomize(FFNetRepVGGDW(3, 3, 7)).eval()
    fused = block.fuse()
    s0 = block.conv.bn.weight / (block.conv.bn.running_var + block.conv.bn.eps).sqrt()
    s1 = block.conv1.bn.weight / (block.conv1.bn.running_var + block.conv1.bn.eps).sqrt()
    expect = block.conv.c.weight * s0.view(-1, 1, 1, 1)
    expect[:, :, 2:5, 2:5] += block.conv1.c.weight * s1.view(-1, 1, 1, 1)
    assert rel_error(fused.weight, expect) < 1e-6


# ----------------------------------------------------------------------------------------------------------
# (3) channels_last, (4) bf16 autocast
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train", [True, False])
def test_channels_last(train):
    block = _randomize(FFBlock(8, 7, True, True, 3, 7, 7)).train(train)
    x = torch.randn(2, 8, 9, 10)
    check_channels_last(block, x)


@pytest.mark.parametrize("fused", [False, True])
def test_bf16_autocast(fused):
    block = _randomize(FFBlock(8, 7, True, True, 3, 7, 3)).eval()
    if fused:
        block.reparameterize()
    x = torch.randn(2, 8, 9, 10)
    check_bf16_autocast_output(block, x, tol=3e-2)


def test_bf16_autocast_backward():
    block = _randomize(FFNifiedAttention(6, 7, 7)).train()
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    check_bf16_autocast_backward(block, x, bf16_input=False)


# ----------------------------------------------------------------------------------------------------------
# (5) Bad configuration
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FFNetRepVGGDW(4, 6), "out_dim"),
        (lambda: FFNetRepVGGDW(4, 4, 5), "ks"),
        (lambda: FFNetRepVGGDW(4, 4, 8), "ks"),
        (lambda: FFNetConv2dBN(6, 4, 3, groups=4), "groups"),
        (lambda: FFNifiedAttention(0, 3, 3), "dim"),
        (lambda: FFNifiedAttention(4, 0, 3), "ks1"),
        (lambda: FFNifiedAttention(4, 3, -1), "ks2"),
        (lambda: FFNetChannelMixer(4, 3, 0.1), "expansion_ratio"),
        (lambda: FFNetChannelMixer(4, 0, 3), "ks"),
        (lambda: FFBlock(4, 3, False, True, 3, 3, 3, drop_path=1.0), "drop_path"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
