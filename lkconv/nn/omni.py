"""The omni-kernel module (large 1xk / kx1 / kxk depthwise branches + frequency-domain attention) and
MSVM-UNet's large-kernel patch expanding layers.

OmniKernel
    Paper: "HieraEdgeNet: A Multi-Scale Edge-Enhanced Framework for Automated Pollen Recognition" (2025).
    Official code: https://github.com/AyinMostima/PalynoKit (ultralytics/nn/extra_modules/block.py:
    ``FGM``, ``OmniKernel``). The module originates in "Omni-Kernel Network for Image Restoration"
    (Cui et al., AAAI 2024), https://github.com/c-yn/OKNet (``BottleNect`` / ``FGM`` in models/OKNet.py),
    which uses k = 63 and a dense ``fgm.conv``: ``OmniKernel(dim, kernel_size=63, fgm_conv_groups=1)``.

LKPE, FLKPE
    Paper: "MSVM-UNet: Multi-Scale Vision Mamba UNet for Medical Image Segmentation" (BIBM 2024).
    Official code: https://github.com/gndlwch2w/msvm-unet (model/decoder.py).
"""
from __future__ import annotations

from typing import Optional, Type

import torch
from torch import nn

from ..reparam import pad_kernel
from .conv import DepthwiseConv2d
from .layers import check_positive_int

__all__ = ["FGM", "OmniKernel", "LKPE", "FLKPE"]


def _fft_gate(gate: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """|ifft2(gate * fft2(x))| over the last two dims; gate broadcasts against x (both real).

    The FFTs run in float32 (float64 for float64 inputs) with autocast off: cuFFT has no bfloat16 transform
    and half only for power-of-two sizes. The result is float32 (float64) as under CPU autocast, where
    PyTorch runs the FFTs in float32 itself.
    """
    work = torch.float64 if torch.float64 in (gate.dtype, x.dtype) else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        spec = torch.fft.fft2(x.to(work), norm="backward")
        return torch.fft.ifft2(gate.to(work) * spec, dim=(-2, -1), norm="backward").abs()


class FGM(nn.Module):
    """Frequency gating module: ``|ifft2(dwconv1(x) * fft2(dwconv2(x)))| * alpha + x * beta``.

    ``dwconv1`` / ``dwconv2`` are dense 1x1 convs (the official names). ``conv`` (3x3, dim -> 2*dim) is part
    of the official state_dict but unused by the forward pass; it is depthwise (``conv_groups=None``, as in
    HieraEdgeNet) or grouped / dense (``conv_groups=1`` as in OKNet). x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, conv_groups: Optional[int] = None):
        super().__init__()
        check_positive_int("dim", dim)
        groups = dim if conv_groups is None else conv_groups
        if not isinstance(groups, int) or groups < 1 or dim % groups != 0:
            raise ValueError(f"conv_groups must be a positive divisor of dim={dim} (or None), got {conv_groups!r}")
        if groups == dim:
            self.conv = DepthwiseConv2d(dim, dim * 2, 3, 1, 1)
        else:
            self.conv = nn.Conv2d(dim, dim * 2, 3, 1, 1, groups=groups)
        self.dwconv1 = nn.Conv2d(dim, dim, 1, 1)
        self.dwconv2 = nn.Conv2d(dim, dim, 1, 1)
        self.alpha = nn.Parameter(torch.zeros(dim, 1, 1))
        self.beta = nn.Parameter(torch.ones(dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fft_gate(self.dwconv1(x), self.dwconv2(x)) * self.alpha + x * self.beta


class OmniKernel(nn.Module):
    """Omni-kernel module: global (frequency attention), large (1xk, kx1, kxk depthwise) and local branches.

    ``out = GELU(in_conv(x))``; global: frequency channel attention ``|ifft2(fac_conv(pool(out)) *
    fft2(out))|``, then spatial channel attention ``conv(pool(.)) * .``, then :class:`FGM`; large + local:
    ``dw_13(out) + dw_31(out) + dw_33(out) + dw_11(out)``. Returns
    ``out_conv(ReLU(x + large + local + global))``. x: (N, dim, H, W) -> (N, dim, H, W).

    :meth:`reparameterize` folds the four parallel depthwise convs (all linear in ``out``, zero-padded,
    stride 1) into one kxk depthwise conv ``reparam_conv``; the output is unchanged up to rounding.
    """

    def __init__(self, dim: int, kernel_size: int = 31, fgm_conv_groups: Optional[int] = None):
        super().__init__()
        check_positive_int("dim", dim)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        ker, pad = kernel_size, kernel_size // 2
        self.in_conv = nn.Sequential(nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1), nn.GELU())
        self.out_conv = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1)
        self.dw_13 = DepthwiseConv2d(dim, dim, kernel_size=(1, ker), padding=(0, pad), stride=1)
        self.dw_31 = DepthwiseConv2d(dim, dim, kernel_size=(ker, 1), padding=(pad, 0), stride=1)
        self.dw_33 = DepthwiseConv2d(dim, dim, kernel_size=ker, padding=pad, stride=1)
        self.dw_11 = DepthwiseConv2d(dim, dim, kernel_size=1, padding=0, stride=1)
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fac_conv = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.fac_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fgm = FGM(dim, conv_groups=fgm_conv_groups)
        self.register_module("reparam_conv", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.in_conv(x)
        x_fca = _fft_gate(self.fac_conv(self.fac_pool(out)), out)
        x_sca = self.fgm(self.conv(self.pool(x_fca)) * x_fca)
        if self.reparam_conv is not None:
            out = x + self.reparam_conv(out) + x_sca
        else:
            out = x + self.dw_13(out) + self.dw_31(out) + self.dw_33(out) + self.dw_11(out) + x_sca
        return self.out_conv(self.act(out))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace dw_13, dw_31, dw_33 and dw_11 by their sum ``reparam_conv`` (k x k depthwise), in place."""
        if self.reparam_conv is not None:
            return
        k = self.dw_33.kernel_size[0]
        branches = (self.dw_13, self.dw_31, self.dw_33, self.dw_11)
        weight = sum(pad_kernel(conv.weight, k, k) for conv in branches)
        bias = sum(conv.bias for conv in branches)
        fused = DepthwiseConv2d(
            weight.shape[0], weight.shape[0], k, padding=k // 2, device=weight.device, dtype=weight.dtype
        )
        fused.algorithm = self.dw_33.algorithm
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.reparam_conv = fused
        for name in ("dw_13", "dw_31", "dw_33", "dw_11"):
            delattr(self, name)


def _expand(dim: int, out_dim: int) -> nn.Sequential:
    """1x1 conv, BatchNorm, ReLU, 3x3 depthwise conv (indices 0..3, as the official ``nn.Sequential``)."""
    return nn.Sequential(
        nn.Conv2d(dim, out_dim, kernel_size=1, bias=True),
        nn.BatchNorm2d(out_dim),
        nn.ReLU(inplace=True),
        DepthwiseConv2d(out_dim, out_dim, kernel_size=3, padding=1, bias=True),
    )


def _shuffle_norm(x: torch.Tensor, scale: int, norm: nn.Module) -> torch.Tensor:
    """(B, scale*scale*c, H, W) -> (B, c, scale*H, scale*W): channel (p1, p2, c) goes to pixel (p1, p2), then
    ``norm`` is applied to the (B, scale*H*scale*W, c) token view."""
    b, ch, h, w = x.shape
    c = ch // (scale * scale)
    x = x.reshape(b, scale, scale, c, h, w).permute(0, 4, 1, 5, 2, 3).reshape(b, -1, c)
    x = norm(x)
    return x.reshape(b, h * scale, w * scale, c).permute(0, 3, 1, 2)


class LKPE(nn.Module):
    """Large-kernel patch expanding: 2x upsampling that halves the channels.

    ``expand`` (1x1 conv dim -> 2*dim, BN, ReLU, 3x3 depthwise) then a 2x pixel shuffle whose channel order is
    (p1, p2, c) (einops ``b h w (p1 p2 c) -> b (h p1) (w p2) c``), then ``norm`` over the dim // 2 channels.
    x: (N, dim, H, W) -> (N, dim // 2, 2H, 2W).
    """

    def __init__(self, dim: int, dim_scale: int = 2, norm_layer: Type[nn.Module] = nn.LayerNorm):
        super().__init__()
        check_positive_int("dim", dim)
        if dim % 2 != 0:
            raise ValueError(f"dim must be even (2*dim channels are shuffled into 2x2 pixels of dim/2), got {dim}")
        if dim_scale != 2:
            raise ValueError(f"dim_scale must be 2 (LKPE upsamples by a fixed 2x2 shuffle), got {dim_scale!r}")
        self.dim = dim
        self.expand = _expand(dim, dim * 2)
        self.norm = norm_layer(dim // dim_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _shuffle_norm(self.expand(x), 2, self.norm)


class FLKPE(nn.Module):
    """Final large-kernel patch expanding: 4x upsampling to ``num_classes`` logits.

    ``expand`` (1x1 conv dim -> 16*dim, BN, ReLU, 3x3 depthwise), a 4x4 pixel shuffle in (p1, p2, c) channel
    order, ``norm`` over dim channels, then the 1x1 classifier ``out``.
    x: (N, dim, H, W) -> (N, num_classes, 4H, 4W).
    """

    def __init__(self, dim: int, num_classes: int, dim_scale: int = 4, norm_layer: Type[nn.Module] = nn.LayerNorm):
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("num_classes", num_classes)
        if dim_scale != 4:
            raise ValueError(f"dim_scale must be 4 (16*dim channels are shuffled into 4x4 pixels), got {dim_scale!r}")
        self.dim = dim
        self.dim_scale = dim_scale
        self.expand = _expand(dim, dim * 16)
        self.output_dim = dim
        self.norm = norm_layer(self.output_dim)
        self.out = nn.Conv2d(self.output_dim, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(_shuffle_norm(self.expand(x), self.dim_scale, self.norm))
