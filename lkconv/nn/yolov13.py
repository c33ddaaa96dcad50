"""YOLOv13's depthwise-separable blocks: DSConv, DSBottleneck, DSC3k and DSC3k2, with the ultralytics parents.

Paper: "YOLOv13: Real-Time Object Detection with Hypergraph-Enhanced Adaptive Visual Perception" (Lei et al.,
2025). Official code: https://github.com/iMoonLab/yolov13 (ultralytics/nn/modules/block.py and conv.py).

The ultralytics ``Conv`` (conv + BN + SiLU), ``Bottleneck``, ``C3`` and ``C2f`` that the blocks build on are
defined here with the same constructor arguments, submodule names and forward, so YOLOv13 checkpoints load
unchanged. Depthwise convs (``DSConv.dw`` and any grouped ``Conv`` with ``g == c1``) are
:class:`~lkconv.nn.DepthwiseConv2d`. ``reparameterize()`` folds each BatchNorm into the conv before it, as
ultralytics' ``model.fuse()`` does for ``Conv`` (``bn`` removed, ``conv`` gains a bias); for ``DSConv`` the
BatchNorm folds into ``pw`` (an exact fold that the official ``fuse()`` leaves out).
"""
from __future__ import annotations

import torch
from torch import nn

from ..reparam import fuse_bn
from .conv import DepthwiseConv2d
from .layers import check_positive_int

__all__ = ["DSConv", "DSBottleneck", "DSC3k", "DSC3k2"]

Tensor = torch.Tensor


def autopad(k, p=None, d=1):
    """Padding that keeps the size at stride 1 (ultralytics ``autopad``): ``k // 2`` of the dilated kernel."""
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


def _check_channels(**kwargs) -> None:
    for name, value in kwargs.items():
        check_positive_int(name, value)


def _hidden(c2: int, e: float) -> int:
    c_ = int(c2 * e)
    if c_ < 1:
        raise ValueError(f"e must give int(c2 * e) >= 1 hidden channels, got int({c2} * {e}) = {c_}")
    return c_


def _with_bn_folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    weight, bias = fuse_bn(conv.weight, conv.bias, bn)
    fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                       device=weight.device, dtype=weight.dtype)
    if isinstance(conv, DepthwiseConv2d):
        fused.algorithm = getattr(conv, "algorithm", "auto")
    fused.weight.data.copy_(weight)
    fused.bias.data.copy_(bias)
    return fused


class Conv(nn.Module):
    """ultralytics ``Conv``: ``act(bn(conv(x)))``, conv without bias, ``act`` SiLU (``act=True``), a given module,
    or identity. ``g == c1 > 1`` makes ``conv`` a :class:`DepthwiseConv2d`.
    x: (N, c1, H, W) -> (N, c2, Ho, Wo).
    """

    default_act = nn.SiLU()

    def __init__(self, c1: int, c2: int, k=1, s=1, p=None, g: int = 1, d=1, act=True):
        super().__init__()
        _check_channels(c1=c1, c2=c2, g=g)
        if c1 % g or c2 % g:
            raise ValueError(f"c1 ({c1}) and c2 ({c2}) must be divisible by g ({g})")
        cls = DepthwiseConv2d if g == c1 and g > 1 else nn.Conv2d
        self.conv = cls(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if hasattr(self, "bn"):
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place: fold ``bn`` into ``conv`` (which gains a bias) and remove ``bn`` (ultralytics ``fuse``)."""
        if hasattr(self, "bn"):
            self.conv = _with_bn_folded(self.conv, self.bn)
            del self.bn


class DSConv(nn.Module):
    """YOLOv13's depthwise separable conv: ``SiLU(bn(pw(dw(x))))``.

    ``dw``: ``k x k`` depthwise :class:`DepthwiseConv2d` (stride ``s``, dilation ``d``, padding ``p`` or
    ``d * (k - 1) // 2``), ``pw``: 1x1 conv to ``c_out``; both biased only when ``bias``.
    ``reparameterize()`` folds ``bn`` into ``pw``. x: (N, c_in, H, W) -> (N, c_out, Ho, Wo).
    """

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, p=None, d: int = 1, bias: bool = False):
        super().__init__()
        _check_channels(c_in=c_in, c_out=c_out, k=k, s=s, d=d)
        if p is None:
            p = (d * (k - 1)) // 2
        self.dw = DepthwiseConv2d(c_in, c_in, kernel_size=k, stride=s, padding=p, dilation=d, groups=c_in, bias=bias)
        self.pw = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=bias)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.pw(self.dw(x))
        if hasattr(self, "bn"):
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """In place: fold ``bn`` into ``pw`` (which gains a bias) and remove ``bn``."""
        if hasattr(self, "bn"):
            self.pw = _with_bn_folded(self.pw, self.bn)
            del self.bn


class _Fusable(nn.Module):
    """Containers: ``reparameterize()`` folds the BatchNorms of every ``Conv`` / ``DSConv`` inside."""

    @torch.no_grad()
    def reparameterize(self) -> None:
        for m in list(self.modules()):
            if isinstance(m, (Conv, DSConv)):
                m.reparameterize()


class Bottleneck(_Fusable):
    """ultralytics ``Bottleneck``: ``x + cv2(cv1(x))`` (residual when ``shortcut`` and ``c1 == c2``)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k=(3, 3), e: float = 0.5):
        super().__init__()
        c_ = _hidden(c2, e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(_Fusable):
    """ultralytics ``C2f``: ``cv1`` to ``2c`` channels, split, ``n`` blocks each on the previous output,
    concatenate all ``(2 + n) c`` channels, ``cv2`` to ``c2`` (``c = int(c2 * e)``)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5):
        super().__init__()
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        self.c = _hidden(c2, e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, k=((3, 3), (3, 3)), e=1.0) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class C3(_Fusable):
    """ultralytics ``C3``: ``cv3(cat(m(cv1(x)), cv2(x)))`` with ``n`` sequential blocks on ``int(c2 * e)``
    channels."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        c_ = _hidden(c2, e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=((1, 1), (3, 3)), e=1.0) for _ in range(n)))

    def forward(self, x: Tensor) -> Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class DSBottleneck(_Fusable):
    """YOLOv13 ``DSBottleneck``: ``x + cv2(cv1(x))`` with two DSConvs (``k1``; ``k2`` at dilation ``d2``),
    hidden ``int(c2 * e)``; residual when ``shortcut`` and ``c1 == c2``.
    x: (N, c1, H, W) -> (N, c2, H, W).
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5, k1: int = 3, k2: int = 5,
                 d2: int = 1):
        super().__init__()
        c_ = _hidden(c2, e)
        self.cv1 = DSConv(c1, c_, k1, s=1, p=None, d=1)
        self.cv2 = DSConv(c_, c2, k2, s=1, p=None, d=d2)
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class DSC3k(C3):
    """YOLOv13 ``DSC3k``: :class:`C3` whose ``m`` is ``n`` DSBottlenecks (``e=1``, kernels ``k1``/``k2``,
    dilation ``d2``). ``g`` only reaches the replaced C3 bottlenecks, as in the official code.
    x: (N, c1, H, W) -> (N, c2, H, W).
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k1: int = 3, k2: int = 5, d2: int = 1):
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(
            *(DSBottleneck(c_, c_, shortcut=shortcut, e=1.0, k1=k1, k2=k2, d2=d2) for _ in range(n))
        )


class DSC3k2(C2f):
    """YOLOv13 ``DSC3k2``: :class:`C2f` whose ``n`` blocks are DSBottlenecks, or DSC3k (``n=2``) when ``dsc3k``.

    Hidden ``c = int(c2 * e)``; blocks use kernels ``k1``/``k2`` (dilation ``d2``) and ``shortcut``.
    x: (N, c1, H, W) -> (N, c2, H, W).
    """

    def __init__(self, c1: int, c2: int, n: int = 1, dsc3k: bool = False, e: float = 0.5, g: int = 1,
                 shortcut: bool = True, k1: int = 3, k2: int = 7, d2: int = 1):
        super().__init__(c1, c2, n, shortcut, g, e)
        if dsc3k:
            self.m = nn.ModuleList(
                DSC3k(self.c, self.c, n=2, shortcut=shortcut, g=g, e=1.0, k1=k1, k2=k2, d2=d2) for _ in range(n)
            )
        else:
            self.m = nn.ModuleList(
                DSBottleneck(self.c, self.c, shortcut=shortcut, e=1.0, k1=k1, k2=k2, d2=d2) for _ in range(n)
            )
