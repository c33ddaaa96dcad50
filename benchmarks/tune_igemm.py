"""Sweep implicit-GEMM forward tiles on public shapes (GPU): time, effective TF/s, error vs the direct kernel;
then, at the best forward tile, the input and weight gradients against the direct kernels, and what the
forward's set-up (the zero-bordered input copy, from NCHW and channels_last) costs on its own.

    python benchmarks/tune_igemm.py [--shapes replknet_31b.s1,unireplknet_t.s1] [--dtypes bf16] [--json out.json]
                                    [--quick] [--configs bm256:w8:st3,bm128:bn32:w4:st3:table] [--no-gradients]
                                    [--baseline old_implicit_gemm.py] [--jobs 8] [--graph]

--quick: the default tile only, forward and set-up only (no gradients).
--configs: the tiles to sweep instead of the built-in list (bm, bn, w = warps, st = stages; any of
  igemm_tiles.TOEPLITZ_FORMS (gather, table, canvas, ...): IgemmConfig.toeplitz; images/rows: IgemmConfig.order;
  cols-band/cols-rows/cols-rows_in_place: IgemmConfig.columns; kr = kernel rows per product, rb = output rows per
  block-Toeplitz tile, IgemmConfig.row_block; plane/noplane: IgemmConfig.plane, whole flattened planes per tile;
  runs/noruns: IgemmConfig.plane_runs, dense planes read as contiguous runs (the default) or not; pf/nopf:
  IgemmConfig.prefetch, the next step's Toeplitz tiles read before each product; pbk = IgemmConfig.plane_bk,
  flattened inputs per step of plane tiles; run = IgemmConfig.canvas_run; left/noleft: IgemmConfig.toeplitz_left,
  the product transposed so the Toeplitz tile is its left operand, or not).
--baseline: another version of lkconv/ops/depthwise2d/implicit_gemm.py (a file), timed beside this one at every
  tile, alternating, on the same inputs (an A/B of a kernel change in one process).
--jobs: compile every (shape, dtype, tile) in that many processes first.
--graph: time replays of a CUDA graph of each call (kernel time without the host's launch work).
--wgrad-kernel-rows: also time the weight gradient at the best forward tile with each of these kernel rows per
  program (IgemmConfig.kernel_rows).

Effective rate = 2*N*C*Ho*Wo*kh*kw / t (the convolution's useful multiply-adds, not the band's).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.depthwise2d import direct, implicit_gemm  # noqa: E402
from lkconv.testing import rel_error  # noqa: E402
from lkconv.tools.bench import DTYPES, _geometry, flops, load_shapes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm_compile import warm_in_processes  # noqa: E402

CONFIGS = [implicit_gemm.IgemmConfig(bm, 0, w, st) for (bm, w), st in itertools.product(((64, 4), (128, 4), (128, 8)), (2, 3))]
# narrower column blocks: a 51-wide band as a 128x64 Toeplitz tile spills 328 B of registers at 4 warps (sm_90,
# benchmarks/kernel_resources.py --igemm) and gathers 64 weights per thread per kernel row
CONFIGS += [implicit_gemm.IgemmConfig(128, bn, w, 3) for bn, w in ((16, 4), (32, 4), (32, 8))]
# tiles read from a prebuilt Toeplitz table (no gather; the 51-wide band compiles without spills at 4 or 8 warps)
CONFIGS += [implicit_gemm.IgemmConfig(128, bn, w, 3, "table") for bn, w in ((0, 4), (0, 8), (32, 8))]


def parse_config(spec: str):
    """'bm256:bn32:w8:st3:table:rows:cols-band' -> IgemmConfig (fields left out keep their defaults)."""
    kw = {}
    for part in filter(None, spec.split(":")):
        for prefix, field in (("bm", "bm"), ("bn", "bn"), ("w", "num_warps"), ("st", "stages"),
                              ("kr", "kernel_rows"), ("rb", "row_block"), ("pbk", "plane_bk"), ("run", "canvas_run")):
            if part.startswith(prefix) and part[len(prefix):].isdigit():
                kw[field] = int(part[len(prefix):])
                break
        else:
            if part.startswith("cols-"):
                kw["columns"] = part[len("cols-"):]
                continue
            if part in ("plane", "noplane"):
                kw["plane"] = part == "plane"
                continue
            if part in ("runs", "noruns"):
                kw["plane_runs"] = part == "runs"
                continue
            if part in ("pf", "nopf"):
                kw["prefetch"] = part == "pf"
                continue
            if part in ("images", "rows"):
                kw["order"] = part
                continue
            if part in ("left", "noleft"):
                kw["toeplitz_left"] = part == "left"
                continue
            if part not in implicit_gemm.TOEPLITZ_FORMS:
                raise ValueError(f"config part {part!r} of {spec!r}: expected bm<int>, bn<int>, w<int>, st<int>, "
                                 f"kr<int>, rb<int>, pbk<int>, run<int>, one of {implicit_gemm.TOEPLITZ_FORMS[1:]}, "
                                 "images, rows, plane, noplane, runs, noruns, pf, nopf, left, noleft or "
                                 "cols-<band|rows|rows_in_place>")
            kw["toeplitz"] = part
    return implicit_gemm.IgemmConfig(**kw)


def load_baseline(path: str):
    """Another implicit_gemm.py as a module of this package (its relative imports resolve here)."""
    spec = importlib.util.spec_from_file_location("lkconv.ops.depthwise2d._igemm_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _problem(s, dtype):
    pad, ho, wo = _geometry(s)
    p4, dil = (pad[0], pad[0], pad[1], pad[1]), (s["d"], s["d"])
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(s["n"], s["c"], s["h"], s["w"], device="cuda", dtype=dtype, generator=g)
    w = torch.randn(s["c"], 1, s["kh"], s["kw"], device="cuda", dtype=dtype, generator=g) / (s["kh"] * s["kw"]) ** 0.5
    return x, w, p4, dil, pad, ho, wo


def _warm(task):
    """Compile one (shape, dtype, tile, implementation) by running it once; (label, seconds, error or None)."""
    name, dt, spec, baseline = task
    t0 = time.perf_counter()
    s = {r["name"]: r for r in load_shapes()}[name]
    x, w, p4, dil, _, ho, wo = _problem(s, DTYPES[dt])
    module = load_baseline(baseline) if baseline else implicit_gemm
    cfg = parse_config(spec)
    err = None
    try:
        module.conv_fwd(x, w, None, (1, 1), p4, dil, torch.empty(x.shape[0], x.shape[1], ho, wo, device="cuda",
                                                                  dtype=x.dtype), cfg)
        torch.cuda.synchronize()
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        err = f"{type(exc).__name__}: {exc}"[:300]
    return f"{name} {dt} {spec}{' baseline' if baseline else ''}", time.perf_counter() - t0, err


def _spec(cfg) -> str:
    """The --configs form of a tile (parse_config's inverse)."""
    return (f"bm{cfg.bm}:bn{cfg.bn}:w{cfg.num_warps}:st{cfg.stages}:{cfg.toeplitz}:{cfg.order}"
            + (f":cols-{cfg.columns}" if cfg.columns else "") + _extras(cfg, ":"))


def _extras(cfg, sep: str) -> str:
    """The fields a tile names only when they are not their defaults: kernel rows, row blocks, planes, prefetch,
    canvas runs, the transposed product."""
    parts = [f"kr{cfg.kernel_rows}" if cfg.kernel_rows else "", f"rb{cfg.row_block}" if cfg.row_block else "",
             "" if cfg.plane is None else ("plane" if cfg.plane else "noplane"), "" if cfg.plane_runs else "noruns",
             {True: "pf", False: "nopf", None: ""}[cfg.prefetch], f"pbk{cfg.plane_bk}" if cfg.plane_bk else "",
             f"run{cfg.canvas_run}" if cfg.canvas_run != 8 else "",
             {True: "left", False: "noleft", None: ""}[cfg.toeplitz_left]]
    return "".join(sep + p for p in parts if p)


def _label(cfg) -> str:
    return (f"bm{cfg.bm} bn{cfg.bn} w{cfg.num_warps or 'auto'} st{cfg.stages} {cfg.toeplitz} {cfg.order}"
            f" {cfg.columns or 'cols-default'}" + _extras(cfg, " "))


GRAPH = False  # --graph: time CUDA-graph replays of each call (GPU time without the host's)


def _ms(fn):
    import triton.testing as tt

    if GRAPH:
        return tt.do_bench_cudagraph(fn, return_mode="median")
    return tt.do_bench(fn, return_mode="median")


def _tile_sweep(name, dt, s, rows, configs=None, gradients=True, baseline=None, wgrad_kernel_rows=()):
    dtype = DTYPES[dt]
    x, w, p4, dil, pad, ho, wo = _problem(s, dtype)
    dy = torch.randn(s["n"], s["c"], ho, wo, device="cuda", dtype=dtype)
    ref = direct.conv_fwd(x, w, None, (1, 1), p4, dil, torch.empty_like(dy))
    t_direct = _ms(lambda: direct.conv_fwd(x, w, None, (1, 1), p4, dil, ref))
    best = None
    for cfg in configs or CONFIGS:
        y = torch.full_like(ref, float("nan"))
        try:
            implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, dil, y, cfg)
            err = rel_error(y, ref)
            t = _ms(lambda: implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, dil, y, cfg))
            if baseline is not None:  # alternate: this version, the baseline, this version again
                yb = torch.full_like(ref, float("nan"))
                baseline.conv_fwd(x, w, None, (1, 1), p4, dil, yb, cfg)
                err_b = rel_error(yb, ref)
                t_b = _ms(lambda: baseline.conv_fwd(x, w, None, (1, 1), p4, dil, yb, cfg))
                t = min(t, _ms(lambda: implicit_gemm.conv_fwd(x, w, None, (1, 1), p4, dil, y, cfg)))
        except Exception as exc:  # noqa: BLE001 - a config that does not compile is reported, not fatal
            print(f"{name} {dt} {cfg}: {type(exc).__name__}: {exc}", flush=True)
            continue
        row = dict(shape=name, dtype=dt, direction="fwd", config=_label(cfg), ms=t, tflops=flops(s) / t / 1e9, direct_ms=t_direct, err=err)
        extra = ""
        if baseline is not None:
            row.update(baseline_ms=t_b, baseline_err=err_b)
            extra = f"  baseline {t_b:7.3f} ms {flops(s) / t_b / 1e9:6.1f} TF/s err {err_b:.1e}"
        rows.append(row)
        print(f"{name:<18} {dt} {_label(cfg)}  {t:7.3f} ms "
              f"{row['tflops']:6.1f} TF/s  (direct {t_direct:.3f} ms)  err {err:.1e}{extra}", flush=True)
        if best is None or t < best[1]:
            best = (cfg, t)
    if best is None:
        return
    cfg = best[0]
    # the set-up copy in the orientation the kernels use (tall kernels: a transposing copy)
    kw, ow, left, view = s["kw"], wo, pad[1], (lambda t: t)
    if implicit_gemm.transposes(s["kh"], s["kw"], dil, ho, wo, x.element_size()):
        kw, ow, left, view = s["kh"], ho, pad[0], (lambda t: t.transpose(2, 3))
    bn, bk = implicit_gemm.column_tile(cfg, kw, s["d"], ow)
    width = implicit_gemm._band_width(ow, kw, s["d"], bn, bk)
    xl = x.contiguous(memory_format=torch.channels_last)
    setup = {
        "input copy": _ms(lambda: implicit_gemm._source_rows(view(x), "band", width, left)),
        "input copy from channels_last": _ms(
            lambda: implicit_gemm._source_rows(view(xl), "band", width, left)),
    }
    form, _, rbk = implicit_gemm.column_plan(cfg, kw, s["d"], ow, view(x).shape[3])
    if form != "band":  # whole-row tiles: their aligned-row copy (none where x's rows already are BK wide)
        setup["row copy"] = _ms(lambda: implicit_gemm._row_source(view(x), rbk, "rows"))
    if not gradients:
        rows.append(dict(shape=name, dtype=dt, direction="setup", **setup))
        return
    dx_ref = direct.conv_dgrad(dy, x.shape, w, (1, 1), p4, dil, torch.empty_like(x))
    dx = torch.full_like(x, float("nan"))
    implicit_gemm.conv_dgrad(dy, x.shape, w, (1, 1), p4, dil, dx, cfg)
    dw_ref = direct.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil)
    dw = implicit_gemm.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil, cfg)
    for direction, ours, theirs, err in (
        ("dgrad", lambda: implicit_gemm.conv_dgrad(dy, x.shape, w, (1, 1), p4, dil, dx, cfg),
         lambda: direct.conv_dgrad(dy, x.shape, w, (1, 1), p4, dil, dx_ref), rel_error(dx, dx_ref)),
        ("wgrad", lambda: implicit_gemm.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil, cfg),
         lambda: direct.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil), rel_error(dw, dw_ref.to(dw.dtype))),
    ):
        t, td = _ms(ours), _ms(theirs)
        row = dict(shape=name, dtype=dt, direction=direction, config=_label(cfg), ms=t, tflops=flops(s) / t / 1e9,
                   direct_ms=td, err=err)
        if baseline is not None:
            if direction == "dgrad":
                dxb = torch.full_like(x, float("nan"))
                theirs_b = lambda: baseline.conv_dgrad(dy, x.shape, w, (1, 1), p4, dil, dxb, cfg)  # noqa: E731
                theirs_b()
                err_b = rel_error(dxb, dx_ref)
            else:
                theirs_b = lambda: baseline.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil)  # noqa: E731
                err_b = rel_error(theirs_b(), dw_ref.to(dw.dtype))
            row.update(baseline_ms=_ms(theirs_b), baseline_err=err_b)
            row["ms"] = min(t, _ms(ours))  # alternated: this version, the baseline, this version again
        rows.append(row)
    for kr in wgrad_kernel_rows:  # the weight gradient with kr kernel rows per program (one dY tile for all)
        cfg_k = dataclasses.replace(cfg, kernel_rows=kr)
        err = rel_error(implicit_gemm.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil, cfg_k), dw_ref.to(dw.dtype))
        t = _ms(lambda: implicit_gemm.conv_wgrad(dy, x, w.shape, (1, 1), p4, dil, cfg_k))
        rows.append(dict(shape=name, dtype=dt, direction="wgrad", config=_label(cfg_k), ms=t,
                         tflops=flops(s) / t / 1e9, err=err))
        print(f"{name:<18} {dt} wgrad kr{kr}  {t:7.3f} ms {flops(s) / t / 1e9:6.1f} TF/s  err {err:.1e}", flush=True)
    rows.append(dict(shape=name, dtype=dt, direction="setup", **setup))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="replknet_31b.s1,unireplknet_t.s1,slak_t.s1.long,replknet_31b.s3")
    ap.add_argument("--dtypes", default="bf16")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="default tile only, forward and set-up only")
    ap.add_argument("--configs", default=None, help="tiles to sweep, e.g. bm256:w8:st3,bm128:w4:st3:table")
    ap.add_argument("--no-gradients", action="store_true", help="forward tiles and set-up only")
    ap.add_argument("--baseline", default=None, help="another implicit_gemm.py, timed beside this one")
    ap.add_argument("--jobs", type=int, default=1, help="compile in this many processes first")
    ap.add_argument("--graph", action="store_true", help="time CUDA-graph replays (no host time in the numbers)")
    ap.add_argument("--wgrad-kernel-rows", default="", help="also time the weight gradient at the best forward tile "
                    "with these kernel rows per program, e.g. 1,2,4")
    args = ap.parse_args()
    global GRAPH
    GRAPH = args.graph
    shapes = {s["name"]: s for s in load_shapes()}
    configs = [parse_config(c) for c in args.configs.split(",")] if args.configs else CONFIGS
    if args.quick:
        configs = [implicit_gemm.IgemmConfig()]
    baseline = load_baseline(args.baseline) if args.baseline else None
    if args.jobs > 1:
        versions = [None, args.baseline] if args.baseline else [None]
        tasks = list(itertools.product(args.shapes.split(","), args.dtypes.split(","), map(_spec, configs), versions))
        warm_in_processes(_warm, tasks, args.jobs)
    rows = []
    for name, dt in itertools.product(args.shapes.split(","), args.dtypes.split(",")):
        _tile_sweep(name, dt, shapes[name], rows, configs, not (args.quick or args.no_gradients), baseline,
                    [int(k) for k in args.wgrad_kernel_rows.split(",") if k])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("\nbest forward tile per shape; the gradients at that tile; the forward's set-up alone:")
    for name, dt in itertools.product(args.shapes.split(","), args.dtypes.split(",")):
        sel = [r for r in rows if r["shape"] == name and r["dtype"] == dt]
        fwd = [r for r in sel if r["direction"] == "fwd"]
        if not fwd:
            continue
        b = min(fwd, key=lambda r: r["ms"])
        print(f"  {name:<18} {dt} fwd   {b['config']}: {b['ms']:.3f} ms, "
              f"{b['tflops']:.1f} TF/s (direct {b['direct_ms']:.3f} ms)")
        for r in sel:
            if r["direction"] in ("dgrad", "wgrad"):
                base = (f"; baseline {r['baseline_ms']:.3f} ms err {r['baseline_err']:.1e}" if "baseline_ms" in r
                        else "")
                direct_ms = f"(direct {r['direct_ms']:.3f} ms) " if "direct_ms" in r else ""
                print(f"  {name:<18} {dt} {r['direction']} {r['config']}: {r['ms']:.3f} ms, {r['tflops']:.1f} TF/s "
                      f"{direct_ms}err {r['err']:.1e}{base}")
            elif r["direction"] == "setup":
                row_copy = f"; whole-row copy {r['row copy']:.3f} ms" if "row copy" in r else ""
                print(f"  {name:<18} {dt} set-up: zero-bordered input copy {r['input copy']:.3f} ms "
                      f"(from channels_last {r['input copy from channels_last']:.3f} ms){row_copy}")


if __name__ == "__main__":
    main()
