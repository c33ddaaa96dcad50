"""VAN's large kernel attention (LKA), its attention module, MLP and block.

Paper: "Visual Attention Network" (Guo et al., Computational Visual Media 2023).
Official code: https://github.com/Visual-Attention-Network/VAN-Classification (models/van.py).

Class names carry a ``VAN`` prefix where the official name is generic (``Attention`` -> ``VANAttention``,
``Block`` -> ``VANBlock``, ``Mlp`` -> ``VANMlp``, ``DWConv`` -> ``VANDWConv``); submodule and parameter
names are the official ones, so official state_dicts load unchanged.
"""
from __future__ import annotations

import math
from typing import Optional, Type

import torch
from torch import nn

from .conv import DepthwiseConv2d
from .layers import DropPath, check_positive_int

__all__ = ["LKA", "VANAttention", "VANDWConv", "VANMlp", "VANBlock"]


def _van_init_weights(m: nn.Module) -> None:
    """The official initialisation of VAN's Mlp and Block (Conv2d: normal(0, sqrt(2 / fan_out)), zero bias)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.zeros_(m.bias)
        nn.init.ones_(m.weight)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        with torch.no_grad():
            m.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                m.bias.zero_()


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


class LKA(nn.Module):
    """Large kernel attention: 5x5 depthwise, 7x7 depthwise with dilation 3, 1x1 conv, then ``x * attn``.

    The two depthwise convs together cover a 21x21 receptive field. x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int):
        super().__init__()
        check_positive_int("dim", dim)
        self.conv0 = DepthwiseConv2d(dim, dim, 5, padding=2)
        self.conv_spatial = DepthwiseConv2d(dim, dim, 7, stride=1, padding=9, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv1(self.conv_spatial(self.conv0(x)))
        return x * attn


class VANAttention(nn.Module):
    """VAN's attention (official ``Attention``): 1x1 conv, GELU, LKA, 1x1 conv, plus the input.

    x: (N, d_model, H, W) -> (N, d_model, H, W).
    """

    def __init__(self, d_model: int):
        super().__init__()
        check_positive_int("d_model", d_model)
        self.proj_1 = nn.Conv2d(d_model, d_model, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = LKA(d_model)
        self.proj_2 = nn.Conv2d(d_model, d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x))))
        return y + x


class VANDWConv(nn.Module):
    """VAN's ``DWConv``: a 3x3 depthwise conv with bias, held as ``dwconv``. x: (N, dim, H, W) -> same."""

    def __init__(self, dim: int = 768):
        super().__init__()
        check_positive_int("dim", dim)
        self.dwconv = DepthwiseConv2d(dim, dim, 3, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dwconv(x)


class VANMlp(nn.Module):
    """VAN's convolutional MLP (official ``Mlp``): fc1 (1x1), 3x3 depthwise, act, drop, fc2 (1x1), drop.

    x: (N, in_features, H, W) -> (N, out_features, H, W).
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Optional[int] = None,
        out_features: Optional[int] = None,
        act_layer: Type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        check_positive_int("in_features", in_features)
        check_positive_int("hidden_features", hidden_features)
        check_positive_int("out_features", out_features)
        _check_prob("drop", drop)
        self.fc1 = nn.Conv2d(in_features, hidden_features, 1)
        self.dwconv = VANDWConv(hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden_features, out_features, 1)
        self.drop = nn.Dropout(drop)
        self.apply(_van_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class VANBlock(nn.Module):
    """VAN's block (official ``Block``): two pre-norm (BatchNorm) residual branches with layer scale.

    ``x + drop_path(layer_scale_1 * attn(norm1(x)))``, then ``x + drop_path(layer_scale_2 * mlp(norm2(x)))``;
    the MLP hidden width is ``int(dim * mlp_ratio)``. x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        act_layer: Type[nn.Module] = nn.GELU,
    ):
        super().__init__()
        check_positive_int("dim", dim)
        if int(dim * mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio must give at least one hidden channel, got int({dim} * {mlp_ratio}) = 0")
        _check_prob("drop_path", drop_path)
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = VANAttention(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = VANMlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.layer_scale_1 = nn.Parameter(1e-2 * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(1e-2 * torch.ones(dim))
        self.apply(_van_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        x = x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))
        return x
