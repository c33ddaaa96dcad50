"""The 1D part of ``lkconv verify``: short_conv1d and long_conv1d against float64 references.

Each check draws fresh random inputs, poisons lkconv's outputs with NaN, runs forward and backward, and compares
the output and every gradient (x; w or k; bias or D) with the same problem computed in float64 by the plain
PyTorch references of :mod:`lkconv.ops.conv1d.reference`: ||out - ref|| / ||ref|| below the tolerance of
:mod:`lkconv.testing` (the "direct" tolerance for short_conv1d's Triton kernels, the "fft" one for both of
long_conv1d's algorithms, torch.fft and the fused kernels).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

import torch

from .._triton import can_launch
from ..ops.conv1d import long_conv1d, long_conv1d_reference, short_conv1d, short_conv1d_reference
from ..testing import poison_outputs, rel_error, tolerance
from .verify import Result

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Case1d:
    """One problem. op: "short" (kernel width) or "long" (kernel length); layout: "BCL", "BLC" or "strided"
    (every other channel of a wider tensor, for short) — long_conv1d takes (B, C, L) only."""

    op: str
    b: int
    c: int
    length: int
    k: int
    causal: bool = True
    extra: bool = True  # short: bias; long: the skip term D
    activation: Optional[str] = None
    layout: str = "BCL"
    dtype: str = "fp32"
    algorithm: str = "fft"  # long only: "fft" (torch.fft), "fused_fft" or "staged_fft"

    def label(self) -> str:
        act = f" {self.activation}" if self.activation else ""
        extra = (" bias" if self.op == "short" else " D") if self.extra else ""
        return (f"{self.op}_conv1d {self.b}x{self.c}x{self.length} k{self.k} "
                f"{'causal' if self.causal else 'centred'}{extra}{act}")


def cases(tiny: bool) -> List[Case1d]:
    """Widths on both sides of the grouped kernels' limits, lengths that are and are not multiples of the vector
    group, both conventions, bias/SiLU; long kernels of several lengths (any L, not only powers of two)."""
    length = 37 if tiny else 1000
    short = [Case1d("short", 2, 5, length, w, causal, bias, act)
             for w, causal, bias, act in ((1, True, True, None), (3, True, False, "silu"), (4, True, True, "silu"),
                                          (4, False, True, None), (8, True, True, "silu"), (9, False, False, None),
                                          (26, True, True, "silu"))]
    short += [Case1d("short", 2, 5, 16 if tiny else 4096, 4, True, True, "silu"),
              Case1d("short", 2, 6, length, 4, True, True, "silu", layout="BLC"),
              Case1d("short", 2, 5, length, 8, False, True, None, layout="strided")]
    long_len = 40 if tiny else 3000
    long = [Case1d("long", 2, 3, long_len, lk, causal, d, algorithm=algo)
            for algo in ("fft", "fused_fft")
            for lk, causal, d in ((1, True, False), (7, False, True), (long_len // 2, True, True),
                                  (long_len, True, False), (long_len - 1, False, True))]
    if not tiny:  # the fused kernels' 8192-point and largest (16384-point) transforms; the staged kernels' 32768
        # and 24576 (24 x 1024), and 12288 (24 x 512) forced
        long += [Case1d("long", 2, 3, 4096, 4096, True, True, algorithm="fused_fft"),
                 Case1d("long", 1, 3, 8000, 8000, False, True, algorithm="fused_fft"),
                 Case1d("long", 3, 2, 16000, 16000, True, True, algorithm="fused_fft"),
                 Case1d("long", 1, 2, 12000, 9000, False, False, algorithm="fused_fft"),
                 Case1d("long", 2, 3, 6000, 6000, True, True, algorithm="staged_fft")]
    return short + long


def _short_input(case: Case1d, device, dtype) -> torch.Tensor:
    if case.layout == "strided":
        return torch.randn(case.b, 2 * case.c, case.length, device=device, dtype=dtype)[:, ::2]
    if case.layout == "BLC":
        return torch.randn(case.b, case.length, case.c, device=device, dtype=dtype)
    return torch.randn(case.b, case.c, case.length, device=device, dtype=dtype)


def check(case: Case1d, device) -> Result:
    """Forward and backward of one case against the float64 reference. The result's algorithm is what serves
    the op (short_conv1d: "direct" Triton kernels, or "torch" where they cannot run; long_conv1d: "fft") and its
    errors are named as in the
    2D suite: fwd (output), dgrad (x), wgrad (w or k), bias (bias or D)."""
    dtype = DTYPES[case.dtype]
    kernels = can_launch(torch.empty(0, device=device))
    algo = ("direct" if kernels else "torch") if case.op == "short" else case.algorithm
    res = Result(case, algo, tol=tolerance("fft" if case.op == "long" else algo, dtype, torch.device(device).type))
    t0 = time.perf_counter()
    try:
        if case.op == "short":
            x = _short_input(case, device, dtype)
            w = torch.randn(case.c, case.k, device=device, dtype=dtype)
            extra = torch.randn(case.c, device=device, dtype=dtype) if case.extra else None
            layout = "BLC" if case.layout == "BLC" else "BCL"
            to_bcl = (lambda t: t.transpose(1, 2)) if layout == "BLC" else (lambda t: t)  # noqa: E731
            fn = lambda a, ww, e: short_conv1d(a, ww, e, case.causal, case.activation, layout)  # noqa: E731
            ref_fn = lambda a, ww, e: to_bcl(short_conv1d_reference(to_bcl(a), ww, e, case.causal,  # noqa: E731
                                                                   case.activation))
        else:
            x = torch.randn(case.b, case.c, case.length, device=device, dtype=dtype)
            w = (torch.randn(case.c, case.k, device=device) / case.k ** 0.5).to(dtype)
            extra = torch.randn(case.c, device=device, dtype=dtype) if case.extra else None
            fn = lambda a, kk, d: long_conv1d(a, kk, d, case.causal, case.algorithm)  # noqa: E731
            ref_fn = lambda a, kk, d: long_conv1d_reference(a, kk, d, case.causal)  # noqa: E731
        leaves = [t.detach().requires_grad_() for t in (x, w, extra) if t is not None]
        leaves64 = [t.detach().double().requires_grad_() for t in leaves]
        ref = ref_fn(leaves64[0], leaves64[1], leaves64[2] if case.extra else None)
        grad = torch.randn_like(ref).to(dtype)
        ref.backward(grad.double())
        with poison_outputs():
            out = fn(leaves[0], leaves[1], leaves[2] if case.extra else None)
            out.backward(grad)
        res.errors["fwd"] = rel_error(out, ref)
        for name, t, t64 in zip(("dgrad", "wgrad", "bias"), leaves, leaves64):
            res.errors[name] = rel_error(t.grad, t64.grad)
        if out.shape != x.shape or (case.layout != "strided" and out.stride() != x.stride()):
            res.error = f"output {tuple(out.shape)} strides {out.stride()} do not match the input's {x.stride()}"
    except Exception as exc:  # reported as a failure row, never swallowed
        res.error = f"{type(exc).__name__}: {exc}"[:160]
    res.seconds = time.perf_counter() - t0
    return res


def run_suite(device, dtypes: Sequence[str], tiny: bool, seed: int, jobs: int = 1) -> List[Result]:
    """Every case in every dtype; long_conv1d's fused kernels only where Triton kernels run. With ``jobs`` > 1
    the checks run in that many worker processes (the fused kernels compile in parallel); results keep order."""
    torch.manual_seed(seed)
    kernels = can_launch(torch.empty(0, device=device))
    todo = [replace(case, dtype=dt) for case in cases(tiny) if case.algorithm == "fft" or kernels
            for dt in dtypes]
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            return list(pool.map(_check_task, [(c, str(device), seed + i) for i, c in enumerate(todo)]))
    return [check(case, device) for case in todo]


def _check_task(task) -> Result:
    case, device, seed = task
    torch.manual_seed(seed)
    return check(case, torch.device(device))
