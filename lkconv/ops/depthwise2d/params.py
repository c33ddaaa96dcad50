"""Argument normalization and validation for depthwise 2D convolution.

Every public entry point funnels its arguments through :func:`parse_conv_args`, so errors read the same
everywhere and every algorithm sees the same normalized problem: explicit per-side zero padding
(top, bottom, left, right), integer pairs for stride and dilation, and a padding mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import torch

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)

IntOrPair = Union[int, Sequence[int]]


def conv_out_hw(h: int, w: int, kh: int, kw: int, stride, pad, dilation) -> Tuple[int, int]:
    """(Ho, Wo) of a convolution of an (h, w) input; pad = (top, bottom, left, right) zeros."""
    ho = (h + pad[0] + pad[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + pad[2] + pad[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return ho, wo


@dataclass(frozen=True)
class ConvGeometry:
    """A normalized depthwise convolution problem (zero padding already explicit).

    pad: (top, bottom, left, right). For non-zero padding modes the caller pads the input first and the
    geometry carries ``mode_pad`` (same order) with ``pad`` all zeros.
    """

    stride: Tuple[int, int]
    dilation: Tuple[int, int]
    pad: Tuple[int, int, int, int]
    padding_mode: str = "zeros"
    mode_pad: Tuple[int, int, int, int] = (0, 0, 0, 0)

    def out_size(self, h: int, w: int, kh: int, kw: int) -> Tuple[int, int]:
        """Output (Ho, Wo) for an input of (h, w) after ``mode_pad`` and zero ``pad``."""
        pad = tuple(a + b for a, b in zip(self.pad, self.mode_pad))
        return conv_out_hw(h, w, kh, kw, self.stride, pad, self.dilation)


def _pair(value: IntOrPair, name: str, minimum: int) -> Tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list, torch.Size)) and len(value) == 2:
        pair = tuple(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def same_padding(kh: int, kw: int, dilation: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Padding that keeps the spatial size at stride 1 (extra row/column at the bottom/right, as PyTorch)."""
    th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    return (th // 2, th - th // 2, tw // 2, tw - tw // 2)


def check_tensors(input: torch.Tensor, weight: torch.Tensor, bias) -> Tuple[int, int]:
    """Validate tensor arguments; return (in_channels, depth multiplier)."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if input.dim() != 4:
        raise ValueError(f"input must be 4-D (N, C, H, W), got shape {tuple(input.shape)}")
    if weight.dim() != 4 or weight.shape[1] != 1:
        raise ValueError(f"weight must be (C*m, 1, kh, kw) for a depthwise conv, got shape {tuple(weight.shape)}")
    c = input.shape[1]
    if c == 0 or weight.shape[0] == 0 or weight.shape[0] % c != 0:
        raise ValueError(
            f"weight.shape[0] must be a positive multiple of the input channels ({c}), got {weight.shape[0]}"
        )
    if weight.shape[2] < 1 or weight.shape[3] < 1:
        raise ValueError(f"kernel size must be >= 1, got {tuple(weight.shape[2:])}")
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(f"input dtype must be one of float32/float16/bfloat16/float64, got {input.dtype}")
    if weight.dtype != input.dtype:
        raise TypeError(f"weight dtype ({weight.dtype}) must match input dtype ({input.dtype})")
    if weight.device != input.device:
        raise ValueError(f"weight is on {weight.device} but input is on {input.device}")
    if bias is not None:
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
        if bias.dtype != input.dtype:
            raise TypeError(f"bias dtype ({bias.dtype}) must match input dtype ({input.dtype})")
        if bias.device != input.device:
            raise ValueError(f"bias is on {bias.device} but input is on {input.device}")
    return c, weight.shape[0] // c


def parse_conv_args(
    input: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrPair = 1,
    padding: Union[IntOrPair, str] = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """Validate and normalize geometry arguments (same meaning as ``F.conv2d`` / ``nn.Conv2d``)."""
    stride_p = _pair(stride, "stride", 1)
    dilation_p = _pair(dilation, "dilation", 1)
    kh, kw = weight.shape[-2:]
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0, 0, 0)
        elif padding == "same":
            if stride_p != (1, 1):
                raise ValueError(f"padding='same' requires stride 1, got stride={stride!r}")
            pad = same_padding(kh, kw, dilation_p)
        else:
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _pair(padding, "padding", 0)
        pad = (ph, ph, pw, pw)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    h, w = input.shape[-2:]
    if padding_mode != "zeros" and any(pad):
        if padding_mode == "reflect" and (max(pad[0], pad[1]) >= h or max(pad[2], pad[3]) >= w):
            raise ValueError(
                f"padding {pad} too large for padding_mode='reflect' on an input of size {(h, w)} "
                "(each side must be smaller than the dimension)"
            )
        if padding_mode == "circular" and (max(pad[0], pad[1]) > h or max(pad[2], pad[3]) > w):
            raise ValueError(
                f"padding {pad} too large for padding_mode='circular' on an input of size {(h, w)} "
                "(each side must be at most the dimension)"
            )
        geom = ConvGeometry(stride_p, dilation_p, (0, 0, 0, 0), padding_mode, pad)
    else:
        geom = ConvGeometry(stride_p, dilation_p, pad)
    ho, wo = geom.out_size(h, w, kh, kw)
    if ho < 1 or wo < 1:
        raise ValueError(
            f"kernel {(kh, kw)} with dilation {dilation_p} does not fit the padded input "
            f"({h}+{pad[0] + pad[1] + sum(geom.mode_pad[:2])}, {w}+{pad[2] + pad[3] + sum(geom.mode_pad[2:])}): "
            f"output would be {(ho, wo)}"
        )
    return geom


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last when the input is laid out that way (channel stride 1, not plain contiguous)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
