"""long_conv1d's fused kernels on the GPU: time and error of forward and backward per dtype, tensor-core
precision and warp count, against torch.fft (lkconv's "fft" algorithm) and the plain rfft/irfft baseline.

    python benchmarks/tune_long1d.py [--shapes hyena_1k,hyena_4k,hyena_3000] [--dtypes fp32,bf16,fp16]
        [--warps 4,8] [--block-rows 16,32] [--stages 1,2] [--per 0,1] [--precisions tf32,tf32x3]
        [--products karatsuba,embedded] [--joint 0,1] [--jobs 8] [--json F]
    python benchmarks/tune_long1d.py --staged --shapes sgconv_16k,dna_256k [--row-lengths 0,1024,2048]
        [--block-cols 32,64] [--warps 4,8] [--block-rows 0,32] [--products karatsuba,embedded]
        (the staged kernels of transforms past fused_fft.MAX_N; --warps: their row kernels')

Errors: ||out - ref|| / ||ref|| against the same problem in float64 through torch.fft, for y, dx and dk.
Bytes: x read and y written (forward); dy and x read, dx written (backward).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.conv1d import fused_fft, staged_fft  # noqa: E402
from lkconv.ops.conv1d.long import _long_conv1d_torch  # noqa: E402
from lkconv.testing import rel_error  # noqa: E402
from lkconv.tools.bench import DTYPES, SHAPES_FILE  # noqa: E402
from lkconv.tools.bench1d import LONG_EXTRA_SHAPES, plain_fft_conv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm_compile import warm_in_processes  # noqa: E402


def _ms(fn):
    import triton.testing as tt

    return tt.do_bench(fn, return_mode="median")


def _configs(args, dtype) -> list:
    precs = args.precisions.split(",") if args.precisions else [fused_fft._precision(dtype)]
    if args.staged:
        return [staged_fft.StagedConfig(row_length=q, block_cols=bq, block_rows=bk, row_warps=w, precision=prec,
                                        products=prod)
                for prod in args.products.split(",") for prec in precs for w in map(int, args.warps.split(","))
                for bk in map(int, args.block_rows.split(",")) for q in map(int, args.row_lengths.split(","))
                for bq in map(int, args.block_cols.split(","))]
    return [fused_fft.FusedConfig(block_rows=bk, pairs=pr, num_warps=w, num_stages=st, groups_per_program=per,
                                  precision=prec, products=prod, joint_backward=bool(jb))
            for jb in map(int, args.joint.split(",")) for prod in args.products.split(",")
            for prec in precs for w in map(int, args.warps.split(","))
            for bk in map(int, args.block_rows.split(",")) for st in map(int, args.stages.split(","))
            for per in map(int, args.per.split(",")) for pr in map(int, args.pairs.split(","))]


def long_shapes() -> dict:
    """The public long_conv1d shapes and the extra ones of lkconv bench, by name."""
    return {s["name"]: s for s in json.loads(SHAPES_FILE.read_text())["long_conv1d"] + LONG_EXTRA_SHAPES}


def long_inputs(s: dict, dtype, staged=False):
    """x (B, C, L), k (C, L) scaled by 1/sqrt(L), and k's spectrum for shape ``s`` as the fused kernels' calls read
    it (staged: True or a StagedConfig, the staged kernels' calls with that config)."""
    x = torch.randn(s["b"], s["c"], s["l"], device="cuda").to(dtype)
    k = (torch.randn(s["c"], s["l"], device="cuda") / s["l"] ** 0.5).to(dtype)
    config = (staged if isinstance(staged, staged_fft.StagedConfig) else staged_fft.StagedConfig()) if staged else None
    return x, k, fused_fft.call_kernel_spectrum(k, s["l"], config)


def _warm(task):
    """Compile one (shape, dtype, config)'s kernels in a worker process: one forward and one backward on tensors
    of the shape itself (the launches' specializations depend on it). Returns (label, seconds, error or None)."""
    import time

    s, dt, fields = task
    cfg = (staged_fft.StagedConfig if "row_length" in fields else fused_fft.FusedConfig)(**fields)
    label = f"{s['name']} {dt} {fields}"
    t0 = time.perf_counter()
    try:
        x, k, kf = long_inputs(s, DTYPES[dt], isinstance(cfg, staged_fft.StagedConfig))
        fused_fft.fused_fwd(x, k, None, True, kf, cfg)
        fused_fft.fused_bwd(torch.randn_like(x), x, k, None, True, kf, True, cfg)
        torch.cuda.synchronize()
        err = None
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        err = f"{type(exc).__name__}: {str(exc)[:200]}"
    return label, time.perf_counter() - t0, err


def _label(cfg) -> str:
    if isinstance(cfg, staged_fft.StagedConfig):
        return (f"staged {cfg.precision} {cfg.products[:3]} q{cfg.row_length} bq{cfg.block_cols} bk{cfg.block_rows} "
                f"w{cfg.row_warps}")
    return (f"{cfg.precision} {cfg.products[:3]}{'+joint' if cfg.joint_backward else ''} "
            f"bk{cfg.block_rows} p{cfg.pairs} w{cfg.num_warps} st{cfg.num_stages} per{cfg.groups_per_program}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="hyena_1k,hyena_4k,hyena_3000,sgconv_16k")
    ap.add_argument("--dtypes", default="fp32,bf16,fp16")
    ap.add_argument("--warps", default="4,8")
    ap.add_argument("--block-rows", default="16,32")
    ap.add_argument("--stages", default="1", help="software-pipelining stages of the block loop")
    ap.add_argument("--per", default="0", help="groups of sequences per program (0: the default chunking)")
    ap.add_argument("--pairs", default="1", help="sequence pairs transformed together (powers of two)")
    ap.add_argument("--precisions", default=None, help="comma list of tl.dot precisions (default: each dtype's own)")
    ap.add_argument("--products", default="karatsuba", help="complex products: karatsuba and/or embedded")
    ap.add_argument("--joint", default="0", help="FusedConfig.joint_backward values: 0 and/or 1")
    ap.add_argument("--jobs", type=int, default=1, help="compile every (shape, dtype, config) in that many "
                    "processes first")
    ap.add_argument("--staged", action="store_true", help="time the staged kernels (staged_fft.StagedConfig)")
    ap.add_argument("--row-lengths", default="0", help="staged: points per row transform (0: by N)")
    ap.add_argument("--block-cols", default="64", help="staged: columns per program of the column kernels")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    shapes = long_shapes()
    if args.jobs > 1:
        import dataclasses

        tasks = [(shapes[name], dt, dataclasses.asdict(cfg)) for name in args.shapes.split(",")
                 for dt in args.dtypes.split(",") for cfg in _configs(args, DTYPES[dt])]
        warm_in_processes(_warm, tasks, args.jobs)
    rows = []
    for name in args.shapes.split(","):
        s = shapes[name]
        for dt in args.dtypes.split(","):
            dtype = DTYPES[dt]
            x, k, kf = long_inputs(s, dtype, args.staged)
            dy = torch.randn_like(x)
            x64, k64 = x.double().requires_grad_(), k.double().requires_grad_()
            y64 = _long_conv1d_torch(x64, k64, None, True)
            dx64, dk64 = torch.autograd.grad(y64, (x64, k64), dy.double())
            y64 = y64.detach()
            t_fft = _ms(lambda: _long_conv1d_torch(x, k, None, True))
            t_plain = _ms(lambda: plain_fft_conv(x, k))
            nbytes = 2 * x.numel() * x.element_size()
            print(f"{name} {dt}: torch.fft {t_fft:.3f} ms, plain baseline {t_plain:.3f} ms", flush=True)
            for cfg in _configs(args, dtype):
                label = _label(cfg)
                try:
                    y = fused_fft.fused_fwd(x, k, None, True, kf, cfg)
                    dx, dk, _ = fused_fft.fused_bwd(dy, x, k, None, True, kf, True, cfg)
                    t_f = _ms(lambda: fused_fft.fused_fwd(x, k, None, True, kf, cfg))
                    t_b = _ms(lambda: fused_fft.fused_bwd(dy, x, k, None, True, kf, True, cfg))
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    print(f"  {label}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                    continue
                row = dict(shape=name, dtype=dt, config=label, fwd_ms=t_f, bwd_ms=t_b, fft_ms=t_fft,
                           plain_ms=t_plain, err_y=rel_error(y, y64), err_dx=rel_error(dx, dx64),
                           err_dk=rel_error(dk, dk64), fwd_gbps=nbytes / t_f / 1e6, bwd_gbps=1.5 * nbytes / t_b / 1e6)
                rows.append(row)
                print(f"  {label}: fwd {t_f:.3f} ms ({t_plain / t_f:.2f}x plain, {row['fwd_gbps']:.0f} GB/s)  "
                      f"bwd {t_b:.3f} ms ({row['bwd_gbps']:.0f} GB/s)  err y {row['err_y']:.1e} "
                      f"dx {row['err_dx']:.1e} dk {row['err_dk']:.1e}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\n{'shape':<11} {'dtype':<5} {'config':<38} {'fwd ms':>8} {'bwd ms':>8} {'plain fwd':>9} {'fwd x':>6} "
          f"{'err y':>8} {'err dk':>8}")
    for r in rows:
        print(f"{r['shape']:<11} {r['dtype']:<5} {r['config']:<38} {r['fwd_ms']:8.3f} {r['bwd_ms']:8.3f} "
              f"{r['plain_ms']:9.3f} {r['plain_ms'] / r['fwd_ms']:5.2f}x {r['err_y']:8.1e} {r['err_dk']:8.1e}")


if __name__ == "__main__":
    main()
