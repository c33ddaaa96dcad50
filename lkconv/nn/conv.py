"""``DepthwiseConv2d``: an ``nn.Conv2d`` that runs on lkconv's op, and ``convert`` to swap it into models."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..ops.depthwise2d import depthwise_conv2d


def is_depthwise(conv: nn.Conv2d) -> bool:
    """True when conv is a depthwise convolution: groups == in_channels and out_channels a multiple of it."""
    return conv.groups == conv.in_channels and conv.out_channels % conv.in_channels == 0


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(channels, channels * m, kernel_size, ..., groups=channels)`` computed by lkconv.

    Same constructor, parameters and state_dict as ``nn.Conv2d``; ``groups`` defaults to ``in_channels``.
    ``algorithm`` ("auto", "direct", "implicit_gemm", "fft", "torch") is a plain attribute, not state.
    x: (N, C, H, W) -> (N, C*m, Ho, Wo).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: Optional[int] = None,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
        algorithm: str = "auto",
    ):
        groups = in_channels if groups is None else groups
        if groups != in_channels or out_channels % in_channels != 0:
            raise ValueError(
                f"DepthwiseConv2d needs groups == in_channels and out_channels a multiple of in_channels, "
                f"got in_channels={in_channels}, out_channels={out_channels}, groups={groups}"
            )
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
            device=device, dtype=dtype,
        )
        self.algorithm = algorithm

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return depthwise_conv2d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.padding_mode,
            getattr(self, "algorithm", "auto"),
        )

    def extra_repr(self) -> str:
        s = super().extra_repr()
        algo = getattr(self, "algorithm", "auto")
        return s if algo == "auto" else f"{s}, algorithm={algo!r}"


def convert(model: nn.Module, algorithm: str = "auto") -> nn.Module:
    """Swap every depthwise ``nn.Conv2d`` in ``model`` for :class:`DepthwiseConv2d`, in place; returns model.

    Parameters, buffers and hooks stay the same objects (optimizers keep working); only modules whose type
    is exactly ``nn.Conv2d`` change, so subclasses with their own forward are left alone.
    """
    for module in model.modules():
        if type(module) is nn.Conv2d and is_depthwise(module):
            module.__class__ = DepthwiseConv2d
            module.algorithm = algorithm
        elif isinstance(module, DepthwiseConv2d):
            module.algorithm = algorithm
    return model
