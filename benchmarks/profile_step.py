"""Where a forward+backward step's GPU time goes: torch.profiler kernel table per public shape (GPU).

For each shape, dtype and layout: the step through ``lkconv.depthwise_conv2d`` (algorithm "auto" unless
``--algorithm``) with the same rotating inputs as ``lkconv bench``, its event-timed median, then every CUDA
kernel and memory operation of 20 profiled steps with its total and per-step time.

    python benchmarks/profile_step.py --shapes convnext_t.s1,unireplknet_t.s3 --dtypes fp32 --layouts nhwc
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.depthwise2d import direct  # noqa: E402
from lkconv.tools.bench import DTYPES, _geometry, _inputs, load_shapes  # noqa: E402


def profile_one(s: dict, dtype_name: str, layout: str, algorithm: str, steps: int = 20) -> None:
    import triton.testing

    dtype = DTYPES[dtype_name]
    pad, ho, wo = _geometry(s)
    sets = _inputs(s, dtype, layout, torch.device("cuda"), 4, True)
    dy = torch.randn(s["n"], s["c"], ho, wo, device="cuda", dtype=dtype)
    if layout == "nhwc":
        dy = dy.contiguous(memory_format=torch.channels_last)
    state = {"i": 0}

    def step():
        x, w = sets[state["i"] % len(sets)]
        state["i"] += 1
        y = lkconv.depthwise_conv2d(x, w, None, s["s"], pad, s["d"], algorithm=algorithm)
        y.backward(dy)

    leaves = [t for pair in sets for t in pair]
    ms = triton.testing.do_bench(step, warmup=10, rep=50, grad_to_none=leaves, return_mode="median")
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(steps):
            for t in leaves:
                t.grad = None
            step()
        torch.cuda.synchronize()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):  # host time to issue a step (the GPU queue absorbs it when the step is GPU-bound)
        for t in leaves:
            t.grad = None
        step()
    host_us = (time.perf_counter() - t0) / steps * 1e6
    torch.cuda.synchronize()
    print(f"\n== {s['name']} {dtype_name} {layout} algorithm={algorithm}: {ms:.3f} ms per step (event-timed median),"
          f" host {host_us:.0f} us per step")
    for launcher in (direct._launch_fwd, direct._launch_wgrad):
        for why in set(launcher.refused.values()):
            print(f"   direct launch refused ({getattr(launcher.kernel, '__name__', 'kernel')}): {why}")
    rows = []
    for ev in prof.key_averages():
        dev_us = getattr(ev, "device_time_total", None)
        if dev_us is None:
            dev_us = getattr(ev, "cuda_time_total", 0.0)
        self_dev = getattr(ev, "self_device_time_total", None)
        if self_dev is None:
            self_dev = getattr(ev, "self_cuda_time_total", dev_us)
        if self_dev > 0:
            rows.append((self_dev, ev.count, ev.key))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"   {'per step us':>11} {'calls/step':>10}  kernel / op   (device total {total / steps:.1f} us per step)")
    for us, count, key in rows[:14]:
        print(f"   {us / steps:11.1f} {count / steps:10.1f}  {key[:100]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="convnext_t.s1,unireplknet_t.s3")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--layouts", default="nchw,nhwc")
    ap.add_argument("--algorithm", default="auto")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    shapes = {r["name"]: r for r in load_shapes()}
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    for name in args.shapes.split(","):
        for dt in args.dtypes.split(","):
            for lay in args.layouts.split(","):
                profile_one(shapes[name], dt, lay, args.algorithm)


if __name__ == "__main__":
    main()
