"""BEVANet's SDLSKA and CKS against a plain-PyTorch rendering of the official definitions."""
import functools

import pytest
import torch
from torch import nn

from lkconv.nn.bevanet import CKS, SDLSKA, BEVANetDWConv, BEVANetPWConv
from lkconv.nn.conv import DepthwiseConv2d

from .helpers import check_bf16_autocast, check_channels_last, compare_to_reference, randomize


# ---- reference: maomao0819/BEVANet models/conv.py, models/FS.py, models/LSKA.py, with nn.Conv2d ----
class RefDWConv(nn.Module):
    def __init__(self, dim=768, kernel_size=3, stride=1, padding=1, dilation=1, bias=True):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, stride, padding, dilation, bias=bias, groups=dim)

    def forward(self, x):
        return self.dwconv(x)


class RefPWConv(nn.Module):
    def __init__(self, in_channels=768, out_channels=None, bias=True):
        super().__init__()
        out_channels = out_channels or in_channels
        self.pwconv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pwconv(x)


class RefCKS(nn.Module):
    def __init__(self, dim, dwconv=RefDWConv, pwconv=RefPWConv):
        super().__init__()
        hidden_channel = max(dim // 16, 32)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc_reduce = nn.Sequential(
            pwconv(dim, hidden_channel), dwconv(hidden_channel), nn.BatchNorm2d(hidden_channel), nn.ReLU(inplace=True)
        )
        self.fc_expand_small = nn.Sequential(
            pwconv(hidden_channel, dim), dwconv(dim), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)
        )
        self.fc_expand_big_h = nn.Sequential(
            pwconv(hidden_channel, dim), dwconv(dim), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)
        )
        self.fc_expand_big_v = nn.Sequential(
            pwconv(hidden_channel, dim), dwconv(dim), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)
        )
        self.conv_squeeze = nn.Conv2d(2, 3, 7, padding=3)

    def forward(self, attn_small, attn_big_h, attn_big_v):
        attn = attn_small + attn_big_h + attn_big_v
        feats_Z = self.fc_reduce(self.avg_pool(attn))
        sig_small_channel = torch.sigmoid(self.fc_expand_small(feats_Z))
        sig_big_h_channel = torch.sigmoid(self.fc_expand_big_h(feats_Z))
        sig_big_v_channel = torch.sigmoid(self.fc_expand_big_v(feats_Z))
        avg_attn = torch.mean(attn, dim=1, keepdim=True)
        max_attn, _ = torch.max(attn, dim=1, keepdim=True)
        sig = torch.sigmoid(self.conv_squeeze(torch.cat([avg_attn, max_attn], dim=1)))
        sig_small, sig_big_h, sig_big_v = torch.chunk(sig, chunks=3, dim=1)
        return (
            attn_small * sig_small_channel * sig_small
            + attn_big_h * sig_big_h_channel * sig_big_h
            + attn_big_v * sig_big_v_channel * sig_big_v
        )


class RefSDLSKA(nn.Module):
    def __init__(self, dim, kernel_size, dwconv=RefDWConv, pwconv=RefPWConv):
        super().__init__()
        if kernel_size == 7 or kernel_size == 11:
            self.DW_conv = dwconv(dim, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        else:
            self.DW_conv = dwconv(dim, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
        if kernel_size == 7:
            self.DW_D_conv_h = dwconv(dim, kernel_size=(1, 3), stride=(1, 1), padding=(0, 2), dilation=2)
            self.DW_D_conv_v = dwconv(dim, kernel_size=(3, 1), stride=(1, 1), padding=(2, 0), dilation=2)
        elif kernel_size == 11:
            self.DW_D_conv_h = dwconv(dim, kernel_size=(1, 5), stride=(1, 1), padding=(0, 4), dilation=2)
            self.DW_D_conv_v = dwconv(dim, kernel_size=(5, 1), stride=(1, 1), padding=(4, 0), dilation=2)
        elif kernel_size == 23:
            self.DW_D_conv_h = dwconv(dim, kernel_size=(1, 7), stride=(1, 1), padding=(0, 9), dilation=3)
            self.DW_D_conv_v = dwconv(dim, kernel_size=(7, 1), stride=(1, 1), padding=(9, 0), dilation=3)
        elif kernel_size == 35:
            self.DW_D_conv_h = dwconv(dim, kernel_size=(1, 11), stride=(1, 1), padding=(0, 15), dilation=3)
            self.DW_D_conv_v = dwconv(dim, kernel_size=(11, 1), stride=(1, 1), padding=(15, 0), dilation=3)
        self.pwconv = pwconv(dim)
        self.FS_kernel = RefCKS(dim, dwconv=RefDWConv, pwconv=RefPWConv)

    def forward(self, x):
        u = x.clone()
        attn_small = self.DW_conv(x)
        attn_big_h = self.DW_D_conv_h(attn_small)
        attn_big_v = self.DW_D_conv_v(attn_small)
        attn = self.FS_kernel(attn_small, attn_big_h, attn_big_v)
        attn = self.pwconv(attn)
        return u * attn


# ---- equivalence with the official definitions ----
@pytest.mark.parametrize("kernel_size", [7, 11, 23, 35])
@pytest.mark.parametrize("train", [False, True])
def test_sdlska_matches_official(kernel_size, train):
    block, ref = SDLSKA(4, kernel_size), RefSDLSKA(4, kernel_size)
    randomize(block, bn_mean_std=0.2)
    block.train(train)
    ref.train(train)
    compare_to_reference(block, ref, [torch.randn(2, 4, 9, 12)])


@pytest.mark.parametrize("train", [False, True])
def test_cks_matches_official(train):
    block, ref = CKS(40), RefCKS(40)
    randomize(block, bn_mean_std=0.2)
    block.train(train)
    ref.train(train)
    compare_to_reference(block, ref, [torch.randn(3, 40, 5, 7) for _ in range(3)])


def test_official_widths_and_depthwise_convs():
    block = SDLSKA(8, 23)
    assert block.FS_kernel.fc_reduce[0].pwconv.out_channels == 32  # max(8 // 16, 32)
    assert CKS(1024).fc_reduce[0].pwconv.out_channels == 64
    convs = [block.DW_conv.dwconv, block.DW_D_conv_h.dwconv, block.DW_D_conv_v.dwconv]
    convs += [seq[1].dwconv for seq in (block.FS_kernel.fc_reduce, block.FS_kernel.fc_expand_small)]
    for conv in convs:
        assert isinstance(conv, DepthwiseConv2d)
    assert block.DW_conv.dwconv.kernel_size == (5, 5)
    assert block.DW_D_conv_h.dwconv.kernel_size == (1, 7) and block.DW_D_conv_h.dwconv.dilation == (3, 3)
    assert block.DW_D_conv_v.dwconv.padding == (9, 0)


def test_custom_conv_factories_are_used_for_the_attention_branches_only():
    dw = functools.partial(BEVANetDWConv, bias=False)
    pw = functools.partial(BEVANetPWConv, bias=False)
    block = SDLSKA(4, 7, dwconv=dw, pwconv=pw)
    assert block.DW_conv.dwconv.bias is None and block.DW_D_conv_v.dwconv.bias is None
    assert block.pwconv.pwconv.bias is None
    assert block.FS_kernel.fc_reduce[1].dwconv.bias is not None  # CKS keeps the default wrappers
    ref_dw = functools.partial(RefDWConv, bias=False)
    ref = RefSDLSKA(4, 7, dwconv=ref_dw, pwconv=functools.partial(RefPWConv, bias=False))
    randomize(block, bn_mean_std=0.2)
    block.eval()
    ref.eval()
    compare_to_reference(block, ref, [torch.randn(2, 4, 6, 6)])


# ---- layouts and dtypes ----
def test_channels_last():
    block = SDLSKA(4, 11).eval()
    randomize(block, bn_mean_std=0.2)
    x = torch.randn(2, 4, 9, 10)
    check_channels_last(block, x)


@pytest.mark.parametrize("kernel_size", [7, 35])
def test_bf16_autocast(kernel_size):
    block = SDLSKA(4, kernel_size).eval()
    randomize(block, bn_mean_std=0.2)
    check_bf16_autocast(block, RefSDLSKA(4, kernel_size).eval(), [torch.randn(2, 4, 9, 10)])


def test_cks_bf16_autocast():
    block = CKS(8).eval()
    randomize(block, bn_mean_std=0.2)
    check_bf16_autocast(block, RefCKS(8).eval(), [torch.randn(2, 8, 6, 5) for _ in range(3)])


# ---- bad configuration ----
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SDLSKA(4, 9), "kernel_size"),
        (lambda: SDLSKA(4, 53), "kernel_size"),
        (lambda: SDLSKA(0, 7), "dim"),
        (lambda: CKS(0), "dim"),
        (lambda: BEVANetDWConv(-1), "dim"),
        (lambda: BEVANetPWConv(4, -3), "out_channels"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
