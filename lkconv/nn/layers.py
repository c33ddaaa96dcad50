"""Pieces shared by the block files: argument checks, stochastic depth, a conv that is a
:class:`DepthwiseConv2d` when its geometry is depthwise, and the conv + BatchNorm pair ``Conv2d_BN``.

``Conv2d_BN`` is the same official class in FFNet's and LSNet's code; it is :class:`Conv2dBN` here, and the
blocks' public names (``FFNetConv2dBN``, ``LSNetConv2dBN``) are subclasses of it with its state_dict names.
"""
from __future__ import annotations

import torch
from torch import nn

from ..reparam import fuse_bn
from .conv import DepthwiseConv2d, is_depthwise

__all__ = [
    "check_positive_int", "drop_path", "DropPath", "make_drop_path", "conv2d", "fused_conv_like", "Conv2dBN",
]

Tensor = torch.Tensor


def check_positive_int(name: str, value) -> None:
    """Raise ValueError unless ``value`` is an int >= 1 (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def drop_path(x: Tensor, drop_prob: float = 0.0, training: bool = False) -> Tensor:
    """Stochastic depth per sample (timm's ``drop_path``): in training, zero each sample of x (N, ...) with
    probability ``drop_prob`` and scale the kept ones by ``1 / (1 - drop_prob)``; identity otherwise."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """:func:`drop_path` as a module (timm's ``DropPath``): active in training mode only. x: (N, ...) -> same."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


def make_drop_path(drop_prob: float) -> nn.Module:
    """``DropPath(drop_prob)``, or ``nn.Identity()`` for 0 (as the official blocks build their ``drop_path``);
    raises ValueError outside [0, 1)."""
    if not isinstance(drop_prob, (int, float)) or not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_path must be a probability in [0, 1), got {drop_prob!r}")
    return DropPath(float(drop_prob)) if drop_prob > 0.0 else nn.Identity()


def conv2d(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
           bias: bool = True) -> nn.Conv2d:
    """``nn.Conv2d(...)`` with these arguments, a :class:`DepthwiseConv2d` when depthwise (``groups ==
    in_channels`` and ``out_channels`` a multiple of it); both have the same parameters and state_dict."""
    depthwise = groups == in_channels and out_channels % in_channels == 0
    cls = DepthwiseConv2d if depthwise else nn.Conv2d
    return cls(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)


def fused_conv_like(conv: nn.Conv2d, weight: Tensor, bias: Tensor) -> nn.Conv2d:
    """A biased conv with ``conv``'s geometry (kernel size from ``weight``) holding (weight, bias), on their
    device and dtype; a :class:`DepthwiseConv2d` when ``conv`` is depthwise."""
    cls = DepthwiseConv2d if is_depthwise(conv) else nn.Conv2d
    fused = cls(
        conv.in_channels, conv.out_channels, weight.shape[2:], conv.stride, conv.padding, conv.dilation,
        conv.groups, bias=True, device=weight.device, dtype=weight.dtype,
    )
    fused.weight.data.copy_(weight)
    fused.bias.data.copy_(bias)
    return fused


class Conv2dBN(nn.Sequential):
    """Conv (no bias) then BatchNorm: the official ``Conv2d_BN(a, b, ks, stride, pad, dilation, groups,
    bn_weight_init)``, an ``nn.Sequential`` of ``c`` and ``bn`` (BatchNorm weight ``bn_weight_init``, bias 0).

    ``c`` is a :class:`DepthwiseConv2d` when depthwise (``groups == a``), else ``nn.Conv2d``.
    :meth:`fuse` returns the equivalent biased conv; :meth:`reparameterize` puts it in place of ``c`` and
    removes ``bn``. x: (N, a, H, W) -> (N, b, Ho, Wo).
    """

    def __init__(self, a: int, b: int, ks=1, stride=1, pad=0, dilation=1, groups: int = 1,
                 bn_weight_init: float = 1.0):
        super().__init__()
        if a < 1 or b < 1 or groups < 1 or a % groups or b % groups:
            raise ValueError(
                f"{type(self).__name__} needs a and b positive multiples of groups, got a={a}, b={b}, "
                f"groups={groups}"
            )
        self.in_channels = a
        self.groups = groups
        self.kernel_size = ks
        self.add_module("c", conv2d(a, b, ks, stride, pad, dilation, groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """The single biased conv equal to this module in eval mode (this module is left unchanged)."""
        if "bn" not in self._modules:
            return self.c
        weight, bias = fuse_bn(self.c.weight, self.c.bias, self.bn)
        return fused_conv_like(self.c, weight, bias)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place (eval mode): ``c`` becomes the fused biased conv and ``bn`` is removed."""
        if "bn" in self._modules:
            self.c = self.fuse()
            del self.bn
