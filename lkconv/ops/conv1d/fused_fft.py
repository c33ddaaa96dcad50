"""Long depthwise 1D convolution as one Triton kernel per direction: the FFT, the spectral product and the inverse
FFT of a whole sequence on chip, as matrix products on tensor cores (the four-step or "Monarch" FFT).

A transform of size N = N1 * N2 (powers of two) views the zero-padded sequence as an (N1, N2) row-major matrix
S[n1, n2] = s[n1*N2 + n2] and computes, with F_m[a, b] = exp(-2 pi i a b / m) and T[k1, n2] = exp(-2 pi i k1 n2 / N):

    X = ((F_N1 @ S) * T) @ F_N2          X[k1, k2] = DFT(s)[k1 + N1*k2]
    s = Re((conj(F_N1) @ (X @ conj(F_N2)) * conj(T))) / N  (the inverse, for a real s)

Only the rows of S that hold samples enter the first product, and only the output rows that are stored leave
the last one. The kernel's spectrum comes from torch.fft (C transforms, scaled by 1/N) in the same [k1, k2]
order, so no transform ever reorders its output. With N >= L + Lk - 1 the circular convolution is the linear
one. The backward pass transforms dy and x once each per sequence: dx = IDFT(DY conj(K)) in the kernel,
dk = IDFT(sum_b DY conj(X)) from per-program spectrum sums, reduced and inverted with torch.fft (C transforms).

Precision: float32 operands use split-precision ``tf32x3`` (plain ``tf32`` when PyTorch's
``torch.backends.cuda.matmul.allow_tf32`` is set), float16 too; bfloat16 uses ``tf32`` (errors near 1e-3,
well inside bfloat16's own rounding). Transforms of N = 256 .. MAX_N; longer problems use torch.fft.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..._triton import can_launch, interpreting, triton_available
from ...testing import poisoning

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MIN_N = 256  # N1, N2 >= 16: the smallest tensor-core products
MAX_N = 8192  # (128, 64) complex float32 tiles: the largest that stay in registers


if triton is not None:

    @triton.jit
    def _cmul(ar, ai, br, bi):
        return ar * br - ai * bi, ar * bi + ai * br

    @triton.jit
    def _constants(f2_ptr, tw_ptr, N1: tl.constexpr, N2: tl.constexpr):
        """T and F_N2 (real, imaginary), loaded where they are used (L1/L2 hits) rather than held in registers
        across the whole kernel."""
        k1 = tl.arange(0, N1)
        n2 = tl.arange(0, N2)
        tw = tw_ptr + k1[:, None] * N2 + n2[None, :]
        f2 = f2_ptr + n2[:, None] * N2 + n2[None, :]
        return tl.load(tw), tl.load(tw + N1 * N2), tl.load(f2), tl.load(f2 + N2 * N2)

    @triton.jit
    def _forward_dft(src, L, shift, row0, f1_ptr, f2_ptr, tw_ptr,
                     N1: tl.constexpr, N2: tl.constexpr, R: tl.constexpr, PREC: tl.constexpr):
        """(real, imaginary) [N1, N2] spectrum, X[k1 + N1*k2] at [k1, k2], of the length-N1*N2 real sequence
        s[n] = src[n - shift] (zero outside [0, L)), whose samples lie in rows row0 .. row0 + R - 1 of its
        (N1, N2) view."""
        r = tl.arange(0, R)
        n2 = tl.arange(0, N2)
        k1 = tl.arange(0, N1)
        n1 = row0 + r
        t = n1[:, None] * N2 + n2[None, :] - shift
        v = tl.load(src + t, mask=(t >= 0) & (t < L), other=0.0).to(tl.float32)  # [R, N2]
        f_off = k1[:, None] * N1 + n1[None, :]  # F_N1[k1, n1] for the rows that hold samples
        f_ok = (n1 < N1)[None, :]
        fr = tl.load(f1_ptr + f_off, mask=f_ok, other=0.0)
        fi = tl.load(f1_ptr + N1 * N1 + f_off, mask=f_ok, other=0.0)
        ar = tl.dot(fr, v, input_precision=PREC)
        ai = tl.dot(fi, v, input_precision=PREC)
        tw_r, tw_i, f2r, f2i = _constants(f2_ptr, tw_ptr, N1, N2)
        br, bi = _cmul(ar, ai, tw_r, tw_i)
        xr = tl.dot(br, f2r, input_precision=PREC) - tl.dot(bi, f2i, input_precision=PREC)
        xi = tl.dot(br, f2i, input_precision=PREC) + tl.dot(bi, f2r, input_precision=PREC)
        return xr, xi

    @triton.jit
    def _inverse_dft_rows(yr, yi, row0, f1_ptr, f2_ptr, tw_ptr,
                          N1: tl.constexpr, N2: tl.constexpr, R: tl.constexpr, PREC: tl.constexpr):
        """Rows row0 .. row0 + R - 1 of the (N1, N2) view of N * Re(IDFT(Y)), Y given as [k1, k2] like
        _forward_dft's output. Rows past N1 come out zero."""
        tw_r, tw_i, f2r, f2i = _constants(f2_ptr, tw_ptr, N1, N2)
        cr = tl.dot(yr, f2r, input_precision=PREC) + tl.dot(yi, f2i, input_precision=PREC)  # Y @ conj(F_N2)
        ci = tl.dot(yi, f2r, input_precision=PREC) - tl.dot(yr, f2i, input_precision=PREC)
        dr = cr * tw_r + ci * tw_i  # times conj(T)
        di = ci * tw_r - cr * tw_i
        r = tl.arange(0, R)
        k1 = tl.arange(0, N1)
        n1 = row0 + r
        g_off = n1[:, None] * N1 + k1[None, :]  # conj(F_N1)[n1, k1] = F_N1[k1, n1]^*, and F_N1 is symmetric
        g_ok = (n1 < N1)[:, None]
        gr = tl.load(f1_ptr + g_off, mask=g_ok, other=0.0)
        gi = tl.load(f1_ptr + N1 * N1 + g_off, mask=g_ok, other=0.0)
        return tl.dot(gr, dr, input_precision=PREC) + tl.dot(gi, di, input_precision=PREC)

    @triton.jit
    def long_conv1d_fused_fwd_kernel(
        x_ptr, kf_ptr, d_ptr, y_ptr, f1_ptr, f2_ptr, tw_ptr,
        B, L, shift, B_PER_PROG, sxb, sxc, syb, syc,
        N1: tl.constexpr, N2: tl.constexpr, R_IN: tl.constexpr, R_OUT: tl.constexpr,
        HAS_D: tl.constexpr, PREC: tl.constexpr,
    ):
        """y[b, c, t] = z[t + shift] (+ D[c] x[b, c, t]), z = IDFT(DFT(x[b, c]) * kf[c]) with kf the kernel's
        spectrum over N at [k1, k2], scaled by 1/N. Grid (C, batch chunks): each program transforms the
        B_PER_PROG sequences of its chunk in turn, re-reading the constants and kf[c] from its L1."""
        c = tl.program_id(0)
        g = tl.program_id(1)
        k = kf_ptr + c.to(tl.int64) * (2 * N1 * N2) + tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
        row0 = shift // N2
        t = (row0 + tl.arange(0, R_OUT))[:, None] * N2 + tl.arange(0, N2)[None, :] - shift
        ok = (t >= 0) & (t < L)
        for i in range(0, B_PER_PROG):
            b = (g * B_PER_PROG + i).to(tl.int64)
            if b < B:
                xs = x_ptr + b * sxb + c.to(tl.int64) * sxc
                xr, xi = _forward_dft(xs, L, 0, 0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_IN, PREC)
                yr, yi = _cmul(xr, xi, tl.load(k), tl.load(k + N1 * N2))
                z = _inverse_dft_rows(yr, yi, row0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_OUT, PREC)
                if HAS_D:
                    z += tl.load(d_ptr + c).to(tl.float32) * tl.load(xs + t, mask=ok, other=0.0).to(tl.float32)
                tl.store(y_ptr + b * syb + c.to(tl.int64) * syc + t, z.to(y_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def long_conv1d_fused_bwd_kernel(
        x_ptr, dy_ptr, kf_ptr, d_ptr, dx_ptr, sp_ptr, dd_ptr, f1_ptr, f2_ptr, tw_ptr,
        B, C, L, shift, B_PER_PROG, sxb, sxc, syb, syc, sdb, sdc,
        N1: tl.constexpr, N2: tl.constexpr, R_IN: tl.constexpr, R_OUT: tl.constexpr,
        HAS_D: tl.constexpr, NEED_DK: tl.constexpr, PREC: tl.constexpr,
    ):
        """For the sequences b of this program's batch chunk g: dx[b, c] = IDFT(DZ * conj(kf[c])) (+ D[c] dy),
        DZ = DFT(dz), dz[n] = dy[b, c, n - shift]; sp[g, c] = sum_b DZ * conj(DFT(x[b, c])) at [k1, k2]
        (real and imaginary planes); dd[g, c] = sum_b sum_t dy x. Grid (C, batch chunks)."""
        c = tl.program_id(0)
        g = tl.program_id(1)
        spec = tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
        k = kf_ptr + c.to(tl.int64) * (2 * N1 * N2) + spec
        sr = tl.zeros([N1, N2], dtype=tl.float32)
        si = tl.zeros([N1, N2], dtype=tl.float32)
        dd = 0.0
        t = tl.arange(0, R_IN)[:, None] * N2 + tl.arange(0, N2)[None, :]
        t_ok = t < L
        for i in range(0, B_PER_PROG):
            b = (g * B_PER_PROG + i).to(tl.int64)
            if b < B:
                ys = dy_ptr + b * syb + c.to(tl.int64) * syc
                xs = x_ptr + b * sxb + c.to(tl.int64) * sxc
                zr, zi = _forward_dft(ys, L, shift, shift // N2, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_OUT, PREC)
                if NEED_DK:
                    xr, xi = _forward_dft(xs, L, 0, 0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_IN, PREC)
                    pr, pi = _cmul(zr, zi, xr, -xi)
                    sr += pr
                    si += pi
                # the spectra are (re)loaded here, not held across the loop: fewer live registers
                ur, ui = _cmul(zr, zi, tl.load(k), -tl.load(k + N1 * N2))
                dx = _inverse_dft_rows(ur, ui, 0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_IN, PREC)
                if HAS_D:
                    dyt = tl.load(ys + t, mask=t_ok, other=0.0).to(tl.float32)
                    dx += tl.load(d_ptr + c).to(tl.float32) * dyt
                    xt = tl.load(xs + t, mask=t_ok, other=0.0).to(tl.float32)
                    dd += tl.sum(tl.sum(dyt * xt, axis=1), axis=0)
                tl.store(dx_ptr + b * sdb + c.to(tl.int64) * sdc + t, dx.to(dx_ptr.dtype.element_ty), mask=t_ok)
        if NEED_DK:
            out = sp_ptr + (g * C + c).to(tl.int64) * (2 * N1 * N2) + spec
            tl.store(out, sr)
            tl.store(out + N1 * N2, si)
        if HAS_D:
            tl.store(dd_ptr + g * C + c, dd)


def transform_size(length: int, lk: int) -> int:
    """N: the power of two >= L + Lk - 1 (no wrap-around), at least MIN_N."""
    return max(MIN_N, 1 << (length + lk - 2).bit_length())


def unsupported_reason(x: Tensor, k: Tensor) -> Optional[str]:
    """None when the fused kernels can serve long_conv1d(x, k), else why not."""
    if not can_launch(x):
        return f"tensors on {x.device} (Triton kernels need CUDA, or TRITON_INTERPRET=1 on CPU)"
    if x.dtype not in SUPPORTED_DTYPES:
        return f"dtype {x.dtype} (the fused kernels support float32, float16, bfloat16)"
    n = transform_size(x.shape[-1], k.shape[-1])
    if n > MAX_N:
        return f"L + Lk - 1 = {x.shape[-1] + k.shape[-1] - 1} needs a transform of {n} > MAX_N = {MAX_N}"
    return None


def _factors(n: int) -> Tuple[int, int]:
    """(N1, N2), N1 >= N2, powers of two with N1 * N2 = n."""
    n2 = 1 << (n.bit_length() - 1) // 2
    return n // n2, n2


@functools.lru_cache(maxsize=32)
def _dft_constants(n1: int, n2: int, device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
    """F_N1 (2, N1, N1), F_N2 (2, N2, N2) and T (2, N1, N2): real and imaginary planes, float32, from exact
    integer phases in float64."""

    def planes(a: Tensor, b: Tensor, m: int) -> Tensor:
        phase = (a[:, None] * b[None, :]) % m
        ang = phase.to(torch.float64) * (-2 * math.pi / m)
        return torch.stack((torch.cos(ang), torch.sin(ang))).to(torch.float32).to(device).contiguous()

    i1 = torch.arange(n1, dtype=torch.int64)
    i2 = torch.arange(n2, dtype=torch.int64)
    return planes(i1, i1, n1), planes(i2, i2, n2), planes(i1, i2, n1 * n2)


def kernel_spectrum(k: Tensor, n: int) -> Tensor:
    """(C, 2, N1, N2) float32: DFT_N(k)[k1 + N1*k2] / N at [k1, k2] (real and imaginary planes)."""
    n1, n2 = _factors(n)
    spec = torch.fft.fft(k.to(torch.float32), n=n) / n  # (C, N), index k1 + N1*k2
    spec = spec.reshape(k.shape[0], n2, n1).transpose(1, 2)
    return torch.stack((spec.real, spec.imag), dim=1).contiguous()


def _precision(dtype: torch.dtype) -> str:
    if interpreting():
        return "ieee"
    if dtype == torch.bfloat16:
        return "tf32"
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "tf32x3"


def _geometry(length: int, lk: int, causal: bool):
    n = transform_size(length, lk)
    n1, n2 = _factors(n)
    shift = 0 if causal else (lk - 1) // 2
    r_in = max(16, triton.next_power_of_2(triton.cdiv(length, n2)))
    r_out = max(16, triton.next_power_of_2((shift + length - 1) // n2 - shift // n2 + 1))
    return n, n1, n2, shift, r_in, r_out


def _num_warps(n: int) -> int:
    return 8 if n >= 4096 else 4


def _batch_chunks(bsz: int, channels: int, device: torch.device, per: Optional[int] = None) -> Tuple[int, int]:
    """(chunks, sequences per chunk): enough (channel, chunk) programs for about four per SM."""
    if per is None:
        sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
        per = triton.cdiv(bsz, max(1, min(bsz, triton.cdiv(4 * sms, channels))))
    per = max(1, min(per, bsz))
    return triton.cdiv(bsz, per), per


def fused_fwd(x: Tensor, k: Tensor, D: Optional[Tensor], causal: bool, kf: Tensor,
              num_warps: Optional[int] = None, precision: Optional[str] = None,
              seqs_per_program: Optional[int] = None) -> Tensor:
    """y (B, C, L) contiguous, x's dtype, for x with unit stride along L and kf = kernel_spectrum(k, N).
    num_warps, precision (a tl.dot input_precision) and seqs_per_program override the defaults, for tuning."""
    bsz, c, length = x.shape
    n, n1, n2, shift, r_in, r_out = _geometry(length, k.shape[-1], causal)
    y = torch.empty((bsz, c, length), dtype=x.dtype, device=x.device)
    if poisoning():
        y.fill_(float("nan"))
    f1, f2, tw = _dft_constants(n1, n2, x.device)
    chunks, per = _batch_chunks(bsz, c, x.device, seqs_per_program)
    long_conv1d_fused_fwd_kernel[(c, chunks)](
        x, kf, D if D is not None else kf, y, f1, f2, tw, bsz, length, shift, per, x.stride(0), x.stride(1),
        y.stride(0), y.stride(1), N1=n1, N2=n2, R_IN=r_in, R_OUT=r_out, HAS_D=D is not None,
        PREC=precision or _precision(x.dtype), num_warps=num_warps or _num_warps(n))
    return y


def fused_bwd(dy: Tensor, x: Tensor, k: Tensor, D: Optional[Tensor], causal: bool, kf: Tensor, need_dk: bool,
              num_warps: Optional[int] = None, precision: Optional[str] = None,
              seqs_per_program: Optional[int] = None):
    """(dx, dk float32 or None, dD float32 or None) for dy and x with unit stride along L."""
    bsz, c, length = x.shape
    lk = k.shape[-1]
    n, n1, n2, shift, r_in, r_out = _geometry(length, lk, causal)
    dx = torch.empty((bsz, c, length), dtype=x.dtype, device=x.device)
    if poisoning():
        dx.fill_(float("nan"))
    chunks, per = _batch_chunks(bsz, c, x.device, seqs_per_program)
    sp = torch.empty((chunks, c, 2, n1, n2), dtype=torch.float32, device=x.device) if need_dk else kf
    dd = torch.empty((chunks, c), dtype=torch.float32, device=x.device) if D is not None else kf
    f1, f2, tw = _dft_constants(n1, n2, x.device)
    long_conv1d_fused_bwd_kernel[(c, chunks)](
        x, dy, kf, D if D is not None else kf, dx, sp, dd, f1, f2, tw, bsz, c, length, shift, per,
        x.stride(0), x.stride(1), dy.stride(0), dy.stride(1), dx.stride(0), dx.stride(1),
        N1=n1, N2=n2, R_IN=r_in, R_OUT=r_out, HAS_D=D is not None, NEED_DK=need_dk,
        PREC=precision or _precision(x.dtype), num_warps=num_warps or _num_warps(n))
    dk = None
    if need_dk:
        s = sp.sum(0)  # (C, 2, N1, N2)
        s = torch.complex(s[:, 0], s[:, 1]).transpose(1, 2).reshape(c, n)  # standard order k1 + N1*k2
        dk = torch.fft.ifft(s, n=n).real[:, :lk]
    return dx, dk, dd.sum(0) if D is not None else None


class FusedLongConv1d(torch.autograd.Function):
    """long_conv1d through the fused kernels; x is (B, C, L) with unit stride along L."""

    @staticmethod
    def forward(ctx, x, k, D, causal):
        kf = kernel_spectrum(k, transform_size(x.shape[-1], k.shape[-1]))
        ctx.save_for_backward(x, k, D, kf)
        ctx.causal = causal
        return fused_fwd(x, k, D, causal, kf)

    @staticmethod
    def backward(ctx, dy):
        x, k, D, kf = ctx.saved_tensors
        dy = dy if dy.stride(-1) == 1 else dy.contiguous()
        dx, dk, dD = fused_bwd(dy, x, k, D, ctx.causal, kf, ctx.needs_input_grad[1])
        return (dx, dk.to(k.dtype) if dk is not None else None, dD.to(D.dtype) if dD is not None else None, None)
