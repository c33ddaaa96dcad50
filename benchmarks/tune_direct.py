r"""Tile-shape sweep for the direct kernels: per direction, per config, on real layer shapes (GPU).

Each variant is checked against a float64 reference on the first images of the batch and timed with
``triton.testing.do_bench`` (median); PyTorch's time for the same direction is printed beside it. Kernels
are compiled first by a pool of worker processes (filling Triton's on-disk cache), so the timed process
only loads them.

    python benchmarks/tune_direct.py [--shapes a,b] [--jobs 8] [--out results/tune_direct.json] [--wide]

--wide: every direction also tries half and double strip lengths; for channels_last, more (positions x
channels) tiles and warp counts, and (weight gradient) column passes with and without the zero-bordered copy.
--only REGEX keeps the variants whose label matches (e.g. "default|r\d+").
--border: the default tile against the same tile without skipping the zero border's products (the kernels
skip them where one strip spans the plane).
--planes: the weight gradient also runs both kernels ("strips": direct.py's, "planes": direct_wgrad.py's, each
with its default tile) and planes variants (weight lines r, output-gradient lines ta, tiles, warps).
--chunks: only the weight gradient of direct.py's strip kernel, at its default tile with 4 to 64 strips per
program ("perN") against the default chunking (enough programs for four per SM).
--split: only the weight gradient of direct.py's strip kernel: its default (one program per pass of kernel
columns over a chunk of strips) against one program for all passes ("split1"), with --wide also other columns
per pass ("jbN"), each also at 8, 16, 32 and 64 strips per program.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.depthwise2d import direct, direct_wgrad, reference  # noqa: E402
from lkconv.testing import rel_error  # noqa: E402

SHAPES = {
    "replknet_31b.s1": (64, 128, 56, 56, 31, 31, 1, 1),
    "replknet_31b.s2": (64, 256, 28, 28, 29, 29, 1, 1),
    "replknet_31b.s3": (64, 512, 14, 14, 27, 27, 1, 1),
    "unireplknet_t.s1": (64, 80, 56, 56, 13, 13, 1, 1),
    "unireplknet_t.s3": (64, 320, 14, 14, 13, 13, 1, 1),
    "convnext_t.s1": (64, 96, 56, 56, 7, 7, 1, 1),
    "slak_t.s1.long": (64, 124, 56, 56, 51, 5, 1, 1),
    "slak_t.s1.wide": (64, 124, 56, 56, 5, 51, 1, 1),
    "downsample.s2": (64, 96, 112, 112, 7, 7, 1, 2),
    "van_b0.lka_dil": (64, 64, 56, 56, 7, 7, 3, 1),
    "unireplknet_t.dil": (64, 320, 14, 14, 3, 3, 5, 1),
    "inceptionnext_t.band": (64, 12, 56, 56, 1, 11, 1, 1),
    "cfsr.convmod": (16, 48, 128, 128, 9, 9, 1, 1),
    "yolov13_n.dsconv": (16, 64, 80, 80, 7, 7, 1, 1),
    "puyun.lka_latlon": (4, 128, 180, 360, 7, 7, 3, 1),
}


def problem(name, dtype, layout):
    n, c, h, w, kh, kw, d, s = SHAPES[name]
    pad = (d * (kh - 1) // 2, d * (kh - 1) // 2, d * (kw - 1) // 2, d * (kw - 1) // 2)
    x = torch.randn(n, c, h, w, device="cuda", dtype=dtype)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    wt = torch.randn(c, 1, kh, kw, device="cuda", dtype=dtype) / (kh * kw) ** 0.5
    ho = (h + pad[0] + pad[1] - d * (kh - 1) - 1) // s + 1
    wo = (w + pad[2] + pad[3] - d * (kw - 1) - 1) // s + 1
    dy = torch.randn(n, c, ho, wo, device="cuda", dtype=dtype)
    if layout == "nhwc":
        dy = dy.contiguous(memory_format=torch.channels_last)
    return x, wt, dy, (s, s), pad, (d, d)


def run_direct(direction, x, wt, dy, stride, pad, dil, cfg):
    if direction == "fwd":
        out = torch.empty_like(dy)
        return direct.conv_fwd(x, wt, None, stride, pad, dil, out, cfg)
    if direction == "dgrad":
        out = torch.empty_like(x)
        return direct.conv_dgrad(dy, x.shape, wt, stride, pad, dil, out, cfg)
    return direct.conv_wgrad(dy, x, wt.shape, stride, pad, dil, cfg)


def run_torch(direction, x, wt, dy, stride, pad, dil):
    if direction == "fwd":
        return reference.depthwise_conv2d_fwd_torch(x, wt, None, stride, pad, dil)
    if direction == "dgrad":
        return reference.depthwise_conv2d_dgrad_torch(dy, x, wt, stride, pad, dil)
    return reference.depthwise_conv2d_wgrad_torch(dy, x, wt, stride, pad, dil)


def planes_variants(ax, c_out):
    """direct_wgrad's default tile and the alternatives worth comparing."""
    base = direct_wgrad.choose_config(ax, c_out)
    out = [("planes", base)]
    half = direct_wgrad._even_split(ax.ka, -(-base.r // 2))
    if half != base.r:
        out.append((f"planes_r{half}", replace(base, r=half)))
    if ax.ka > base.r:
        out.append((f"planes_r{ax.ka}", replace(base, r=ax.ka)))
    for ta in sorted({16, min(ax.a_out, 56)} - {base.ta}):
        if ta <= ax.a_out:
            out.append((f"planes_ta{ta}", replace(base, ta=ta)))
    if ax.ch_axis == 1:
        tiles = [(8, 32, 4), (4, 32, 4), (2, 64, 4), (8, 64, 8), (4, 64, 8), (8, 16, 4), (16, 16, 4)]
    else:
        tiles = [(base.block_0 * 2, base.block_1, base.num_warps)]
    for b0, b1, nw in tiles:
        if (b0, b1, nw) != (base.block_0, base.block_1, base.num_warps):
            out.append((f"planes_t{b0}x{b1}w{nw}", replace(base, block_0=b0, block_1=b1, num_warps=nw)))
    return out


def variants(name, direction, dtype, layout, wide=False, planes=False, border=False, chunks=False, split=False):
    """Default config plus the alternatives worth comparing."""
    x, wt, dy, stride, pad, dil = problem(name, dtype, layout)
    src = dy if direction == "dgrad" else x
    ax = direct._axes(src, wt.shape[2], wt.shape[3], (1, 1) if direction == "dgrad" else stride, dil, pad[0], pad[2],
                      x.shape[-2:] if direction == "dgrad" else dy.shape[-2:])
    base = direct.choose_config(ax, wt.shape[0], "wgrad" if direction == "wgrad" else "fwd", x.element_size())
    out = [("default", None)]
    if chunks:  # strips per program of the strip weight-gradient kernel (the planes kernel has its own chunks)
        if direction != "wgrad" or direct_wgrad.preferred(ax):
            return []
        return out + [(f"per{p}", replace(base, strips_per_prog=p)) for p in (4, 8, 16, 32, 64)]
    if split:  # passes of kernel columns: one program each (default) or one for all; columns per pass
        if direction != "wgrad" or direct_wgrad.preferred(ax):
            return []
        cfgs = [("", base), ("split1", replace(base, split=1))]
        if wide:
            jbs = {1, 2} | ({ax.kb} if ax.ka * ax.kb <= 100 else set())  # all columns: ka*kb sums per thread
            cfgs += [(f"jb{jb}", replace(base, jb=jb)) for jb in sorted(jbs - {base.jb}) if jb <= ax.kb]
        for label, cfg in cfgs:
            if label:
                out.append((label, cfg))
            out += [(f"{label}per{p}", replace(cfg, strips_per_prog=p)) for p in (8, 16, 32, 64)]
        return out
    if border:  # the default tile with the border's products computed (masked loads) rather than skipped
        if direction == "wgrad" and direct_wgrad.preferred(ax):
            base = direct_wgrad.choose_config(ax, wt.shape[0])
        return out + [("border", replace(base, skip_border=False))]
    if direction == "wgrad" and planes:
        return out + [("strips", base)] + planes_variants(ax, wt.shape[0])
    if direction in ("fwd", "dgrad"):
        out.append(("prepad=" + str(not base.prepad), replace(base, prepad=not base.prepad)))
    if direction == "wgrad":
        if base.jb != 2 and ax.kb >= 2:
            out.append(("jb=2", replace(base, jb=2)))
        if base.jb != 1:
            out.append(("jb=1", replace(base, jb=1)))
        out.append(("prepad=" + str(not base.prepad), replace(base, prepad=not base.prepad)))
    if wide:
        for r in sorted({max(1, base.r // 2), base.r * 2} - {base.r}):
            out.append((f"r{r}", replace(base, r=r)))
    if layout == "nhwc" and wide:
        for b0, b1, nw in ((2, 64, 4), (4, 32, 4), (4, 64, 8), (8, 32, 8), (8, 16, 4), (16, 16, 8), (16, 32, 8),
                           (8, 32, 4), (4, 32, 2)):
            if (b0, b1, nw) != (base.block_0, base.block_1, base.num_warps):
                out.append((f"t{b0}x{b1}w{nw}", replace(base, block_0=b0, block_1=b1, num_warps=nw)))
        if direction == "wgrad":
            for jb in sorted({1, 2, 4} - {base.jb}):
                for prepad in (False, True):
                    out.append((f"jb{jb}pp{int(prepad)}", replace(base, jb=jb, prepad=prepad)))
    elif layout == "nhwc" and direction != "dgrad":
        for b0, b1, nw in ((2, 64, 4), (8, 32, 8), (8, 16, 4)):
            if (b0, b1) != (base.block_0, base.block_1):
                out.append((f"tile{b0}x{b1}", replace(base, block_0=b0, block_1=b1, num_warps=nw)))
    if layout == "nchw" and direction != "wgrad" and wide:  # two and four outputs per thread
        for f in (2, 4):
            out.append((f"out{f}", replace(base, block_0=base.block_0 * f)))
    return out


def _warm(task):
    """Compile and run one variant once; (task label, seconds, error or None)."""
    name, direction, dtype_name, layout, label, cfg = task
    t0 = time.perf_counter()
    torch.cuda.init()
    dtype = getattr(torch, dtype_name)
    x, wt, dy, stride, pad, dil = problem(name, dtype, layout)
    err = None
    try:
        run_direct(direction, x, wt, dy, stride, pad, dil, cfg)
        torch.cuda.synchronize()
    except Exception as exc:
        err = f"{type(exc).__name__}: {exc}"[:300]
    return f"{name} {direction} {dtype_name} {layout} {label}", time.perf_counter() - t0, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--configs", default="fp32:nchw,fp32:nhwc,bfloat16:nchw")
    ap.add_argument("--nhwc-shapes", default="replknet_31b.s1,unireplknet_t.s1,convnext_t.s1,slak_t.s1.wide")
    ap.add_argument("--directions", default="fwd,dgrad,wgrad")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--out", default=None)
    ap.add_argument("--wide", action="store_true", help="many more channels_last variants (see above)")
    ap.add_argument("--only", default=None, help="regular expression: keep the variants whose label matches")
    ap.add_argument("--planes", action="store_true", help="weight gradient: both kernels and planes variants")
    ap.add_argument("--border", action="store_true",
                    help="only the default tile and the same tile computing the zero border's products")
    ap.add_argument("--chunks", action="store_true",
                    help="strip weight gradient only: strips per program against the default chunking")
    ap.add_argument("--split", action="store_true",
                    help="strip weight gradient only: passes of kernel columns in one program or one each")
    args = ap.parse_args()
    import triton.testing

    torch.backends.cudnn.benchmark = True
    tasks = []
    for cfgspec in args.configs.split(","):
        dtype_name, layout = cfgspec.split(":")
        dtype_name = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype_name, dtype_name)
        for name in args.shapes.split(","):
            if (layout == "nhwc" or dtype_name != "float32") and name not in args.nhwc_shapes.split(","):
                continue
            for direction in args.directions.split(","):
                dtype = getattr(torch, dtype_name)
                for label, cfg in variants(name, direction, dtype, layout, args.wide or args.only is not None,
                                             args.planes, args.border, args.chunks, args.split):
                    if args.only is not None and not re.fullmatch(args.only, label):
                        continue
                    tasks.append((name, direction, dtype_name, layout, label, cfg))
    if args.jobs > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            warm = {}  # one compile per kernel: strips per program is a run-time argument
            for t in tasks:
                cfg = t[5]
                kernel_cfg = replace(cfg, strips_per_prog=0) if isinstance(cfg, direct.DirectConfig) else cfg
                warm.setdefault((t[0], t[1], t[2], t[3], kernel_cfg), t)
            t0 = time.perf_counter()
            futures = [pool.submit(_warm, t) for t in warm.values()]
            for fut in as_completed(futures):  # progress: a run cut short still shows which compiles finished
                label, secs, err = fut.result()
                print(f"warm-up {time.perf_counter() - t0:6.1f}s  {secs:5.1f}s  {label}" + (f"  ERROR {err}" if err
                                                                                          else ""), flush=True)
    rows = []
    torch_ms = {}
    for name, direction, dtype_name, layout, label, cfg in tasks:
        dtype = getattr(torch, dtype_name)
        x, wt, dy, stride, pad, dil = problem(name, dtype, layout)
        row = dict(shape=name, direction=direction, dtype=dtype_name, layout=layout, variant=label,
                   config=asdict(cfg) if cfg else None)
        try:
            out = run_direct(direction, x, wt, dy, stride, pad, dil, cfg)
            k = 2  # float64 reference on the first images (wgrad: whole batch in fp64 would be slow; use 2 images)
            xs, dys = x[:k].double(), dy[:k].double()
            if direction == "wgrad":
                out = run_direct(direction, x[:k], wt, dy[:k], stride, pad, dil, cfg)
                ref = run_torch(direction, xs, wt.double(), dys, stride, pad, dil)
            else:
                ref = run_torch(direction, xs, wt.double(), dys, stride, pad, dil)
                out = out[:k]
            row["rel_err"] = rel_error(out, ref)
            fn = lambda: run_direct(direction, x, wt, dy, stride, pad, dil, cfg)  # noqa: E731
            row["ms"] = triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median")
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
        key = (name, direction, dtype_name, layout)
        if key not in torch_ms:
            fn = lambda: run_torch(direction, x, wt, dy, stride, pad, dil)  # noqa: E731
            torch_ms[key] = triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median")
        row["torch_ms"] = torch_ms[key]
        n, c, h, w, kh, kw, d, s = SHAPES[name]
        ho, wo = dy.shape[-2:]
        row["tflops"] = 2 * n * c * ho * wo * kh * kw / (row.get("ms", float("nan")) * 1e-3) / 1e12
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                                              "triton": triton.__version__, "rows": rows}, indent=1))
    import triton as _t

    print(f"\n{torch.cuda.get_device_name()} torch {torch.__version__} triton {_t.__version__}")
    print(f"{'shape':<18} {'dir':<6} {'dtype':<9} {'lay':<5} {'variant':<12} {'ms':>8} {'TF/s':>6} {'torch ms':>9} {'x':>6} {'err':>8}")
    for r in rows:
        print(f"{r['shape']:<18} {r['direction']:<6} {r['dtype']:<9} {r['layout']:<5} {r['variant']:<12} "
              f"{r.get('ms', float('nan')):8.3f} {r['tflops']:6.1f} {r['torch_ms']:9.3f} "
              f"{r['torch_ms'] / r.get('ms', float('nan')):6.2f} {r.get('rel_err', float('nan')):8.1e} {r.get('error', '')}")


if __name__ == "__main__":
    main()
