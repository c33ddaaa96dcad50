"""VAN's LKA, attention, MLP and block against a plain-PyTorch rendering of the official definitions."""
import math

import pytest
import torch
from torch import nn

from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.van import LKA, VANAttention, VANBlock, VANDWConv, VANMlp

from .helpers import check_bf16_autocast, check_channels_last, compare_to_reference

timm_layers = pytest.importorskip("timm.layers")


# ---- reference: Visual-Attention-Network/VAN-Classification models/van.py, with nn.Conv2d ----
class RefDWConv(nn.Module):
    def __init__(self, dim=768):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x):
        return self.dwconv(x)


class RefMlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Conv2d(in_features, hidden_features, 1)
        self.dwconv = RefDWConv(hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden_features, out_features, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.dwconv(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class RefLKA(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, stride=1, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        u = x.clone()
        attn = self.conv0(x)
        attn = self.conv_spatial(attn)
        attn = self.conv1(attn)
        return u * attn


class RefAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.proj_1 = nn.Conv2d(d_model, d_model, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = RefLKA(d_model)
        self.proj_2 = nn.Conv2d(d_model, d_model, 1)

    def forward(self, x):
        shortcut = x.clone()
        x = self.proj_1(x)
        x = self.activation(x)
        x = self.spatial_gating_unit(x)
        x = self.proj_2(x)
        return x + shortcut


class RefBlock(nn.Module):
    def __init__(self, dim, mlp_ratio=4.0, drop=0.0, drop_path=0.0, act_layer=nn.GELU):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = RefAttention(dim)
        self.drop_path = timm_layers.DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = RefMlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.layer_scale_1 = nn.Parameter(1e-2 * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(1e-2 * torch.ones(dim))

    def forward(self, x):
        x = x + self.drop_path(self.layer_scale_1.unsqueeze(-1).unsqueeze(-1) * self.attn(self.norm1(x)))
        x = x + self.drop_path(self.layer_scale_2.unsqueeze(-1).unsqueeze(-1) * self.mlp(self.norm2(x)))
        return x


# ---- helpers ----
def _randomize(module):
    """Non-trivial values everywhere: random weights, biases, layer scales and BN statistics."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            shift = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(torch.randn_like(p) * (0.5 if p.dim() > 1 else 0.3) + shift)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.2)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


# ---- equivalence with the official definitions ----
@pytest.mark.parametrize("shape", [(2, 4, 11, 9), (1, 3, 5, 20)])
def test_lka_matches_official(shape):
    block, ref = LKA(shape[1]), RefLKA(shape[1])
    _randomize(block)
    compare_to_reference(block, ref, torch.randn(shape))


def test_attention_matches_official():
    block, ref = VANAttention(6), RefAttention(6)
    _randomize(block)
    compare_to_reference(block, ref, torch.randn(2, 6, 10, 7))


def test_mlp_matches_official():
    block, ref = VANMlp(4, 10, 6), RefMlp(4, 10, 6)
    _randomize(block)
    compare_to_reference(block, ref, torch.randn(2, 4, 6, 9))
    assert VANDWConv().dwconv.in_channels == 768  # official default width


@pytest.mark.parametrize("train", [False, True])
def test_block_matches_official(train):
    block, ref = VANBlock(4, mlp_ratio=2.5), RefBlock(4, mlp_ratio=2.5)
    _randomize(block)
    block.train(train)
    ref.train(train)
    compare_to_reference(block, ref, torch.randn(3, 4, 9, 8))


def test_block_drop_path_matches_timm():
    block, ref = VANBlock(4, drop_path=0.5), RefBlock(4, drop_path=0.5)
    _randomize(block)
    block.train()
    ref.train()
    x = torch.randn(8, 4, 6, 6)
    compare_to_reference(block, ref, x, seed=1234)
    block.eval()
    ref.eval()
    compare_to_reference(block, ref, x)


def test_depthwise_convs_are_lkconv():
    block = VANBlock(8)
    lka = block.attn.spatial_gating_unit
    for conv in (lka.conv0, lka.conv_spatial, block.mlp.dwconv.dwconv):
        assert isinstance(conv, DepthwiseConv2d)
    assert lka.conv_spatial.dilation == (3, 3) and lka.conv_spatial.padding == (9, 9)
    assert lka.conv_spatial.kernel_size == (7, 7) and lka.conv0.kernel_size == (5, 5)


def test_block_official_initialisation():
    block = VANBlock(8)
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            assert torch.count_nonzero(m.bias) == 0
    assert torch.equal(block.layer_scale_1, torch.full((8,), 1e-2))
    w = block.mlp.fc1.weight  # fan_out = 32 -> std sqrt(2 / 32) = 0.25
    assert 0.15 < w.std().item() < 0.35, w.std().item()
    assert math.isclose(block.norm1.weight.mean().item(), 1.0)


# ---- layouts and dtypes ----
@pytest.mark.parametrize("make", [lambda: LKA(4), lambda: VANAttention(4), lambda: VANBlock(4).eval()])
def test_channels_last(make):
    block = make()
    _randomize(block)
    x = torch.randn(2, 4, 9, 10)
    check_channels_last(block, x)


@pytest.mark.parametrize(
    "make, make_ref",
    [(LKA, RefLKA), (VANAttention, RefAttention), (lambda d: VANBlock(d).eval(), lambda d: RefBlock(d).eval())],
)
def test_bf16_autocast(make, make_ref):
    block = make(4)
    _randomize(block)
    check_bf16_autocast(block, make_ref(4), [torch.randn(2, 4, 9, 10)])


# ---- bad configuration ----
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LKA(0), "dim"),
        (lambda: VANAttention(-2), "d_model"),
        (lambda: VANMlp(4, drop=1.0), "drop"),
        (lambda: VANBlock(4, mlp_ratio=0.1), "mlp_ratio"),
        (lambda: VANBlock(4, drop_path=1.5), "drop_path"),
        (lambda: VANDWConv(0), "dim"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
