"""``lkconv verify``: the randomized verification suite for depthwise_conv2d (and, with :mod:`.verify1d`, the 1D
convolutions) on the current device.

Every check draws fresh random inputs, poisons lkconv's outputs with NaN (an unwritten element cannot pass),
and compares forward, input gradient, weight gradient and bias gradient against the same problem computed
by PyTorch in float64 on the same (already rounded) inputs: ||out - ref|| / ||ref|| below the tolerance of
:mod:`lkconv.testing`. Prints a pass/fail table; the exit status is non-zero if any check fails.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass, field, replace
from typing import List, Optional, Sequence

import torch

from ..ops import _streams
from ..ops.depthwise2d import depthwise_conv2d, depthwise_conv2d_reference
from ..ops.depthwise2d import dispatch
from ..ops.depthwise2d.params import check_tensors, parse_conv_args
from ..ops.depthwise2d.problem import Problem
from ..testing import poison_outputs, rel_error, tolerance

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Case:
    """One verification problem; layout is 'nchw', 'nhwc' or 'strided' (a sliced, non-contiguous view)."""

    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    stride: tuple = (1, 1)
    padding: object = 0
    dilation: tuple = (1, 1)
    padding_mode: str = "zeros"
    mult: int = 1
    bias: bool = True
    layout: str = "nchw"
    dtype: str = "fp32"
    note: str = ""

    def label(self) -> str:
        pad = self.padding if isinstance(self.padding, str) else tuple(self.padding) if not isinstance(self.padding, int) else self.padding
        extra = f" m{self.mult}" if self.mult > 1 else ""
        mode = "" if self.padding_mode == "zeros" else f" {self.padding_mode}"
        return (f"{self.n}x{self.c}x{self.h}x{self.w} k{self.kh}x{self.kw} s{self.stride[0]}{self.stride[1]} "
                f"d{self.dilation[0]}{self.dilation[1]} p{pad}{mode}{extra}")


def base_cases(tiny: bool) -> List[Case]:
    """Fixed cases covering the contract: kernel shapes, stride, dilation, padding modes, odd/tiny shapes."""
    if tiny:  # sized for the Triton CPU interpreter
        return [
            Case(2, 3, 9, 11, 3, 3, padding=1),
            Case(1, 2, 7, 6, 5, 4, padding="same"),
            Case(2, 3, 9, 11, 3, 5, stride=(2, 2), padding=(1, 2), dilation=(2, 1), mult=2, bias=False),
            Case(1, 4, 10, 7, 4, 2, stride=(2, 1), padding=(2, 1), dilation=(1, 3), layout="nhwc"),
            Case(1, 3, 8, 9, 3, 3, padding=2, dilation=(2, 2), padding_mode="circular"),
            Case(1, 2, 12, 13, 7, 7, padding=3, layout="strided"),
            Case(1, 1, 1, 9, 1, 5, padding=(0, 2)),
            Case(1, 3, 6, 5, 3, 3, padding=1, stride=(3, 3), padding_mode="reflect"),
            Case(1, 2, 9, 11, 3, 3, padding=1, dtype="bf16"),
            Case(1, 2, 9, 11, 3, 3, padding=1, dtype="fp16", layout="nhwc"),
        ]
    cases = [
        Case(2, 8, 56, 56, 7, 7, padding=3, note="convnext"),
        Case(2, 16, 33, 29, 13, 13, padding=6, note="odd sizes"),
        Case(1, 4, 40, 37, 31, 31, padding=15, note="replknet-31"),
        Case(2, 6, 28, 30, 29, 29, padding=14),
        Case(2, 5, 30, 33, 51, 5, padding=(25, 2), note="slak long"),
        Case(2, 5, 31, 30, 5, 51, padding=(2, 25), note="slak wide"),
        Case(2, 6, 20, 21, 1, 11, padding=(0, 5), note="band 1xk"),
        Case(2, 6, 21, 20, 11, 1, padding=(5, 0), note="band kx1"),
        Case(2, 4, 23, 25, 7, 7, padding=9, dilation=(3, 3), note="lka dilated"),
        Case(2, 8, 14, 14, 3, 3, padding=5, dilation=(5, 5), note="dilated branch"),
        Case(2, 4, 16, 40, 1, 11, padding=(0, 15), dilation=(3, 3)),
        Case(2, 8, 37, 35, 7, 7, stride=(2, 2), padding=3, note="downsample"),
        Case(1, 3, 19, 22, 6, 4, padding="same", note="even kernel same"),
        Case(1, 3, 20, 17, 8, 8, stride=(3, 3), padding=2, note="stride 3"),
        Case(2, 3, 16, 18, 5, 5, padding=2, mult=3, note="multiplier 3"),
        Case(1, 1, 1, 64, 1, 7, padding=(0, 3), note="H=1, C=1"),
        Case(1, 5, 64, 1, 7, 1, padding=(3, 0), note="W=1"),
        Case(1, 1000, 6, 7, 5, 5, padding=2, note="C=1000"),
        Case(1, 7, 13, 13, 13, 13, padding="valid", note="valid, 1x1 output"),
        Case(2, 6, 24, 36, 7, 7, padding=9, dilation=(3, 3), padding_mode="circular", note="lat-lon"),
        Case(1, 4, 20, 20, 9, 9, padding=4, padding_mode="reflect"),
        Case(1, 4, 20, 20, 9, 9, padding=4, padding_mode="replicate"),
    ]
    return cases


def random_case(rng: random.Random) -> Case:
    """A random valid problem (kernel up to 31, dilation, stride up to 3, any layout)."""
    kh, kw = rng.choice([1, 2, 3, 5, 7, 9, 13, 17, 31]), rng.choice([1, 3, 4, 5, 7, 11, 13, 31])
    d = (rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2]))
    s = (rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2]))
    ph, pw = rng.randint(0, d[0] * (kh - 1)), rng.randint(0, d[1] * (kw - 1))
    h = max(1, d[0] * (kh - 1) + 1 - 2 * ph + rng.randint(0, 40))
    w = max(1, d[1] * (kw - 1) + 1 - 2 * pw + rng.randint(0, 40))
    return Case(rng.randint(1, 3), rng.randint(1, 24), h, w, kh, kw, s, (ph, pw), d, mult=rng.choice([1, 1, 1, 2]),
                bias=rng.random() < 0.7, layout=rng.choice(["nchw", "nhwc", "strided"]), note="random")


def _make_input(case: Case, device, dtype) -> torch.Tensor:
    if case.layout == "strided":  # a non-contiguous view: every other channel, cropped width
        base = torch.randn(case.n, 2 * case.c, case.h, case.w + 3, device=device, dtype=dtype)
        return base[:, ::2, :, 1:1 + case.w]
    x = torch.randn(case.n, case.c, case.h, case.w, device=device, dtype=dtype)
    if case.layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@dataclass
class Result:
    case: Case
    algorithm: str
    errors: dict = field(default_factory=dict)
    tol: float = 0.0
    error: Optional[str] = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and all(e <= self.tol for e in self.errors.values())


def check(case: Case, algorithm: str, device, forked: bool = False) -> Result:
    """Run one case through ``algorithm`` (fwd + backward) and compare with the float64 reference. forked: with
    independent launches on side streams whatever the problem's size (:func:`lkconv.ops._streams.forcing`)."""
    dtype = DTYPES[case.dtype]
    res = Result(case, algorithm + ("+streams" if forked else ""),
                 tol=tolerance(algorithm, dtype, torch.device(device).type))
    t0 = time.perf_counter()
    try:
        x = _make_input(case, device, dtype)
        w = torch.randn(case.c * case.mult, 1, case.kh, case.kw, device=device, dtype=dtype)
        b = torch.randn(case.c * case.mult, device=device, dtype=dtype) if case.bias else None
        args = (case.stride, case.padding, case.dilation, case.padding_mode)
        x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
        b64 = b.detach().double().requires_grad_() if b is not None else None
        ref = depthwise_conv2d_reference(x64, w64, b64, *args)
        grad = torch.randn_like(ref).to(dtype)  # the reference sees the same rounded output gradient
        ref.backward(grad.double())
        xt, wt = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
        xt = xt if case.layout != "strided" else x.detach().requires_grad_()
        bt = b.detach().clone().requires_grad_() if b is not None else None
        with poison_outputs(), _streams.forcing() if forked else contextlib.nullcontext():
            out = depthwise_conv2d(xt, wt, bt, *args, algorithm=algorithm)
            out.backward(grad)
        res.errors["fwd"] = rel_error(out, ref)
        res.errors["dgrad"] = rel_error(xt.grad, x64.grad)
        res.errors["wgrad"] = rel_error(wt.grad, w64.grad)
        if b is not None:
            res.errors["bias"] = rel_error(bt.grad, b64.grad)
        want_cl = case.layout == "nhwc" and case.c > 1
        if want_cl and not out.is_contiguous(memory_format=torch.channels_last):
            res.error = "output not channels_last for a channels_last input"
        if case.layout == "nchw" and not out.is_contiguous():
            res.error = "output not contiguous for a contiguous input"
    except Exception as exc:  # reported as a failure row, never swallowed
        res.error = f"{type(exc).__name__}: {exc}"[:160]
    res.seconds = time.perf_counter() - t0
    return res


def check_large(algorithm: str, device, channels_checked: int = 4) -> Result:
    """A bf16 problem of more than 2^31 elements (64-bit addressing); the last channels are compared."""
    case = Case(1, 2**31 // (1024 * 1024) + 8, 1024, 1024, 3, 3, padding=1, bias=False, dtype="bf16",
                note="> 2^31 elements")
    res = Result(case, algorithm, tol=tolerance(algorithm, torch.bfloat16, torch.device(device).type))
    t0 = time.perf_counter()
    try:
        x = torch.randn(case.n, case.c, case.h, case.w, device=device, dtype=torch.bfloat16).requires_grad_()
        w = torch.randn(case.c, 1, 3, 3, device=device, dtype=torch.bfloat16).requires_grad_()
        with poison_outputs():
            out = depthwise_conv2d(x, w, None, 1, 1, algorithm=algorithm)
            grad = torch.randn_like(out)
            out.backward(grad)
        sl = slice(case.c - channels_checked, case.c)
        x64 = x.detach()[:, sl].double().requires_grad_()
        w64 = w.detach()[sl].double().requires_grad_()
        ref = depthwise_conv2d_reference(x64, w64, None, 1, 1)
        ref.backward(grad[:, sl].double())  # grad is already in the op's dtype
        res.errors = {"fwd": rel_error(out[:, sl], ref), "dgrad": rel_error(x.grad[:, sl], x64.grad),
                      "wgrad": rel_error(w.grad[sl], w64.grad)}
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"[:160]
    res.seconds = time.perf_counter() - t0
    return res


def serves(case: Case, algorithm: str, device) -> bool:
    """Whether ``algorithm`` claims it can serve the case (an explicit algorithm that can't must raise)."""
    x = _make_input(case, device, DTYPES[case.dtype])
    w = torch.empty(case.c * case.mult, 1, case.kh, case.kw, device=device, dtype=x.dtype)
    check_tensors(x, w, None)
    g = parse_conv_args(x, w, case.stride, case.padding, case.dilation, case.padding_mode)
    if any(g.mode_pad):  # the op pads first (keeping channels_last), then convolves with zero padding
        pt, pb, pl, pr = g.mode_pad
        xp = torch.nn.functional.pad(x, (pl, pr, pt, pb))
        x = xp.contiguous(memory_format=torch.channels_last) if case.layout == "nhwc" else xp
    return dispatch.explain(Problem.make("fwd", x, w, g.stride, g.pad, g.dilation), algorithm) is None


def default_algorithms(device) -> List[str]:
    probe = Case(1, 2, 8, 8, 3, 3, padding=1)
    return [a for a in dispatch.ALGORITHMS if a not in ("auto",) and serves(probe, a, device)] + ["auto"]


def run_suite(device, algorithms: Sequence[str], dtypes: Sequence[str], layouts: Sequence[str],
              n_random: int, seed: int, tiny: bool, large: bool = False, jobs: int = 1) -> List[Result]:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cases = base_cases(tiny)
    cases += [random_case(rng) for _ in range(n_random)]
    expanded = []
    for case in cases:
        if tiny:
            expanded.append(case)
            continue
        for dt in dtypes:
            for lay in layouts:
                expanded.append(replace(case, dtype=dt, layout=lay if case.layout == "nchw" else case.layout))
    todo = [(case, algo, False) for case in expanded for algo in algorithms
            if (tiny or case.dtype in dtypes) and (algo == "auto" or serves(case, algo, device))]
    if torch.device(device).type == "cuda" and "direct" in algorithms:  # the direct kernels on side streams
        todo += [(case, "direct", True) for case, algo, _ in todo
                 if algo == "direct" and case.dtype == dtypes[0] and case.layout != "strided"]
    if jobs > 1:  # kernels compile in parallel worker processes; results come back in order
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            results = list(pool.map(_check_task, [(c, a, str(device), seed + i, f)
                                                  for i, (c, a, f) in enumerate(todo)]))
    else:
        results = [check(case, algo, device, forked) for case, algo, forked in todo]
    if large:
        for algo in algorithms:
            results.append(check_large(algo, device))
    return results


def _check_task(task) -> Result:
    case, algo, device, seed, forked = task
    torch.manual_seed(seed)
    return check(case, algo, torch.device(device), forked)


def format_table(results: List[Result]) -> str:
    head = f"{'case':<44} {'algo':<14} {'dtype':<5} {'layout':<7} {'fwd':>8} {'dgrad':>8} {'wgrad':>8} {'bias':>8} {'tol':>7}  result"
    lines = [head, "-" * len(head)]
    for r in results:
        e = r.errors
        cols = " ".join(f"{e[k]:8.1e}" if k in e else f"{'-':>8}" for k in ("fwd", "dgrad", "wgrad", "bias"))
        status = "ok" if r.ok else ("FAIL " + (r.error or "tolerance"))
        lines.append(f"{r.case.label():<44.44} {r.algorithm:<14} {r.case.dtype:<5} {r.case.layout:<7} {cols} {r.tol:7.0e}  {status}")
    n_fail = sum(not r.ok for r in results)
    lines.append(f"{len(results)} checks, {len(results) - n_fail} passed, {n_fail} failed")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="lkconv verify", description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--algorithms", default=None, help="comma list (default: every algorithm that runs here, and auto)")
    p.add_argument("--dtypes", default="fp32,bf16,fp16")
    p.add_argument("--layouts", default="nchw,nhwc,strided")
    p.add_argument("--random", type=int, default=None, help="number of extra random cases")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="fewer cases")
    p.add_argument("--large", action="store_true", help="add a > 2^31-element case (GPU, ~20 GB)")
    p.add_argument("--ops", default="depthwise2d,conv1d",
                   help="comma list of depthwise2d (the algorithms above) and conv1d (short_conv1d, long_conv1d)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (kernels compile in parallel; default: up to 8 on CUDA, 1 on CPU)")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tiny = device.type == "cpu"
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    algorithms = args.algorithms.split(",") if args.algorithms else default_algorithms(device)
    dtypes = args.dtypes.split(",")
    layouts = args.layouts.split(",")
    if args.quick:
        dtypes, layouts = dtypes[:2], layouts[:2]
    n_random = args.random if args.random is not None else (0 if tiny or args.quick else 12)
    print(f"lkconv verify on {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, seed {seed}, algorithms {algorithms}")
    if tiny:
        print("CPU: tiny cases only (Triton kernels run in the interpreter when TRITON_INTERPRET=1)")
    jobs = args.jobs if args.jobs is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 1)
    ops = args.ops.split(",")
    unknown = set(ops) - {"depthwise2d", "conv1d"}
    if unknown:
        p.error(f"--ops: unknown {sorted(unknown)}; expected depthwise2d and/or conv1d")
    ok = True
    if "depthwise2d" in ops:
        results = run_suite(device, algorithms, dtypes, layouts, n_random, seed, tiny, args.large, jobs)
        print(format_table(results))
        ok = all(r.ok for r in results)
    if "conv1d" in ops:
        from . import verify1d

        results1d = verify1d.run_suite(device, dtypes, tiny, seed, jobs)
        print(format_table(results1d))
        ok = ok and all(r.ok for r in results1d)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
