"""BEVANet's sparse decomposed large separable kernel attention (SDLSKA) and its kernel selection (CKS).

Paper: "BEVANet: Bilateral Efficient Visual Attention Network for Real-Time Semantic Segmentation"
(ICIP 2025). Official code: https://github.com/maomao0819/BEVANet (models/LSKA.py, models/FS.py,
models/conv.py).

The official depthwise/pointwise wrappers ``DWConv`` / ``PWConv`` are :class:`BEVANetDWConv` /
:class:`BEVANetPWConv` here (same inner names ``dwconv`` / ``pwconv``), so official state_dicts load unchanged.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .conv import DepthwiseConv2d
from .layers import check_positive_int

__all__ = ["BEVANetDWConv", "BEVANetPWConv", "CKS", "SDLSKA"]


class BEVANetDWConv(nn.Module):
    """BEVANet's ``DWConv``: one depthwise conv held as ``dwconv``. x: (N, dim, H, W) -> (N, dim, Ho, Wo)."""

    def __init__(self, dim: int = 768, kernel_size=3, stride=1, padding=1, dilation=1, bias: bool = True):
        super().__init__()
        check_positive_int("dim", dim)
        self.dwconv = DepthwiseConv2d(dim, dim, kernel_size, stride, padding, dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dwconv(x)


class BEVANetPWConv(nn.Module):
    """BEVANet's ``PWConv``: a 1x1 conv held as ``pwconv``. x: (N, in_channels, H, W) -> (N, out_channels, H, W)."""

    def __init__(self, in_channels: int = 768, out_channels: Optional[int] = None, bias: bool = True):
        super().__init__()
        out_channels = out_channels or in_channels
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        self.pwconv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pwconv(x)


def _gate_branch(in_channels: int, out_channels: int, dwconv: Callable, pwconv: Callable) -> nn.Sequential:
    """1x1 conv, 3x3 depthwise conv, BatchNorm, ReLU (indices 0..3, as the official ``nn.Sequential``)."""
    return nn.Sequential(
        pwconv(in_channels, out_channels),
        dwconv(out_channels),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CKS(nn.Module):
    """Channel-and-spatial kernel selection: fuse three attention maps with per-branch gates.

    With ``attn = small + big_h + big_v`` (each (N, dim, H, W)): channel gates
    ``sigmoid(fc_expand_*(fc_reduce(avg_pool(attn))))`` of shape (N, dim, 1, 1), hidden width
    ``max(dim // 16, 32)``; spatial gates ``sigmoid(conv_squeeze([mean_c(attn), max_c(attn)]))`` split into
    three (N, 1, H, W) maps. Returns ``sum_b branch_b * channel_gate_b * spatial_gate_b``: (N, dim, H, W).
    """

    def __init__(self, dim: int, dwconv: Callable = BEVANetDWConv, pwconv: Callable = BEVANetPWConv):
        super().__init__()
        check_positive_int("dim", dim)
        hidden_channel = max(dim // 16, 32)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc_reduce = _gate_branch(dim, hidden_channel, dwconv, pwconv)
        self.fc_expand_small = _gate_branch(hidden_channel, dim, dwconv, pwconv)
        self.fc_expand_big_h = _gate_branch(hidden_channel, dim, dwconv, pwconv)
        self.fc_expand_big_v = _gate_branch(hidden_channel, dim, dwconv, pwconv)
        self.conv_squeeze = nn.Conv2d(2, 3, 7, padding=3)

    def forward(self, attn_small: torch.Tensor, attn_big_h: torch.Tensor, attn_big_v: torch.Tensor) -> torch.Tensor:
        attn = attn_small + attn_big_h + attn_big_v
        feats_z = self.fc_reduce(self.avg_pool(attn))
        ch_small = torch.sigmoid(self.fc_expand_small(feats_z))
        ch_big_h = torch.sigmoid(self.fc_expand_big_h(feats_z))
        ch_big_v = torch.sigmoid(self.fc_expand_big_v(feats_z))
        agg = torch.cat([attn.mean(dim=1, keepdim=True), attn.max(dim=1, keepdim=True).values], dim=1)
        sp_small, sp_big_h, sp_big_v = torch.sigmoid(self.conv_squeeze(agg)).chunk(3, dim=1)
        return attn_small * ch_small * sp_small + attn_big_h * ch_big_h * sp_big_h + attn_big_v * ch_big_v * sp_big_v


# kernel_size -> (small square kernel, dilated band length, dilation); the band padding keeps H, W.
_SDLSKA_TABLE = {7: (3, 3, 2), 11: (3, 5, 2), 23: (5, 7, 3), 35: (5, 11, 3)}


class SDLSKA(nn.Module):
    """Sparse decomposed large separable kernel attention.

    A small square depthwise conv (``DW_conv``: 3x3 for kernel_size 7/11, 5x5 for 23/35) feeds two parallel
    dilated band depthwise convs (``DW_D_conv_h``: 1 x b, ``DW_D_conv_v``: b x 1); :class:`CKS`
    (``FS_kernel``) fuses the three maps, a 1x1 conv (``pwconv``) mixes channels and the result gates the input:
    ``x * pwconv(FS_kernel(small, big_h, big_v))``. Effective kernel sizes and their (b, dilation):
    7 -> (3, 2), 11 -> (5, 2), 23 -> (7, 3), 35 -> (11, 3). x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, kernel_size: int, dwconv: Callable = BEVANetDWConv, pwconv: Callable = BEVANetPWConv):
        super().__init__()
        check_positive_int("dim", dim)
        if kernel_size not in _SDLSKA_TABLE:
            raise ValueError(f"kernel_size must be one of {tuple(_SDLSKA_TABLE)}, got {kernel_size!r}")
        small, band, dil = _SDLSKA_TABLE[kernel_size]
        pad = dil * (band - 1) // 2
        self.DW_conv = dwconv(dim, kernel_size=(small, small), stride=(1, 1), padding=(small // 2, small // 2))
        self.DW_D_conv_h = dwconv(dim, kernel_size=(1, band), stride=(1, 1), padding=(0, pad), dilation=dil)
        self.DW_D_conv_v = dwconv(dim, kernel_size=(band, 1), stride=(1, 1), padding=(pad, 0), dilation=dil)
        self.pwconv = pwconv(dim)
        self.FS_kernel = CKS(dim, dwconv=BEVANetDWConv, pwconv=BEVANetPWConv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn_small = self.DW_conv(x)
        attn = self.FS_kernel(attn_small, self.DW_D_conv_h(attn_small), self.DW_D_conv_v(attn_small))
        return x * self.pwconv(attn)
