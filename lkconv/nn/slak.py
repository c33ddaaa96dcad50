"""SLaK blocks: the decomposed large-kernel conv (K x s + s x K + s x s, each + BN) and the SLaK block.

Paper: "More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using Sparsity" (Liu et al., ICLR 2023).
Official code: https://github.com/VITA-Group/SLaK (``models/SLaK.py``).

Submodule and parameter names follow the official code, so official checkpoints load with
``load_state_dict`` unchanged. The official convs are ``DepthWiseConv2dImplicitGEMM(channels, kernel)``:
depthwise, stride 1, padding ``(kh // 2, kw // 2)`` whatever arguments ``conv_bn`` is given; here they are
:class:`lkconv.nn.DepthwiseConv2d` with exactly that geometry. SLaK's sparse training (dynamic sparsity
masks) is not part of these modules; the dense decomposed kernels are.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..reparam import conv_bn_kernel, pad_kernel
from .conv import DepthwiseConv2d
from .layers import check_positive_int, make_drop_path

__all__ = ["SLaKLargeKernelConv", "SLaKBlock"]

Tensor = torch.Tensor


def _slak_conv_bn(channels: int, kernel_size, bn: bool) -> nn.Sequential:
    """``Sequential(conv[, bn])``: depthwise ``kernel_size`` (int or (kh, kw)) conv, padding (kh // 2, kw // 2),
    no bias, then BatchNorm2d when ``bn``."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    result = nn.Sequential()
    result.add_module("conv", DepthwiseConv2d(channels, channels, (kh, kw), 1, (kh // 2, kw // 2), 1, channels,
                                              bias=False))
    if bn:
        result.add_module("bn", nn.BatchNorm2d(channels))
    return result


class SLaKLargeKernelConv(nn.Module):
    """SLaK's ``ReparamLargeKernelConv``: a depthwise K x K conv, optionally decomposed, plus a small kernel.

    ``Decom=True``: ``LoRA1`` (K x small) + ``LoRA2`` (small x K); ``Decom=False``: ``lkb_origin`` (K x K);
    plus ``small_conv`` (small x small) when ``small_kernel < kernel_size``. Each branch is ``conv`` followed by
    ``bn`` (BatchNorm2d) when ``bn=True``; branch outputs are summed. Deploy form (``small_kernel_merged=True``
    or after :meth:`merge_kernel`): one biased K x K depthwise conv ``lkb_reparam``.
    The official kernel is depthwise and stride 1, so ``out_channels`` and ``groups`` must equal
    ``in_channels`` and ``stride`` must be 1. x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int,
                 small_kernel: Optional[int], small_kernel_merged: bool = False, Decom: bool = False,
                 bn: bool = True):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (SLaK's kernels are centred), got {kernel_size}")
        if out_channels != in_channels:
            raise ValueError(f"out_channels must equal in_channels ({in_channels}) for SLaK's depthwise kernel, "
                             f"got {out_channels!r}")
        if groups != in_channels:
            raise ValueError(f"groups must equal in_channels ({in_channels}) for SLaK's depthwise kernel, "
                             f"got {groups!r}")
        if stride != 1:
            raise ValueError(f"stride must be 1 (SLaK's depthwise kernel is stride-1), got {stride!r}")
        if small_kernel is not None:
            check_positive_int("small_kernel", small_kernel)
            if small_kernel % 2 == 0:
                raise ValueError(f"small_kernel must be odd (SLaK's kernels are centred), got {small_kernel}")
        if Decom and (small_kernel is None or small_kernel > kernel_size):
            raise ValueError(f"with Decom=True, small_kernel must be an odd int <= kernel_size ({kernel_size}) "
                             f"(the width of the K x small and small x K kernels), got {small_kernel!r}")
        self.kernel_size = kernel_size
        self.small_kernel = small_kernel
        self.Decom = Decom
        if small_kernel_merged:
            self.lkb_reparam = DepthwiseConv2d(in_channels, in_channels, kernel_size, 1, kernel_size // 2, 1,
                                               in_channels, bias=True)
            return
        if Decom:
            self.LoRA1 = _slak_conv_bn(in_channels, (kernel_size, small_kernel), bn)
            self.LoRA2 = _slak_conv_bn(in_channels, (small_kernel, kernel_size), bn)
        else:
            self.lkb_origin = _slak_conv_bn(in_channels, kernel_size, bn)
        if small_kernel is not None and small_kernel < kernel_size:
            self.small_conv = _slak_conv_bn(in_channels, small_kernel, bn)

    def _branches(self) -> Sequence[nn.Sequential]:
        names = ("LoRA1", "LoRA2", "lkb_origin", "small_conv")
        return [getattr(self, name) for name in names if hasattr(self, name)]

    def forward(self, inputs: Tensor) -> Tensor:
        if hasattr(self, "lkb_reparam"):
            return self.lkb_reparam(inputs)
        out = None
        for branch in self._branches():
            y = branch(inputs)
            out = y if out is None else out + y
        return out

    @torch.no_grad()
    def get_equivalent_kernel_bias(self):
        """(kernel (C, 1, K, K), bias (C,)) of the eval-mode branches as one conv (every branch, decomposed or
        not, with or without BN, zero-padded to K x K and summed)."""
        kernel = bias = None
        for branch in self._branches():
            k, b = conv_bn_kernel(branch.conv, getattr(branch, "bn", None))
            k = pad_kernel(k, self.kernel_size, self.kernel_size)
            kernel, bias = (k, b) if kernel is None else (kernel + k, bias + b)
        return kernel, bias

    @torch.no_grad()
    def merge_kernel(self) -> None:
        """Replace the branches by the equivalent biased K x K ``lkb_reparam``, in place (use in eval mode)."""
        if hasattr(self, "lkb_reparam"):
            return
        kernel, bias = self.get_equivalent_kernel_bias()
        first = self._branches()[0].conv
        merged = DepthwiseConv2d(first.in_channels, first.in_channels, self.kernel_size, 1, self.kernel_size // 2,
                                 1, first.in_channels, bias=True, algorithm=getattr(first, "algorithm", "auto"))
        merged.to(device=kernel.device, dtype=kernel.dtype)
        merged.weight.copy_(kernel)
        merged.bias.copy_(bias)
        for name in ("LoRA1", "LoRA2", "lkb_origin", "small_conv"):
            if hasattr(self, name):
                delattr(self, name)
        self.lkb_reparam = merged

    def reparameterize(self) -> None:
        """Same as :meth:`merge_kernel` (the name :func:`lkconv.reparameterize` looks for)."""
        self.merge_kernel()


class SLaKBlock(nn.Module):
    """SLaK block (ConvNeXt layout): ``x + drop_path(gamma * pwconv2(act(pwconv1(norm(large_kernel(x))))))``.

    ``large_kernel``: :class:`SLaKLargeKernelConv` with ``kernel_size = (K, small)``; ``norm``: LayerNorm over
    channels (eps 1e-6) in (N, H, W, C); ``pwconv1``/``pwconv2``: Linear dim -> 4 dim -> dim; ``act``: GELU;
    ``gamma``: (dim,) layer scale. x: (N, dim, H, W) -> same shape.
    """

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale_init_value: float = 1e-6,
                 kernel_size=(7, 7), Decom=None, bn: bool = True):
        super().__init__()
        check_positive_int("dim", dim)
        if not isinstance(kernel_size, (tuple, list)) or len(kernel_size) != 2:
            raise ValueError(f"kernel_size must be a pair (large kernel, small kernel), got {kernel_size!r}")
        self.large_kernel = SLaKLargeKernelConv(dim, dim, kernel_size[0], stride=1, groups=dim,
                                                small_kernel=kernel_size[1], small_kernel_merged=False,
                                                Decom=Decom, bn=bn)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        if layer_scale_init_value is not None and layer_scale_init_value > 0:
            self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        else:
            self.gamma = None
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.large_kernel(x).permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + self.drop_path(x.permute(0, 3, 1, 2))

    def reparameterize(self) -> None:
        """Merge the large-kernel branches (``large_kernel.merge_kernel()``), in place; use in eval mode."""
        self.large_kernel.merge_kernel()
