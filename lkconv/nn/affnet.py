"""AFFNet's adaptive frequency filter: the AFF token mixer, a global filter learned in the Fourier domain.

Paper: "Adaptive Frequency Filters As Efficient Global Token Mixers" (Huang et al., ICCV 2023).
Official code: https://github.com/microsoft/TokenMixers ("Adaptive Frequency Filters" folder,
affnet/modules/aff_block.py, class ``AFNO2D_channelfirst``).

The mixer takes the 2D real FFT of each channel, computes a content-adaptive mask with a block-diagonal
two-layer complex MLP (soft-shrunk), multiplies the spectrum by it and transforms back: an input-dependent
global (H x W) depthwise convolution done as a product in the frequency domain. Parameter names (``w1``,
``b1``, ``w2``, ``b2``) and shapes are the official ones.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdaptiveFrequencyFilter"]

Tensor = torch.Tensor


def _complex_block_matrix(w: Tensor) -> Tensor:
    """(2, k, i, o) real/imag weights -> (k, 2i, 2o) real matrix M with [re, im] @ M = [re', im'] of the
    complex product (re + j im) @ (w[0] + j w[1])."""
    top = torch.cat((w[0], w[1]), dim=-1)
    bottom = torch.cat((-w[1], w[0]), dim=-1)
    return torch.cat((top, bottom), dim=-2)


class AdaptiveFrequencyFilter(nn.Module):
    """The AFF token mixer (official ``AFNO2D_channelfirst``): ``x + irfft2(mask(X) * X)``, ``X = rfft2(x)``.

    With ``X = rfft2(x, norm="ortho")`` split into ``num_blocks`` channel blocks of ``b = hidden_size /
    num_blocks`` channels, each frequency's block vector ``X_k`` (complex, length b) goes through
    ``o1 = act(Re(X_k W1_k + B1_k)) + j act2(Im(X_k W1_k + B1_k))`` and ``o2 = o1 W2_k + B2_k`` (complex
    weights ``W = w[0] + j w[1]``, hidden width ``b * hidden_size_factor``), then
    ``mask = softshrink(Re o2) + j softshrink(Im o2)`` (threshold ``sparsity_threshold``) and
    ``y = irfft2(mask * X, s=(H, W), norm="ortho")``; returns ``y + x``.

    Parameters: ``w1`` (2, num_blocks, b, b*f), ``b1`` (2, num_blocks, b*f), ``w2`` (2, num_blocks, b*f, b),
    ``b2`` (2, num_blocks, b). The official class takes a config object first (``opts``) and reads the
    activation (``model.activation.name``, default "relu") and the threshold (``model.activation.
    sparsity_threshold``, default 0.01) from it; here they are the ``act_layer`` and ``sparsity_threshold``
    arguments. ``hard_thresholding_fraction`` is stored and unused, as in the official code. Like the official
    forward, the spectral part runs in float32 with autocast disabled (on every device type) and the result is
    cast back to the input dtype before the residual. x: (N, hidden_size, H, W) -> same shape.
    """

    def __init__(self, hidden_size: int, num_blocks: int = 8, sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1, hidden_size_factor: int = 1,
                 act_layer: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        for name, value in (("hidden_size", hidden_size), ("num_blocks", num_blocks),
                            ("hidden_size_factor", hidden_size_factor)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if hidden_size % num_blocks:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_blocks ({num_blocks})")
        if not sparsity_threshold >= 0:
            raise ValueError(f"sparsity_threshold must be >= 0 (softshrink threshold), got {sparsity_threshold}")
        self.hidden_size = hidden_size
        self.sparsity_threshold = float(sparsity_threshold)
        self.num_blocks = num_blocks
        self.block_size = hidden_size // num_blocks
        self.hard_thresholding_fraction = hard_thresholding_fraction
        self.hidden_size_factor = hidden_size_factor
        self.scale = 0.02
        b, bh = self.block_size, self.block_size * hidden_size_factor
        self.w1 = nn.Parameter(self.scale * torch.randn(2, num_blocks, b, bh))
        self.b1 = nn.Parameter(self.scale * torch.randn(2, num_blocks, bh))
        self.w2 = nn.Parameter(self.scale * torch.randn(2, num_blocks, bh, b))
        self.b2 = nn.Parameter(self.scale * torch.randn(2, num_blocks, b))
        self.act = act_layer()
        self.act2 = act_layer()

    def spectral_mask(self, spec: Tensor) -> Tensor:
        """The complex mask (N, C, H, W//2+1) for a spectrum ``spec`` = rfft2(x) of the same shape."""
        n, c, h, wf = spec.shape
        k, b = self.num_blocks, self.block_size
        bh = b * self.hidden_size_factor
        blocks = spec.reshape(n, k, b, h, wf)
        z = torch.cat((blocks.real, blocks.imag), dim=2)  # (n, k, 2b, h, wf)
        z = z.permute(1, 0, 3, 4, 2).reshape(k, n * h * wf, 2 * b)
        w1, b1 = self.w1.float(), self.b1.float()
        w2, b2 = self.w2.float(), self.b2.float()
        o1 = torch.baddbmm(torch.cat((b1[0], b1[1]), -1).unsqueeze(1), z, _complex_block_matrix(w1))
        o1 = torch.cat((self.act(o1[..., :bh]), self.act2(o1[..., bh:])), dim=-1)
        o2 = torch.baddbmm(torch.cat((b2[0], b2[1]), -1).unsqueeze(1), o1, _complex_block_matrix(w2))
        o2 = F.softshrink(o2, lambd=self.sparsity_threshold)
        o2 = o2.reshape(k, n, h, wf, 2 * b).permute(1, 0, 4, 2, 3)  # (n, k, 2b, h, wf)
        return torch.complex(o2[:, :, :b], o2[:, :, b:]).reshape(n, c, h, wf)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.hidden_size:
            raise ValueError(f"expected input (N, {self.hidden_size}, H, W), got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        with torch.autocast(x.device.type, enabled=False):
            spec = torch.fft.rfft2(x.float(), dim=(2, 3), norm="ortho")
            y = torch.fft.irfft2(self.spectral_mask(spec) * spec, s=(h, w), dim=(2, 3), norm="ortho")
        return y.to(x.dtype) + x
