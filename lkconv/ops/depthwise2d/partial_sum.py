"""The weight gradient's last step: partial sums of chunks added up, laid out and cast in one launch.

The direct weight-gradient kernels write ``part`` (K, C_out, ka, kb) in fp32, one slab per chunk of the batch
and plane. The weight gradient is ``part.sum(0)``, transposed to (C_out, kb, ka) where the kernels ran on the
transposed problem, in the weight's dtype. In PyTorch that is up to three operations (sum, transposing copy,
cast), each with its host cost; :func:`sum_partials` does it in one Triton launch, always adding the chunks
in the same order (deterministic). :func:`sum_partials_torch` is the same computation in PyTorch.
"""
from __future__ import annotations

import torch

from ..._triton import triton_available
from .._launch import FastLauncher

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover
    triton = None

_BLOCK = 256  # weight-gradient elements per program

if triton is not None:

    @triton.jit
    def wgrad_partial_sum_kernel(
        part_ptr, dw_ptr,
        K, E, KA, KB,
        SWAP: tl.constexpr, KT: tl.constexpr, BLOCK: tl.constexpr, INT64: tl.constexpr,
    ):
        """dw[o(e)] = sum_k part[k, e] for e = (co*KA + i)*KB + j < E; o(e) = e, or (co*KB + j)*KA + i with SWAP.

        KT chunks are loaded at a time; the sum's order depends only on K. INT64: element indices past 2**31.
        Grid: (cdiv(E, BLOCK),).
        """
        if INT64:
            e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        else:
            e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = e < E
        kk = tl.arange(0, KT)
        acc = tl.zeros([KT, BLOCK], dtype=tl.float32)
        for k0 in range(0, K, KT):
            k = k0 + kk
            offs = k.to(tl.int64)[:, None] * E + e[None, :]
            acc += tl.load(part_ptr + offs, mask=(k < K)[:, None] & m[None, :], other=0.0)
        total = tl.sum(acc, axis=0)
        if SWAP:
            j = e % KB
            t = e // KB
            o = (t // KA * KB + j) * KA + t % KA
        else:
            o = e
        tl.store(dw_ptr + o, total.to(dw_ptr.dtype.element_ty), mask=m)


_launch = FastLauncher(wgrad_partial_sum_kernel) if triton is not None else None


def _chunks_per_load(k: int) -> int:
    """Chunks summed per load: the power of two at or above k, at most 16 (plain Python: this runs every call,
    and a host call of a Triton function costs microseconds)."""
    return min(16, 1 << (max(k, 1) - 1).bit_length())


def sum_partials(part: torch.Tensor, swap: bool, dtype: torch.dtype) -> torch.Tensor:
    """Weight gradient (C_out, 1, ka, kb), or (C_out, 1, kb, ka) with ``swap``, in ``dtype``, from part
    (K >= 1, C_out, ka, kb) fp32 contiguous."""
    k, c_out, ka, kb = part.shape
    shape = (c_out, 1, kb, ka) if swap else (c_out, 1, ka, kb)
    if k == 1 and not swap and dtype == part.dtype:
        return part.view(shape)
    dw = torch.empty(shape, dtype=dtype, device=part.device)
    e = c_out * ka * kb
    if e == 0:
        return dw
    kt = _chunks_per_load(k)
    int64 = e + _BLOCK > 2**31 - 1
    grid = (-(-e // _BLOCK), 1, 1)
    _launch((k, e, ka, kb, swap, kt), grid, (part, dw, k, e, ka, kb),
            dict(SWAP=swap, KT=kt, BLOCK=_BLOCK, INT64=int64, num_warps=4), 1, lambda: dw.clone())
    return dw


def sum_partials_torch(part: torch.Tensor, swap: bool, dtype: torch.dtype) -> torch.Tensor:
    """:func:`sum_partials` in PyTorch."""
    _, c_out, ka, kb = part.shape
    dw = part.sum(0)
    dw = dw.transpose(1, 2).reshape(c_out, 1, kb, ka) if swap else dw.reshape(c_out, 1, ka, kb)
    return dw.to(dtype)
