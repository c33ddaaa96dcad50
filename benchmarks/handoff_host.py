"""What a step costs when "auto" hands it to PyTorch: lkconv's hand-off against F.conv2d itself (GPU).

For each shape/dtype/layout, with the call's whole-step choice set to PyTorch, microseconds per step in
alternating rounds (medians over the rounds):
- host: launch rate of forward+backward steps back to back (no synchronization inside the timed loop);
- bench: `triton.testing.do_bench` of the same step, as `lkconv bench` times it;
- fwd host: the forward alone under autograd (graph recorded, no backward);
then the host microseconds of the wrapper's pieces (signature, autocast check, capture check, hand-off).

    python benchmarks/handoff_host.py [--cases inceptionnext_t.band:fp32:nchw,unireplknet_t.dil:bf16:nchw]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

os.environ.setdefault("LKCONV_AUTOTUNE", "0")  # the step is handed to PyTorch below; no choice is timed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lkconv  # noqa: E402
from lkconv.ops.depthwise2d import op  # noqa: E402
from lkconv.tools.bench import DTYPES, _geometry, load_shapes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import host_us  # noqa: E402


def main() -> None:
    import triton.testing

    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="inceptionnext_t.band:fp32:nchw,unireplknet_t.dil:bf16:nchw,"
                                       "convnext_t.s1:bf16:nhwc")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    shapes = {s["name"]: s for s in load_shapes()}
    dev = torch.device("cuda")
    print(f"{'case':<34} {'what':<10} {'torch us':>9} {'handoff us':>11} {'diff':>7}")
    for case in args.cases.split(","):
        name, dt, layout = case.split(":")
        s = shapes[name]
        pad, ho, wo = _geometry(s)
        mf = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        x = torch.randn(s["n"], s["c"], s["h"], s["w"], device=dev, dtype=DTYPES[dt]).contiguous(memory_format=mf)
        w = torch.randn(s["c"], 1, s["kh"], s["kw"], device=dev, dtype=DTYPES[dt])
        x.requires_grad_()
        w.requires_grad_()
        dy = torch.randn(s["n"], s["c"], ho, wo, device=dev, dtype=DTYPES[dt]).contiguous(memory_format=mf)
        lk = lambda: lkconv.depthwise_conv2d(x, w, None, s["s"], pad, s["d"])  # noqa: E731
        pt = lambda: F.conv2d(x, w, None, s["s"], pad, s["d"], s["c"])  # noqa: E731
        lk()
        call = op._calls[op._signature(x, w, None, s["s"], pad, s["d"], "zeros", "auto")]
        call.step_torch = True

        def step(f):
            def run():
                f().backward(dy)
                x.grad = w.grad = None
            return run

        rows = {"host": ([], []), "bench": ([], []), "fwd host": ([], [])}
        for _ in range(args.rounds):
            for i, f in enumerate((pt, lk)):
                rows["host"][i].append(host_us(step(f), n=100, warmup=3))
                rows["bench"][i].append(1e3 * triton.testing.do_bench(step(f), warmup=10, rep=50,
                                                                      return_mode="median"))
                rows["fwd host"][i].append(host_us(f, n=100, warmup=3))
        for what, (a, b) in rows.items():
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{case:<34} {what:<10} {ma:>9.1f} {mb:>11.1f} {mb - ma:>7.1f}")
        sig = op._signature(x, w, None, s["s"], pad, s["d"], "zeros", "auto")
        pieces = {
            "signature": lambda: op._signature(x, w, None, s["s"], pad, s["d"], "zeros", "auto"),
            "autocast": lambda: op._autocast(x, w, None),
            "capturing": torch.cuda.is_current_stream_capturing,
            "use_torch": lambda: call.use_torch(x, w, None),
            "calls.get": lambda: op._calls.get(sig),
        }
        print("  wrapper pieces (host us): " + ", ".join(
            f"{k} {statistics.median(host_us(f, n=2000) for _ in range(3)):.2f}" for k, f in pieces.items()))


if __name__ == "__main__":
    main()
