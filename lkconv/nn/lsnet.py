"""LSNet's "see large, focus small" token mixer: LKP (large-kernel perception), SKA and LSConv.

Paper: "LSNet: See Large, Focus Small" (Wang, Chen, Lin, Han, Ding; CVPR 2025).
Official code: https://github.com/THU-MIG/lsnet (model/lsnet.py, model/ska.py).

Submodule and parameter names follow the official ``Conv2d_BN`` (``c``, ``bn``), ``LKP`` (``cv1``..``cv4``,
``norm``) and ``LSConv`` (``lkp``, ``ska``, ``bn``), so official state_dicts load unchanged. The large
depthwise conv (``lkp.cv2.c``) is a :class:`DepthwiseConv2d` and SKA runs on :func:`lkconv.ops.ska.ska`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops.ska import ska
from .layers import Conv2dBN

__all__ = ["LSNetConv2dBN", "SKA", "LKP", "LSConv"]

Tensor = torch.Tensor


class LSNetConv2dBN(Conv2dBN):
    """LSNet's ``Conv2d_BN(a, b, ks, stride, pad, dilation, groups, bn_weight_init)`` (the same official class
    as FFNet's, see :class:`lkconv.nn.layers.Conv2dBN`): conv (no bias) ``c`` then BatchNorm ``bn``; ``c`` is
    a :class:`DepthwiseConv2d` when depthwise (``groups == a``), else ``nn.Conv2d``.

    x: (N, a, H, W) -> (N, b, Ho, Wo).
    """


class SKA(nn.Module):
    """Small-kernel aggregation (no parameters): ``forward(x, w)`` = :func:`lkconv.ops.ska.ska`.

    x: (N, C, H, W); w: (N, WC, k*k, H, W), channel c aggregated with kernel group ``c % WC``.
    Returns (N, C, H, W).
    """

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return ska(x, w)


class LKP(nn.Module):
    """Large-kernel perception: per-pixel k x k kernels from a large depthwise receptive field.

    ``cv1`` 1x1 conv+BN (dim -> dim/2), ReLU, ``cv2`` lks x lks depthwise conv+BN, ``cv3`` 1x1 conv+BN,
    ReLU, ``cv4`` 1x1 conv (dim/2 -> sks^2 * dim/groups, biased), ``norm`` GroupNorm with dim/groups groups.
    x: (N, dim, H, W) -> w: (N, dim // groups, sks * sks, H, W).
    """

    def __init__(self, dim: int, lks: int, sks: int, groups: int):
        super().__init__()
        if dim < 2:
            raise ValueError(f"dim must be >= 2 (LKP works on dim // 2 channels), got {dim}")
        if groups < 1 or dim % groups:
            raise ValueError(f"groups must be a positive divisor of dim={dim}, got {groups}")
        if lks < 1 or lks % 2 == 0:
            raise ValueError(f"lks must be a positive odd kernel size (size-preserving padding), got {lks}")
        if sks < 1:
            raise ValueError(f"sks must be >= 1, got {sks}")
        half = dim // 2
        self.cv1 = LSNetConv2dBN(dim, half)
        self.act = nn.ReLU()
        self.cv2 = LSNetConv2dBN(half, half, ks=lks, pad=(lks - 1) // 2, groups=half)
        self.cv3 = LSNetConv2dBN(half, half)
        self.cv4 = nn.Conv2d(half, sks ** 2 * dim // groups, kernel_size=1)
        self.norm = nn.GroupNorm(num_groups=dim // groups, num_channels=sks ** 2 * dim // groups)
        self.sks = sks
        self.groups = groups
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.cv3(self.cv2(self.act(self.cv1(x)))))
        w = self.norm(self.cv4(x))
        n, _, h, wd = w.shape
        return w.view(n, self.dim // self.groups, self.sks ** 2, h, wd)


class LSConv(nn.Module):
    """LSNet's token mixer: ``bn(ska(x, lkp(x))) + x``.

    The official ``LSConv(dim)`` uses ``lks=7, sks=3, groups=8``; they are optional arguments here.
    x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, lks: int = 7, sks: int = 3, groups: int = 8):
        super().__init__()
        self.lkp = LKP(dim, lks=lks, sks=sks, groups=groups)
        self.ska = SKA()
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.ska(x, self.lkp(x))) + x
