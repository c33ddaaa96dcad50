"""Triton kernels building DCLS kernels from learnable positions: forward and backward, fused.

Paper: "Dilated Convolution with Learnable Spacings" (Khalfaoui-Hassani et al., ICLR 2023); official code:
https://github.com/K-H-Ismail/Dilated-Convolution-with-Learnable-Spacings-PyTorch
(DCLS/construct/modules.py). Semantics, versions and the official axis pairing: :mod:`.reference`.

Every interpolation profile factorizes over the two kernel axes, so a filter slot (o, i) of the dense
kernel is a rank-``kernel_count`` sum of outer products, ``K = sum_k A_k fr_k fc_k^T``. One program owns
one slot: it walks the ``kernel_count`` elements, evaluates the row profile (D0 values) and the column
profile (D1 values) in registers, and accumulates the (D0, D1) tile. Nothing larger than the output tile
is ever materialized (the official code builds (D0, D1, 2, O, I, K) index/profile tensors).

The backward kernel loads the slot's (D0, D1) gradient tile once and, per element k, contracts it with
the two profiles (u = G fc, v = G^T fr), then applies the normalization and profile derivatives to get
dweight, dP and dSIG for that element: each output is written exactly once, no atomics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

from ..._triton import next_power_of_2, triton_available
from ...testing import poisoning
from .reference import EPS, interp_of

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover - depends on the install
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


if triton is not None:

    @triton.jit
    def _profile(d, s, GAUSS: tl.constexpr):
        """exp(-(d/s)^2 / 2) (GAUSS) or relu(s - |d|)."""
        if GAUSS:
            q = d / s
            return tl.exp(-0.5 * q * q)
        else:
            return tl.maximum(s - tl.abs(d), 0.0)

    @triton.jit
    def _sign(v):
        return tl.where(v > 0, 1.0, tl.where(v < 0, -1.0, 0.0))

    @triton.jit
    def _ratio(num: tl.constexpr, den: tl.constexpr, ACC: tl.constexpr):
        """num / den rounded once in ACC (a float literal would be rounded to fp32 first)."""
        return tl.cast(num, ACC) / tl.cast(den, ACC)

    @triton.jit
    def _load_axis(p_ptr, sig_ptr, off, offset, sig_offset, HAS_SIG: tl.constexpr, ACC: tl.constexpr):
        """(centre, width, raw SIG) of one element along one axis."""
        centre = tl.load(p_ptr + off).to(ACC) + offset
        if HAS_SIG:
            raw = tl.load(sig_ptr + off).to(ACC)
            width = tl.abs(raw) + sig_offset
        else:
            raw = centre * 0.0
            width = raw + 1.0
        return centre, width, raw

    @triton.jit
    def dcls_construct2d_fwd_kernel(
        w_ptr, p_ptr, sig_ptr, k_ptr,
        M, KC, D0, D1, OFF_R, OFF_C,
        ROW_PARAM: tl.constexpr, GAUSS: tl.constexpr, NORMALIZE: tl.constexpr, HAS_SIG: tl.constexpr,
        SIG_NUM: tl.constexpr, SIG_DEN: tl.constexpr, EPS_DEN: tl.constexpr,
        BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr,
    ):
        """kernel[m, r, c] = sum_k A[m, k] * f(r - pr[m, k]; sr[m, k]) * f(c - pc[m, k]; sc[m, k])

        w: (M, KC); p, sig: (2, M, KC) contiguous, row centres from p[ROW_PARAM]; kernel: (M, D0, D1)
        contiguous. Grid: (M,).
        """
        m = tl.program_id(0).to(tl.int64)
        r = tl.arange(0, BLOCK_R)
        c = tl.arange(0, BLOCK_C)
        r_ok = r < D0
        c_ok = c < D1
        rf = r.to(ACC)
        cf = c.to(ACC)
        sig_offset = _ratio(SIG_NUM, SIG_DEN, ACC)
        eps = _ratio(1, EPS_DEN, ACC)
        row_base = ROW_PARAM * M * KC + m * KC
        col_base = (1 - ROW_PARAM) * M * KC + m * KC
        acc = tl.zeros([BLOCK_R, BLOCK_C], dtype=ACC)
        for k in range(KC):
            wk = tl.load(w_ptr + m * KC + k).to(ACC)
            pr, sr, _r = _load_axis(p_ptr, sig_ptr, row_base + k, OFF_R, sig_offset, HAS_SIG, ACC)
            pc, sc, _c = _load_axis(p_ptr, sig_ptr, col_base + k, OFF_C, sig_offset, HAS_SIG, ACC)
            fr = tl.where(r_ok, _profile(rf - pr, sr, GAUSS), 0.0)
            fc = tl.where(c_ok, _profile(cf - pc, sc, GAUSS), 0.0)
            if NORMALIZE:
                ak = wk / (tl.sum(fr, axis=0) * tl.sum(fc, axis=0) + eps)
            else:
                ak = wk
            acc += (ak * fr)[:, None] * fc[None, :]
        out = k_ptr + m * D0 * D1 + r[:, None] * D1 + c[None, :]
        tl.store(out, acc.to(k_ptr.dtype.element_ty), mask=r_ok[:, None] & c_ok[None, :])

    @triton.jit
    def dcls_construct2d_bwd_kernel(
        g_ptr, w_ptr, p_ptr, sig_ptr, dw_ptr, dp_ptr, dsig_ptr,
        M, KC, D0, D1, OFF_R, OFF_C,
        ROW_PARAM: tl.constexpr, GAUSS: tl.constexpr, NORMALIZE: tl.constexpr, HAS_SIG: tl.constexpr,
        SIG_NUM: tl.constexpr, SIG_DEN: tl.constexpr, EPS_DEN: tl.constexpr,
        BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr,
    ):
        """dweight (M, KC), dp (2, M, KC) and dsig (2, M, KC) from the kernel gradient g (M, D0, D1).

        Grid: (M,). Layouts as in :func:`dcls_construct2d_fwd_kernel`.
        """
        m = tl.program_id(0).to(tl.int64)
        r = tl.arange(0, BLOCK_R)
        c = tl.arange(0, BLOCK_C)
        r_ok = r < D0
        c_ok = c < D1
        rf = r.to(ACC)
        cf = c.to(ACC)
        sig_offset = _ratio(SIG_NUM, SIG_DEN, ACC)
        eps = _ratio(1, EPS_DEN, ACC)
        g = tl.load(g_ptr + m * D0 * D1 + r[:, None] * D1 + c[None, :], mask=r_ok[:, None] & c_ok[None, :],
                    other=0.0).to(ACC)
        row_base = ROW_PARAM * M * KC + m * KC
        col_base = (1 - ROW_PARAM) * M * KC + m * KC
        for k in range(KC):
            wk = tl.load(w_ptr + m * KC + k).to(ACC)
            pr, sr, raw_r = _load_axis(p_ptr, sig_ptr, row_base + k, OFF_R, sig_offset, HAS_SIG, ACC)
            pc, sc, raw_c = _load_axis(p_ptr, sig_ptr, col_base + k, OFF_C, sig_offset, HAS_SIG, ACC)
            dr = rf - pr
            dc = cf - pc
            fr = tl.where(r_ok, _profile(dr, sr, GAUSS), 0.0)
            fc = tl.where(c_ok, _profile(dc, sc, GAUSS), 0.0)
            u = tl.sum(g * fc[None, :], axis=1)  # (BLOCK_R,)
            v = tl.sum(g * fr[:, None], axis=0)  # (BLOCK_C,)
            da = tl.sum(fr * u, axis=0)
            if NORMALIZE:
                s_r = tl.sum(fr, axis=0)
                s_c = tl.sum(fc, axis=0)
                den = s_r * s_c + eps
                ak = wk / den
                dwk = da / den
                dden = -da * ak / den
                gfr = ak * u + dden * s_c
                gfc = ak * v + dden * s_r
            else:
                dwk = da
                gfr = wk * u
                gfc = wk * v
            if GAUSS:
                qr = dr / sr
                qc = dc / sc
                dfdd_r = -fr * qr / sr
                dfdd_c = -fc * qc / sc
                dfds_r = fr * qr * qr / sr
                dfds_c = fc * qc * qc / sc
            else:
                in_r = r_ok & ((sr - tl.abs(dr)) > 0)
                in_c = c_ok & ((sc - tl.abs(dc)) > 0)
                dfdd_r = tl.where(in_r, -_sign(dr), 0.0)
                dfdd_c = tl.where(in_c, -_sign(dc), 0.0)
                dfds_r = tl.where(in_r, 1.0, 0.0)
                dfds_c = tl.where(in_c, 1.0, 0.0)
            tl.store(dw_ptr + m * KC + k, dwk.to(dw_ptr.dtype.element_ty))
            tl.store(dp_ptr + row_base + k, (-tl.sum(gfr * dfdd_r, axis=0)).to(dp_ptr.dtype.element_ty))
            tl.store(dp_ptr + col_base + k, (-tl.sum(gfc * dfdd_c, axis=0)).to(dp_ptr.dtype.element_ty))
            if HAS_SIG:
                dsr = tl.sum(gfr * dfds_r, axis=0) * _sign(raw_r)
                dsc = tl.sum(gfc * dfds_c, axis=0) * _sign(raw_c)
                tl.store(dsig_ptr + row_base + k, dsr.to(dsig_ptr.dtype.element_ty))
                tl.store(dsig_ptr + col_base + k, dsc.to(dsig_ptr.dtype.element_ty))


@dataclass(frozen=True)
class ConstructConfig:
    """Tile of one program: the whole (D0, D1) kernel, padded to powers of two."""

    block_r: int
    block_c: int
    num_warps: int


def choose_config(d0: int, d1: int) -> ConstructConfig:
    block_r = next_power_of_2(d0)
    block_c = next_power_of_2(d1)
    tile = block_r * block_c
    num_warps = 1 if tile <= 128 else 2 if tile <= 512 else 4 if tile <= 2048 else 8
    return ConstructConfig(block_r, block_c, num_warps)


def _acc_type(*tensors: Optional[torch.Tensor]):
    return tl.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else tl.float32


def _empty(shape, like: torch.Tensor) -> torch.Tensor:
    out = torch.empty(shape, dtype=like.dtype, device=like.device)
    if poisoning():
        out.fill_(float("nan"))
    return out


def _launch_args(weight: torch.Tensor, dilated_kernel_size: Sequence[int], version: str):
    it = interp_of(version)
    d0, d1 = dilated_kernel_size
    half = (d0 // 2, d1 // 2)
    o, i, kc = weight.shape
    scalars = (o * i, kc, d0, d1, half[it.row_param], half[1 - it.row_param])
    consts = dict(
        ROW_PARAM=it.row_param, GAUSS=it.gauss, NORMALIZE=it.normalize, HAS_SIG=it.has_sig,
        SIG_NUM=round(it.sig_offset * 100), SIG_DEN=100, EPS_DEN=round(1 / EPS),
    )
    return it, scalars, consts


def construct2d_fwd(
    weight: torch.Tensor, P: torch.Tensor, SIG: Optional[torch.Tensor], dilated_kernel_size: Sequence[int],
    version: str, config: Optional[ConstructConfig] = None,
) -> torch.Tensor:
    """Dense kernel (O, I, D0, D1) in weight's dtype from weight (O, I, K), P and SIG (2, O, I, K)."""
    it, scalars, consts = _launch_args(weight, dilated_kernel_size, version)
    o, i, _ = weight.shape
    d0, d1 = dilated_kernel_size
    out = _empty((o, i, d0, d1), weight)
    if out.numel() == 0:
        return out
    if weight.shape[2] == 0:
        return out.zero_()
    w, p = weight.contiguous(), P.contiguous()
    sig = SIG.contiguous() if it.has_sig else p
    cfg = config or choose_config(d0, d1)
    dcls_construct2d_fwd_kernel[(o * i,)](
        w, p, sig, out, *scalars, **consts,
        BLOCK_R=cfg.block_r, BLOCK_C=cfg.block_c, ACC=_acc_type(weight, P, SIG), num_warps=cfg.num_warps,
    )
    return out


def construct2d_bwd(
    grad_kernel: torch.Tensor, weight: torch.Tensor, P: torch.Tensor, SIG: Optional[torch.Tensor],
    dilated_kernel_size: Sequence[int], version: str, config: Optional[ConstructConfig] = None,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """(dweight, dP, dSIG or None), shaped and typed like weight, P, SIG, from grad_kernel (O, I, D0, D1)."""
    it, scalars, consts = _launch_args(weight, dilated_kernel_size, version)
    o, i, kc = weight.shape
    d0, d1 = dilated_kernel_size
    dw = _empty(weight.shape, weight)
    dp = _empty(P.shape, P)
    dsig = _empty(SIG.shape, SIG) if it.has_sig else None
    if dw.numel() == 0:
        return dw, dp, dsig
    w, p, g = weight.contiguous(), P.contiguous(), grad_kernel.contiguous()
    sig = SIG.contiguous() if it.has_sig else p
    cfg = config or choose_config(d0, d1)
    dcls_construct2d_bwd_kernel[(o * i,)](
        g, w, p, sig, dw, dp, dsig if dsig is not None else dp, *scalars, **consts,
        BLOCK_R=cfg.block_r, BLOCK_C=cfg.block_c, ACC=_acc_type(weight, P, SIG), num_warps=cfg.num_warps,
    )
    return dw, dp, dsig
