"""Markdown tables from benchmark outputs: ``lkconv bench`` JSON or its progress log, and tune_direct JSON.

    python benchmarks/report.py bench  benchmarks/results/h200_2026-11-23/bench_fp32_nchw.err [...]
    python benchmarks/report.py kernels benchmarks/results/tune_direct_h200_run2.json
    python benchmarks/report.py columns "fp32 NCHW=a/bench.log,b/bench.json" "bf16 NCHW=c/bench.json"

``columns``: one row per shape, forward+backward lkconv ms (PyTorch ms) and speedup for each labelled set of runs.

Progress logs are read when a run ended before writing bench.json (each line is one finished measurement).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.tools.bench import flops, load_shapes  # noqa: E402

LINE = re.compile(r"^\s+(\S+)\s+(\w+)\s+(\w+)\s+(fwd\+bwd|fwd)\s+lkconv ([\d.]+) ms, torch ([\d.]+) ms")


def bench_rows(paths):
    shapes = {s["name"]: s for s in load_shapes()}
    rows = []
    for path in paths:
        text = Path(path).read_text()
        if path.endswith(".json"):
            rows += json.loads(text)["rows"]
            continue
        for line in text.splitlines():
            m = LINE.match(line)
            if m:
                name, dt, lay, direction, lk, pt = m.groups()
                s = shapes[name]
                rows.append(dict(shape=name, dtype=dt, layout=lay, direction=direction, lkconv_ms=float(lk),
                                 torch_ms=float(pt), kh=s["kh"], kw=s["kw"], d=s["d"], s=s["s"],
                                 lkconv_tflops=(3 if direction == "fwd+bwd" else 1) * flops(s) / float(lk) / 1e9))
    return rows


def _kernel_label(s) -> str:
    """'7x7', '7x7 d3', '7x7 s2' from a shape or row with kh, kw, d, s."""
    return f"{s['kh']}x{s['kw']}" + (f" d{s['d']}" if s["d"] > 1 else "") + (f" s{s['s']}" if s["s"] > 1 else "")


def bench_table(rows) -> str:
    out = ["| shape | kernel | dtype | layout | fwd lkconv ms | fwd torch ms | fwd speedup | fwd+bwd lkconv ms | "
           "fwd+bwd torch ms | fwd+bwd speedup | fwd+bwd TF/s |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    keyed = {}
    for r in rows:
        keyed.setdefault((r["shape"], r["dtype"], r["layout"]), {})[r["direction"]] = r
    for (shape, dt, lay), d in keyed.items():
        any_r = next(iter(d.values()))
        ker = _kernel_label(any_r)
        f, b = d.get("fwd"), d.get("fwd+bwd")
        cell = lambda r, k, fmt: fmt.format(r[k]) if r else "-"  # noqa: E731
        sp = lambda r: f"{r['torch_ms'] / r['lkconv_ms']:.2f}x" if r else "-"  # noqa: E731
        out.append(f"| {shape} | {ker} | {dt} | {lay} | {cell(f, 'lkconv_ms', '{:.3f}')} | {cell(f, 'torch_ms', '{:.3f}')} | "
                   f"{sp(f)} | {cell(b, 'lkconv_ms', '{:.3f}')} | {cell(b, 'torch_ms', '{:.3f}')} | {sp(b)} | "
                   f"{cell(b, 'lkconv_tflops', '{:.1f}')} |")
    return "\n".join(out)


def columns_table(specs) -> str:
    """specs: "label=path,path" each; forward+backward rows side by side, shapes in bench_shapes.json order."""
    cols = []
    for spec in specs:
        label, paths = spec.split("=", 1)
        rows = {r["shape"]: r for r in bench_rows(paths.split(",")) if r["direction"] == "fwd+bwd"}
        cols.append((label, rows))
    head = "| layer | kernel | " + " | ".join(f"{label} ms (PyTorch) | speedup" for label, _ in cols) + " |"
    out = [head, "|---|---|" + "---:|---:|" * len(cols)]
    for s in load_shapes():
        if not any(s["name"] in rows for _, rows in cols):
            continue
        ker = _kernel_label(s)
        cells = []
        for _, rows in cols:
            r = rows.get(s["name"])
            cells += [f"{r['lkconv_ms']:.3f} ({r['torch_ms']:.3f})", f"{r['torch_ms'] / r['lkconv_ms']:.2f}x"] if r \
                else ["-", "-"]
        out.append(f"| {s['name']} | {ker} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def kernel_table(path) -> str:
    data = json.loads(Path(path).read_text())
    out = [f"{data['gpu']}, torch {data['torch']}, triton {data['triton']}", "",
           "| shape | direction | dtype | layout | config | ms | TF/s | PyTorch ms | speedup | rel. error vs fp64 |",
           "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in data["rows"]:
        if "ms" not in r:
            continue
        out.append(f"| {r['shape']} | {r['direction']} | {r['dtype']} | {r['layout']} | {r['variant']} | {r['ms']:.3f} | "
                   f"{r['tflops']:.1f} | {r['torch_ms']:.3f} | {r['torch_ms'] / r['ms']:.2f}x | {r['rel_err']:.1e} |")
    return "\n".join(out)


def main(argv):
    if len(argv) < 2 or argv[0] not in ("bench", "kernels", "columns"):
        print(__doc__)
        return 2
    if argv[0] == "bench":
        print(bench_table(bench_rows(argv[1:])))
    elif argv[0] == "columns":
        print(columns_table(argv[1:]))
    else:
        for p in argv[1:]:
            print(kernel_table(p))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
