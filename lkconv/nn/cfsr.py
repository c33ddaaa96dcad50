"""CFSR's ConvMod (large-kernel depthwise token mixer) and edge-preserving FFN, with their reparameterization.

Paper: "Transforming Image Super-Resolution: A ConvFormer-based Efficient Approach" (Wu et al., IEEE TIP 2024).
Official code: https://github.com/Aitical/CFSR (basicsr/archs/cfsr_arch.py).

Training-time structure and names follow the official training version of the file (``ReparamLargeKernelConv``
with ``lkb_origin`` + ``small_conv`` + Sobel-x / Sobel-y / Laplacian branches, ``ConvMod``, ``MLP``, ``Block``);
the inference structure after ``reparameterize()`` (or when built with ``small_kernel_merged=True``) has the
names of the released checkpoints (``a.2.lkb_reparam.*``, ``mlp.pos.*``).

Each edge branch is a depthwise 3x3 conv whose kernel is a fixed mask times a learnable per-channel scale
(``scale_* * mask_*``, ``(C, 1, 3, 3)``), plus a learnable bias ``*_bias`` ``(C,)``. The masks are the official
ones, entry for entry:

    mask_sobel_x = [[0, 1, -1], [2, 0, -2], [1, 0, -1]]
    mask_sobel_y = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    mask_laplacian = [[1, 0, 0], [1, -4, 1], [0, 1, 0]]

They are constants, kept as persistent buffers (the official code stores them as ``nn.Parameter`` with
``requires_grad=False``; the state_dict keys and values are the same). All parallel depthwise branches of a
layer are linear in their kernels and share their padding centre, so the training-time forward sums the kernels
and runs one depthwise conv: the same function and gradients as the branch-by-branch official forward.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..ops.depthwise2d import depthwise_conv2d
from ..reparam import pad_kernel
from .conv import DepthwiseConv2d
from .layers import check_positive_int, conv2d

__all__ = ["CFSRReparamLargeKernelConv", "CFSRConvMod", "CFSREdgeFFN", "CFSRBlock"]

Tensor = torch.Tensor

_EDGE_BRANCHES = ("sobel_x", "sobel_y", "laplacian")
_EDGE_MASKS = {
    "sobel_x": ((0.0, 1.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0)),
    "sobel_y": ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0)),
    "laplacian": ((1.0, 0.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)),
}


def _add_edge_branches(module: nn.Module, channels: int) -> None:
    """Register the official edge-branch parameters and masks on ``module`` (official names and order)."""
    for name in _EDGE_BRANCHES:
        module.register_parameter(f"scale_{name}", nn.Parameter(torch.randn(channels, 1, 1, 1) * 1e-3))
        module.register_parameter(f"{name}_bias", nn.Parameter(torch.randn(channels) * 1e-3))
        mask = torch.tensor(_EDGE_MASKS[name], dtype=torch.float32).expand(channels, 1, 3, 3).clone()
        module.register_buffer(f"mask_{name}", mask)


def _has_edge_branches(module: nn.Module) -> bool:
    return hasattr(module, "scale_sobel_x")


def _edge_kernel(module: nn.Module):
    """(kernel (C, 1, 3, 3), bias (C,)) of the three edge branches together."""
    kernel = sum(getattr(module, f"scale_{n}") * getattr(module, f"mask_{n}") for n in _EDGE_BRANCHES)
    bias = sum(getattr(module, f"{n}_bias") for n in _EDGE_BRANCHES)
    return kernel, bias


def _drop_edge_branches(module: nn.Module) -> None:
    for name in _EDGE_BRANCHES:
        delattr(module, f"scale_{name}")
        delattr(module, f"{name}_bias")
        delattr(module, f"mask_{name}")


class CFSRReparamLargeKernelConv(nn.Module):
    """Large-kernel depthwise conv with a small-kernel branch and three edge branches (official
    ``ReparamLargeKernelConv`` of CFSR's training code).

    Training form: ``lkb_origin`` (``kernel_size``, biased) and, when ``small_kernel`` is given, ``small_conv``
    (``small_kernel``, biased) plus the Sobel-x / Sobel-y / Laplacian 3x3 branches; all share the centre
    (padding ``k // 2``). Inference form (``small_kernel_merged=True`` or after ``reparameterize()``): one
    biased ``lkb_reparam`` conv, the released checkpoints' layout. Depthwise convs are :class:`DepthwiseConv2d`.
    With ``small_kernel`` the conv must be depthwise (``in_channels == out_channels == groups``), stride 1,
    ``kernel_size`` odd >= 3 and ``small_kernel`` odd <= ``kernel_size``.
    x: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int,
                 small_kernel: Optional[int] = None, small_kernel_merged: bool = False):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size), ("stride", stride), ("groups", groups)):
            check_positive_int(name, value)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if small_kernel is not None:
            check_positive_int("small_kernel", small_kernel)
            if not in_channels == out_channels == groups:
                raise ValueError(f"the small-kernel and edge branches are depthwise: need in_channels == "
                                 f"out_channels == groups, got {in_channels}, {out_channels}, {groups}")
            if stride != 1:
                raise ValueError(f"the edge branches run at stride 1, so stride must be 1, got {stride}")
            if kernel_size % 2 == 0 or kernel_size < 3:
                raise ValueError(f"kernel_size must be odd and >= 3 (the 3x3 edge branches merge into it), "
                                 f"got {kernel_size}")
            if small_kernel % 2 == 0 or small_kernel > kernel_size:
                raise ValueError(f"small_kernel must be odd and <= kernel_size ({kernel_size}), got {small_kernel}")
        self.kernel_size = kernel_size
        self.small_kernel = small_kernel
        self.out_channels = out_channels
        padding = kernel_size // 2
        if small_kernel_merged:
            self.lkb_reparam = conv2d(in_channels, out_channels, kernel_size, stride, padding, 1, groups)
            return
        self.lkb_origin = conv2d(in_channels, out_channels, kernel_size, stride, padding, 1, groups)
        if small_kernel is not None:
            self.small_conv = conv2d(in_channels, out_channels, small_kernel, stride, small_kernel // 2, 1, groups)
            _add_edge_branches(self, in_channels)

    def merged_kernel(self):
        """(weight (C, 1, k, k), bias (C,)) of the single conv equal to all branches (differentiable)."""
        if hasattr(self, "lkb_reparam"):
            return self.lkb_reparam.weight, self.lkb_reparam.bias
        weight, bias = self.lkb_origin.weight, self.lkb_origin.bias
        if hasattr(self, "small_conv"):
            k = self.kernel_size
            edge_w, edge_b = _edge_kernel(self)
            weight = weight + pad_kernel(self.small_conv.weight, k, k) + pad_kernel(edge_w, k, k)
            bias = bias + self.small_conv.bias + edge_b
        return weight, bias

    def forward(self, x: Tensor) -> Tensor:
        if not hasattr(self, "small_conv"):
            conv = self.lkb_reparam if hasattr(self, "lkb_reparam") else self.lkb_origin
            return conv(x)
        weight, bias = self.merged_kernel()
        conv = self.lkb_origin
        return depthwise_conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.padding_mode,
                                getattr(conv, "algorithm", "auto"))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place: build ``lkb_reparam`` from all branches and remove ``lkb_origin``, ``small_conv`` and the
        edge branches (the official ``merge_reparam_large_kernel_conv``)."""
        if hasattr(self, "lkb_reparam"):
            return
        weight, bias = self.merged_kernel()
        origin = self.lkb_origin
        self.lkb_reparam = conv2d(origin.in_channels, origin.out_channels, self.kernel_size, origin.stride[0],
                                  origin.padding[0], 1, origin.groups).to(device=weight.device, dtype=weight.dtype)
        self.lkb_reparam.weight.copy_(weight)
        self.lkb_reparam.bias.copy_(bias)
        del self.lkb_origin
        if hasattr(self, "small_conv"):
            del self.small_conv
            _drop_edge_branches(self)


class _LayerNormChannelsFirst(nn.Module):
    """LayerNorm over the channel dim of (N, C, H, W): biased variance, eps inside the square root."""

    def __init__(self, normalized_shape: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.normalized_shape = (normalized_shape,)

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class CFSRConvMod(nn.Module):
    """CFSR's ConvMod token mixer (official ``ConvMod``): ``proj(a(norm(x)) * v(norm(x)))``.

    ``norm``: channels-first LayerNorm (eps 1e-6); ``a``: 1x1 conv -> GELU -> ``dw_size x dw_size`` depthwise
    :class:`CFSRReparamLargeKernelConv` (with the ``small_kernel`` and edge branches when training); ``v``,
    ``proj``: 1x1 convs. ``dw_size`` odd. x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, dw_size: int, small_kernel: Optional[int] = None,
                 small_kernel_merged: bool = False):
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("dw_size", dw_size)
        if dw_size % 2 == 0:
            raise ValueError(f"dw_size must be odd (a * v needs the size kept), got {dw_size}")
        self.norm = _LayerNormChannelsFirst(dim, eps=1e-6)
        self.a = nn.Sequential(
            nn.Conv2d(dim, dim, 1),
            nn.GELU(),
            CFSRReparamLargeKernelConv(dim, dim, dw_size, stride=1, groups=dim, small_kernel=small_kernel,
                                       small_kernel_merged=small_kernel_merged),
        )
        self.v = nn.Conv2d(dim, dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        return self.proj(self.a(x) * self.v(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        self.a[2].reparameterize()


def _hidden_channels(dim: int, mlp_ratio) -> int:
    ratio = float(mlp_ratio)
    if ratio <= 0 or not ratio.is_integer():
        raise ValueError(f"mlp_ratio must be a positive whole number (hidden channels = dim * mlp_ratio), "
                         f"got {mlp_ratio!r}")
    return dim * int(ratio)


class CFSREdgeFFN(nn.Module):
    """CFSR's edge-preserving FFN (official ``MLP``): 1x1 expand, GELU, 3x3 depthwise + edge branches, 1x1 reduce.

    ``h = GELU(fc1(norm(x)))``; ``e = pos(h) + sobel_x(h) + sobel_y(h) + laplacian(h)`` (depthwise 3x3, each
    edge branch ``scale_* * mask_*`` with ``*_bias``); returns ``fc2(h + GELU(e))``. Hidden channels
    ``dim * mlp_ratio``. ``merged=True`` builds the inference form (``pos`` only, the released checkpoints'
    layout); ``reparameterize()`` folds the edge branches into ``pos`` (the official ``merge_mlp``).
    x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, mlp_ratio=4, merged: bool = False):
        super().__init__()
        check_positive_int("dim", dim)
        hidden = _hidden_channels(dim, mlp_ratio)
        self.out_channels = hidden
        self.norm = _LayerNormChannelsFirst(dim, eps=1e-6)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.pos = DepthwiseConv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.act = nn.GELU()
        if not merged:
            _add_edge_branches(self, hidden)

    def merged_kernel(self):
        """(weight (C, 1, 3, 3), bias (C,)) of ``pos`` plus the edge branches (differentiable)."""
        if not _has_edge_branches(self):
            return self.pos.weight, self.pos.bias
        edge_w, edge_b = _edge_kernel(self)
        return self.pos.weight + edge_w, self.pos.bias + edge_b

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.fc1(self.norm(x)))
        weight, bias = self.merged_kernel()
        out = depthwise_conv2d(x, weight, bias, 1, 1, 1, "zeros", getattr(self.pos, "algorithm", "auto"))
        return self.fc2(x + self.act(out))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place: ``pos`` takes the summed kernel and bias; the edge branches are removed."""
        if not _has_edge_branches(self):
            return
        weight, bias = self.merged_kernel()
        self.pos.weight.copy_(weight)
        self.pos.bias.copy_(bias)
        _drop_edge_branches(self)


class CFSRBlock(nn.Module):
    """CFSR's ConvFormer block (official ``Block``): two layer-scaled residuals, ConvMod then edge FFN.

    ``x = x + layer_scale_1 * attn(x)``; ``x = x + layer_scale_2 * mlp(x)`` (``layer_scale_*``: (dim,), init
    1e-6). ``small_kernel_merged=True`` builds both sub-blocks in their inference form (the released
    checkpoints' keys). x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, dw_size: int, small_kernel: Optional[int] = None,
                 small_kernel_merged: bool = False, mlp_ratio=4.0):
        super().__init__()
        self.attn = CFSRConvMod(dim, dw_size, small_kernel, small_kernel_merged)
        self.mlp = CFSREdgeFFN(dim, mlp_ratio, merged=small_kernel_merged)
        self.layer_scale_1 = nn.Parameter(1e-6 * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.layer_scale_1[:, None, None] * self.attn(x)
        return x + self.layer_scale_2[:, None, None] * self.mlp(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        self.attn.reparameterize()
        self.mlp.reparameterize()
