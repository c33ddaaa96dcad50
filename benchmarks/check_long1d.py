"""A quick GPU check of long_conv1d's fused kernels: forward and every gradient against float64, a few shapes
per dtype at their default precisions (each line printed as it completes).

    python benchmarks/check_long1d.py [--dtypes bf16,fp32,fp16]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.conv1d import long_conv1d_reference  # noqa: E402
from lkconv.testing import poison_outputs, rel_error, tolerance  # noqa: E402
from lkconv.tools.bench import DTYPES  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtypes", default="bf16,fp32,fp16")
    args = ap.parse_args()
    bad = 0
    for dt in args.dtypes.split(","):
        dtype = DTYPES[dt]
        for b, c, length, lk, causal in ((5, 4, 4096, 4096, True), (3, 2, 1000, 999, False), (2, 2, 6000, 6000, True)):
            x = torch.randn(b, c, length, device="cuda").to(dtype).requires_grad_()
            k = (torch.randn(c, lk, device="cuda") / lk ** 0.5).to(dtype).requires_grad_()
            D = torch.randn(c, device="cuda").to(dtype).requires_grad_()
            g = torch.randn(b, c, length, device="cuda").to(dtype)
            with poison_outputs():
                y = lkconv.long_conv1d(x, k, D, causal, algorithm="fused_fft")
                y.backward(g)
            x64, k64, D64 = (t.detach().double().requires_grad_() for t in (x, k, D))
            ref = long_conv1d_reference(x64, k64, D64, causal)
            ref.backward(g.double())
            errs = [rel_error(y, ref)] + [rel_error(t.grad, t64.grad) for t, t64 in ((x, x64), (k, k64), (D, D64))]
            tol = tolerance("fft", dtype, "cuda")
            ok = max(errs) < tol
            bad += not ok
            print(f"{dt:<5} {b}x{c}x{length} k{lk} {'causal' if causal else 'centred'}: y/dx/dk/dD "
                  + " ".join(f"{e:.1e}" for e in errs) + f"  tol {tol:.0e}  {'ok' if ok else 'FAIL'}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
