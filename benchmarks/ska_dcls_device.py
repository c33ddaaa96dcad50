"""Verify and time lkconv's fused SKA (LSNet) and DCLS kernel-construction Triton kernels on one device.

1. Verification: every direction of each Triton kernel (SKA forward / input grad / weight grad; DCLS
   construction forward / grads to weight, P, SIG) on fresh random inputs with NaN-poisoned outputs,
   against float64 references (``||out - ref|| / ||ref||``). The DCLS reference is also checked against
   the official full-grid formulation in float64.
2. Timing: ``triton.testing.do_bench(..., return_mode="median")`` of lkconv against the plain-PyTorch
   versions on the papers' shapes (LSNet-T/B stages for SKA; 64-256 channels, kernel_count 26-34,
   dilated sizes 17-23 for DCLS), forward and forward+backward, plus a whole depthwise ``Dcls2d`` layer.

    python benchmarks/ska_dcls_device.py                 # CUDA: full sizes, prints both tables
    python benchmarks/ska_dcls_device.py --quick         # tiny sizes (CPU: Triton interpreter)
    python benchmarks/ska_dcls_device.py --json out.json --sweep

SKA: "LSNet: See Large, Focus Small" (https://github.com/THU-MIG/lsnet).
DCLS: "Dilated Convolution with Learnable Spacings"
(https://github.com/K-H-Ismail/Dilated-Convolution-with-Learnable-Spacings-PyTorch).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the first import of triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402

from lkconv.nn.dcls import Dcls2d  # noqa: E402
from lkconv.ops.dcls import dcls_construct_kernel2d, triton_construct  # noqa: E402
from lkconv.ops.dcls.reference import dcls_construct_kernel2d_reference  # noqa: E402
from lkconv.ops.ska import ska, ska_reference, triton_ska  # noqa: E402
from lkconv.testing import poison_outputs, rel_error  # noqa: E402

# name: (N, C, WC, k, H, W). LSConv layers: WC = C / 8 weight groups, 3x3 kernels, stride-8/16/32 maps.
SKA_SHAPES = {
    "lsnet_t.s2": (128, 128, 16, 3, 14, 14),
    "lsnet_t.s3": (128, 256, 32, 3, 7, 7),
    "lsnet_b.s1": (128, 128, 16, 3, 28, 28),
    "lsnet_b.s2": (128, 256, 32, 3, 14, 14),
    "lsnet_b.s3": (128, 384, 48, 3, 7, 7),
    "lsnet_t.det.s2": (8, 128, 16, 3, 100, 152),
}
SKA_QUICK = {"tiny.a": (2, 16, 2, 3, 6, 7), "tiny.b": (1, 6, 3, 5, 5, 4)}

# name: (C, kernel_count, dilated_kernel_size, version); depthwise (O = C, I = 1).
DCLS_SHAPES = {
    "c64.k26.d23.gauss": (64, 26, 23, "gauss"),
    "c96.k34.d17.gauss": (96, 34, 17, "gauss"),
    "c128.k34.d17.gauss": (128, 34, 17, "gauss"),
    "c256.k34.d17.gauss": (256, 34, 17, "gauss"),
    "c256.k26.d23.gauss": (256, 26, 23, "gauss"),
    "c128.k34.d17.v1": (128, 34, 17, "v1"),
    "c256.k26.d23.max": (256, 26, 23, "max"),
}
DCLS_QUICK = {"tiny.gauss": (4, 3, 5, "gauss"), "tiny.v1": (3, 2, (4, 6), "v1")}

# name: (N, C, H, W, kernel_count, dilated_kernel_size): ConvNeXt-dcls stages (depthwise Dcls2d, "gauss").
LAYER_SHAPES = {"convnext_t_dcls.s1": (64, 96, 56, 56, 34, 17), "convnext_t_dcls.s3": (64, 384, 14, 14, 34, 17)}
LAYER_QUICK = {"tiny.layer": (1, 4, 6, 6, 3, 5)}

TOL = {"float32": 1e-5, "bfloat16": 1.2e-2}
TOL_DCLS = {"kernel": 1e-5, "dweight": 1e-5, "dP": 3e-5, "dSIG": 3e-5}


def timer(device):
    """Median milliseconds of fn: do_bench on CUDA, a perf_counter median elsewhere (interpreter)."""
    if device.type == "cuda":
        from triton.testing import do_bench

        return lambda fn, grads=None: do_bench(fn, warmup=25, rep=100, grad_to_none=grads, return_mode="median")

    def cpu_bench(fn, grads=None):
        fn()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    return cpu_bench


# ---- plain-PyTorch baselines ----------------------------------------------------------------------------------
def dcls_full_grid(W, P, SIG, dks, version):
    """The official DCLS formulation: profiles on a (D0, D1, 2, O, I, K) index grid, normalized, summed."""
    o, i, k = W.shape
    rows = torch.arange(dks[0], device=W.device).expand(dks[1], -1).t()
    cols = torch.arange(dks[1], device=W.device).expand(dks[0], -1)
    idx = torch.stack((cols, rows)).expand(o, i, k, -1, -1, -1).permute(4, 5, 3, 0, 1, 2)
    lim = torch.tensor(dks, device=W.device).expand(o, i, k, -1).permute(3, 0, 1, 2)
    diff = idx - (P + lim // 2)
    if version == "gauss":
        X = (-0.5 * (diff / (SIG.abs() + 0.27)).norm(2, dim=2) ** 2).exp()
    elif version == "max":
        X = (SIG.abs() + 1.0 - diff.abs()).relu().prod(2)
    elif version == "v1":
        X = (1 - diff.abs()).relu().prod(2)
    else:
        raise ValueError(f"no full-grid baseline for version {version!r}")
    X = X / (X.sum((0, 1)) + 1e-7)
    return (X * W).sum(-1).permute(2, 3, 0, 1)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- verification ---------------------------------------------------------------------------------------------
def verify_ska(name, shape, dtype, device):
    n, c, wc, k, h, w = shape
    x = torch.randn(n, c, h, w, device=device, dtype=dtype)
    wt = torch.randn(n, wc, k * k, h, w, device=device, dtype=dtype)
    dy = torch.randn(n, c, h, w, device=device, dtype=dtype)
    x64 = x.double().requires_grad_()
    w64 = wt.double().requires_grad_()
    y64 = ska_reference(x64, w64)
    dx64, dw64 = torch.autograd.grad(y64, (x64, w64), dy.double())
    with poison_outputs():
        y = triton_ska.ska_fwd(x, wt, k)
        dx = triton_ska.ska_bwd_x(dy, wt, k, dtype)
        dw = triton_ska.ska_bwd_w(dy, x, wc, k, dtype)
    tol = TOL[str(dtype).replace("torch.", "")]
    errs = {"fwd": rel_error(y, y64), "dx": rel_error(dx, dx64), "dw": rel_error(dw, dw64)}
    return [dict(op="ska", shape=name, dtype=str(dtype).replace("torch.", ""), direction=d, rel_error=e,
                 tol=tol, ok=e < tol) for d, e in errs.items()]


def verify_dcls(name, shape, device):
    c, kc, dks, version = shape
    dks = _pair(dks)
    W = torch.randn(c, 1, kc, device=device)
    P = torch.randn(2, c, 1, kc, device=device) * (max(dks) / 4)
    SIG = torch.randn(2, c, 1, kc, device=device) * 0.5 if version in ("gauss", "max") else None
    G = torch.randn(c, 1, *dks, device=device)
    leaves = [t.double().requires_grad_() for t in (W, P) + ((SIG,) if SIG is not None else ())]
    sig64 = leaves[2] if SIG is not None else None
    k64 = dcls_construct_kernel2d_reference(leaves[0], leaves[1], sig64, dks, version)
    g64 = torch.autograd.grad(k64, leaves, G.double())
    rows = []
    if version != "v0":
        with torch.no_grad():
            full = dcls_full_grid(leaves[0], leaves[1], sig64, dks, version)
        e = rel_error(k64, full)
        rows.append(dict(op="dcls", shape=name, dtype="float64", direction="reference~official", rel_error=e,
                         tol=1e-12, ok=e < 1e-12))
    with poison_outputs():
        kern = triton_construct.construct2d_fwd(W, P, SIG, dks, version)
        dW, dP, dSIG = triton_construct.construct2d_bwd(G, W, P, SIG, dks, version)
    outs = {"kernel": (kern, k64.detach()), "dweight": (dW, g64[0]), "dP": (dP, g64[1])}
    if SIG is not None:
        outs["dSIG"] = (dSIG, g64[2])
    for d, (a, b) in outs.items():
        e = rel_error(a, b)
        rows.append(dict(op="dcls", shape=name, dtype="float32", direction=d, rel_error=e, tol=TOL_DCLS[d],
                         ok=e < TOL_DCLS[d]))
    return rows


# ---- timing ---------------------------------------------------------------------------------------------------
def time_ska(name, shape, dtype, device, bench):
    n, c, wc, k, h, w = shape
    x = torch.randn(n, c, h, w, device=device, dtype=dtype, requires_grad=True)
    wt = torch.randn(n, wc, k * k, h, w, device=device, dtype=dtype, requires_grad=True)
    dy = torch.randn(n, c, h, w, device=device, dtype=dtype)
    rows = []
    for label, fn in (("lkconv", ska), ("torch", ska_reference)):
        with torch.no_grad():
            t_f = bench(lambda: fn(x, wt))
        t_fb = bench(lambda: fn(x, wt).backward(dy), grads=[x, wt])
        rows.append((label, t_f, t_fb))
    return _rows("ska", name, str(dtype).replace("torch.", ""), rows)


def time_dcls(name, shape, device, bench):
    c, kc, dks, version = shape
    dks = _pair(dks)
    W = torch.randn(c, 1, kc, device=device, requires_grad=True)
    P = (torch.randn(2, c, 1, kc, device=device) * (max(dks) / 4)).requires_grad_()
    SIG = (torch.randn(2, c, 1, kc, device=device) * 0.5).requires_grad_() if version in ("gauss", "max") else None
    G = torch.randn(c, 1, *dks, device=device)
    leaves = [t for t in (W, P, SIG) if t is not None]
    rows = []
    impls = (("lkconv", dcls_construct_kernel2d), ("torch", dcls_full_grid),
             ("torch.separable", dcls_construct_kernel2d_reference))
    for label, fn in impls:
        with torch.no_grad():
            t_f = bench(lambda: fn(W, P, SIG, dks, version))
        t_fb = bench(lambda: fn(W, P, SIG, dks, version).backward(G), grads=leaves)
        rows.append((label, t_f, t_fb))
    return _rows("dcls_construct", name, "float32", rows)


def time_layer(name, shape, device, bench):
    n, c, h, w, kc, dks = shape
    ours = Dcls2d(c, c, kc, padding=dks // 2, dilated_kernel_size=dks, groups=c, version="gauss").to(device)
    x = torch.randn(n, c, h, w, device=device, requires_grad=True)
    dy = torch.randn(n, c, h, w, device=device)
    params = [ours.weight, ours.P, ours.SIG, ours.bias]

    def official(inp):
        kern = dcls_full_grid(ours.weight, ours.P, ours.SIG, (dks, dks), "gauss")
        return F.conv2d(inp, kern, ours.bias, 1, dks // 2, 1, c)

    rows = []
    for label, fn in (("lkconv", ours), ("torch", official)):
        with torch.no_grad():
            t_f = bench(lambda: fn(x))
        t_fb = bench(lambda: fn(x).backward(dy), grads=[x] + params)
        rows.append((label, t_f, t_fb))
    return _rows("dcls2d_layer", name, "float32", rows)


def _rows(op, name, dtype, timings):
    base = {label: (f, fb) for label, f, fb in timings}
    ours = base["lkconv"]
    out = []
    for label, (f, fb) in base.items():
        out.append(dict(op=op, shape=name, dtype=dtype, impl=label, fwd_ms=f, fwd_bwd_ms=fb,
                        speedup_fwd=f / ours[0], speedup_fwd_bwd=fb / ours[1]))
    return out


def sweep_ska(name, shape, device, bench):
    """Time SKA tile configs per direction (fp32) and report the fastest beside the default."""
    n, c, wc, k, h, w = shape
    x = torch.randn(n, c, h, w, device=device)
    wt = torch.randn(n, wc, k * k, h, w, device=device)
    dy = torch.randn(n, c, h, w, device=device)
    dirs = {
        "fwd": lambda cfg: triton_ska.ska_fwd(x, wt, k, cfg),
        "dx": lambda cfg: triton_ska.ska_bwd_x(dy, wt, k, torch.float32, cfg),
        "dw": lambda cfg: triton_ska.ska_bwd_w(dy, x, wc, k, torch.float32, cfg),
    }
    default = triton_ska.choose_config(h * w, triton.cdiv(c, wc))
    out = []
    for d, fn in dirs.items():
        times = {}
        for bp in (64, 128, 256):
            for bg in (1, 4, 8, 16):
                for nw in (2, 4, 8):
                    cfg = triton_ska.SkaConfig(bg, bp, nw)
                    times[cfg] = bench(lambda: fn(cfg))
        best = min(times, key=times.get)
        out.append(dict(shape=name, direction=d, default=str(default), default_ms=times.get(default, bench(
            lambda: fn(default))), best=str(best), best_ms=times[best]))
    return out


# ---- main -----------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (what runs on CPU under the interpreter)")
    ap.add_argument("--no-timing", action="store_true", help="verification only")
    ap.add_argument("--sweep", action="store_true", help="also sweep SKA tile configs (CUDA)")
    ap.add_argument("--json", type=Path, help="write all rows as JSON here")
    args = ap.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    quick = args.quick or device.type != "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    ska_shapes = SKA_QUICK if quick else SKA_SHAPES
    dcls_shapes = DCLS_QUICK if quick else DCLS_SHAPES
    layer_shapes = LAYER_QUICK if quick else LAYER_SHAPES
    dtypes = [torch.float32] if quick else [torch.float32, torch.bfloat16]
    bench = timer(device)

    checks = []
    for name, shape in ska_shapes.items():
        for dt in dtypes:
            checks += verify_ska(name, shape, dt, device)
    for name, shape in dcls_shapes.items():
        checks += verify_dcls(name, shape, device)

    timings, sweeps = [], []
    if not args.no_timing:
        for name, shape in ska_shapes.items():
            for dt in dtypes:
                timings += time_ska(name, shape, dt, device, bench)
        for name, shape in dcls_shapes.items():
            timings += time_dcls(name, shape, device, bench)
        for name, shape in layer_shapes.items():
            timings += time_layer(name, shape, device, bench)
        if args.sweep and device.type == "cuda":
            for name, shape in ska_shapes.items():
                sweeps += sweep_ska(name, shape, device, bench)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor()})"
    meta = dict(device=dev_name, date=datetime.datetime.now().isoformat(timespec="seconds"),
                torch=torch.__version__, triton=triton.__version__, quick=quick,
                interpreter=os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"))
    print(f"# {meta['device']} | torch {meta['torch']} | triton {meta['triton']} | {meta['date']}"
          + (" | Triton interpreter" if meta["interpreter"] else ""))
    print("\n## verification (||out - ref|| / ||ref|| vs float64, outputs NaN-poisoned)")
    print(f"{'op':<6} {'shape':<20} {'dtype':<9} {'direction':<18} {'rel_error':>10} {'tol':>8}  result")
    for r in checks:
        print(f"{r['op']:<6} {r['shape']:<20} {r['dtype']:<9} {r['direction']:<18} {r['rel_error']:>10.2e} "
              f"{r['tol']:>8.0e}  {'PASS' if r['ok'] else 'FAIL'}")
    if timings:
        print("\n## timing (median ms; speedup = impl time / lkconv time)")
        print(f"{'op':<15} {'shape':<20} {'dtype':<9} {'impl':<16} {'fwd ms':>9} {'fwd+bwd ms':>11} "
              f"{'x fwd':>7} {'x fwd+bwd':>10}")
        for r in timings:
            print(f"{r['op']:<15} {r['shape']:<20} {r['dtype']:<9} {r['impl']:<16} {r['fwd_ms']:>9.4f} "
                  f"{r['fwd_bwd_ms']:>11.4f} {r['speedup_fwd']:>7.2f} {r['speedup_fwd_bwd']:>10.2f}")
    if sweeps:
        print("\n## SKA tile sweep (fp32)")
        for r in sweeps:
            print(f"{r['shape']:<20} {r['direction']:<4} default {r['default']} {r['default_ms']:.4f} ms | "
                  f"best {r['best']} {r['best_ms']:.4f} ms")
    failed = [r for r in checks if not r["ok"]]
    print(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(meta=meta, checks=checks, timings=timings, sweeps=sweeps), indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
