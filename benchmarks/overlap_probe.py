"""GPU time of the direct algorithm's launches run one after another against the same launches on two streams.

Cases per shape (fp32, NCHW by default):
- fwd: a forward planned as several launches (one per strip position compiled with its place) — serial against
  each launch on its own stream;
- bwd: the input gradient and the weight gradient (strips per program as "auto" measures them) — serial against
  the weight gradient on a side stream beside the input gradient;
- step: forward and both gradients through ``lkconv.depthwise_conv2d(..., algorithm="direct")`` and autograd, with
  the library's side streams off (``LKCONV_STREAMS=0``) and on, and PyTorch's step (cuDNN) beside them.
Each variant is checked against the serial result. Times: median of ``triton.testing.do_bench``.

    python benchmarks/overlap_probe.py [--shapes slak_t.s1.long,slak_t.s1.wide] [--layouts nchw,nhwc] [--warm]
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tune_direct import problem  # noqa: E402

import lkconv  # noqa: E402
from lkconv.ops import _streams  # noqa: E402
from lkconv.ops._launch import strided_copy  # noqa: E402
from lkconv.ops.depthwise2d import direct, dispatch  # noqa: E402
from lkconv.ops.depthwise2d.problem import Problem  # noqa: E402


def _forward_cases(x, wt, stride, pad, dil, y):
    plan = direct.plan_conv_fwd(x, wt, None, y.shape, y.stride(), stride, pad, dil)
    weight = direct._kernel_weight(plan, wt)
    args = (x, weight, weight, y, *plan.ints)
    launches = [functools.partial(direct._launch_fwd, key, plan.grid, args, kwargs, 3,
                                  lambda: strided_copy(y)) for key, kwargs in plan.launches]

    def serial():
        for launch in launches:
            launch()

    def overlapped():  # as direct.run_planned_fwd forks them
        _streams.run_forked(y.device, launches, _streams.LAUNCH_SIDE)

    return len(launches), serial, overlapped


def _backward_cases(x, wt, dy, stride, pad, dil):
    prob = Problem.make("wgrad", x, wt, stride, pad, dil)
    per, split = dispatch.choose_wgrad_chunks(prob, dy, x, wt, stride, pad, dil)
    wfn = dispatch.DirectAlgorithm._bind_wgrad(wt, tuple(stride), tuple(pad), tuple(dil), per, split)
    dfn = dispatch.DirectAlgorithm().bind("dgrad", x, wt, None, tuple(stride), tuple(pad), tuple(dil))

    def serial():
        return dfn(dy, x, wt), wfn(dy, x, wt)

    def overlapped():  # as dispatch.separate_pair forks them
        return tuple(_streams.run_forked(dy.device, (lambda: dfn(dy, x, wt), lambda: wfn(dy, x, wt)),
                                         _streams.WGRAD_SIDE))

    return serial, overlapped


def _step_cases(x, wt, dy, stride, pad, dil):
    xs, ws = x.detach().requires_grad_(), wt.detach().requires_grad_()
    p = (pad[0], pad[2])

    def ours():
        y = lkconv.depthwise_conv2d(xs, ws, None, stride, p, dil, algorithm="direct")
        return (y,) + torch.autograd.grad(y, (xs, ws), dy)

    def theirs():
        y = torch.nn.functional.conv2d(xs, ws, None, stride, p, dil, x.shape[1])
        return (y,) + torch.autograd.grad(y, (xs, ws), dy)

    return ours, theirs


def _with_streams(on: bool, fn):
    def run():
        _streams._ENABLED = on
        return fn()
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="slak_t.s1.long,slak_t.s1.wide,replknet_31b.s1,unireplknet_t.s1,convnext_t.s1")
    ap.add_argument("--layouts", default="nchw")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--warm", action="store_true", help="compile only: run each case once, time nothing")
    ap.add_argument("--cases", default="fwd,bwd,step")
    args = ap.parse_args()
    import triton.testing

    bench = lambda fn: triton.testing.do_bench(fn, warmup=10, rep=80, return_mode="median")  # noqa: E731
    rows = []
    for name in args.shapes.split(","):
        for layout in args.layouts.split(","):
            x, wt, dy, stride, pad, dil = problem(name, getattr(torch, args.dtype), layout)
            if "step" in args.cases:
                ours, theirs = _step_cases(x, wt, dy, stride, pad, dil)
                serial, forked = _with_streams(False, ours), _with_streams(True, ours)
                a, b = serial(), forked()
                torch.cuda.synchronize()
                ok = all(torch.equal(u, v) for u, v in zip(a, b))
                if not args.warm:
                    t_serial, t_forked, t_torch = bench(serial), bench(forked), bench(theirs)
                    rows.append((name, layout, "step", t_serial, t_forked, ok))
                    print(f"{name} {layout} step: serial {t_serial:.4f} ms ({t_torch / t_serial:.2f}x torch), "
                          f"2 streams {t_forked:.4f} ms ({t_torch / t_forked:.2f}x torch), torch {t_torch:.4f} ms",
                          flush=True)
                _streams._ENABLED = _streams._enabled()
            if "fwd" not in args.cases:
                continue
            y = torch.empty_like(dy)
            n, serial, overlapped = _forward_cases(x, wt, stride, pad, dil, y)
            serial()
            ref = y.clone()
            y.fill_(float("nan"))
            overlapped()
            torch.cuda.synchronize()
            ok = torch.equal(y, ref)
            if args.warm:
                _backward_cases(x, wt, dy, stride, pad, dil)[1]()
                continue
            rows.append((name, layout, f"fwd ({n} launches)", bench(serial), bench(overlapped), ok))
            # the input gradient's own strip launches stay serial in both: only the pair's overlap is compared
            serial, overlapped = (_with_streams(False, f) for f in _backward_cases(x, wt, dy, stride, pad, dil))
            dx0, dw0 = serial()
            dx1, dw1 = overlapped()
            torch.cuda.synchronize()
            ok = torch.equal(dx0, dx1) and torch.equal(dw0, dw1)
            rows.append((name, layout, "dgrad+wgrad", bench(serial), bench(overlapped), ok))
            print(rows[-2], rows[-1], flush=True)
    print(f"\n{torch.cuda.get_device_name()} torch {torch.__version__} triton {triton.__version__} {args.dtype}")
    print(f"{'shape':<20} {'layout':<6} {'case':<20} {'serial ms':>10} {'2 streams ms':>13} {'gain':>7} {'same':>5}")
    for name, layout, case, a, b, ok in rows:
        print(f"{name:<20} {layout:<6} {case:<20} {a:10.4f} {b:13.4f} {a / b:6.3f}x {str(ok):>5}")


if __name__ == "__main__":
    main()
