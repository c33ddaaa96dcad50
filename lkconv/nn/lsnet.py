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
from ..reparam import fuse_bn
from .conv import DepthwiseConv2d

__all__ = ["LSNetConv2dBN", "SKA", "LKP", "LSConv"]

Tensor = torch.Tensor


def _is_depthwise(in_channels: int, out_channels: int, groups: int) -> bool:
    return groups == in_channels and out_channels % in_channels == 0


class LSNetConv2dBN(nn.Sequential):
    """Conv (no bias) then BatchNorm: the official ``Conv2d_BN(a, b, ks, stride, pad, dilation, groups,
    bn_weight_init)``, submodules ``c`` and ``bn``.

    ``c`` is a :class:`DepthwiseConv2d` when depthwise (``groups == a``), else ``nn.Conv2d``.
    x: (N, a, H, W) -> (N, b, Ho, Wo).
    """

    def __init__(self, a: int, b: int, ks=1, stride=1, pad=0, dilation=1, groups: int = 1,
                 bn_weight_init: float = 1.0):
        super().__init__()
        if a < 1 or b < 1 or groups < 1 or a % groups or b % groups:
            raise ValueError(
                f"LSNetConv2dBN needs a and b positive multiples of groups, got a={a}, b={b}, groups={groups}"
            )
        conv_cls = DepthwiseConv2d if _is_depthwise(a, b, groups) else nn.Conv2d
        self.add_module("c", conv_cls(a, b, ks, stride, pad, dilation, groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.c(x)
        return self.bn(x) if "bn" in self._modules else x

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """The single biased conv equal to this module in eval mode (this module is left unchanged)."""
        c = self.c
        if "bn" not in self._modules:
            return c
        weight, bias = fuse_bn(c.weight, c.bias, self.bn)
        cls = DepthwiseConv2d if _is_depthwise(c.in_channels, c.out_channels, c.groups) else nn.Conv2d
        fused = cls(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups,
                    bias=True, device=weight.device, dtype=weight.dtype)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        return fused

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place (eval mode): ``c`` becomes the fused biased conv and ``bn`` is removed."""
        if "bn" in self._modules:
            self.c = self.fuse()
            del self.bn


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
