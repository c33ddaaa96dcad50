"""short_conv1d GPU time without host cost: each step captured once in a CUDA graph, then replays timed (GPU).

For the SHORT_SHAPES of ``lkconv.tools.bench1d`` (SiLU, causal, (B, C, L) contiguous) in bf16 and fp32:
forward and forward+backward through the public op with the grouped kernels (default), with the per-tap kernels
forced, and the F.conv1d + SiLU baseline. Replaying a graph costs one host call, so these times are the GPU's
own; ``lkconv bench --op short_conv1d`` times eager calls, which on small layers include the host's launch cost.
Bytes per step as in bench1d (forward: x read + y written; forward+backward: 2.5x that).

    python benchmarks/short1d_graph_time.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.conv1d import short  # noqa: E402
from lkconv.tools import bench1d  # noqa: E402
from lkconv.tools.bench import DTYPES, graph_time_ms  # noqa: E402
from lkconv.tools.bench1d import SHORT_SHAPES, copy_gbps  # noqa: E402


def ours(a, w):
    return lkconv.short_conv1d(a, w, activation="silu")


def graph_ms(fn, x, w, dy, grad: bool) -> float:
    """GPU time of one step (forward, and backward of dy when grad) from a CUDA-graph replay."""
    return graph_time_ms(bench1d._step(fn, x, w, dy, grad), x.device, 1, [x, w] if grad else None)


def main():
    if not torch.cuda.is_available():
        print("short1d_graph_time.py: no CUDA device; nothing to time")
        return
    peak = copy_gbps(torch.device("cuda"))
    print(f"{torch.cuda.get_device_name()}  copy {peak:.0f} GB/s  torch {torch.__version__}")
    print(f"{'shape':<20} {'W':>2} {'dtype':<5} {'dir':<8} {'grouped ms':>10} {'%copy':>6} {'per-tap ms':>10} "
          f"{'%copy':>6} {'baseline ms':>11}")
    grouped = short.uses_groups
    for s in SHORT_SHAPES:
        for dt in ("bf16", "fp32"):
            for grad in (False, True):
                x = torch.randn(s["b"], s["c"], s["l"], device="cuda", dtype=DTYPES[dt], requires_grad=grad)
                w = torch.randn(s["c"], s["w"], device="cuda", dtype=DTYPES[dt], requires_grad=grad)
                dy = torch.randn_like(x)
                nbytes = 2 * x.numel() * x.element_size() * (2.5 if grad else 1)
                t_g = graph_ms(ours, x, w, dy, grad)
                short.uses_groups = lambda *a, **k: False
                try:
                    t_p = graph_ms(ours, x, w, dy, grad)
                finally:
                    short.uses_groups = grouped
                t_b = graph_ms(bench1d.silu_conv1d_baseline, x, w, dy, grad)
                pct = lambda t: 100 * nbytes / (t * 1e-3) / 1e9 / peak  # noqa: E731
                print(f"{s['name']:<20} {s['w']:>2} {dt:<5} {'fwd+bwd' if grad else 'fwd':<8} {t_g:10.3f} "
                      f"{pct(t_g):6.1f} {t_p:10.3f} {pct(t_p):6.1f} {t_b:11.3f}", flush=True)


if __name__ == "__main__":
    main()
