"""long_conv1d's fused forward kernel (or, with --staged, the staged kernels' forward) on a public shape, called a few
times, for Nsight Compute to read its counters.

Usage (on the device):
    ncu --clock-control none --kernel-name regex:long_conv1d_fused --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis ... \
        python benchmarks/ncu_long1d.py --shape hyena_4k --products embedded --pairs 1
    ncu ... --kernel-name regex:staged_rows --launch-skip 2 --launch-count 1 \
        python benchmarks/ncu_long1d.py --staged --shape hyena_6000

The first call compiles; the later ones are the launches to profile. Prints the output's error against the
float64 torch.fft convolution, so that a profiled configuration is also a checked one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.conv1d import fused_fft, staged_fft  # noqa: E402
from lkconv.ops.conv1d.long import _long_conv1d_torch  # noqa: E402
from lkconv.testing import rel_error  # noqa: E402
from lkconv.tools.bench import DTYPES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_long1d import long_inputs, long_shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="hyena_4k")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--products", default="karatsuba", choices=fused_fft.PRODUCTS)
    ap.add_argument("--pairs", type=int, default=0, help="FusedConfig.pairs (0: the default)")
    ap.add_argument("--block-rows", type=int, default=32)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--staged", action="store_true", help="the staged kernels at their defaults (products, block "
                                                          "rows and pairs are the fused kernels' options)")
    args = ap.parse_args()
    x, k, kf = long_inputs(long_shapes()[args.shape], DTYPES[args.dtype], args.staged)
    cfg = (staged_fft.StagedConfig() if args.staged else
           fused_fft.FusedConfig(block_rows=args.block_rows, pairs=args.pairs, products=args.products))
    for _ in range(args.calls):
        y = fused_fft.fused_fwd(x, k, None, True, kf, cfg)
    torch.cuda.synchronize()
    ref = _long_conv1d_torch(x.double(), k.double(), None, True)
    form = "staged" if args.staged else f"{args.products} pairs {args.pairs} bk {args.block_rows}"
    print(f"{args.shape} {args.dtype} {form}: error against float64 {rel_error(y, ref):.2e}")


if __name__ == "__main__":
    main()
