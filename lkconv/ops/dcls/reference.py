"""Plain-PyTorch DCLS kernel construction: the ground truth and the CPU path.

Paper: "Dilated Convolution with Learnable Spacings" (Khalfaoui-Hassani, Pellegrini, Masquelier; ICLR 2023)
and "Dilated Convolution with Learnable Spacings: beyond bilinear interpolation" (ICML 2023 workshop).
Official code: https://github.com/K-H-Ismail/Dilated-Convolution-with-Learnable-Spacings-PyTorch
(DCLS/construct/modules.py, ``ConstructKernel2d``).

Each of the ``kernel_count`` weights of a (out, in) filter slot sits at a learnable real position and is
spread over a dense (D0, D1) kernel by an interpolation profile that factorizes over the two axes:

    kernel[o, i, r, c] = sum_k A[o, i, k] * fr_k(r - pr_k) * fc_k(c - pc_k)

- "v1":    f(d) = relu(1 - |d|) (bilinear), normalized
- "max":   f(d) = relu(s - |d|), s = |SIG| + 1 (triangle of learnable width), normalized
- "gauss": f(d) = exp(-(d / s)^2 / 2), s = |SIG| + 0.27, normalized
- "v0":    f(d) = relu(1 - |d|), not normalized

"normalized" means A = weight / (sum_{r, c} fr_k(r) fc_k(c) + 1e-7), else A = weight. The official code
offsets P[d] by ``dilated_kernel_size[d] // 2`` and, for v1/max/gauss, matches P[0] (and SIG[0]) with the
*column* index and P[1] with the *row* index; v0 matches P[0] with rows and P[1] with columns. The two
only differ for non-square kernels; this file reproduces the official pairing exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

Tensor = torch.Tensor

VERSIONS = ("v0", "v1", "max", "gauss")
EPS = 1e-7


@dataclass(frozen=True)
class Interp:
    """What a version computes: the parameter row of P/SIG used for kernel rows, profile, normalization."""

    row_param: int  # P[row_param] positions along rows (dim 0 of the kernel); P[1 - row_param] along columns
    gauss: bool
    normalize: bool
    has_sig: bool
    sig_offset: float


def interp_of(version: str) -> Interp:
    """The :class:`Interp` of an official ``version`` string; ValueError for an unknown one."""
    if version == "v0":
        return Interp(0, False, False, False, 0.0)
    if version == "v1":
        return Interp(1, False, True, False, 0.0)
    if version == "max":
        return Interp(1, False, True, True, 1.0)
    if version == "gauss":
        return Interp(1, True, True, True, 0.27)
    raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")


def _profile(d: Tensor, s, gauss: bool) -> Tensor:
    if gauss:
        return torch.exp(-0.5 * (d / s) ** 2)
    return torch.relu(s - d.abs())


def _axis(P: Tensor, SIG: Optional[Tensor], p: int, size: int, offset: int, it: Interp):
    """Profiles (O, I, K, size) along one kernel axis, from P[p] (and SIG[p])."""
    idx = torch.arange(size, dtype=P.dtype, device=P.device)
    d = idx - (P[p] + offset).unsqueeze(-1)
    s = (SIG[p].abs() + it.sig_offset).unsqueeze(-1) if it.has_sig else 1.0
    return _profile(d, s, it.gauss)


def dcls_construct_kernel2d_reference(
    weight: Tensor, P: Tensor, SIG: Optional[Tensor], dilated_kernel_size: Sequence[int], version: str
) -> Tensor:
    """Dense kernel (O, I, D0, D1) from weight (O, I, K), P (2, O, I, K), SIG (2, O, I, K) or None.

    Separable formulation: builds (O, I, K, D0) and (O, I, K, D1) profiles and one batched matmul, never
    an (O, I, K, D0, D1) tensor. Differentiable by autograd.
    """
    it = interp_of(version)
    d0, d1 = dilated_kernel_size
    half = (d0 // 2, d1 // 2)
    rp, cp = it.row_param, 1 - it.row_param
    fr = _axis(P, SIG, rp, d0, half[rp], it)
    fc = _axis(P, SIG, cp, d1, half[cp], it)
    a = weight
    if it.normalize:
        a = weight / (fr.sum(-1) * fc.sum(-1) + EPS)
    return torch.matmul((a.unsqueeze(-1) * fr).transpose(-1, -2), fc)


def _profile_grads(d: Tensor, s, f: Tensor, gauss: bool) -> Tuple[Tensor, Tensor]:
    """(df/dd, df/ds) of the profile at offsets d; zero where the official autograd gives zero."""
    if gauss:
        q = d / s
        return -f * q / s, f * q * q / s
    inside = (s - d.abs()) > 0
    return torch.where(inside, -torch.sign(d), torch.zeros_like(d)), inside.to(d.dtype)


def dcls_construct_kernel2d_bwd_reference(
    grad_kernel: Tensor, weight: Tensor, P: Tensor, SIG: Optional[Tensor], dilated_kernel_size: Sequence[int],
    version: str,
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """(dweight, dP, dSIG or None) from grad_kernel (O, I, D0, D1), by the chain rule written out."""
    it = interp_of(version)
    d0, d1 = dilated_kernel_size
    half = (d0 // 2, d1 // 2)
    rp, cp = it.row_param, 1 - it.row_param
    g = grad_kernel.to(P.dtype)
    axes = []
    for p, size in ((rp, d0), (cp, d1)):
        idx = torch.arange(size, dtype=P.dtype, device=P.device)
        d = idx - (P[p] + half[p]).unsqueeze(-1)
        s = (SIG[p].abs() + it.sig_offset).unsqueeze(-1) if it.has_sig else 1.0
        f = _profile(d, s, it.gauss)
        axes.append((d, s, f))
    fr, fc = axes[0][2], axes[1][2]
    u = torch.matmul(fc, g.transpose(-1, -2))  # (O, I, K, D0): sum_c g[r, c] fc[c]
    v = torch.matmul(fr, g)  # (O, I, K, D1): sum_r g[r, c] fr[r]
    da = (fr * u).sum(-1)
    if it.normalize:
        sr, sc = fr.sum(-1), fc.sum(-1)
        den = sr * sc + EPS
        a = weight / den
        dweight = da / den
        dden = -da * a / den
        gfr = a.unsqueeze(-1) * u + (dden * sc).unsqueeze(-1)
        gfc = a.unsqueeze(-1) * v + (dden * sr).unsqueeze(-1)
    else:
        dweight = da
        gfr = weight.unsqueeze(-1) * u
        gfc = weight.unsqueeze(-1) * v
    dP = torch.empty_like(P)
    dSIG = torch.empty_like(SIG) if it.has_sig else None
    for p, (d, s, f), gf in ((rp, axes[0], gfr), (cp, axes[1], gfc)):
        dfdd, dfds = _profile_grads(d, s, f, it.gauss)
        dP[p] = -(gf * dfdd).sum(-1)
        if dSIG is not None:
            dSIG[p] = (gf * dfds).sum(-1) * torch.sign(SIG[p])
    return dweight.to(weight.dtype), dP, dSIG
