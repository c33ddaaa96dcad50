"""RepLKNet blocks: the re-parameterized large-kernel conv, the RepLK block and the ConvFFN.

Paper: "Scaling Up Your Kernels to 31x31: Revisiting Large Kernel Design in CNNs" (Ding et al., CVPR 2022).
Official code: https://github.com/DingXiaoH/RepLKNet-pytorch (``replknet.py``).

Submodule and parameter names follow the official code, so official checkpoints (training-time and
``small_kernel_merged=True`` deploy ones) load with ``load_state_dict`` unchanged. Every depthwise conv is a
:class:`lkconv.nn.DepthwiseConv2d`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..reparam import conv_bn_kernel, pad_kernel
from .conv import DepthwiseConv2d
from .layers import check_positive_int, conv2d, make_drop_path

__all__ = ["ReparamLargeKernelConv", "RepLKBlock", "ConvFFN"]

Tensor = torch.Tensor


def _conv2d(in_channels, out_channels, kernel_size, stride, padding, groups, bias, dilation=1,
            pointwise=False) -> nn.Conv2d:
    """A :class:`DepthwiseConv2d` when the conv is depthwise (and not a ``pointwise`` 1x1 projection), else an
    ``nn.Conv2d``; both have the same state_dict."""
    if pointwise:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
    return conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)


def _conv_bn(in_channels, out_channels, kernel_size, stride, padding, groups, dilation=1,
             pointwise=False) -> nn.Sequential:
    """``Sequential(conv=conv (no bias), bn=BatchNorm2d)`` as the official ``conv_bn``."""
    result = nn.Sequential()
    result.add_module("conv", _conv2d(in_channels, out_channels, kernel_size, stride, padding, groups, False,
                                      dilation, pointwise))
    result.add_module("bn", nn.BatchNorm2d(out_channels))
    return result


def _conv_bn_relu(in_channels, out_channels, kernel_size, stride, padding, groups,
                  pointwise=False) -> nn.Sequential:
    """``Sequential(conv, bn, nonlinear=ReLU)`` as the official ``conv_bn_relu``."""
    result = _conv_bn(in_channels, out_channels, kernel_size, stride, padding, groups, pointwise=pointwise)
    result.add_module("nonlinear", nn.ReLU())
    return result


class ReparamLargeKernelConv(nn.Module):
    """RepLKNet's large-kernel conv: ``conv_bn(K) + conv_bn(small_kernel)``, mergeable into one K x K conv.

    Training form: ``lkb_origin`` (``conv`` K x K, ``bn``) plus, if ``small_kernel`` is not None, a parallel
    ``small_conv`` (``conv`` small x small, ``bn``) added to it; both padded by ``k // 2``.
    Deploy form (``small_kernel_merged=True`` or after :meth:`merge_kernel`): one biased conv ``lkb_reparam``.
    x: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo); Ho = (H - 1) // stride + 1 for odd K.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int,
                 small_kernel: Optional[int], small_kernel_merged: bool = False):
        super().__init__()
        for value, name in ((in_channels, "in_channels"), (out_channels, "out_channels"),
                            (kernel_size, "kernel_size"), (stride, "stride"), (groups, "groups")):
            check_positive_int(name, value)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups ({groups}) must divide in_channels ({in_channels}) and out_channels "
                             f"({out_channels})")
        if small_kernel is not None:
            check_positive_int("small_kernel", small_kernel)
            if small_kernel > kernel_size or (kernel_size - small_kernel) % 2:
                raise ValueError(f"small_kernel must be <= kernel_size ({kernel_size}) and differ from it by an "
                                 f"even number (so it sits centred in the large kernel), got {small_kernel}")
        self.kernel_size = kernel_size
        self.small_kernel = small_kernel
        padding = kernel_size // 2
        if small_kernel_merged:
            self.lkb_reparam = _conv2d(in_channels, out_channels, kernel_size, stride, padding, groups, True)
        else:
            self.lkb_origin = _conv_bn(in_channels, out_channels, kernel_size, stride, padding, groups)
            if small_kernel is not None:
                self.small_conv = _conv_bn(in_channels, out_channels, small_kernel, stride, small_kernel // 2,
                                           groups)

    def forward(self, inputs: Tensor) -> Tensor:
        if hasattr(self, "lkb_reparam"):
            return self.lkb_reparam(inputs)
        out = self.lkb_origin(inputs)
        if hasattr(self, "small_conv"):
            out = out + self.small_conv(inputs)
        return out

    @torch.no_grad()
    def get_equivalent_kernel_bias(self):
        """(kernel (out, in/groups, K, K), bias (out,)) of the eval-mode training form as a single conv."""
        eq_k, eq_b = conv_bn_kernel(self.lkb_origin.conv, self.lkb_origin.bn)
        if hasattr(self, "small_conv"):
            small_k, small_b = conv_bn_kernel(self.small_conv.conv, self.small_conv.bn)
            eq_k = eq_k + pad_kernel(small_k, self.kernel_size, self.kernel_size)
            eq_b = eq_b + small_b
        return eq_k, eq_b

    @torch.no_grad()
    def merge_kernel(self) -> None:
        """Replace ``lkb_origin`` (+ ``small_conv``) by the equivalent ``lkb_reparam``, in place (use in eval)."""
        if hasattr(self, "lkb_reparam"):
            return
        eq_k, eq_b = self.get_equivalent_kernel_bias()
        conv = self.lkb_origin.conv
        merged = _conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.groups, True, conv.dilation)
        merged.to(device=eq_k.device, dtype=eq_k.dtype)
        if isinstance(conv, DepthwiseConv2d):
            merged.algorithm = getattr(conv, "algorithm", "auto")
        merged.weight.copy_(eq_k)
        merged.bias.copy_(eq_b)
        self.lkb_reparam = merged
        del self.lkb_origin
        if hasattr(self, "small_conv"):
            del self.small_conv

    def reparameterize(self) -> None:
        """Same as :meth:`merge_kernel` (the name :func:`lkconv.reparameterize` looks for)."""
        self.merge_kernel()


class RepLKBlock(nn.Module):
    """RepLK block: ``x + drop_path(pw2(relu(large_kernel(pw1(prelkb_bn(x))))))``.

    ``prelkb_bn`` BatchNorm2d(in_channels); ``pw1`` 1x1 conv-BN-ReLU in_channels -> dw_channels;
    ``large_kernel`` :class:`ReparamLargeKernelConv` (depthwise, ``block_lk_size`` with a ``small_kernel``
    branch); ``lk_nonlinear`` ReLU; ``pw2`` 1x1 conv-BN dw_channels -> in_channels.
    x: (N, in_channels, H, W) -> same shape.
    """

    def __init__(self, in_channels: int, dw_channels: int, block_lk_size: int, small_kernel: Optional[int],
                 drop_path: float, small_kernel_merged: bool = False):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("dw_channels", dw_channels)
        self.pw1 = _conv_bn_relu(in_channels, dw_channels, 1, 1, 0, groups=1, pointwise=True)
        self.pw2 = _conv_bn(dw_channels, in_channels, 1, 1, 0, groups=1, pointwise=True)
        self.large_kernel = ReparamLargeKernelConv(dw_channels, dw_channels, block_lk_size, stride=1,
                                                   groups=dw_channels, small_kernel=small_kernel,
                                                   small_kernel_merged=small_kernel_merged)
        self.lk_nonlinear = nn.ReLU()
        self.prelkb_bn = nn.BatchNorm2d(in_channels)
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        out = self.prelkb_bn(x)
        out = self.pw1(out)
        out = self.large_kernel(out)
        out = self.lk_nonlinear(out)
        out = self.pw2(out)
        return x + self.drop_path(out)

    def reparameterize(self) -> None:
        """Merge the large-kernel branches (``large_kernel.merge_kernel()``), in place; use in eval mode."""
        self.large_kernel.merge_kernel()


class ConvFFN(nn.Module):
    """RepLKNet's FFN: ``x + drop_path(pw2(gelu(pw1(preffn_bn(x)))))`` with 1x1 conv-BN ``pw1``, ``pw2``.

    x: (N, in_channels, H, W) -> same shape (out_channels must equal in_channels for the residual).
    """

    def __init__(self, in_channels: int, internal_channels: int, out_channels: int, drop_path: float):
        super().__init__()
        for value, name in ((in_channels, "in_channels"), (internal_channels, "internal_channels"),
                            (out_channels, "out_channels")):
            check_positive_int(name, value)
        if out_channels != in_channels:
            raise ValueError(f"out_channels must equal in_channels ({in_channels}) for the residual, "
                             f"got {out_channels}")
        self.drop_path = make_drop_path(drop_path)
        self.preffn_bn = nn.BatchNorm2d(in_channels)
        self.pw1 = _conv_bn(in_channels, internal_channels, 1, 1, 0, groups=1, pointwise=True)
        self.pw2 = _conv_bn(internal_channels, out_channels, 1, 1, 0, groups=1, pointwise=True)
        self.nonlinear = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.preffn_bn(x)
        out = self.pw1(out)
        out = self.nonlinear(out)
        out = self.pw2(out)
        return x + self.drop_path(out)
