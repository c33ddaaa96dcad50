"""Long depthwise 1D convolution in fused Triton kernels: the FFT, the spectral product and the inverse FFT of
a whole sequence on chip, as matrix products on tensor cores (the four-step or "Monarch" FFT).

A transform of size N = N1 * N2 (powers of two) views the zero-padded sequence as an (N1, N2) row-major matrix
S[n1, n2] = s[n1*N2 + n2] and computes, with F_m[a, b] = exp(-2 pi i a b / m) and T[k1, n2] = exp(-2 pi i k1 n2 / N):

    X = ((F_N1 @ S) * T) @ F_N2          X[k1, k2] = DFT(s)[k1 + N1*k2]
    s = Re(conj(F_N1) @ ((X @ conj(F_N2)) * conj(T))) / N   (the inverse, for a real s)

Between the two F_N1 products every spectrum row k1 is independent, so the kernels walk the spectrum in blocks
of BK rows: a block of F_N1 @ S, its twiddles and row transforms, the spectral product, the inverse row
transforms, and that block's share of the last product, accumulated into the output rows. Only the sequence's
rows, the output rows and one block of the spectrum are live at a time (small register footprint at any N);
only the rows of S that hold samples enter the first product and only the stored output rows leave the last.
The kernel's spectrum comes from torch.fft (C transforms, scaled by 1/N) in the same [k1, k2] order, so no
transform reorders its output. With N >= L + Lk - 1 the circular convolution is the linear one.

Backward: dx is the same kernel on dy with the conjugate spectrum (a correlation); dk = IDFT(sum_b DY conj(X))
comes from a second kernel that sums each spectrum block over its batch chunk (grid channels x blocks x chunks),
reduced and inverted with torch.fft (C transforms); dD = sum dy x rides along in its first block.

Precision: float32 operands use split-precision ``tf32x3`` (plain ``tf32`` when PyTorch's
``torch.backends.cuda.matmul.allow_tf32`` is set), float16 too; bfloat16 uses ``tf32`` (a 10-bit mantissa,
finer than bfloat16's own 7 bits). Transforms of N = MIN_N .. MAX_N; longer problems use torch.fft.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
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
MAX_N = 32768  # (512, 64) transforms: sequence and output rows of 256 x 64 per program
MAX_N2 = 64  # the row transforms' F_N2 (N2 x N2 complex) is read whole by every block
# Sequence and output rows a program holds (R x N2 each, float32): 256 x 64 compiles for sm_90 into 216 KB of
# shared memory in float32 (benchmarks/kernel_resources.py); 512 x 64 needs 360 KB, more than any GPU has.
MAX_ROW_ELEMENTS = 256 * 64


if triton is not None:

    @triton.jit
    def _cmul(ar, ai, br, bi):
        return ar * br - ai * bi, ar * bi + ai * br

    @triton.jit
    def _sequence_rows(src, L, shift, row0, N2: tl.constexpr, R: tl.constexpr):
        """[R, N2] float32: rows row0 .. row0 + R - 1 of the (N1, N2) view of s[n] = src[n - shift] (zero
        outside [0, L))."""
        t = (row0 + tl.arange(0, R))[:, None] * N2 + tl.arange(0, N2)[None, :] - shift
        return tl.load(src + t, mask=(t >= 0) & (t < L), other=0.0).to(tl.float32)

    @triton.jit
    def _spectrum_block(v, row0, k0, f1_ptr, f2_ptr, tw_ptr,
                        N1: tl.constexpr, N2: tl.constexpr, R: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
        """Rows k1 = k0 .. k0 + BK - 1 of the [k1, k2] spectrum X[k1 + N1*k2] of the sequence whose only nonzero
        rows row0 .. row0 + R - 1 are v: (real, imaginary) [BK, N2]."""
        k1 = k0 + tl.arange(0, BK)
        n1 = row0 + tl.arange(0, R)
        n2 = tl.arange(0, N2)
        f = f1_ptr + k1[:, None] * N1 + n1[None, :]  # F_N1[k1, n1]
        f_ok = (n1 < N1)[None, :]
        ar = tl.dot(tl.load(f, mask=f_ok, other=0.0), v, input_precision=PREC)
        ai = tl.dot(tl.load(f + N1 * N1, mask=f_ok, other=0.0), v, input_precision=PREC)
        tw = tw_ptr + k1[:, None] * N2 + n2[None, :]
        br, bi = _cmul(ar, ai, tl.load(tw), tl.load(tw + N1 * N2))
        f2 = f2_ptr + n2[:, None] * N2 + n2[None, :]
        f2r = tl.load(f2)
        f2i = tl.load(f2 + N2 * N2)
        xr = tl.dot(br, f2r, input_precision=PREC) - tl.dot(bi, f2i, input_precision=PREC)
        xi = tl.dot(br, f2i, input_precision=PREC) + tl.dot(bi, f2r, input_precision=PREC)
        return xr, xi

    @triton.jit
    def _inverse_block(yr, yi, k0, row0, f1_ptr, f2_ptr, tw_ptr,
                       N1: tl.constexpr, N2: tl.constexpr, R: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
        """The share of spectrum rows k0 .. k0 + BK - 1 (yr, yi: [BK, N2]) in rows row0 .. row0 + R - 1 of the
        (N1, N2) view of N * Re(IDFT(Y)): [R, N2]. Rows past N1 get nothing."""
        n2 = tl.arange(0, N2)
        f2 = f2_ptr + n2[:, None] * N2 + n2[None, :]
        f2r = tl.load(f2)
        f2i = tl.load(f2 + N2 * N2)
        cr = tl.dot(yr, f2r, input_precision=PREC) + tl.dot(yi, f2i, input_precision=PREC)  # Y @ conj(F_N2)
        ci = tl.dot(yi, f2r, input_precision=PREC) - tl.dot(yr, f2i, input_precision=PREC)
        k1 = k0 + tl.arange(0, BK)
        tw = tw_ptr + k1[:, None] * N2 + n2[None, :]
        tr = tl.load(tw)
        ti = tl.load(tw + N1 * N2)
        dr = cr * tr + ci * ti  # times conj(T)
        di = ci * tr - cr * ti
        n1 = row0 + tl.arange(0, R)
        g = f1_ptr + n1[:, None] * N1 + k1[None, :]  # conj(F_N1)[n1, k1] = F_N1[k1, n1]^* (F_N1 is symmetric)
        g_ok = (n1 < N1)[:, None]
        return (tl.dot(tl.load(g, mask=g_ok, other=0.0), dr, input_precision=PREC)
                + tl.dot(tl.load(g + N1 * N1, mask=g_ok, other=0.0), di, input_precision=PREC))

    @triton.jit
    def long_conv1d_fused_kernel(
        in_ptr, kf_ptr, d_ptr, out_ptr, f1_ptr, f2_ptr, tw_ptr,
        B, L, IN_SHIFT, OUT_SHIFT, B_PER_PROG, sib, sic, sob, soc, sd,
        N1: tl.constexpr, N2: tl.constexpr, R_IN: tl.constexpr, R_OUT: tl.constexpr, BK: tl.constexpr,
        CONJ: tl.constexpr, HAS_D: tl.constexpr, PREC: tl.constexpr,
    ):
        """out[b, c, t] = IDFT(DFT(s) * K)[t + OUT_SHIFT] (+ D[c] in[b, c, t]), s[n] = in[b, c, n - IN_SHIFT],
        K = kf[c] (the kernel's spectrum at [k1, k2], scaled by 1/N) or its conjugate (CONJ).
        Forward: in = x, IN_SHIFT = 0, OUT_SHIFT = shift. Input gradient: in = dy, IN_SHIFT = shift, OUT_SHIFT = 0,
        CONJ. Grid (C, batch chunks): each program transforms the B_PER_PROG sequences of its chunk in turn."""
        c = tl.program_id(0)
        g = tl.program_id(1)
        in_row0 = IN_SHIFT // N2
        out_row0 = OUT_SHIFT // N2
        n2 = tl.arange(0, N2)
        t = (out_row0 + tl.arange(0, R_OUT))[:, None] * N2 + n2[None, :] - OUT_SHIFT
        ok = (t >= 0) & (t < L)
        kc = kf_ptr + c.to(tl.int64) * (2 * N1 * N2)
        for i in range(0, B_PER_PROG):
            b = (g * B_PER_PROG + i).to(tl.int64)
            if b < B:
                src = in_ptr + b * sib + c.to(tl.int64) * sic
                v = _sequence_rows(src, L, IN_SHIFT, in_row0, N2, R_IN)
                z = tl.zeros([R_OUT, N2], dtype=tl.float32)
                for k0 in range(0, N1, BK):
                    xr, xi = _spectrum_block(v, in_row0, k0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_IN, BK, PREC)
                    kb = kc + (k0 + tl.arange(0, BK))[:, None] * N2 + n2[None, :]
                    kr = tl.load(kb)
                    ki = tl.load(kb + N1 * N2)
                    if CONJ:
                        ki = -ki
                    yr, yi = _cmul(xr, xi, kr, ki)
                    z += _inverse_block(yr, yi, k0, out_row0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_OUT, BK, PREC)
                if HAS_D:
                    z += tl.load(d_ptr + c * sd).to(tl.float32) * tl.load(src + t, mask=ok, other=0.0).to(tl.float32)
                tl.store(out_ptr + b * sob + c.to(tl.int64) * soc + t, z.to(out_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def long_conv1d_fused_dk_kernel(
        x_ptr, dy_ptr, sp_ptr, dd_ptr, f1_ptr, f2_ptr, tw_ptr,
        B, C, L, shift, B_PER_PROG, sxb, sxc, syb, syc,
        N1: tl.constexpr, N2: tl.constexpr, R_X: tl.constexpr, R_DY: tl.constexpr, BK: tl.constexpr,
        HAS_D: tl.constexpr, PREC: tl.constexpr,
    ):
        """sp[g, c, :, k1 block] = sum over the batch chunk g of DZ * conj(X) for spectrum rows
        k1 = blk*BK .. blk*BK + BK - 1 (real and imaginary planes; dz[n] = dy[b, c, n - shift]);
        with HAS_D, the first block's programs also write dd[g, c] = sum over the chunk of sum_t dy x.
        Grid (C, N1 / BK blocks, batch chunks)."""
        c = tl.program_id(0)
        blk = tl.program_id(1)
        g = tl.program_id(2)
        k0 = blk * BK
        sr = tl.zeros([BK, N2], dtype=tl.float32)
        si = tl.zeros([BK, N2], dtype=tl.float32)
        dd = 0.0
        t = tl.arange(0, R_X)[:, None] * N2 + tl.arange(0, N2)[None, :]
        for i in range(0, B_PER_PROG):
            b = (g * B_PER_PROG + i).to(tl.int64)
            if b < B:
                ys = dy_ptr + b * syb + c.to(tl.int64) * syc
                xs = x_ptr + b * sxb + c.to(tl.int64) * sxc
                vz = _sequence_rows(ys, L, shift, shift // N2, N2, R_DY)
                zr, zi = _spectrum_block(vz, shift // N2, k0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_DY, BK, PREC)
                vx = _sequence_rows(xs, L, 0, 0, N2, R_X)
                xr, xi = _spectrum_block(vx, 0, k0, f1_ptr, f2_ptr, tw_ptr, N1, N2, R_X, BK, PREC)
                pr, pi = _cmul(zr, zi, xr, -xi)
                sr += pr
                si += pi
                if HAS_D:
                    if blk == 0:
                        dyt = tl.load(ys + t, mask=t < L, other=0.0).to(tl.float32)
                        dd += tl.sum(tl.sum(dyt * vx, axis=1), axis=0)
        out = (sp_ptr + (g * C + c).to(tl.int64) * (2 * N1 * N2) + (k0 + tl.arange(0, BK))[:, None] * N2
               + tl.arange(0, N2)[None, :])
        tl.store(out, sr)
        tl.store(out + N1 * N2, si)
        if HAS_D:
            if blk == 0:
                tl.store(dd_ptr + g * C + c, dd)


def transform_size(length: int, lk: int) -> int:
    """N: the power of two >= L + Lk - 1 (no wrap-around), at least MIN_N."""
    return max(MIN_N, 1 << (length + lk - 2).bit_length())


def unsupported_reason(x: Tensor, k: Tensor, causal: bool = True) -> Optional[str]:
    """None when the fused kernels can serve long_conv1d(x, k, causal=causal), else why not."""
    if not can_launch(x):
        return f"tensors on {x.device} (Triton kernels need CUDA, or TRITON_INTERPRET=1 on CPU)"
    if x.dtype not in SUPPORTED_DTYPES:
        return f"dtype {x.dtype} (the fused kernels support float32, float16, bfloat16)"
    n = transform_size(x.shape[-1], k.shape[-1])
    if n > MAX_N:
        return f"L + Lk - 1 = {x.shape[-1] + k.shape[-1] - 1} needs a transform of {n} > MAX_N = {MAX_N}"
    if x.numel() == 0:
        return "an empty input"
    _, _, n2, _, rows, rows_shifted = _geometry(x.shape[-1], k.shape[-1], causal)
    if max(rows, rows_shifted) * n2 > MAX_ROW_ELEMENTS:
        return (f"L = {x.shape[-1]} needs {max(rows, rows_shifted)} rows of {n2} samples on chip "
                f"(more than {MAX_ROW_ELEMENTS} elements: the kernels' shared memory would not fit)")
    return None


def _factors(n: int) -> Tuple[int, int]:
    """(N1, N2), powers of two with N1 * N2 = n: N2 = the square root rounded down, at most MAX_N2 (the work,
    about N * (N1 + 4 N2) multiply-adds per direction, is the same at N1 = 4 N2 as at N1 = 2 N2)."""
    n2 = min(1 << (n.bit_length() - 1) // 2, MAX_N2)
    return n // n2, n2


@functools.lru_cache(maxsize=32)
def _dft_constants(n1: int, n2: int, device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
    """F_N1 (2, N1, N1), F_N2 (2, N2, N2) and T (2, N1, N2): real and imaginary planes, float32, from exact
    integer phases in float64."""

    def planes(a: Tensor, b: Tensor, m: int) -> Tensor:
        phase = (a[:, None] * b[None, :]) % m
        ang = phase.to(torch.float64) * (-2 * math.pi / m)
        return torch.stack((torch.cos(ang), torch.sin(ang))).to(torch.float32).contiguous()

    # computed on the device itself: no host-to-device copy (which a CUDA-graph capture would not allow)
    i1 = torch.arange(n1, dtype=torch.int64, device=device)
    i2 = torch.arange(n2, dtype=torch.int64, device=device)
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
    """(N, N1, N2, shift, rows of [0, L), rows of [shift, shift + L)): the row counts are powers of two >= 16."""
    n = transform_size(length, lk)
    n1, n2 = _factors(n)
    shift = 0 if causal else (lk - 1) // 2
    rows = max(16, triton.next_power_of_2(triton.cdiv(length, n2)))
    rows_shifted = max(16, triton.next_power_of_2((shift + length - 1) // n2 - shift // n2 + 1))
    return n, n1, n2, shift, rows, rows_shifted


@dataclass(frozen=True)
class FusedConfig:
    """Spectrum rows per block, warps, pipeline stages, and sequences per program (0: enough (channel, chunk)
    programs for about four per SM); precision: a tl.dot input_precision ("": by dtype, see the module).

    Defaults from `benchmarks/kernel_resources.py` (compiled for sm_90 without a GPU, specialized as launched):
    16-row blocks, eight warps and no software pipelining spill least (8192 points: none in bfloat16, 8 and
    528 bytes in float32 split precision; 32768 points: 8-40 bytes in bfloat16, 1.3-4.9 KB in float32 with
    the register cap, where 32-row blocks or four warps spill more); not yet timed on a GPU."""

    block_rows: int = 16
    num_warps: int = 8
    num_stages: int = 1
    seqs_per_program: int = 0
    precision: str = ""


def _chunks(bsz: int, programs_per_chunk: int, device: torch.device, per: int) -> Tuple[int, int]:
    """(chunks, sequences per chunk) of the batch."""
    if per <= 0:
        sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
        per = triton.cdiv(bsz, max(1, min(bsz, triton.cdiv(4 * sms, max(1, programs_per_chunk)))))
    per = max(1, min(per, bsz))
    return triton.cdiv(bsz, per), per


def _block_rows(cfg: "FusedConfig", n1: int) -> int:
    bk = cfg.block_rows
    if bk < 16 or bk & (bk - 1):
        raise ValueError(f"block_rows must be a power of two >= 16, got {bk}")
    return min(bk, n1)


def _launch_conv(src, kf, D, out, in_shift, out_shift, r_in, r_out, conj, n1, n2, cfg, dtype):
    bsz, c, length = src.shape
    bk = _block_rows(cfg, n1)
    chunks, per = _chunks(bsz, c, src.device, cfg.seqs_per_program)
    f1, f2, tw = _dft_constants(n1, n2, src.device)
    long_conv1d_fused_kernel[(c, chunks)](
        src, kf, D if D is not None else kf, out, f1, f2, tw, bsz, length, in_shift, out_shift, per,
        src.stride(0), src.stride(1), out.stride(0), out.stride(1), D.stride(0) if D is not None else 0,
        N1=n1, N2=n2, R_IN=r_in, R_OUT=r_out, BK=bk, CONJ=conj, HAS_D=D is not None,
        PREC=cfg.precision or _precision(dtype), num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        **_register_cap())
    return out


@functools.lru_cache(maxsize=1)
def _register_cap() -> dict:
    """maxnreg=255 for both kernels' compiled launches where Triton's CUDA backend takes it: left to itself
    ptxas gives the float32 dk kernel 32 registers and 11.6 KB of spills at 32768 points (4.9 KB with the cap;
    benchmarks/kernel_resources.py)."""
    if interpreting():
        return {}
    try:
        from triton.backends.nvidia.compiler import CUDAOptions
    except Exception:  # pragma: no cover - another backend
        return {}
    return {"maxnreg": 255} if "maxnreg" in getattr(CUDAOptions, "__dataclass_fields__", {}) else {}


def _empty_like_seq(x: Tensor) -> Tensor:
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if poisoning():
        out.fill_(float("nan"))
    return out


def fused_fwd(x: Tensor, k: Tensor, D: Optional[Tensor], causal: bool, kf: Tensor,
              config: Optional[FusedConfig] = None) -> Tensor:
    """y (B, C, L) contiguous, x's dtype, for x with unit stride along L and kf = kernel_spectrum(k, N)."""
    n, n1, n2, shift, rows, rows_shifted = _geometry(x.shape[-1], k.shape[-1], causal)
    return _launch_conv(x, kf, D, _empty_like_seq(x), 0, shift, rows, rows_shifted, False, n1, n2,
                        config or FusedConfig(), x.dtype)


def fused_bwd(dy: Tensor, x: Tensor, k: Tensor, D: Optional[Tensor], causal: bool, kf: Tensor, need_dk: bool,
              config: Optional[FusedConfig] = None, need_dx: bool = True, need_dD: bool = True):
    """(dx, dk float32, dD float32), each None when not needed (dD also without D), for dy and x with unit
    stride along L."""
    cfg = config or FusedConfig()
    bsz, c, length = x.shape
    lk = k.shape[-1]
    n, n1, n2, shift, rows, rows_shifted = _geometry(length, lk, causal)
    dx = None
    if need_dx:
        dx = _launch_conv(dy, kf, D, _empty_like_seq(x), shift, 0, rows_shifted, rows, True, n1, n2, cfg, x.dtype)
    need_dD = need_dD and D is not None
    if not need_dk:
        dD = (dy.float() * x.float()).sum(dim=(0, 2)) if need_dD else None
        return dx, None, dD
    bk = _block_rows(cfg, n1)
    chunks, per = _chunks(bsz, c * (n1 // bk), x.device, cfg.seqs_per_program)
    sp = torch.empty((chunks, c, 2, n1, n2), dtype=torch.float32, device=x.device)
    dd = torch.empty((chunks, c), dtype=torch.float32, device=x.device) if need_dD else sp
    f1, f2, tw = _dft_constants(n1, n2, x.device)
    long_conv1d_fused_dk_kernel[(c, n1 // bk, chunks)](
        x, dy, sp, dd, f1, f2, tw, bsz, c, length, shift, per, x.stride(0), x.stride(1), dy.stride(0),
        dy.stride(1), N1=n1, N2=n2, R_X=rows, R_DY=rows_shifted, BK=bk, HAS_D=need_dD,
        PREC=cfg.precision or _precision(x.dtype), num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        **_register_cap())
    s = sp.sum(0)  # (C, 2, N1, N2)
    s = torch.complex(s[:, 0], s[:, 1]).transpose(1, 2).reshape(c, n)  # standard order k1 + N1*k2
    dk = torch.fft.ifft(s, n=n).real[:, :lk]
    return dx, dk, dd.sum(0) if need_dD else None


class FusedLongConv1d(torch.autograd.Function):
    """long_conv1d through the fused kernels; x is (B, C, L) with unit stride along L. First derivatives only."""

    @staticmethod
    def forward(ctx, x, k, D, causal):
        kf = kernel_spectrum(k, transform_size(x.shape[-1], k.shape[-1]))
        ctx.save_for_backward(x, k, D, kf)
        ctx.causal = causal
        return fused_fwd(x, k, D, causal, kf)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, k, D, kf = ctx.saved_tensors
        dy = dy if dy.stride(-1) == 1 else dy.contiguous()
        need = ctx.needs_input_grad
        dx, dk, dD = fused_bwd(dy, x, k, D, ctx.causal, kf, need[1], need_dx=need[0], need_dD=need[2])
        return (dx, dk.to(k.dtype) if dk is not None else None, dD.to(D.dtype) if dD is not None else None, None)
