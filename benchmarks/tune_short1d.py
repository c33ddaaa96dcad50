"""short_conv1d forward: the per-tap kernel against the grouped (vector-load) kernel and its tile sweep (GPU).

For B=8, C=1024, L=4096 at W = 3, 4, 8 and the other SHORT_SHAPES of ``lkconv.tools.bench1d``, in bf16 and
fp32, (B, C, L) contiguous, causal with SiLU: every kernel and tile is first checked against a float64
reference on fresh random inputs (with a bias; a mismatch stops the script), then timed with
``triton.testing.do_bench`` (median) on inputs rotated so that the buffers of one round exceed the L2.
Prints ms, GB/s (x read + y written) and % of the measured device copy bandwidth, and the best tile per shape;
--bwd adds the two backward kernels (silu_bwd, bwd; three tensors' bytes each, not rotated), grouped and
per-tap. Without CUDA it checks CPU-sized shapes through the Triton interpreter and skips the timing.

    python benchmarks/tune_short1d.py [--dtypes bf16,fp32] [--quick] [--widths 3,4,8] [--lengths 4096] [--bwd]
                                      [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.conv1d import short  # noqa: E402
from lkconv.ops.conv1d.reference import short_conv1d_reference  # noqa: E402
from lkconv.tools.bench import DTYPES, _time_ms  # noqa: E402
from lkconv.tools.bench1d import SHORT_SHAPES, copy_gbps  # noqa: E402

TOL = {"fp32": 1e-5, "bf16": 1e-2, "fp16": 2e-3}


def shapes(cpu: bool, widths=(3, 4, 8), lengths=(4096,)):
    """(name, B, C, L, W): B=8, C=1024 at each length and width, then the other SHORT_SHAPES."""
    out = [(f"b8c1024l{n}", 8, 1024, n, wd) for n in lengths for wd in widths]
    out += [(s["name"], s["b"], s["c"], s["l"], s["w"]) for s in SHORT_SHAPES if s["name"] != "width8"]
    if cpu:
        out = [(n, 1, min(c, 16), min(l, 1000), wd) for n, b, c, l, wd in out]
    return out


def tiles(dtype, quick: bool):
    """Grouped-kernel tiles (BLOCK_C, G, num_warps) to sweep; None is the wrapper's default."""
    if quick:
        return [None]
    v = short.group_size(dtype)
    out = [None]
    for steps in (128, 256, 512):
        for outputs in (1024, 2048, 4096):
            g, bc = steps // v, outputs // steps
            for nw in (4, 8):
                if bc >= 1 and bc * g >= 32 * nw:
                    out.append((bc, g, nw))
    return out


def rel_err(y, ref) -> float:
    """||y - ref|| / ||ref|| in float64, on y's device; inf when y has a NaN or Inf."""
    d = y.double()
    if not torch.isfinite(d).all():
        return math.inf
    return ((d - ref).norm() / ref.norm()).item()


def kernels(dtype, width: int, quick: bool):
    """(kernel, tile, launch(x, w, bias, y)) of the per-tap kernel and of the grouped kernel's tiles."""
    out = [("per-tap", "", lambda x, w, b, y: short.launch_fwd_per_tap(x, w, b, y, True, True))]
    # the wrapper takes the grouped kernel only for W <= 3V + 1; wider, only its default tile is timed
    for t in tiles(dtype, quick or width > 3 * short.group_size(dtype) + 1):
        if t is None:
            out.append(("grouped", "default", lambda x, w, b, y: short.launch_fwd_groups(x, w, b, y, True, True)))
        else:
            bc, g, nw = t
            out.append(("grouped", f"c{bc} g{g} w{nw}",
                        lambda x, w, b, y, bc=bc, g=g, nw=nw: short.launch_fwd_groups(
                            x, w, b, y, True, True, block_c=bc, groups=g, num_warps=nw)))
    return out


def time_rotated(launch, bufs, w, device) -> float:
    """ms of launch(x, w, None, y), each call on the next (x, y) of bufs."""
    state = {"i": 0}

    def step():
        xb, yb = bufs[state["i"] % len(bufs)]
        state["i"] += 1
        launch(xb, w, None, yb)

    return _time_ms(step, device)


def time_backward(x, w, dy, grouped: bool, device):
    """ms of the two backward launches of short_conv1d with SiLU (no bias): silu_bwd (dy, x -> dz) and bwd
    (dz, x -> dx, dw), with or without the grouped kernels."""
    uses_groups = short.uses_groups
    if not grouped:
        short.uses_groups = lambda *args: False
    try:
        dz, _ = short.short_conv1d_silu_bwd(dy, x, w, None, True)
        return (_time_ms(lambda: short.short_conv1d_silu_bwd(dy, x, w, None, True), device),
                _time_ms(lambda: short.short_conv1d_bwd(dz, x, w, True), device))
    finally:
        short.uses_groups = uses_groups


def run(dtypes, quick: bool, widths, lengths, bwd: bool):
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    peak = copy_gbps(device)
    l2 = torch.cuda.get_device_properties(device).L2_cache_size if cuda else 0
    if cuda:
        print(f"{torch.cuda.get_device_name()}  copy {peak:.0f} GB/s  L2 {l2 / 2**20:.0f} MiB")
    else:
        print("no CUDA: checking CPU-sized shapes through the Triton interpreter, skipping timing")
    print(header(cuda), flush=True)
    rows = []
    for name, B, C, L, width in shapes(not cuda, widths, lengths):
        for dt in dtypes:
            dtype = DTYPES[dt]
            # correctness: fresh inputs with a bias, float64 reference
            x = torch.randn(B, C, L, device=device, dtype=dtype)
            w = (torch.randn(C, width, device=device) / width ** 0.5).to(dtype)
            bias = torch.randn(C, device=device, dtype=dtype)
            ref = short_conv1d_reference(x.double(), w.double(), bias.double(), True, "silu")
            cands = kernels(dtype, width, quick or not cuda)
            for kind, tile, launch in cands:
                err = rel_err(launch(x, w, bias, torch.empty_like(x)), ref)
                if not err <= TOL[dt]:
                    raise SystemExit(f"MISMATCH {name} W={width} {dt} {kind} {tile}: "
                                     f"rel error {err:.3e} > {TOL[dt]:.0e}")
                rows.append(dict(shape=name, b=B, c=C, l=L, w=width, dtype=dt, kernel=kind, tile=tile, rel_err=err))
            del ref
            if not cuda:
                print("\n".join(format_row(r) for r in rows[-len(cands):]), flush=True)
                continue
            # timing: no bias (as lkconv bench), buffers rotated past the L2
            nbytes = 2 * x.numel() * x.element_size()
            copies = max(1, min(8, math.ceil(3 * l2 / nbytes)))
            bufs = [(torch.randn_like(x), torch.empty_like(x)) for _ in range(copies)]
            for (_, _, launch), row in zip(cands, rows[-len(cands):]):
                ms = time_rotated(launch, bufs, w, device)
                row.update(ms=ms, gbps=nbytes / (ms * 1e-3) / 1e9)
                row["pct_copy"] = 100 * row["gbps"] / peak
            bufs.clear()
            if bwd:
                dy = torch.randn_like(x)
                for kind, grouped in (("per-tap", False), ("grouped", True)):
                    for direction, ms in zip(("silu_bwd", "bwd"), time_backward(x, w, dy, grouped, device)):
                        gbps = 1.5 * nbytes / (ms * 1e-3) / 1e9  # three (B, C, L) tensors read or written
                        rows.append(dict(shape=name, b=B, c=C, l=L, w=width, dtype=dt, kernel=kind, tile=direction,
                                         rel_err=math.nan, ms=ms, gbps=gbps, pct_copy=100 * gbps / peak))
            print("\n".join(format_row(r) for r in rows if (r["shape"], r["w"], r["dtype"]) == (name, width, dt)),
                  flush=True)
    return rows, peak


def header(timed: bool) -> str:
    head = f"{'shape':<20} {'W':>2} {'dtype':<5} {'kernel':<8} {'tile':<12} {'rel err':>8}"
    if timed:
        head += f" {'ms':>8} {'GB/s':>7} {'%copy':>6}"
    return head + "\n" + "-" * len(head)


def format_row(r: dict) -> str:
    err = f"{r['rel_err']:8.1e}" if r["rel_err"] == r["rel_err"] else f"{'-':>8}"
    line = f"{r['shape']:<20} {r['w']:>2} {r['dtype']:<5} {r['kernel']:<8} {r['tile']:<12} {err}"
    if "ms" in r:
        line += f" {r['ms']:8.4f} {r['gbps']:7.0f} {r['pct_copy']:6.1f}"
    return line


def summary(rows) -> str:
    """Per shape: the kernel the wrapper takes, then per-tap, grouped default and best tile (% of copy)."""
    lines = ["best per shape ([the wrapper's kernel] per-tap, grouped default, best grouped tile):"]
    keys = list(dict.fromkeys((r["shape"], r["w"], r["dtype"]) for r in rows))
    for key in keys:
        rs = [r for r in rows if (r["shape"], r["w"], r["dtype"]) == key and "bwd" not in r["tile"]]
        pt = next(r for r in rs if r["kernel"] == "per-tap")
        gr = [r for r in rs if r["kernel"] == "grouped"]
        chosen = "grouped" if key[1] <= 3 * short.group_size(DTYPES[key[2]]) + 1 else "per-tap"
        line = f"{key[0]:<20} {key[1]:>2} {key[2]:<5} [{chosen}] per-tap {pt['pct_copy']:5.1f}%"
        if gr:
            default = next(r for r in gr if r["tile"] == "default")
            best = min(gr, key=lambda r: r["ms"])
            line += (f"  grouped {default['pct_copy']:5.1f}%  best {best['tile']} {best['pct_copy']:5.1f}%"
                     f"  ({pt['ms'] / best['ms']:.2f}x over per-tap)")
        lines.append(line)
        for direction in ("silu_bwd", "bwd"):
            bw = {r["kernel"]: r for r in rows if (r["shape"], r["w"], r["dtype"]) == key and r["tile"] == direction}
            if bw:
                pt, gr = bw["per-tap"], bw["grouped"]
                lines.append(f"{'':<20} {'':>2} {'':<5}   {direction:>8}: per-tap {pt['pct_copy']:5.1f}%  "
                             f"grouped {gr['pct_copy']:5.1f}%  ({pt['ms'] / gr['ms']:.2f}x)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", default="bf16,fp32")
    ap.add_argument("--quick", action="store_true", help="default tile only, no sweep")
    ap.add_argument("--widths", default="3,4,8", help="widths of the B=8, C=1024 shape")
    ap.add_argument("--lengths", default="4096", help="lengths of the B=8, C=1024 shape")
    ap.add_argument("--bwd", action="store_true", help="also time the two backward kernels, grouped and per-tap")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, peak = run(args.dtypes.split(","), args.quick, [int(v) for v in args.widths.split(",")],
                     [int(v) for v in args.lengths.split(",")], args.bwd)
    if peak is not None:
        print("\n" + summary(rows))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(copy_gbps=peak, rows=rows), indent=1))


if __name__ == "__main__":
    main()
