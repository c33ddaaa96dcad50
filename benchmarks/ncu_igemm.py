"""One implicit-GEMM forward of a public shape, called a few times, for Nsight Compute to read its counters.

Usage (on the device):
    ncu --clock-control none --kernel-name regex:igemm --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section WarpStateStats ... \
        python benchmarks/ncu_igemm.py --shape unireplknet_t.s1 --config ""

The first call compiles; the later ones are the launches to profile. The config is a tune_igemm.py spec
("" for the default tile). Prints the output's error against the direct kernel, so that a profiled config is
also a checked one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tune_igemm import _problem, parse_config  # noqa: E402

from lkconv.ops.depthwise2d import direct, implicit_gemm  # noqa: E402
from lkconv.testing import rel_error  # noqa: E402
from lkconv.tools.bench import DTYPES, load_shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="unireplknet_t.s1")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--config", default="", help="tune_igemm.py spec, '' for the default tile")
    ap.add_argument("--calls", type=int, default=3)
    args = ap.parse_args()
    s = {r["name"]: r for r in load_shapes()}[args.shape]
    x, w, p4, dil, _, ho, wo = _problem(s, DTYPES[args.dtype])
    cfg = parse_config(args.config)
    y = torch.full((x.shape[0], x.shape[1], ho, wo), float("nan"), device="cuda", dtype=x.dtype)
    for _ in range(args.calls):
        implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, dil, y, cfg)
    torch.cuda.synchronize()
    ref = direct.conv_fwd(x, w, None, (1, 1), p4, dil, torch.empty_like(y))
    print(f"{args.shape} {args.dtype} {args.config or 'default'}: error against the direct kernel "
          f"{rel_error(y, ref):.2e}")


if __name__ == "__main__":
    main()
