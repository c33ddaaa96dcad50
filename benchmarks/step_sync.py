"""Why a small layer's eager forward+backward step can take longer in `lkconv bench` than its host work: the
same step timed the bench's way and the host's way, and any host-device synchronization inside it (GPU).

For each shape (fp32 NCHW unless --dtype) and algorithm ("auto", "direct"), microseconds per step:
- "bench": `triton.testing.do_bench` over rotated input sets with their gradients reset, as `lkconv bench` times;
- "one set": the same with a single input set;
- "host" / "wall": launch rate of steps back to back without synchronizing, and until the GPU finished;
then, from torch.profiler over five steps, the host-side calls per step that wait for the GPU or copy to the
host (synchronizations, scalar reads, device-to-host copies).

    python benchmarks/step_sync.py [--shapes unireplknet_t.s3,yolov13_n.dsconv] [--dtype bf16] [--profile]

--profile adds, per algorithm, a cProfile of 200 single-threaded steps of the first shape (the engine's calls
into Python on the calling thread): the 25 functions with the most own time.
"""
from __future__ import annotations

import argparse
import pstats
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.tools.bench import _geometry, _inputs, load_shapes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import host_and_wall_us, profile_single_threaded  # noqa: E402

WAITS = ("synchronize", "_local_scalar_dense", "aten::item", "memcpy dtoh", "cudamemcpy", "is_nonzero",
         "eventsynchronize", "streamsynchronize", "devicesynchronize")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="unireplknet_t.s3,yolov13_n.dsconv")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    import triton.testing as tt

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    shapes = {s["name"]: s for s in load_shapes()}
    torch.backends.cudnn.benchmark = True
    profiles = []
    print(f"{'shape':<20}{'algorithm':<10}{'bench us':>9}{'one set':>9}{'host us':>9}{'wall us':>9}  waits per step")
    for name in args.shapes.split(","):
        s = shapes[name]
        pad, ho, wo = _geometry(s)
        sets = _inputs(s, dtype, "nchw", "cuda", 8, True)
        dy = torch.randn(s["n"], s["c"], ho, wo, device="cuda", dtype=dtype)
        leaves = [t for pair in sets for t in pair]
        for algorithm in ("auto", "direct"):
            state = {"i": 0}

            def step(rotate=True):
                x, w = sets[state["i"] % len(sets)] if rotate else sets[0]
                state["i"] += 1
                x.grad = w.grad = None
                lkconv.depthwise_conv2d(x, w, None, s["s"], pad, s["d"], algorithm=algorithm).backward(dy)

            step()
            torch.cuda.synchronize()
            bench = tt.do_bench(step, warmup=10, rep=50, grad_to_none=leaves, return_mode="median") * 1e3
            one = tt.do_bench(lambda: step(False), warmup=10, rep=50, grad_to_none=leaves,
                              return_mode="median") * 1e3
            host, wall = host_and_wall_us(step, n=100, warmup=5)
            acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
            with torch.profiler.profile(activities=acts) as prof:
                for _ in range(5):
                    step()
            torch.cuda.synchronize()
            counts = {}
            for ev in prof.events():
                low = ev.name.lower()
                if any(k in low for k in WAITS):
                    counts[ev.name] = counts.get(ev.name, 0) + 1
            waits = ", ".join(f"{k} x{v / 5:g}" for k, v in sorted(counts.items())) or "none"
            print(f"{name:<20}{algorithm:<10}{bench:9.1f}{one:9.1f}{host:9.1f}{wall:9.1f}  {waits}", flush=True)
            if args.profile and name == args.shapes.split(",")[0]:
                profiles.append((f"{name} {algorithm}", profile_single_threaded(step, 200)))
    for label, prof in profiles:
        print(f"\n{label}: cProfile of 200 single-threaded steps")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
