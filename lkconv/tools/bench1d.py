"""``lkconv bench --op long_conv1d|short_conv1d``: the 1D convolutions against their plain-PyTorch baselines.

long_conv1d vs a plain ``torch.fft.rfft/irfft`` convolution at n = 2L (the usual way to apply a global filter);
short_conv1d vs ``F.conv1d`` + slicing + SiLU. Both directions (fwd, fwd+bwd) and dtypes; short convolutions
also report bandwidth (bytes of x read + y written, per direction) as a fraction of a measured device copy.
"""
from __future__ import annotations

import json
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..ops.autotune_cache import lookup
from ..ops.conv1d import long_conv1d, short_conv1d
from ..ops.conv1d.long import choice_key, choose
from .bench import DTYPES, SHAPES_FILE, _time_ms, graph_time_ms

SHORT_SHAPES = [
    {"name": "mamba_130m.conv1d", "b": 8, "c": 1536, "l": 2048, "w": 4},
    {"name": "mamba_1.4b.conv1d", "b": 4, "c": 4096, "l": 2048, "w": 4},
    {"name": "hyena.short_filter", "b": 16, "c": 2304, "l": 1024, "w": 3},
    {"name": "width8", "b": 8, "c": 1024, "l": 4096, "w": 8},
]


LONG_EXTRA_SHAPES = [  # lengths that are not powers of two, inside the fused kernels' range (8192, 16384 points)
    {"name": "hyena_3000", "b": 16, "c": 768, "l": 3000},
    {"name": "hyena_6000", "b": 16, "c": 768, "l": 6000},
]


def plain_fft_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The baseline: causal FFT convolution at n = 2L, in float32."""
    length = x.shape[-1]
    n = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(x.float(), n=n) * torch.fft.rfft(k.float(), n=n), n=n)[..., :length]
    return y.to(x.dtype)


def copy_gbps(device) -> Optional[float]:
    if device.type != "cuda":
        return None
    a = torch.empty(256 * 2**20, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    ms = _time_ms(lambda: b.copy_(a), device)
    return 2 * a.numel() / (ms * 1e-3) / 1e9


def _step(fn, x, k, dy, grad: bool):
    """One timed call: fn(x, k), then backward of dy when timing forward+backward."""
    def run():
        y = fn(x, k)
        if grad:
            y.backward(dy)
    return run


def silu_conv1d_baseline(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """short_conv1d's baseline: causal depthwise ``F.conv1d`` (padded, then sliced) and SiLU, as Mamba's
    reference path."""
    return F.silu(F.conv1d(x, w.unsqueeze(1), None, padding=w.shape[1] - 1, groups=x.shape[1])[..., : x.shape[-1]])


def _timed(fn, x, k, dy, grad: bool, device, leaves, graph: bool) -> float:
    if graph:
        return graph_time_ms(_step(fn, x, k, dy, grad), device, 1, leaves)
    return _time_ms(_step(fn, x, k, dy, grad), device, leaves)


def bench_long(shapes: List[dict], dtypes, directions, device, graph: bool = False) -> List[dict]:
    rows = []
    for s in shapes:
        for dt in dtypes:
            for direction in directions:
                grad = direction == "fwd+bwd"
                x = torch.randn(s["b"], s["c"], s["l"], device=device, dtype=DTYPES[dt], requires_grad=grad)
                k = (torch.randn(s["c"], s["l"], device=device) / s["l"] ** 0.5).to(DTYPES[dt]).requires_grad_(grad)
                dy = torch.randn_like(x)

                leaves = [x, k] if grad else None
                lk = _timed(lambda a, b: long_conv1d(a, b), x, k, dy, grad, device, leaves, graph)
                pt = _timed(plain_fft_conv, x, k, dy, grad, device, leaves, graph)
                row = dict(op="long_conv1d", shape=s["name"], b=s["b"], c=s["c"], l=s["l"], dtype=dt,
                           direction=direction, lkconv_ms=lk, baseline_ms=pt, speedup=pt / lk)
                with torch.set_grad_enabled(grad):
                    row["algorithm"] = choose(x, k, None, True, "auto")
                    hit = lookup(choice_key(x, k, None, True, grad))
                if hit is not None:
                    row["auto_times_ms"] = hit.get("times_ms")
                rows.append(row)
    return rows


def bench_short(shapes: List[dict], dtypes, directions, device, graph: bool = False) -> List[dict]:
    rows = []
    peak = copy_gbps(device)
    for s in shapes:
        for dt in dtypes:
            for direction in directions:
                grad = direction == "fwd+bwd"
                x = torch.randn(s["b"], s["c"], s["l"], device=device, dtype=DTYPES[dt], requires_grad=grad)
                w = torch.randn(s["c"], s["w"], device=device, dtype=DTYPES[dt], requires_grad=grad)
                dy = torch.randn_like(x)

                leaves = [x, w] if grad else None
                lk = _timed(lambda a, ww: short_conv1d(a, ww, activation="silu"), x, w, dy, grad, device, leaves,
                            graph)
                pt = _timed(silu_conv1d_baseline, x, w, dy, grad, device, leaves, graph)
                nbytes = 2 * x.numel() * x.element_size() * (2.5 if grad else 1)  # fwd: x + y; bwd adds dy, dx, x
                row = dict(op="short_conv1d", shape=s["name"], b=s["b"], c=s["c"], l=s["l"], w=s["w"], dtype=dt,
                           direction=direction, lkconv_ms=lk, baseline_ms=pt, speedup=pt / lk,
                           gbps=nbytes / (lk * 1e-3) / 1e9)
                if peak:
                    row["pct_copy_bw"] = 100 * row["gbps"] / peak
                rows.append(row)
    return rows


def format_rows(rows: List[dict]) -> str:
    head = (f"{'op':<13} {'shape':<20} {'dtype':<5} {'dir':<8} {'lkconv ms':>10} {'baseline ms':>12} "
            f"{'speedup':>8} {'GB/s':>8} {'%copy':>6}  algorithm")
    lines = [head, "-" * len(head)]
    for r in rows:
        gb = f"{r['gbps']:8.0f}" if "gbps" in r else f"{'-':>8}"
        pc = f"{r['pct_copy_bw']:6.1f}" if "pct_copy_bw" in r else f"{'-':>6}"
        algo = r.get("algorithm", "")
        times = r.get("auto_times_ms") or {}
        if times:
            algo += " (" + ", ".join(f"{k} {v:.3f}" for k, v in sorted(times.items())) + ")"
        lines.append(f"{r['op']:<13} {r['shape']:<20} {r['dtype']:<5} {r['direction']:<8} {r['lkconv_ms']:10.3f} "
                     f"{r['baseline_ms']:12.3f} {r['speedup']:7.2f}x {gb} {pc}  {algo}")
    return "\n".join(lines)


def long_shapes(quick: bool, cpu: bool) -> List[dict]:
    shapes = json.loads(SHAPES_FILE.read_text())["long_conv1d"]
    shapes = shapes[:2] if quick else shapes + LONG_EXTRA_SHAPES
    if cpu:
        shapes = [dict(s, b=1, c=min(s["c"], 8), l=min(s["l"], 4096)) for s in shapes]
    return shapes


def short_shapes(quick: bool, cpu: bool) -> List[dict]:
    shapes = SHORT_SHAPES[:2] if quick else SHORT_SHAPES
    if cpu:
        shapes = [dict(s, b=1, c=min(s["c"], 16), l=min(s["l"], 1024)) for s in shapes]
    return shapes
