"""The description of one depthwise-conv call that algorithms and the dispatcher reason about."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch

from .params import conv_out_hw

DIRECTIONS = ("fwd", "dgrad", "wgrad")


def layout_of(x: torch.Tensor) -> str:
    """'nhwc' when channels are the innermost dimension in memory, else 'nchw'."""
    if x.shape[1] > 1 and x.stride(1) == 1:
        return "nhwc"
    return "nchw"


@dataclass(frozen=True)
class Problem:
    """One direction of one depthwise conv: the input x (N, C, H, W), weight (C*m, 1, kh, kw), output (Ho, Wo)."""

    direction: str
    n: int
    c: int
    h: int
    w: int
    mult: int
    kh: int
    kw: int
    ho: int
    wo: int
    stride: Tuple[int, int]
    pad: Tuple[int, int, int, int]
    dilation: Tuple[int, int]
    dtype: torch.dtype
    layout: str
    device: torch.device
    numel_max: int

    @staticmethod
    def make(direction, x, weight, stride, pad, dilation) -> "Problem":
        n, c, h, w = x.shape
        cout, _, kh, kw = weight.shape
        ho, wo = conv_out_hw(h, w, kh, kw, stride, pad, dilation)
        return Problem(
            direction, n, c, h, w, cout // c, kh, kw, ho, wo, tuple(stride), tuple(pad), tuple(dilation),
            x.dtype, layout_of(x), x.device, max(x.numel(), n * cout * ho * wo),
        )

    @property
    def flops(self) -> int:
        """2 * N * C_out * Ho * Wo * kh * kw: the multiply-adds of one direction."""
        return 2 * self.n * self.c * self.mult * self.ho * self.wo * self.kh * self.kw

    def key(self) -> str:
        """A string that identifies the problem for the autotune cache."""
        return (
            f"{self.direction}|n{self.n}c{self.c}m{self.mult}|{self.h}x{self.w}|k{self.kh}x{self.kw}"
            f"|s{self.stride[0]}x{self.stride[1]}|d{self.dilation[0]}x{self.dilation[1]}"
            f"|p{'-'.join(map(str, self.pad))}|{str(self.dtype).replace('torch.', '')}|{self.layout}"
        )
