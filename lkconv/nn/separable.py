"""Low-rank (separable) large depthwise kernels: K_c = sum_r u_{c,r} v_{c,r}^T, run as 1 x k then k x 1 convs.

A rank-R kernel of size kh x kw costs R * (kh + kw) multiply-adds per output instead of kh * kw. Cascaded
1 x k / k x 1 depthwise convs replace large square kernels in "Large Separable Kernel Attention" (Lau et al.,
Expert Systems with Applications 2024; https://github.com/StevenLauHKHK/Large-Separable-Kernel-Attention);
approximating trained filters by a truncated SVD into such separable sums follows "Speeding up Convolutional
Neural Networks with Low Rank Expansions" (Jaderberg et al., BMVC 2014).
"""
from __future__ import annotations

import copy
from typing import Tuple, Union

import torch
from torch import nn

from .conv import DepthwiseConv2d, is_depthwise

__all__ = ["SeparableLargeKernelConv"]

IntOrPair = Union[int, Tuple[int, int]]


def _pair(name: str, value: IntOrPair) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return pair


class SeparableLargeKernelConv(nn.Module):
    """A depthwise conv whose kernel per channel c is the rank-R sum ``K_c = sum_r u_{c,r} v_{c,r}^T``.

    ``conv_w`` (1 x kw, channels -> channels * rank, weight (C*R, 1, 1, kw) holding v) runs first, ``conv_h``
    (kh x 1 on the C*R maps, weight (C*R, 1, kh, 1) holding u) second, and the R maps of each channel are summed
    before the bias. Padding is ``dilation * (k - 1) // 2`` per axis (size-preserving at stride 1 for odd k), in
    any ``padding_mode``; the result equals one depthwise conv with kernel K (see :meth:`to_dense`).
    Weights start with ``nn.Conv2d``'s default initialisation of each factor.

    x: (N, channels, H, W) -> (N, channels, Ho, Wo).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: IntOrPair,
        rank: int = 1,
        stride: IntOrPair = 1,
        dilation: IntOrPair = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        kh, kw = _pair("kernel_size", kernel_size)
        sh, sw = _pair("stride", stride)
        dh, dw = _pair("dilation", dilation)
        if not isinstance(rank, int) or not 1 <= rank <= min(kh, kw):
            raise ValueError(f"rank must be an integer in [1, min(kernel_size)] = [1, {min(kh, kw)}], got {rank!r}")
        self.channels, self.rank = channels, rank
        self.kernel_size, self.stride, self.dilation = (kh, kw), (sh, sw), (dh, dw)
        self.padding = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
        self.padding_mode = padding_mode
        cr = channels * rank
        factory = dict(bias=False, padding_mode=padding_mode, device=device, dtype=dtype)
        self.conv_w = DepthwiseConv2d(
            channels, cr, (1, kw), stride=(1, sw), padding=(0, self.padding[1]), dilation=(1, dw), **factory
        )
        self.conv_h = DepthwiseConv2d(
            cr, cr, (kh, 1), stride=(sh, 1), padding=(self.padding[0], 0), dilation=(dh, 1), **factory
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(channels, device=device, dtype=dtype))
            bound = 1.0 / (kh * kw) ** 0.5  # nn.Conv2d's default bias range for the equivalent dense conv
            nn.init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)
        self.register_module("reparam_conv", None)

    @property
    def u(self) -> torch.Tensor:
        """Column factors, (channels, rank, kh)."""
        return self.conv_h.weight.reshape(self.channels, self.rank, self.kernel_size[0])

    @property
    def v(self) -> torch.Tensor:
        """Row factors, (channels, rank, kw)."""
        return self.conv_w.weight.reshape(self.channels, self.rank, self.kernel_size[1])

    def dense_kernel(self) -> torch.Tensor:
        """The equivalent depthwise kernel ``sum_r u_r v_r^T``: (channels, 1, kh, kw), differentiable."""
        if self.reparam_conv is not None:
            return self.reparam_conv.weight
        return torch.einsum("cri,crj->cij", self.u, self.v).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        y = self.conv_h(self.conv_w(x))
        if self.rank > 1:
            y = y.unflatten(1, (self.channels, self.rank)).sum(dim=2)
        if self.bias is not None:
            y = y + self.bias.reshape(-1, 1, 1)
        return y

    @torch.no_grad()
    def to_dense(self) -> DepthwiseConv2d:
        """A new :class:`DepthwiseConv2d` (channels -> channels, kh x kw) computing the same function."""
        if self.reparam_conv is not None:
            return copy.deepcopy(self.reparam_conv)
        weight = self.dense_kernel()
        conv = DepthwiseConv2d(
            self.channels, self.channels, self.kernel_size, self.stride, self.padding, self.dilation,
            bias=self.bias is not None, padding_mode=self.padding_mode, device=weight.device, dtype=weight.dtype,
        )
        conv.algorithm = self.conv_w.algorithm
        conv.weight.copy_(weight)
        if self.bias is not None:
            conv.bias.copy_(self.bias)
        return conv

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the factor pair into one dense depthwise conv ``reparam_conv``, in place (drops the factors)."""
        if self.reparam_conv is not None:
            return
        self.reparam_conv = self.to_dense()
        del self.conv_w, self.conv_h, self.bias

    @classmethod
    @torch.no_grad()
    def from_dense(cls, conv: nn.Conv2d, rank: int) -> "SeparableLargeKernelConv":
        """Rank-``rank`` approximation of a depthwise ``conv`` by per-channel truncated SVD (exact at full rank).

        ``conv`` must be a depthwise ``nn.Conv2d`` with depth multiplier 1 and the centred padding
        ``dilation * (k - 1) // 2`` (or ``"same"`` where that is symmetric). Each channel's kernel
        W_c = U S V^T gives ``u_{c,r} = sqrt(s_r) U[:, r]``, ``v_{c,r} = sqrt(s_r) V[:, r]`` for the ``rank``
        largest singular values, the best rank-``rank`` approximation in the Frobenius norm.
        """
        if not isinstance(conv, nn.Conv2d) or not is_depthwise(conv) or conv.out_channels != conv.in_channels:
            raise ValueError(
                "conv must be a depthwise nn.Conv2d with depth multiplier 1 (groups == in_channels == "
                f"out_channels), got {conv!r}"
            )
        kh, kw = conv.kernel_size
        dh, dw = conv.dilation
        centred = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
        same_ok = conv.padding == "same" and dh * (kh - 1) % 2 == 0 and dw * (kw - 1) % 2 == 0
        if tuple(conv.padding) != centred and not same_ok:
            raise ValueError(f"conv.padding must be the centred padding {centred}, got {conv.padding!r}")
        weight = conv.weight
        out = cls(
            conv.in_channels, (kh, kw), rank, conv.stride, conv.dilation, bias=conv.bias is not None,
            padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype,
        )
        u_mat, s, vh = torch.linalg.svd(weight.detach().to(torch.float64).reshape(-1, kh, kw), full_matrices=False)
        root = s[:, :rank].sqrt()
        u = u_mat[:, :, :rank].transpose(1, 2) * root[:, :, None]  # (C, R, kh)
        v = vh[:, :rank, :] * root[:, :, None]  # (C, R, kw)
        out.conv_h.weight.copy_(u.reshape(out.conv_h.weight.shape))
        out.conv_w.weight.copy_(v.reshape(out.conv_w.weight.shape))
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
        algorithm = getattr(conv, "algorithm", "auto")
        out.conv_w.algorithm = out.conv_h.algorithm = algorithm
        return out

    def extra_repr(self) -> str:
        s = f"{self.channels}, kernel_size={self.kernel_size}, rank={self.rank}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s
