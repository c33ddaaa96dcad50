"""Host time of the implicit-GEMM calls with direct launches (FastLauncher) against Triton's JIT launch (GPU).

For each shape and direction (forward, input gradient, weight gradient): host microseconds per call (the launch
rate, no synchronization inside the timed loop), wall microseconds per call, and ``do_bench``'s median (the GPU
time where the host keeps ahead of the GPU, else the host's), first with every implicit-GEMM launcher on its JIT
launch, then with direct launches; lists any configuration whose direct launch was refused.

    python benchmarks/igemm_host.py [--shapes unireplknet_t.s3,replknet_31b.s3] [--dtype bf16]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import host_and_wall_us  # noqa: E402

from lkconv.ops._launch import FastLauncher  # noqa: E402
from lkconv.ops.depthwise2d import implicit_gemm  # noqa: E402
from lkconv.tools.bench import _geometry, load_shapes  # noqa: E402

LAUNCHERS = [v for v in vars(implicit_gemm).values() if isinstance(v, FastLauncher)]  # every implicit-GEMM launch


def main():
    import triton.testing as tt

    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="unireplknet_t.s3,replknet_31b.s3")
    ap.add_argument("--dtype", default="bf16")
    args = ap.parse_args()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    shapes = {s["name"]: s for s in load_shapes()}
    print(f"{'shape':<18} {'direction':<6} {'launch':<6} {'host us':>8} {'wall us':>8} {'bench us':>8}")
    for name in args.shapes.split(","):
        s = shapes[name]
        pad, ho, wo = _geometry(s)
        p4 = (pad[0], pad[0], pad[1], pad[1])
        dil = (s["d"], s["d"])
        x = torch.randn(s["n"], s["c"], s["h"], s["w"], device="cuda", dtype=dtype)
        w = torch.randn(s["c"], 1, s["kh"], s["kw"], device="cuda", dtype=dtype)
        dy = torch.randn(s["n"], s["c"], ho, wo, device="cuda", dtype=dtype)
        y, dx = torch.empty_like(dy), torch.empty_like(x)
        calls = {
            "fwd": lambda: implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, dil, y),
            "dgrad": lambda: implicit_gemm.conv_dgrad(dy, x.shape, w, (1, 1), p4, dil, dx),
            "wgrad": lambda: implicit_gemm.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil),
        }
        for direction, fn in calls.items():
            for fast in (False, True):
                for launcher in LAUNCHERS:
                    launcher.enabled = fast
                fn()  # compiles; with direct launches, the first (checked) one
                host, wall = host_and_wall_us(fn, n=200, warmup=3)
                gpu = tt.do_bench(fn, return_mode="median") * 1e3
                print(f"{name:<18} {direction:<6} {'direct' if fast else 'JIT':<6} {host:8.1f} {wall:8.1f} {gpu:8.1f}",
                      flush=True)
    for launcher in LAUNCHERS:
        for key, why in launcher.refused.items():
            print(f"refused: {launcher.kernel.__name__}: {why}")


if __name__ == "__main__":
    main()
