"""Where the staged long_conv1d kernels' time goes (lkconv.ops.conv1d.staged_fft), per configuration: each of the
forward's three kernels timed alone with its bytes moved, the kernel's spectrum (torch.fft's or the staged
kernels' own), then the whole forward and backward (their kernel spectrum precomputed, as it is reused from the
forward) and the forward with its spectrum, against the plain torch.fft baseline.

    python benchmarks/profile_staged.py [--shapes sgconv_16k,dna_256k] [--dtypes bf16,fp32] [--jobs 8]
        [--configs q0:p1:w8,q1024:p2:w4:ws=f32,...] [--json F]

A config is colon-separated keys of staged_fft.StagedConfig: q (row_length), p (rows_per_program), w (row_warps),
cw (column_warps), bq (block_cols), bk (block_rows), r (row_registers), ca (column_rows), ob (output_rows),
gp (groups_per_program), ws (workspace: f32 or bf16), emb (embedded products), jb (joint backward),
tf (factored twiddles), rs (spectrum="rows": the kernel's spectrum made by the staged kernels), ch
(pairing="channels"), c4 (columns="fourstep").
Every config first runs once in its own process: one that fails (compile error, illegal address) is reported
and left out of the timings, which would otherwise all fail after it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.conv1d import fused_fft, staged_fft  # noqa: E402
from lkconv.tools.bench import DTYPES  # noqa: E402
from lkconv.tools.bench1d import plain_fft_conv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_long1d import long_inputs, long_shapes  # noqa: E402
from warm_compile import warm_in_processes  # noqa: E402

KEYS = {"q": "row_length", "p": "rows_per_program", "w": "row_warps", "cw": "column_warps", "bq": "block_cols",
        "bk": "block_rows", "r": "row_registers", "ca": "column_rows", "ob": "output_rows", "gp": "groups_per_program"}


def parse_config(spec: str) -> staged_fft.StagedConfig:
    fields = {}
    for part in filter(None, spec.split(":")):
        key, _, val = part.partition("=") if "=" in part else (part.rstrip("0123456789"), "",
                                                               part[len(part.rstrip("0123456789")):])
        if key == "ws":
            fields["workspace"] = {"f32": "float32", "bf16": "bfloat16"}[val]
        elif key == "emb":
            fields["products"] = "embedded"
        elif key == "jb":
            fields["joint_backward"] = True
        elif key == "tf":
            fields["twiddles"] = "factored"
        elif key == "rs":
            fields["spectrum"] = "rows"
        elif key == "ch":
            fields["pairing"] = "channels"
        elif key == "c4":
            fields["columns"] = "fourstep"
        else:
            fields[KEYS[key]] = int(val)
    return staged_fft.StagedConfig(**fields)


def _warm(task):
    import time

    name, dt, spec = task
    t0 = time.perf_counter()
    try:
        cfg = parse_config(spec)
        x, k, kf = long_inputs(long_shapes()[name], DTYPES[dt], staged=cfg)
        fused_fft.fused_fwd(x, k, None, True, kf, cfg)
        fused_fft.fused_bwd(torch.randn_like(x), x, k, None, True, kf, True, cfg)
        torch.cuda.synchronize()
        err = None
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        err = f"{type(exc).__name__}: {str(exc)[:200]}"
    return f"{name} {dt} {spec}", time.perf_counter() - t0, err


def main():
    import triton.testing as tt

    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="sgconv_16k,dna_256k")
    ap.add_argument("--dtypes", default="bf16")
    ap.add_argument("--configs", default="q0")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    shapes = long_shapes()
    tasks = [(name, dt, spec) for name in args.shapes.split(",") for dt in args.dtypes.split(",")
             for spec in args.configs.split(",")]
    failed = {label for label, _, err in warm_in_processes(_warm, tasks, args.jobs) if err}
    rows = []
    for name in args.shapes.split(","):
        s = shapes[name]
        for dt in args.dtypes.split(","):
            x, k, _ = long_inputs(s, DTYPES[dt], staged=True)
            dy = torch.randn_like(x)
            n = staged_fft.transform_size(s["l"], s["l"])
            t_plain = tt.do_bench(lambda: plain_fft_conv(x, k), return_mode="median")
            t_plain_b = tt.do_bench(lambda: _plain_step(x, k, dy), return_mode="median")
            print(f"{name} {dt}: plain torch.fft forward {t_plain:.3f} ms, forward+backward {t_plain_b:.3f} ms",
                  flush=True)
            for spec in args.configs.split(","):
                if f"{name} {dt} {spec}" in failed:
                    continue
                cfg = parse_config(spec)
                kf = fused_fft.call_kernel_spectrum(k, s["l"], cfg)
                p = staged_fft._plan(n, x.dtype, cfg)
                sc = staged_fft.sequence_scales(x) if cfg.pairing == "channels" else None
                ksc = staged_fft.pair_kernel_scales(k, cfg)
                w = staged_fft._columns(p, x, 0, sc)
                out = torch.empty_like(x)
                t1 = tt.do_bench(lambda: staged_fft._columns(p, x, 0, sc), return_mode="median")
                t2 = tt.do_bench(lambda: staged_fft._rows(p, w, kf, False, x.shape[1], ksc), return_mode="median")
                osc = staged_fft._output_scales(staged_fft._peaks(x), ksc) if ksc is not None else None
                t3 = tt.do_bench(lambda: staged_fft._output(p, w, out, x, None, 0, osc), return_mode="median")
                t_k = tt.do_bench(lambda: fused_fft.call_kernel_spectrum(k, s["l"], cfg),
                                  return_mode="median")
                t_f = tt.do_bench(lambda: fused_fft.fused_fwd(x, k, None, True, kf, cfg), return_mode="median")
                t_b = tt.do_bench(lambda: fused_fft.fused_bwd(dy, x, k, None, True, kf, True, cfg),
                                  return_mode="median")
                wb = w.numel() * w.element_size()
                xb = x.numel() * x.element_size()
                row = dict(shape=name, dtype=dt, config=spec, q=p.q, m=p.m, columns_ms=t1, rows_ms=t2, output_ms=t3,
                           spectrum_ms=t_k, fwd_ms=t_f, bwd_ms=t_b, plain_fwd_ms=t_plain, plain_step_ms=t_plain_b,
                           columns_gbps=(xb + wb) / t1 / 1e6,
                           rows_gbps=((3 if sc is not None else 2) * wb + kf.numel() * kf.element_size()) / t2 / 1e6,
                           output_gbps=(wb + xb) / t3 / 1e6)
                rows.append(row)
                print(f"  {spec:<28} M{p.m} Q{p.q}: columns {t1:.3f} ms ({row['columns_gbps']:.0f} GB/s)  rows "
                      f"{t2:.3f} ({row['rows_gbps']:.0f})  output {t3:.3f} ({row['output_gbps']:.0f})  spectrum "
                      f"{t_k:.3f}  fwd {t_f:.3f} ({t_plain / t_f:.2f}x; {t_plain / (t_f + t_k):.2f}x with the "
                      f"spectrum)  fwd+bwd {t_f + t_b:.3f} ({t_plain_b / (t_f + t_b):.2f}x; "
                      f"{t_plain_b / (t_k + t_f + t_b):.2f}x)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\n{'shape':<11} {'dtype':<5} {'config':<28} {'cols':>6} {'rows':>6} {'out':>6} {'spec':>6} {'fwd':>7} "
          f"{'fwd x':>6} {'+spec':>6} {'step':>7} {'step x':>6} {'+spec':>6}")
    for r in rows:
        step = r["fwd_ms"] + r["bwd_ms"]
        print(f"{r['shape']:<11} {r['dtype']:<5} {r['config']:<28} {r['columns_ms']:6.3f} {r['rows_ms']:6.3f} "
              f"{r['output_ms']:6.3f} {r['spectrum_ms']:6.3f} {r['fwd_ms']:7.3f} "
              f"{r['plain_fwd_ms'] / r['fwd_ms']:5.2f}x "
              f"{r['plain_fwd_ms'] / (r['fwd_ms'] + r['spectrum_ms']):5.2f}x {step:7.3f} "
              f"{r['plain_step_ms'] / step:5.2f}x {r['plain_step_ms'] / (step + r['spectrum_ms']):5.2f}x")


def _plain_step(x, k, dy):
    xl, kl = x.detach().requires_grad_(), k.detach().requires_grad_()
    y = plain_fft_conv(xl, kl)
    torch.autograd.grad(y, (xl, kl), dy)


if __name__ == "__main__":
    main()
