"""DCLS: 2D convolution whose kernel elements sit at learnable positions (``Dcls2d``).

Papers: "Dilated Convolution with Learnable Spacings" (Khalfaoui-Hassani, Pellegrini, Masquelier; ICLR 2023)
and "Dilated Convolution with Learnable Spacings: beyond bilinear interpolation" (ICML 2023 workshop).
Official code: https://github.com/K-H-Ismail/Dilated-Convolution-with-Learnable-Spacings-PyTorch
(DCLS/construct/modules.py: ``_DclsNd``, ``ConstructKernel2d``, ``Dcls2d``; DCLS 0.1.x).

Same constructor arguments (same order), attributes and parameters (``weight``, ``P``, ``SIG``, ``bias``) as the
official ``Dcls2d``, so its state_dicts load unchanged. The dense kernel is built by the fused
:func:`lkconv.ops.dcls.dcls_construct_kernel2d`; depthwise layers (``groups == in_channels``) then run on
lkconv's depthwise op, other layers on ``F.conv2d``.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init

from ..ops.dcls import VERSIONS, dcls_construct_kernel2d
from ..ops.depthwise2d import depthwise_conv2d

__all__ = ["ConstructKernel2d", "Dcls2d"]

Tensor = torch.Tensor

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(value, name: str, minimum: int) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list)) or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


class ConstructKernel2d(nn.Module):
    """Official ``ConstructKernel2d`` (no state): ``forward(W, P, SIG)`` -> dense kernel.

    W: (out_channels, in_channels // groups, kernel_count); P, SIG: (2, *W.shape) (SIG None for v0/v1).
    Returns (out_channels, in_channels // groups, *dilated_kernel_size).
    """

    def __init__(self, out_channels: int, in_channels: int, groups: int, kernel_count: int,
                 dilated_kernel_size, version: str):
        super().__init__()
        self.out_channels = out_channels
        self.in_channels = in_channels
        self.groups = groups
        self.kernel_count = kernel_count
        self.dilated_kernel_size = tuple(dilated_kernel_size)
        self.version = version

    def forward(self, W: Tensor, P: Tensor, SIG: Optional[Tensor]) -> Tensor:
        return dcls_construct_kernel2d(W, P, SIG, self.dilated_kernel_size, self.version)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_count={self.kernel_count}, version={self.version}"
        s += f", dilated_kernel_size={self.dilated_kernel_size}"
        return s + (f", groups={self.groups}" if self.groups != 1 else "")


class Dcls2d(nn.Module):
    """2D convolution with ``kernel_count`` weights per filter at learnable positions in a
    ``dilated_kernel_size`` window (official ``Dcls2d``).

    Args (official order): in_channels, out_channels, kernel_count, stride=1, padding=0,
    dilated_kernel_size=1, groups=1, bias=True, padding_mode="zeros", version="gauss" (one of "gauss",
    "max", "v1" bilinear, "v0"), use_implicit_gemm=True. Upstream that flag selects a CUDA depthwise
    kernel; here, when True, depthwise layers (groups == in_channels) run on lkconv's depthwise op,
    and when False every layer runs on ``F.conv2d``.

    Parameters: ``weight`` (out, in // groups, kernel_count), ``P`` (2, out, in // groups, kernel_count),
    ``SIG`` (same as P; "gauss" and "max" only, else None), ``bias`` (out,) or None.
    x: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo) as ``F.conv2d`` with the dense kernel.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_count: int,
        stride=1,
        padding=0,
        dilated_kernel_size=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        version: str = "gauss",
        use_implicit_gemm: bool = True,
    ):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if groups < 1 or in_channels % groups != 0:
            raise ValueError(f"in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"out_channels ({out_channels}) must be divisible by groups ({groups})")
        if kernel_count < 1:
            raise ValueError(f"kernel_count must be >= 1, got {kernel_count}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_count = kernel_count
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.dilated_kernel_size = _pair(dilated_kernel_size, "dilated_kernel_size", 1)
        self.transposed = False
        self.output_padding = (0, 0)
        self.groups = groups
        self.padding_mode = padding_mode
        self.version = version
        self._reversed_padding_repeated_twice = (self.padding[1], self.padding[1], self.padding[0], self.padding[0])
        slot = (out_channels, in_channels // groups, kernel_count)
        self.weight = nn.Parameter(torch.empty(slot))
        self.P = nn.Parameter(torch.empty((2,) + slot))
        if version in ("gauss", "max"):
            self.SIG = nn.Parameter(torch.empty((2,) + slot))
        else:
            self.register_parameter("SIG", None)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.use_implicit_gemm = use_implicit_gemm
        self.DCK = ConstructKernel2d(out_channels, in_channels, groups, kernel_count, self.dilated_kernel_size,
                                     version)
        self.reset_parameters()

    @property
    def is_depthwise(self) -> bool:
        return self.groups == self.in_channels and self.out_channels % self.in_channels == 0

    def reset_parameters(self) -> None:
        """Official initialization: Kaiming-uniform weight, uniform bias, P ~ N(0, 0.5) clamped to the
        window, SIG = 0.23 ("gauss") or 0 ("max")."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            for i, size in enumerate(self.dilated_kernel_size):
                lim = size // 2
                init.normal_(self.P.select(0, i), 0, 0.5).clamp_(-lim, lim)
            if self.SIG is not None:
                init.constant_(self.SIG, 0.23 if self.version == "gauss" else 0.0)

    @torch.no_grad()
    def clamp_parameters(self) -> None:
        """Clamp P[i] to [-D_i // 2, D_i // 2] (the official training loop calls this after each step)."""
        for i, size in enumerate(self.dilated_kernel_size):
            lim = size // 2
            self.P.select(0, i).clamp_(-lim, lim)

    def construct_kernel(self) -> Tensor:
        """The dense kernel (out_channels, in_channels // groups, *dilated_kernel_size)."""
        return self.DCK(self.weight, self.P, self.SIG)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        if self.use_implicit_gemm and self.is_depthwise:
            return depthwise_conv2d(input, weight, bias, self.stride, self.padding, 1, self.padding_mode)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(input, weight, bias, self.stride, 0, 1, self.groups)
        return F.conv2d(input, weight, bias, self.stride, self.padding, 1, self.groups)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.construct_kernel(), self.bias)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_count={self.kernel_count}, stride={self.stride}"
        s += f", version={self.version}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilated_kernel_size != (1, 1):
            s += f", dilated_kernel_size={self.dilated_kernel_size} (learnable)"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
