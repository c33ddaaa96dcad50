"""Sweep implicit-GEMM forward tiles on public shapes (GPU): time, effective TF/s, error vs the direct kernel.

    python benchmarks/tune_igemm.py [--shapes replknet_31b.s1,unireplknet_t.s1] [--dtypes bf16] [--json out.json]

Effective rate = 2*N*C*Ho*Wo*kh*kw / t (the convolution's useful multiply-adds, not the band's).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.depthwise2d import direct, implicit_gemm  # noqa: E402
from lkconv.testing import rel_error  # noqa: E402
from lkconv.tools.bench import DTYPES, _geometry, flops, load_shapes  # noqa: E402

CONFIGS = [implicit_gemm.IgemmConfig(bm, bn, w, st)
           for bm, bn, w, st in itertools.product((64, 128), (0, 16), (4, 8), (2, 3, 4)) if not (bm == 64 and w == 8)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="replknet_31b.s1,unireplknet_t.s1,slak_t.s1.wide")
    ap.add_argument("--dtypes", default="bf16")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import triton.testing as tt

    shapes = {s["name"]: s for s in load_shapes()}
    rows = []
    for name, dt in itertools.product(args.shapes.split(","), args.dtypes.split(",")):
        s, dtype = shapes[name], DTYPES[dt]
        pad, ho, wo = _geometry(s)
        p4 = (pad[0], pad[0], pad[1], pad[1])
        x = torch.randn(s["n"], s["c"], s["h"], s["w"], device="cuda", dtype=dtype)
        w = torch.randn(s["c"], 1, s["kh"], s["kw"], device="cuda", dtype=dtype) / (s["kh"] * s["kw"]) ** 0.5
        ref = direct.conv_fwd(x, w, None, (1, 1), p4, (s["d"], s["d"]), torch.empty(s["n"], s["c"], ho, wo, device="cuda", dtype=dtype))
        t_direct = tt.do_bench(lambda: direct.conv_fwd(x, w, None, (1, 1), p4, (s["d"], s["d"]), ref), return_mode="median")
        for cfg in CONFIGS:
            y = torch.full_like(ref, float("nan"))
            try:
                implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, (s["d"], s["d"]), y, cfg)
                err = rel_error(y, ref)
                t = tt.do_bench(lambda: implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, (s["d"], s["d"]), y, cfg),
                                return_mode="median")
            except Exception as exc:  # noqa: BLE001 - a config that does not compile is reported, not fatal
                print(f"{name} {dt} {cfg}: {type(exc).__name__}: {exc}", flush=True)
                continue
            row = dict(shape=name, dtype=dt, bm=cfg.bm, bn=cfg.bn, warps=cfg.num_warps, stages=cfg.stages, ms=t,
                       tflops=flops(s) / t / 1e9, direct_ms=t_direct, err=err)
            rows.append(row)
            print(f"{name:<18} {dt} bm{cfg.bm:<4} bn{cfg.bn:<3} w{cfg.num_warps} st{cfg.stages}  {t:7.3f} ms "
                  f"{row['tflops']:6.1f} TF/s  (direct {t_direct:.3f} ms)  err {err:.1e}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("\nbest per shape:")
    for name, dt in itertools.product(args.shapes.split(","), args.dtypes.split(",")):
        sel = [r for r in rows if r["shape"] == name and r["dtype"] == dt]
        if sel:
            b = min(sel, key=lambda r: r["ms"])
            print(f"  {name:<18} {dt} bm{b['bm']} bn{b['bn']} w{b['warps']} st{b['stages']}: {b['ms']:.3f} ms, "
                  f"{b['tflops']:.1f} TF/s (direct {b['direct_ms']:.3f} ms)")


if __name__ == "__main__":
    main()
