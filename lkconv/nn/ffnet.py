"""FFNet's FFNified attention token mixer, its RepVGG-style multi-kernel depthwise conv, and the FFNet block.

Paper: "FFNet: MetaMixer-based Efficient Convolutional Mixer Design" (Yun & Ro, 2024).
Official code: https://github.com/ysj9909/FFNet (models/ffnet.py).

Submodule and parameter names follow the official ``Conv2d_BN``, ``RepVGGDW``, ``Token_Mixer``,
``Channel_Mixer`` and ``FFBlock``, so their state_dicts load unchanged. ``reparameterize()`` folds every
BatchNorm into its conv and every ``RepVGGDW`` (k x k + (k//2) x (k//2) depthwise branches) into one
depthwise conv, with the same module names the official ``fuse()`` / ``replace_batchnorm`` produce.
"""
from __future__ import annotations

import torch
from torch import nn

from ..reparam import fuse_bn, pad_kernel
from .conv import DepthwiseConv2d
from .layers import Conv2dBN, DropPath, check_positive_int, fused_conv_like

__all__ = ["FFNetConv2dBN", "FFNetRepVGGDW", "FFNifiedAttention", "FFNetChannelMixer", "FFBlock"]

Tensor = torch.Tensor


class FFNetConv2dBN(Conv2dBN):
    """FFNet's ``Conv2d_BN`` (the same official class as LSNet's, see :class:`lkconv.nn.layers.Conv2dBN`):
    conv (no bias) ``c`` then BatchNorm ``bn``; ``c`` is a :class:`DepthwiseConv2d` when ``groups == a``.

    x: (N, a, H, W) -> (N, b, Ho, Wo).
    """


class FFNetRepVGGDW(nn.Module):
    """Parallel depthwise conv+BN branches ``ks x ks`` (``conv``) and ``ks//2 x ks//2`` (``conv1``), summed.

    Official ``RepVGGDW`` of FFNet (no identity branch). Both branches use size-preserving padding, so
    ``ks`` and ``ks // 2`` must be odd (FFNet uses ks = 7: 7x7 + 3x3). ``out_dim`` is a multiple of ``in_dim``
    (depth multiplier, e.g. the stride-2 patch merging). ``reparameterize()`` folds both into one
    ``ks x ks`` :class:`DepthwiseConv2d` held as ``conv`` (``conv1`` removed).
    x: (N, in_dim, H, W) -> (N, out_dim, Ho, Wo), Ho = (H - 1) // stride + 1.
    """

    def __init__(self, in_dim: int, out_dim: int, ks: int = 7, stride: int = 1):
        super().__init__()
        if in_dim < 1 or out_dim % in_dim:
            raise ValueError(f"FFNetRepVGGDW needs out_dim a positive multiple of in_dim, got in_dim={in_dim}, "
                             f"out_dim={out_dim}")
        if ks < 3 or ks % 2 == 0 or (ks // 2) % 2 == 0:
            raise ValueError(f"ks must be odd with ks // 2 odd (e.g. 3, 7, 11), so both branches keep the size; "
                             f"got ks={ks}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.ks = ks
        self.stride = stride
        ks_ = ks // 2
        self.conv = FFNetConv2dBN(in_dim, out_dim, ks, stride, ks // 2, groups=in_dim)
        self.conv1 = FFNetConv2dBN(in_dim, out_dim, ks_, stride, ks_ // 2, groups=in_dim)

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(self, "conv1"):
            return self.conv(x) + self.conv1(x)
        return self.conv(x)

    @torch.no_grad()
    def fuse(self) -> DepthwiseConv2d:
        """The single ``ks x ks`` depthwise conv equal to both branches in eval mode (this module unchanged)."""
        if not hasattr(self, "conv1"):
            return self.conv
        w0, b0 = fuse_bn(self.conv.c.weight, None, self.conv.bn)
        w1, b1 = fuse_bn(self.conv1.c.weight, None, self.conv1.bn)
        return fused_conv_like(self.conv.c, w0 + pad_kernel(w1, self.ks, self.ks), b0 + b1)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place: ``conv`` becomes the fused depthwise conv, ``conv1`` is removed."""
        if hasattr(self, "conv1"):
            self.conv = self.fuse()
            del self.conv1


def _depthwise_branch(dim: int, ks: int, repvgg_at: int, bn: bool) -> nn.Module:
    if ks == repvgg_at:
        return FFNetRepVGGDW(dim, dim, ks)
    if bn:
        return FFNetConv2dBN(dim, dim, ks, 1, ks // 2, groups=dim)
    return DepthwiseConv2d(dim, dim, ks, 1, ks // 2, groups=dim)


def _fuse_child(module: nn.Module, name: str) -> None:
    child = getattr(module, name)
    if isinstance(child, (FFNetConv2dBN, FFNetRepVGGDW)):
        setattr(module, name, child.fuse())


def _check_kernel(name: str, ks: int) -> None:
    if not isinstance(ks, int) or ks < 1:
        raise ValueError(f"{name} must be a positive integer kernel size, got {ks!r}")


class FFNifiedAttention(nn.Module):
    """FFNet's FFNified attention token mixer (official ``Token_Mixer``): 1x1 -> dw k1 -> act -> dw k2.

    ``fc``: 1x1 conv+BN, ``conv1``: depthwise ``ks1 x ks1``, ``act``: GELU (``use_gelu``) or ReLU, ``conv2``:
    depthwise ``ks2 x ks2`` (the key/value "weights" of attention become depthwise kernels). A depthwise
    conv of size exactly 7 is a :class:`FFNetRepVGGDW` (7x7 + 3x3 BN branches); other sizes are a plain biased
    :class:`DepthwiseConv2d`, as in the official code. ``reparameterize()`` replaces ``fc`` by a biased 1x1
    conv and each RepVGGDW by its fused 7x7 depthwise conv (the official ``fuse`` names ``fc.weight``, ...).
    x: (N, dim, H, W) -> (N, dim, H, W) (odd kernel sizes).
    """

    def __init__(self, dim: int, ks1: int, ks2: int, use_gelu: bool = True):
        super().__init__()
        check_positive_int("dim", dim)
        _check_kernel("ks1", ks1)
        _check_kernel("ks2", ks2)
        self.fc = FFNetConv2dBN(dim, dim)
        self.conv1 = _depthwise_branch(dim, ks1, 7, bn=False)
        self.act = nn.GELU() if use_gelu else nn.ReLU()
        self.conv2 = _depthwise_branch(dim, ks2, 7, bn=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.act(self.conv1(self.fc(x))))

    @torch.no_grad()
    def reparameterize(self) -> None:
        for name in ("fc", "conv1", "conv2"):
            _fuse_child(self, name)


class FFNetChannelMixer(nn.Module):
    """FFNet's channel mixer (official ``Channel_Mixer``): dw k -> 1x1 expand -> act -> 1x1 reduce.

    ``conv`` is a :class:`FFNetRepVGGDW` when ``ks == 7``, else a depthwise :class:`FFNetConv2dBN`; ``fc1`` and
    ``fc2`` are biased 1x1 convs with ``int(dim * expansion_ratio)`` hidden channels. ``reparameterize()`` replaces
    ``conv`` by its fused depthwise conv. x: (N, dim, H, W) -> (N, dim, H, W) (odd ks).
    """

    def __init__(self, dim: int, ks: int, expansion_ratio: float, use_gelu: bool = True):
        super().__init__()
        check_positive_int("dim", dim)
        _check_kernel("ks", ks)
        hidden_dim = int(dim * expansion_ratio)
        if hidden_dim < 1:
            raise ValueError(f"expansion_ratio must give int(dim * expansion_ratio) >= 1, got "
                             f"int({dim} * {expansion_ratio}) = {hidden_dim}")
        self.conv = _depthwise_branch(dim, ks, 7, bn=True)
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1, 1, 0)
        self.act = nn.GELU() if use_gelu else nn.ReLU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(self.conv(x))))

    @torch.no_grad()
    def reparameterize(self) -> None:
        _fuse_child(self, "conv")


def _make_divisible(v: float, divisor: int = 8) -> int:
    """timm ``make_divisible(v, divisor, round_limit=0.)``: nearest multiple of divisor, at least divisor."""
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class _SqueezeExcite(nn.Module):
    """timm ``SqueezeExcite(channels, rd_ratio)`` (SEModule): mean -> fc1 -> ReLU -> fc2 -> sigmoid gate."""

    def __init__(self, channels: int, rd_ratio: float = 0.25):
        super().__init__()
        rd = _make_divisible(channels * rd_ratio, 8)
        self.fc1 = nn.Conv2d(channels, rd, 1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * self.gate(s)


class _ResidualBlock(nn.Module):
    """x + drop_path(main(x) * layer_scale) (official ``ResidualBlock`` without pre-norm / post-act)."""

    def __init__(self, main: nn.Module, dim: int, drop_path: float = 0.0, use_layer_scale: bool = True,
                 layer_scale_init_value: float = 1e-5):
        super().__init__()
        self.main = main
        self.dim = dim
        self.use_layer_scale = use_layer_scale
        if use_layer_scale:
            self.layer_scale = nn.Parameter(layer_scale_init_value * torch.ones(dim, 1, 1))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.main(x)
        if self.use_layer_scale:
            y = y * self.layer_scale
        return self.drop_path(y) + x


class FFBlock(nn.Module):
    """The FFNet block (official ``FFBlock``): residual FFNified attention (+ optional SE), residual channel mixer.

    ``token_mixer = Sequential(Residual(FFNifiedAttention(dim, ks1, ks2, use_gelu)), SE or Identity)``,
    ``channel_mixer = Residual(FFNetChannelMixer(dim, kernel_size, expansion_ratio, use_gelu))``; each residual
    is ``x + drop_path(main(x) * layer_scale)`` (``layer_scale``: (dim, 1, 1), present when
    ``use_layer_scale``). SE is timm's ``SqueezeExcite(dim, 0.25)`` (fc1, fc2; ReLU, sigmoid gate).
    x: (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, kernel_size: int, use_se: bool, use_gelu: bool, expansion_ratio: float,
                 ks1: int, ks2: int, drop_path: float = 0.0, use_layer_scale: bool = True,
                 layer_scale_init_value: float = 1e-5):
        super().__init__()
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        self.token_mixer = nn.Sequential(
            _ResidualBlock(FFNifiedAttention(dim, ks1, ks2, use_gelu), dim, drop_path, use_layer_scale,
                           layer_scale_init_value),
            _SqueezeExcite(dim, 0.25) if use_se else nn.Identity(),
        )
        self.channel_mixer = _ResidualBlock(FFNetChannelMixer(dim, kernel_size, expansion_ratio, use_gelu), dim,
                                            drop_path, use_layer_scale, layer_scale_init_value)

    def forward(self, x: Tensor) -> Tensor:
        return self.channel_mixer(self.token_mixer(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        self.token_mixer[0].main.reparameterize()
        self.channel_mixer.main.reparameterize()
