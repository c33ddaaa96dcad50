"""Structural re-parameterization: fuse BatchNorm into convs, merge parallel kernels, walk a model.

Blocks with parallel training-time branches implement ``reparameterize()`` (in place: they build their single
inference conv and drop the branches). :func:`reparameterize` calls it on every such module of a model;
timm's ``reparameterize_model`` finds the same method.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def fuse_bn(kernel: Tensor, bias: Optional[Tensor], bn: nn.BatchNorm2d) -> Tuple[Tensor, Tensor]:
    """(kernel, bias) of conv followed by eval-mode ``bn``: kernel (C_out, ..., kh, kw), bias (C_out,) or None."""
    std = (bn.running_var + bn.eps).sqrt()
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return kernel * scale.reshape(-1, *([1] * (kernel.dim() - 1))), beta + (b - bn.running_mean) * scale


def pad_kernel(kernel: Tensor, kh: int, kw: int) -> Tensor:
    """Zero-pad a (..., h, w) kernel to (..., kh, kw), centred (the extra row/column, if any, goes last)."""
    h, w = kernel.shape[-2:]
    if h > kh or w > kw:
        raise ValueError(f"cannot pad a {h}x{w} kernel to {kh}x{kw}")
    top, left = (kh - h) // 2, (kw - w) // 2
    return F.pad(kernel, (left, kw - w - left, top, kh - h - top))


def dilate_kernel(kernel: Tensor, dilation: int) -> Tensor:
    """The dense kernel equal to ``kernel`` (..., k, k') applied with ``dilation``: zeros between taps."""
    if dilation == 1:
        return kernel
    h, w = kernel.shape[-2:]
    out = kernel.new_zeros(*kernel.shape[:-2], (h - 1) * dilation + 1, (w - 1) * dilation + 1)
    out[..., ::dilation, ::dilation] = kernel
    return out


def conv_bn_kernel(conv: nn.Conv2d, bn: Optional[nn.BatchNorm2d]) -> Tuple[Tensor, Tensor]:
    """(kernel, bias) of ``conv`` (+ ``bn`` if given) with the conv's dilation folded into a dense kernel."""
    kernel = dilate_kernel(conv.weight, conv.dilation[0]) if conv.dilation[0] == conv.dilation[1] else None
    if kernel is None:
        raise ValueError(f"unequal dilation {conv.dilation} cannot be folded")
    bias = conv.bias
    if bn is None:
        return kernel, bias if bias is not None else kernel.new_zeros(kernel.shape[0])
    return fuse_bn(kernel, bias, bn)


@torch.no_grad()
def reparameterize(model: nn.Module) -> nn.Module:
    """Turn every re-parameterizable block of ``model`` into its single-conv inference form, in place.

    Calls ``reparameterize()`` once on each module (``model`` included) that defines it; each block fuses
    only its own branches. Use in eval mode; returns ``model``.
    """
    for module in list(model.modules()):
        fn = getattr(module, "reparameterize", None)
        if callable(fn):
            fn()
    return model
