"""Plain-PyTorch depthwise 2D convolution: the ground truth, the CPU path and the "torch" algorithm.

All functions take the normalized zero-padded problem (``pad = (top, bottom, left, right)``), which is what
every algorithm in this package receives after :mod:`.params` has applied non-zero padding modes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .params import IntOrPair, parse_conv_args, check_tensors


def _is_symmetric(pad: Sequence[int]) -> bool:
    return pad[0] == pad[1] and pad[2] == pad[3]


def _mode_pad(x: torch.Tensor, mode_pad: Sequence[int], padding_mode: str) -> torch.Tensor:
    if not any(mode_pad):
        return x
    pt, pb, pl, pr = mode_pad
    return F.pad(x, (pl, pr, pt, pb), mode=padding_mode)


def depthwise_conv2d_fwd_torch(x, weight, bias, stride, pad, dilation):
    """y = depthwise conv of x (N, C, H, W) with weight (C*m, 1, kh, kw), zero padding ``pad`` (t, b, l, r)."""
    c = x.shape[1]
    if _is_symmetric(pad):
        return F.conv2d(x, weight, bias, tuple(stride), (pad[0], pad[2]), tuple(dilation), c)
    xp = F.pad(x, (pad[2], pad[3], pad[0], pad[1]))
    return F.conv2d(xp, weight, bias, tuple(stride), 0, tuple(dilation), c)


def depthwise_conv2d_dgrad_torch(grad_out, x, weight, stride, pad, dilation):
    """dL/dx (same shape as x) for the problem of :func:`depthwise_conv2d_fwd_torch`."""
    c = x.shape[1]
    if _is_symmetric(pad):
        shape_src, padding = x, [pad[0], pad[2]]
    else:
        n, _, h, w = x.shape
        shape_src = x.new_empty(()).expand(n, c, h + pad[0] + pad[1], w + pad[2] + pad[3])
        padding = [0, 0]
    dx = torch.ops.aten.convolution_backward(
        grad_out, shape_src, weight, None, list(stride), padding, list(dilation), False, [0, 0], c,
        [True, False, False],
    )[0]
    if not _is_symmetric(pad):
        dx = dx[:, :, pad[0]: pad[0] + x.shape[2], pad[2]: pad[2] + x.shape[3]]
    return dx


def depthwise_conv2d_wgrad_torch(grad_out, x, weight, stride, pad, dilation):
    """dL/dweight (same shape as weight) for the problem of :func:`depthwise_conv2d_fwd_torch`."""
    c = x.shape[1]
    if _is_symmetric(pad):
        src, padding = x, [pad[0], pad[2]]
    else:
        src, padding = F.pad(x, (pad[2], pad[3], pad[0], pad[1])), [0, 0]
    return torch.ops.aten.convolution_backward(
        grad_out, src, weight, None, list(stride), padding, list(dilation), False, [0, 0], c,
        [False, True, False],
    )[1]


def depthwise_conv2d_reference(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: IntOrPair = 1,
    padding=0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """The public contract in plain PyTorch (differentiable through autograd); same arguments as the op."""
    check_tensors(input, weight, bias)
    geom = parse_conv_args(input, weight, stride, padding, dilation, padding_mode)
    x = _mode_pad(input, geom.mode_pad, geom.padding_mode)
    return depthwise_conv2d_fwd_torch(x, weight, bias, geom.stride, geom.pad, geom.dilation)
