"""Why a small layer's backward costs more host time than its forward (GPU): the autograd engine's thread.

For each shape (fp32 NCHW unless --dtype / --layout, algorithm "direct"), microseconds per forward+backward step with the default engine
(backward nodes of CUDA tensors run in the engine's device thread), with the engine single-threaded
(``torch.autograd.set_multithreading_enabled(False)``: they run in the calling thread), through
``torch.autograd.grad``, and for PyTorch's own conv. "host" is the launch rate without synchronizing, "wall"
includes the GPU. "in bwd" is the time spent inside lkconv's backward, and "py in thread" a fixed piece of
Python + tensor-allocation work timed inside a backward, against the same work on the main thread.

    python benchmarks/backward_host.py [--shapes unireplknet_t.s3,inceptionnext_t.band] [--profile]
                                       [--dtype bf16] [--layout nhwc] [--batch 1]

--profile adds a cProfile of single-threaded steps of the first shape (forward, backward and the engine's
calls into Python all on the calling thread), the 30 functions with the most own time.
"""
from __future__ import annotations

import argparse
import pstats
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.depthwise2d import op  # noqa: E402
from lkconv.tools.bench import _geometry, load_shapes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import host_and_wall_us, profile_single_threaded  # noqa: E402


def _work():
    """A fixed piece of host work: small CUDA allocations and Python bookkeeping."""
    d = {}
    for i in range(20):
        d[i] = torch.empty(256, device="cuda")
    return len(d)


class _Timed(torch.autograd.Function):
    spent: list = []

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        t0 = time.perf_counter()
        _work()
        _Timed.spent.append(time.perf_counter() - t0)
        return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="unireplknet_t.s3,inceptionnext_t.band,unireplknet_t.dil")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--layout", default="nchw", choices=("nchw", "nhwc"))
    ap.add_argument("--batch", type=int, default=0, help="images per step (0: the shape's own); a batch of 1 "
                    "keeps the GPU ahead of the host, so that host us is the step's host work alone")
    args = ap.parse_args()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    fmt = torch.channels_last if args.layout == "nhwc" else torch.contiguous_format
    print(f"dtype {args.dtype}, layout {args.layout}, batch {args.batch or 'as the shape'}")
    torch.backends.cudnn.benchmark = True
    shapes = {s["name"]: s for s in load_shapes()}

    # the same Python work inside a backward (engine thread / calling thread) and on the main thread
    t = torch.randn(16, device="cuda", requires_grad=True)
    rows = []
    for mt in (True, False):
        _Timed.spent.clear()
        with torch.autograd.set_multithreading_enabled(mt):
            for _ in range(300):
                _Timed.apply(t).sum().backward()
        torch.cuda.synchronize()
        rows.append((f"py in {'engine thread' if mt else 'calling thread'}", sum(_Timed.spent[20:]) / 280 * 1e6))
    t0 = time.perf_counter()
    for _ in range(300):
        _work()
    rows.append(("py on main thread", (time.perf_counter() - t0) / 300 * 1e6))
    torch.cuda.synchronize()
    for name, us in rows:
        print(f"{name:<32}{us:8.1f} us")

    orig = op._DepthwiseConv2dFunction.backward
    inside = []

    def timed_backward(ctx, g):
        t0 = time.perf_counter()
        try:
            return orig(ctx, g)
        finally:
            inside.append(time.perf_counter() - t0)

    op._DepthwiseConv2dFunction.backward = staticmethod(timed_backward)
    profiles = []
    print(f"\n{'shape':<22}{'mode':<34}{'host us':>9}{'wall us':>9}{'in bwd us':>10}")
    for name in args.shapes.split(","):
        s = shapes[name]
        pad, ho, wo = _geometry(s)
        st, dil = (s["s"], s["s"]), (s["d"], s["d"])
        n = args.batch or s["n"]
        x = torch.randn(n, s["c"], s["h"], s["w"], device="cuda", dtype=dtype).contiguous(memory_format=fmt)
        x.requires_grad_()
        w = torch.randn(s["c"], 1, s["kh"], s["kw"], device="cuda", dtype=dtype, requires_grad=True)
        dy = torch.randn(n, s["c"], ho, wo, device="cuda", dtype=dtype).contiguous(memory_format=fmt)

        def ours():
            x.grad = w.grad = None
            lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct").backward(dy)

        def ours_grad():
            torch.autograd.grad(lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct"), (x, w), dy)

        def theirs():
            x.grad = w.grad = None
            F.conv2d(x, w, None, st, pad, dil, s["c"]).backward(dy)

        for mode, fn, mt in (("lkconv backward()", ours, True), ("lkconv backward(), one thread", ours, False),
                             ("lkconv autograd.grad", ours_grad, True), ("torch backward()", theirs, True),
                             ("torch backward(), one thread", theirs, False)):
            inside.clear()
            with torch.autograd.set_multithreading_enabled(mt):
                host, wall = host_and_wall_us(fn, n=300, warmup=10)
            bwd = sum(inside[10:]) / max(1, len(inside) - 10) * 1e6 if inside else float("nan")
            print(f"{name:<22}{mode:<34}{host:9.1f}{wall:9.1f}{bwd:10.1f}", flush=True)
        if args.profile and name == args.shapes.split(",")[0]:
            profiles.append((name, profile_single_threaded(ours, 300)))
    op._DepthwiseConv2dFunction.backward = orig
    for name, prof in profiles:
        print(f"\n{name}: cProfile of 300 single-threaded lkconv steps")
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
