"""InceptionNeXt's Inception depthwise convolution token mixer.

Paper: "InceptionNeXt: When Inception Meets ConvNeXt" (Yu et al., CVPR 2024).
Official code: https://github.com/sail-sg/inceptionnext (models/inceptionnext.py).
"""
from __future__ import annotations

import torch
from torch import nn

from .conv import DepthwiseConv2d

__all__ = ["InceptionDWConv2d"]


class InceptionDWConv2d(nn.Module):
    """Split the channels into four groups: identity, k_s x k_s, 1 x k_b and k_b x 1 depthwise convs.

    With ``gc = int(in_channels * branch_ratio)`` the split is ``(in_channels - 3 * gc, gc, gc, gc)``
    (identity, ``dwconv_hw``, ``dwconv_w``, ``dwconv_h``) and the outputs are concatenated in that order.
    Submodule names and the state_dict match the official ``InceptionDWConv2d``.

    x: (N, in_channels, H, W) -> (N, in_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        square_kernel_size: int = 3,
        band_kernel_size: int = 11,
        branch_ratio: float = 0.125,
    ):
        super().__init__()
        gc = int(in_channels * branch_ratio)
        if gc < 1:
            raise ValueError(
                f"branch_ratio * in_channels must be >= 1 (each conv branch needs a channel), got "
                f"int({in_channels} * {branch_ratio}) = {gc}"
            )
        if 3 * gc > in_channels:
            raise ValueError(
                f"branch_ratio must leave a non-negative identity group: 3 * int(in_channels * branch_ratio) = "
                f"{3 * gc} exceeds in_channels = {in_channels}"
            )
        for name, k in (("square_kernel_size", square_kernel_size), ("band_kernel_size", band_kernel_size)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"{name} must be a positive odd integer (size-preserving padding), got {k}")
        self.dwconv_hw = DepthwiseConv2d(gc, gc, square_kernel_size, padding=square_kernel_size // 2)
        self.dwconv_w = DepthwiseConv2d(gc, gc, (1, band_kernel_size), padding=(0, band_kernel_size // 2))
        self.dwconv_h = DepthwiseConv2d(gc, gc, (band_kernel_size, 1), padding=(band_kernel_size // 2, 0))
        self.split_indexes = (in_channels - 3 * gc, gc, gc, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_id, x_hw, x_w, x_h = torch.split(x, self.split_indexes, dim=1)
        return torch.cat((x_id, self.dwconv_hw(x_hw), self.dwconv_w(x_w), self.dwconv_h(x_h)), dim=1)
