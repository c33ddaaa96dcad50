"""``lkconv bench``: lkconv's depthwise conv against PyTorch, side by side in one process.

For each shape of the public benchmark set (layers of the papers' models), dtype and memory layout it times
the forward pass and forward+backward of ``lkconv.depthwise_conv2d`` and of ``F.conv2d`` (cuDNN, benchmark
mode on) on the same tensors with CUDA events (``triton.testing.do_bench``, median), inputs rotated when
they would sit in L2; the two are timed in turns, three times each, and each keeps its median. Reports ms, effective TF/s = 2*N*C*Ho*Wo*kh*kw / t (x3 for fwd+bwd), speedup and % of
the device's FP32 FMA peak; writes JSON and a PNG plot of the speedups. ``--graph`` times GPU work only
(each step captured in a CUDA graph and replayed), which separates the kernels from the host's per-call cost.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ..ops.depthwise2d import depthwise_conv2d

SHAPES_FILE = Path(__file__).with_name("bench_shapes.json")
QUICK_SHAPES = ("convnext_t.s1", "unireplknet_t.s1", "unireplknet_t.s3", "replknet_31b.s1", "slak_t.s1.long",
                "downsample.s2")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# FP32 FMA peak (TFLOP/s, 2 FLOPs per FMA) by device name; other GPUs: SMs x 128 lanes x 2 x clock.
FP32_PEAK_TFLOPS = {"H100 80GB HBM3": 66.9, "H100 SXM": 66.9, "H200": 66.9, "H100 PCIe": 51.2, "A100": 19.5}


def load_shapes(path: Path = SHAPES_FILE) -> List[dict]:
    return json.loads(path.read_text())["depthwise2d"]


def fp32_peak_tflops(device: torch.device) -> Optional[float]:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, val in FP32_PEAK_TFLOPS.items():
        if key in name:
            return val
    props = torch.cuda.get_device_properties(device)
    clock_khz = getattr(props, "clock_rate", 0)
    return props.multi_processor_count * 128 * 2 * clock_khz * 1e3 / 1e12 if clock_khz else None


def _geometry(s: dict):
    d, st = s["d"], s["s"]
    pad = (d * (s["kh"] - 1) // 2, d * (s["kw"] - 1) // 2)
    ho = (s["h"] + 2 * pad[0] - d * (s["kh"] - 1) - 1) // st + 1
    wo = (s["w"] + 2 * pad[1] - d * (s["kw"] - 1) - 1) // st + 1
    return pad, ho, wo


def flops(s: dict) -> float:
    """2 * N * C * Ho * Wo * kh * kw: multiply-adds of one direction."""
    _, ho, wo = _geometry(s)
    return 2.0 * s["n"] * s["c"] * ho * wo * s["kh"] * s["kw"]


ROUNDS = 3  # eager timings of lkconv and PyTorch alternate this many times per configuration; medians are kept


def _time_ms(fn: Callable[[], object], device: torch.device, grad_to_none=None) -> float:
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=10, rep=50, grad_to_none=grad_to_none, return_mode="median"))
    fn()
    times = []
    for _ in range(3):
        if grad_to_none:
            for t in grad_to_none:
                t.grad = None
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def graph_time_ms(step: Callable[[], object], device: torch.device, steps: int, grad_to_none=None) -> float:
    """GPU time of one call of ``step`` without host cost: ``steps`` calls captured in one CUDA graph, the
    replay timed with events (median), divided by ``steps``. step runs three times first on a side stream, so
    lazily chosen algorithms and compiled kernels exist before the capture; the tensors of ``grad_to_none``
    have their .grad reset first, as the eager timing does, so the graph writes fresh gradients."""
    import triton.testing

    if device.type != "cuda":
        raise ValueError("graph timing needs a CUDA device")

    def reset_grads():
        for t in grad_to_none or ():
            t.grad = None

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            reset_grads()
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    reset_grads()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(steps):
            step()
    return float(triton.testing.do_bench(graph.replay, warmup=5, rep=50, return_mode="median")) / steps


def _inputs(s: dict, dtype, layout: str, device, copies: int, grad: bool):
    sets = []
    for _ in range(copies):
        x = torch.randn(s["n"], s["c"], s["h"], s["w"], device=device, dtype=dtype)
        if layout == "nhwc":
            x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(s["c"], 1, s["kh"], s["kw"], device=device, dtype=dtype) * (1.0 / (s["kh"] * s["kw"]))
        sets.append((x.requires_grad_(grad), w.requires_grad_(grad)))
    return sets


def _output_grad(s: dict, dtype, layout: str, device, ho: int, wo: int) -> torch.Tensor:
    """A random output gradient (N, C, Ho, Wo) of shape ``s`` in ``layout``."""
    dy = torch.randn(s["n"], s["c"], ho, wo, device=device, dtype=dtype)
    return dy.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else dy


def bench_one(s: dict, dtype_name: str, layout: str, direction: str, device, algorithm: str,
              graph: bool = False) -> dict:
    """Time lkconv and PyTorch on one configuration; returns a result row. graph: time GPU work only
    (:func:`graph_time_ms`; one graph holds one step per rotated input set)."""
    dtype = DTYPES[dtype_name]
    pad, ho, wo = _geometry(s)
    elem = torch.tensor([], dtype=dtype).element_size()
    nbytes = (s["n"] * s["c"] * (s["h"] * s["w"] + ho * wo)) * elem
    l2 = torch.cuda.get_device_properties(device).L2_cache_size if device.type == "cuda" else 0
    copies = max(1, min(8, math.ceil(3 * l2 / max(nbytes, 1)))) if l2 else 1
    grad = direction == "fwd+bwd"
    sets = _inputs(s, dtype, layout, device, copies, grad)
    dy = _output_grad(s, dtype, layout, device, ho, wo)
    stride, dil, groups = s["s"], s["d"], s["c"]
    state = {"i": 0}

    def step(conv):
        def fn():
            x, w = sets[state["i"] % copies]
            state["i"] += 1
            y = conv(x, w)
            if grad:
                y.backward(dy)
            return y
        return fn

    def lk(x, w):
        return depthwise_conv2d(x, w, None, stride, pad, dil, algorithm=algorithm)

    def pt(x, w):
        return F.conv2d(x, w, None, stride, pad, dil, groups)

    leaves = [t for pair in sets for t in pair] if grad else None
    row = dict(shape=s["name"], n=s["n"], c=s["c"], h=s["h"], w=s["w"], kh=s["kh"], kw=s["kw"], d=dil, s=stride,
               dtype=dtype_name, layout=layout, direction=direction, algorithm=algorithm)
    if graph:
        row["timing"] = "cuda-graph"
        row["lkconv_ms"] = graph_time_ms(step(lk), device, copies, leaves)
        row["torch_ms"] = graph_time_ms(step(pt), device, copies, leaves)
    else:  # in turns, so that a slow spell of the host (eager steps of small layers are host-bound) hits both
        lk_ms, pt_ms = [], []
        for _ in range(ROUNDS if device.type == "cuda" else 1):
            lk_ms.append(_time_ms(step(lk), device, leaves))
            pt_ms.append(_time_ms(step(pt), device, leaves))
        row["lkconv_ms"], row["torch_ms"] = statistics.median(lk_ms), statistics.median(pt_ms)
    mult = 3.0 if grad else 1.0
    row["lkconv_tflops"] = mult * flops(s) / (row["lkconv_ms"] * 1e-3) / 1e12
    row["torch_tflops"] = mult * flops(s) / (row["torch_ms"] * 1e-3) / 1e12
    row["speedup"] = row["torch_ms"] / row["lkconv_ms"]
    if algorithm == "auto":
        row["auto"] = auto_choices(sets[0][0], sets[0][1], stride, pad, dil, grad)
    return row


def _chunks_name(key: str) -> str:
    """A weight-gradient launch choice of "auto" ("per" or "per/split") as the bench prints it."""
    per, _, split = key.partition("/")
    name = f"{per}/prog" if int(per) else "heuristic"
    return f"{name}, passes in {split} prog" if split else name


def auto_choices(x, w, stride, pad, dil, grad: bool) -> dict:
    """What "auto" chose for each direction of this problem and the times it measured (ms), from the cache."""
    from ..ops.autotune_cache import lookup
    from ..ops.depthwise2d import dispatch
    from ..ops.depthwise2d.problem import Problem

    out = {}
    p4 = (pad[0], pad[0], pad[1], pad[1])
    for direction in ("fwd", "dgrad", "wgrad", "step") if grad else ("fwd",):
        prob = Problem.make(direction, x, w, (stride, stride), p4, (dil, dil))
        entry = lookup(dispatch._cache_key(prob)) if prob.device.type == "cuda" else None
        out[direction] = entry or {"algorithm": dispatch.choose(prob, "auto", None) if prob.device.type != "cuda" else "?"}
    if grad and x.device.type == "cuda" and out["wgrad"].get("algorithm") == "direct":  # its strips per program
        entry = lookup(dispatch._cache_key(Problem.make("wgrad:launch", x, w, (stride, stride), p4, (dil, dil))))
        if entry is not None:
            out["chunks"] = {"algorithm": _chunks_name(entry["algorithm"]),
                             "times_ms": {_chunks_name(k): t for k, t in entry.get("times_ms", {}).items()}}
    if grad and x.device.type == "cuda":  # the backward pair, where "auto" timed the FFT's joint backward
        names = (out["dgrad"].get("algorithm"), out["wgrad"].get("algorithm"))
        entry = lookup(dispatch._cache_key(Problem.make(f"bwd:{names[0]}+{names[1]}", x, w, (stride, stride), p4,
                                                        (dil, dil))))
        if entry is not None:
            out["bwd"] = entry
    return out


def format_choices(rows: List[dict]) -> str:
    """One line per configuration: the algorithm "auto" picked per direction, with the measured times."""
    lines = [f"{'shape':<22} {'dtype':<5} {'layout':<6} {'direction':<6} {'chosen':<14} measured (ms)"]
    seen = set()
    for r in rows:
        for direction, entry in r.get("auto", {}).items():
            key = (r["shape"], r["dtype"], r["layout"], direction)
            if key in seen:
                continue
            seen.add(key)
            times = ", ".join(f"{a} {t:.3f}" for a, t in sorted(entry.get("times_ms", {}).items(), key=lambda kv: kv[1]))
            graph = entry.get("graph_algorithm")
            if graph is not None and graph != entry["algorithm"]:  # the choice under CUDA-graph capture differs
                gpu = ", ".join(f"{a} {t:.3f}" for a, t in sorted(entry["gpu_times_ms"].items(), key=lambda kv: kv[1]))
                times += f"; in CUDA graphs {graph} (GPU only: {gpu})"
            lines.append(f"{r['shape']:<22} {r['dtype']:<5} {r['layout']:<6} {direction:<6} {entry['algorithm']:<14} {times}")
    return "\n".join(lines)


def cpu_scaled(s: dict) -> dict:
    """A CPU-sized version of a shape: batch 1, at most 8 channels, same kernel and spatial size."""
    return dict(s, n=1, c=min(s["c"], 8))


def format_table(rows: List[dict], peak: Optional[float]) -> str:
    head = (f"{'shape':<22} {'kernel':<10} {'dtype':<5} {'layout':<6} {'dir':<8} {'lkconv ms':>10} {'torch ms':>10} "
            f"{'lk TF/s':>8} {'pt TF/s':>8} {'speedup':>8} {'%peak':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ker = f"{r['kh']}x{r['kw']}" + (f"d{r['d']}" if r["d"] > 1 else "") + (f"s{r['s']}" if r["s"] > 1 else "")
        pk = f"{100 * r['lkconv_tflops'] / peak:6.1f}" if peak else f"{'-':>6}"
        lines.append(f"{r['shape']:<22} {ker:<10} {r['dtype']:<5} {r['layout']:<6} {r['direction']:<8} "
                     f"{r['lkconv_ms']:10.3f} {r['torch_ms']:10.3f} {r['lkconv_tflops']:8.2f} {r['torch_tflops']:8.2f} "
                     f"{r['speedup']:7.2f}x {pk}")
    return "\n".join(lines)


def plot(rows: List[dict], path: Path, title: str) -> Optional[Path]:
    """Bar chart of speedup over PyTorch per shape, one bar per (dtype, layout, direction)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    series = list(dict.fromkeys((r["dtype"], r["layout"], r["direction"]) for r in rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(shapes) * max(1, len(series)) / 2), 5))
    width = 0.8 / max(1, len(series))
    for k, key in enumerate(series):
        vals = [next((r["speedup"] for r in rows if r["shape"] == sh and (r["dtype"], r["layout"], r["direction"]) == key), 0)
                for sh in shapes]
        ax.bar([i + k * width for i in range(len(shapes))], vals, width, label=" ".join(key))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(shapes))])
    ax.set_xticklabels(shapes, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("speedup over PyTorch (x)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def environment(device: torch.device) -> dict:
    env = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "torch": torch.__version__,
           "python": platform.python_version(), "device": str(device)}
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def select_shapes(all_shapes: List[dict], patterns: Optional[str], quick: bool) -> List[dict]:
    if patterns:
        pats = patterns.split(",")
        return [s for s in all_shapes if any(fnmatch.fnmatch(s["name"], p) for p in pats)]
    if quick:
        return [s for s in all_shapes if s["name"] in QUICK_SHAPES]
    return all_shapes


# what "auto" may run on a configuration, per direction; the direct weight gradient is also timed with all passes
# of kernel columns in one program ("wgrad:split1"), and the FFT computes both gradients together ("bwd")
_PRECOMPILE_ALGORITHMS = ("direct", "implicit_gemm", "fft")


def precompile_tasks(shapes: List[dict], dtypes: Sequence[str], layouts: Sequence[str], algorithm: str,
                     backward: bool) -> List[tuple]:
    """(shape, dtype, layout, algorithm, direction) of every kernel compile a run may need, one task each, so that
    the compiles of one configuration spread over the workers too."""
    algorithms = _PRECOMPILE_ALGORITHMS if algorithm == "auto" else (algorithm,)
    directions = ("fwd", "dgrad", "wgrad") if backward else ("fwd",)
    tasks = []
    for s in shapes:
        for dt in dtypes:
            for lay in layouts:
                for alg in algorithms:
                    tasks += [(s, dt, lay, alg, d) for d in directions]
                    if backward and alg == "direct":
                        tasks.append((s, dt, lay, alg, "wgrad:split1"))
                    if backward and alg == "fft":
                        tasks.append((s, dt, lay, alg, "bwd"))
    return tasks


def compile_task(task, device: str = "cuda") -> Optional[str]:
    """Worker: run one direction of one algorithm once on one configuration, so Triton compiles (and caches on
    disk) its kernels. Nothing is timed here: "auto" measures later, alone on the GPU. Returns an error or None."""
    from ..ops.depthwise2d import direct, direct_wgrad, dispatch

    s, dtype_name, layout, algorithm, direction = task
    try:
        dtype = DTYPES[dtype_name]
        (ph, pw), ho, wo = _geometry(s)
        stride, pad, dil = (s["s"], s["s"]), (ph, ph, pw, pw), (s["d"], s["d"])
        (x, w), = _inputs(s, dtype, layout, torch.device(device), 1, False)
        dy = _output_grad(s, dtype, layout, device, ho, wo)
        if direction == "fwd":
            dispatch.run("fwd", algorithm, x, w, None, stride, pad, dil)
        elif direction == "bwd":
            dispatch.backward_both(algorithm, dy, x, w, stride, pad, dil)
        elif direction == "wgrad:split1":
            ax = direct._axes(x, s["kh"], s["kw"], stride, dil, ph, pw, (ho, wo))
            if not direct_wgrad.preferred(ax):  # the batch-summed kernel has no passes to split
                dispatch.DirectAlgorithm._bind_wgrad(w, stride, pad, dil, 0, 1)(dy, x, w)
        else:
            dispatch.run(direction, algorithm, dy, x, w, stride, pad, dil)
        if device == "cuda":
            torch.cuda.synchronize()
    except ValueError:  # the algorithm cannot serve this configuration
        pass
    except Exception as exc:  # reported, then the timed pass decides what runs
        return f"{s['name']} {dtype_name} {layout} {algorithm} {direction}: {type(exc).__name__}: {exc}"
    return None


def precompile(shapes: List[dict], dtypes: Sequence[str], layouts: Sequence[str], jobs: int, algorithm: str = "auto",
               backward: bool = True) -> None:
    """Compile every kernel the run will need in ``jobs`` worker processes (Triton's cache is on disk)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    tasks = precompile_tasks(shapes, dtypes, layouts, algorithm, backward)
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        for err in pool.map(compile_task, tasks):
            if err:
                print(f"  precompile: {err}", file=sys.stderr)


def run(shapes: List[dict], dtypes: Sequence[str], layouts: Sequence[str], directions: Sequence[str], device,
        algorithm: str, progress: bool = True, graph: bool = False) -> List[dict]:
    rows = []
    for s in shapes:
        for dt in dtypes:
            for lay in layouts:
                for direction in directions:
                    try:
                        row = bench_one(s, dt, lay, direction, device, algorithm, graph)
                    except ValueError as exc:  # an explicit algorithm that cannot serve this configuration
                        if progress:
                            print(f"  {s['name']:<22} {dt} {lay} {direction:<8} skipped: {exc}", file=sys.stderr)
                        continue
                    rows.append(row)
                    if progress:
                        print(f"  {s['name']:<22} {dt} {lay} {direction:<8} lkconv {row['lkconv_ms']:.3f} ms, "
                              f"torch {row['torch_ms']:.3f} ms ({row['speedup']:.2f}x)", file=sys.stderr, flush=True)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="lkconv bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--shapes", default=None, help="comma list of shape names or globs (default: all public shapes)")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--layouts", default="nchw,nhwc")
    p.add_argument("--directions", default="fwd,fwd+bwd")
    p.add_argument("--algorithm", default="auto")
    p.add_argument("--quick", action="store_true", help="a few representative shapes")
    p.add_argument("--out", default="lkconv-bench", help="folder for bench.json and bench.png")
    p.add_argument("--jobs", type=int, default=None,
                   help="processes that compile kernels before timing (default: up to 8 on CUDA)")
    p.add_argument("--op", default="depthwise2d", choices=("depthwise2d", "long_conv1d", "short_conv1d"))
    p.add_argument("--graph", action="store_true",
                   help="time GPU work only: each step captured in a CUDA graph and replayed (no host cost)")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.graph and device.type != "cuda":
        p.error("--graph needs a CUDA device")
    torch.backends.cudnn.benchmark = True
    if args.op != "depthwise2d":
        return _main_1d(args, device)
    shapes = select_shapes(load_shapes(), args.shapes, args.quick)
    if not shapes:
        p.error(f"no shape matches {args.shapes!r}")
    env = environment(device)
    if device.type == "cpu":
        print("No CUDA device: running CPU-sized shapes (batch 1, <= 8 channels) against PyTorch's CPU conv; "
              "these numbers say nothing about GPU speed.")
        shapes = [cpu_scaled(s) for s in shapes]
    jobs = args.jobs if args.jobs is not None else min(8, os.cpu_count() or 1)
    if device.type == "cuda" and jobs > 1 and args.algorithm in ("auto", "direct"):
        print(f"compiling kernels in {jobs} processes ...", file=sys.stderr, flush=True)
        precompile(shapes, args.dtypes.split(","), args.layouts.split(","), jobs, args.algorithm,
                   "fwd+bwd" in args.directions.split(","))
    rows = run(shapes, args.dtypes.split(","), args.layouts.split(","), args.directions.split(","), device,
               args.algorithm, graph=args.graph)
    peak = fp32_peak_tflops(device)
    header = (f"lkconv bench | {env.get('gpu', env.get('cpu'))} | torch {env['torch']} | triton {env['triton']} | "
              f"{env['date']} | FP32 peak {peak:.1f} TF/s" if peak else
              f"lkconv bench | {env.get('gpu', env.get('cpu'))} | torch {env['torch']} | {env['date']}")
    if args.graph:
        header += " | GPU time (CUDA-graph replay)"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"environment": env, "fp32_peak_tflops": peak, "rows": rows}, indent=1))
    png = plot(rows, out / "bench.png", header)
    print(header)
    print(format_table(rows, peak))
    if args.algorithm == "auto":
        print("\nWhat algorithm=\"auto\" chose, and why (its measurements):")
        print(format_choices(rows))
    print(f"wrote {out / 'bench.json'}" + (f" and {png}" if png else " (install matplotlib for the plot)"))
    return 0


def _main_1d(args, device) -> int:
    from . import bench1d

    cpu = device.type == "cpu"
    if cpu:
        print("No CUDA device: CPU-sized shapes; these numbers say nothing about GPU speed.")
    dtypes = [d for d in args.dtypes.split(",") if not (cpu and d != "fp32")] or ["fp32"]
    if args.op == "long_conv1d":
        rows = bench1d.bench_long(bench1d.long_shapes(args.quick, cpu), dtypes, args.directions.split(","), device,
                                  args.graph)
    else:
        rows = bench1d.bench_short(bench1d.short_shapes(args.quick, cpu), dtypes, args.directions.split(","), device,
                                   args.graph)
    env = environment(device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_{args.op}.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    print(f"lkconv bench --op {args.op} | {env.get('gpu', env.get('cpu'))} | torch {env['torch']} | {env['date']}"
          + (" | GPU time (CUDA-graph replay)" if args.graph else ""))
    print(bench1d.format_rows(rows))
    print(f"wrote {out / f'bench_{args.op}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
