"""Where the time of one depthwise-conv training step goes: kernels vs host overhead (GPU).

For a few shapes (fp32 NCHW): the raw direct kernels per direction (pre-allocated outputs), the public op
(forward, forward+backward), PyTorch for comparison, host time per call (launch rate without syncing), and
a torch.profiler summary of one forward+backward.

    python benchmarks/overhead.py [--shapes convnext_t.s1,unireplknet_t.s3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.depthwise2d import direct  # noqa: E402
from lkconv.tools.bench import load_shapes, _geometry  # noqa: E402


def host_and_wall_us(fn, n=50, warmup=1):
    """(host, wall) microseconds per call of ``fn`` launched back to back: host is the launch rate (no
    synchronization inside the timed loop), wall runs until the GPU has finished too."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t0) / n * 1e6


def profile_single_threaded(fn, n: int):
    """cProfile of ``n`` calls of ``fn`` (after one untimed call) with the autograd engine single-threaded, so
    that the engine's calls into Python (the backward) run on this thread and are profiled too."""
    import cProfile

    prof = cProfile.Profile()
    with torch.autograd.set_multithreading_enabled(False):
        fn()
        prof.enable()
        for _ in range(n):
            fn()
        prof.disable()
    torch.cuda.synchronize()
    return prof


def host_us(fn, n=50, warmup=1):
    """Host microseconds per call of ``fn`` launched back to back (no synchronization inside the timed loop)."""
    return host_and_wall_us(fn, n, warmup)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="convnext_t.s1,unireplknet_t.s3,inceptionnext_t.band")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    import triton.testing as tt

    bench = lambda fn, g=None: tt.do_bench(fn, warmup=10, rep=40, grad_to_none=g, return_mode="median")  # noqa: E731
    shapes = {s["name"]: s for s in load_shapes()}
    torch.backends.cudnn.benchmark = True
    rows = []
    for name in args.shapes.split(","):
        s = shapes[name]
        pad, ho, wo = _geometry(s)
        x = torch.randn(s["n"], s["c"], s["h"], s["w"], device="cuda", requires_grad=True)
        w = torch.randn(s["c"], 1, s["kh"], s["kw"], device="cuda", requires_grad=True)
        dy = torch.randn(s["n"], s["c"], ho, wo, device="cuda")
        st, dil = (s["s"], s["s"]), (s["d"], s["d"])
        p4 = (pad[0], pad[0], pad[1], pad[1])
        y_buf, dx_buf = torch.empty_like(dy), torch.empty_like(x)
        r = {"shape": name}
        r["k_fwd"] = bench(lambda: direct.conv_fwd(x, w, None, st, p4, dil, y_buf))
        r["k_dgrad"] = bench(lambda: direct.conv_dgrad(dy, x.shape, w, st, p4, dil, dx_buf))
        r["k_wgrad"] = bench(lambda: direct.conv_wgrad(dy, x, w.shape, st, p4, dil))
        lk = lambda algo: (lambda: lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm=algo).backward(dy))  # noqa: E731
        r["op_fwd"] = bench(lambda: lkconv.depthwise_conv2d(x, w, None, st, pad, dil, algorithm="direct"))
        r["op_fwdbwd"] = bench(lk("direct"), [x, w])
        r["auto_fwdbwd"] = bench(lk("auto"), [x, w])
        r["pt_fwd"] = bench(lambda: F.conv2d(x, w, None, st, pad, dil, s["c"]))
        r["pt_fwdbwd"] = bench(lambda: F.conv2d(x, w, None, st, pad, dil, s["c"]).backward(dy), [x, w])
        r["host_op_fwdbwd_us"] = host_us(lk("direct"))
        r["host_pt_fwdbwd_us"] = host_us(lambda: F.conv2d(x, w, None, st, pad, dil, s["c"]).backward(dy))
        r["host_kfwd_us"] = host_us(lambda: direct.conv_fwd(x, w, None, st, p4, dil, y_buf))
        rows.append(r)
        print(r, flush=True)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            fn = lk("direct")
            fn()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    x.grad = w.grad = None
                    fn()
                torch.cuda.synchronize()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=60))
            print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=8, max_name_column_width=60))
    keys = [k for k in rows[0] if k != "shape"]
    print("\n" + f"{'shape':<22}" + "".join(f"{k:>18}" for k in keys))
    for r in rows:
        print(f"{r['shape']:<22}" + "".join(f"{r[k]:18.3f}" for k in keys))


if __name__ == "__main__":
    main()
