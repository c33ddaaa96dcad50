"""Host (CPU) time of the public op, piece by piece, on the GPU: where a small layer's step time goes.

Prints host microseconds per call (no synchronization inside the timed loop) for the raw direct kernel
launches (fast path on/off), each direction through the dispatcher, the op forward, forward+backward, and a
plain autograd.Function baseline; then a cProfile of the dispatcher's directions called from this thread.

    python benchmarks/host_profile.py [--shape convnext_t.s1] [--layout nhwc]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.depthwise2d import direct, dispatch  # noqa: E402
from lkconv.tools.bench import _geometry, load_shapes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # noqa: E402


def host_us(fn):
    return overhead.host_us(fn, n=200, warmup=5)


class _Scale(torch.autograd.Function):
    """Baseline: a Python autograd.Function with one CUDA op per direction."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * 2.0, torch.zeros_like(w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="convnext_t.s1")
    ap.add_argument("--layout", default="nchw", choices=("nchw", "nhwc"))
    args = ap.parse_args()
    s = {r["name"]: r for r in load_shapes()}[args.shape]
    pad, ho, wo = _geometry(s)
    st, dil = (s["s"], s["s"]), (s["d"], s["d"])
    p4 = (pad[0], pad[0], pad[1], pad[1])
    x = torch.randn(s["n"], s["c"], s["h"], s["w"], device="cuda", requires_grad=True)
    w = torch.randn(s["c"], 1, s["kh"], s["kw"], device="cuda", requires_grad=True)
    dy = torch.randn(s["n"], s["c"], ho, wo, device="cuda")
    if args.layout == "nhwc":
        fmt = torch.channels_last
        x = x.detach().contiguous(memory_format=fmt).requires_grad_(True)
        dy = dy.contiguous(memory_format=fmt)
    y_buf = torch.empty_like(dy)
    xd, wd = x.detach(), w.detach()
    rows = {}
    rows["kernel fwd (fast launch)"] = host_us(lambda: direct.conv_fwd(xd, wd, None, st, p4, dil, y_buf))
    rows["kernel wgrad (fast launch)"] = host_us(lambda: direct.conv_wgrad(dy, xd, w.shape, st, p4, dil))
    print("fast launch enabled:", direct._launch_fwd.enabled, direct._launch_wgrad.enabled,
          "configs:", len(direct._launch_fwd.compiled), len(direct._launch_wgrad.compiled))
    saved = direct._launch_fwd.enabled
    direct._launch_fwd.enabled = False
    rows["kernel fwd (JIT launch)"] = host_us(lambda: direct.conv_fwd(xd, wd, None, st, p4, dil, y_buf))
    direct._launch_fwd.enabled = saved
    rows["dispatch fwd"] = host_us(lambda: dispatch.run("fwd", "direct", xd, wd, None, st, p4, dil))
    rows["dispatch dgrad"] = host_us(lambda: dispatch.run("dgrad", "direct", dy, xd, wd, st, p4, dil))
    rows["dispatch wgrad"] = host_us(lambda: dispatch.run("wgrad", "direct", dy, xd, wd, st, p4, dil))
    with torch.no_grad():
        rows["op fwd (no grad)"] = host_us(lambda: lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct"))
    rows["op fwd (grad)"] = host_us(lambda: lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct"))

    def step():
        x.grad = w.grad = None
        lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct").backward(dy)

    rows["op fwd+bwd"] = host_us(step)

    def step_grad():
        torch.autograd.grad(lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct"), (x, w), dy)

    rows["op fwd+autograd.grad"] = host_us(step_grad)

    def pt_step():
        x.grad = w.grad = None
        F.conv2d(x, w, None, st, pad, dil, s["c"]).backward(dy)

    rows["pytorch fwd+bwd"] = host_us(pt_step)

    def base_step():
        x.grad = w.grad = None
        _Scale.apply(x, w).backward(x)

    rows["autograd.Function baseline fwd+bwd"] = host_us(base_step)
    def torch_step():
        x.grad = w.grad = None
        lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="torch").backward(dy)

    rows["op fwd+bwd, algorithm=torch"] = host_us(torch_step)

    def both_directions():
        dispatch.run("dgrad", "direct", dy, xd, wd, st, p4, dil)
        dispatch.run("wgrad", "direct", dy, xd, wd, st, p4, dil)

    rows["dgrad+wgrad, main thread"] = host_us(both_directions)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("us", host_us(both_directions)))
    th.start()
    th.join()
    rows["dgrad+wgrad, another Python thread"] = out["us"]

    # where the backward's time goes inside the autograd engine's device thread
    from lkconv.ops.depthwise2d import op

    orig = op._DepthwiseConv2dFunction.backward
    prof = cProfile.Profile()
    inside = []

    def profiled_backward(ctx, g):
        t0 = time.perf_counter()
        prof.enable()
        try:
            return orig(ctx, g)
        finally:
            prof.disable()
            inside.append(time.perf_counter() - t0)

    op._DepthwiseConv2dFunction.backward = staticmethod(profiled_backward)
    rows["op fwd+bwd (profiled backward)"] = host_us(step)
    rows["  of which inside backward()"] = sum(inside[5:]) / max(1, len(inside) - 5) * 1e6
    op._DepthwiseConv2dFunction.backward = orig
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    print(f"\n{args.shape} {args.layout}: host microseconds per call")
    for k, v in rows.items():
        print(f"  {k:<40}{v:10.1f}")


if __name__ == "__main__":
    main()
