"""Where the FFT algorithm's time goes, next to the direct kernels (GPU).

Per shape and layout: each direction of "fft" and "direct", the FFT's joint backward (dy's spectrum once), and
the pieces of the FFT forward (frame copy, rfft2, spectral product, irfft2, crop), each timed alone with
``triton.testing.do_bench`` (median). Bytes moved by the pieces are printed beside them.

    python benchmarks/fft_breakdown.py [--shapes replknet_31b.s1,...] [--dtypes fp32,bf16] [--layouts nchw,nhwc]
                                       [--profile | --frames]

--profile: also the GPU kernels of one call of each FFT direction (torch.profiler), largest first.
--frames: instead, the round trip rfft2 + product + irfft2 of the shape's input at every frame size from the
smallest that avoids wrap-around up to 40% larger (sizes with prime factors 2, 3, 5, 7).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.depthwise2d import dispatch, fft  # noqa: E402

from tune_direct import SHAPES, problem  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def bench(fn) -> float:
    import triton.testing

    return triton.testing.do_bench(fn, warmup=5, rep=40, return_mode="median")


def rows_for(name, dtype, layout):
    x, wt, dy, stride, pad, dil = problem(name, dtype, layout)
    algs = {a: dispatch._REGISTRY[a] for a in ("direct", "fft")}
    out = []
    for a, alg in algs.items():
        out.append((f"{a} fwd", bench(lambda: alg.fwd(x, wt, None, stride, pad, dil)), None))
        out.append((f"{a} dgrad", bench(lambda: alg.dgrad(dy, x, wt, stride, pad, dil)), None))
        out.append((f"{a} wgrad", bench(lambda: alg.wgrad(dy, x, wt, stride, pad, dil)), None))
    out.append(("fft backward (joint)", bench(lambda: algs["fft"].backward(dy, x, wt, stride, pad, dil)), None))
    geo = fft._Geometry(x.shape[2:], wt.shape[2:], stride, pad, dil)
    dt = torch.float32
    fr = fft._framed(x, geo.frame, dt)
    xf = torch.fft.rfft2(fr)
    g = fft._kernel_spectrum(wt, geo, dt, 0, wt.shape[0], reuse=False)
    y1 = torch.fft.irfft2(xf, s=geo.frame, norm="forward")
    y = torch.empty(x.shape[0], wt.shape[0], geo.ho, geo.wo, device=x.device, dtype=x.dtype,
                    memory_format=torch.channels_last if layout == "nhwc" else torch.contiguous_format)
    b_x, b_fr, b_sp = x.numel() * x.element_size(), fr.numel() * 4, xf.numel() * 8
    out.append((f"  frame {tuple(geo.frame)}", bench(lambda: fft._framed(x, geo.frame, dt)), b_x + b_fr))
    out.append(("  frame (torch)", bench(lambda: fft.framed_reference(x, geo.frame, dt)), b_x + b_fr))
    out.append(("  rfft2", bench(lambda: torch.fft.rfft2(fr)), b_fr + b_sp))
    out.append(("  product", bench(lambda: xf.mul(g)), 2 * b_sp))
    out.append(("  irfft2", bench(lambda: torch.fft.irfft2(xf, s=geo.frame, norm="forward")), 2 * b_sp + b_fr))
    out.append(("  crop", bench(lambda: fft._crop(y1, y, None, stride)), 2 * y.numel() * y.element_size()))
    scratch = xf.clone()  # the torch reference conjugates its second operand in place
    out.append(("  lag spectrum", bench(lambda: fft._lag_spectrum(xf, scratch, 1)), 2 * b_sp))
    out.append(("  lag spectrum (torch)", bench(lambda: fft.lag_spectrum_reference(xf, scratch, 1)), 4 * b_sp))
    return out


def profile(name, dtype, layout):
    """Kernel table of one call per FFT direction."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    x, wt, dy, stride, pad, dil = problem(name, dtype, layout)
    alg = dispatch._REGISTRY["fft"]
    calls = {"fwd": lambda: alg.fwd(x, wt, None, stride, pad, dil),
             "dgrad": lambda: alg.dgrad(dy, x, wt, stride, pad, dil),
             "backward": lambda: alg.backward(dy, x, wt, stride, pad, dil)}
    for label, fn in calls.items():
        fn()
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        print(f"\n  profile: fft {label}")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))


def frame_sizes(name, dtype, layout):
    """(frame, ms of rfft2 + product + irfft2) for each candidate square frame of the shape."""
    x, wt, dy, stride, pad, dil = problem(name, dtype, layout)
    geo = fft._Geometry(x.shape[2:], wt.shape[2:], stride, pad, dil)
    rows = []
    for ph in sorted({fft.next_fast_len(k) for k in range(geo.frame[0], int(geo.frame[0] * 1.4) + 1)}):
        for pw in sorted({fft.next_fast_len(k) for k in range(geo.frame[1], int(geo.frame[1] * 1.4) + 1)}):
            if (ph, pw) != geo.frame and ph != pw and geo.frame[0] == geo.frame[1]:
                continue  # square shapes: square frames only
            fr = fft._framed(x, (ph, pw), torch.float32)
            g = torch.randn(x.shape[1], ph, pw // 2 + 1, dtype=torch.complex64, device=x.device)
            ms = bench(lambda: torch.fft.irfft2(torch.fft.rfft2(fr).mul_(g), s=(ph, pw), norm="forward"))
            rows.append(((ph, pw), ms))
    return geo.frame, rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="replknet_31b.s1,replknet_31b.s2,slak_t.s1.long")
    p.add_argument("--dtypes", default="fp32")
    p.add_argument("--layouts", default="nchw,nhwc")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--frames", action="store_true")
    a = p.parse_args(argv)
    print(torch.__version__, torch.cuda.get_device_name())
    for name in a.shapes.split(","):
        if name not in SHAPES:
            raise SystemExit(f"--shapes: unknown shape {name!r}; known: {', '.join(SHAPES)}")
        for dn in a.dtypes.split(","):
            for layout in a.layouts.split(","):
                print(f"\n{name} {dn} {layout}")
                if a.frames:
                    chosen, rows = frame_sizes(name, DTYPES[dn], layout)
                    for size, ms in rows:
                        mark = "  (chosen)" if size == chosen else ""
                        print(f"  frame {size}  rfft2 + product + irfft2 {ms:8.3f} ms{mark}")
                    continue
                for label, ms, nbytes in rows_for(name, DTYPES[dn], layout):
                    bw = f"  {nbytes / ms / 1e6:7.0f} GB/s ({nbytes / 1e6:.0f} MB)" if nbytes else ""
                    print(f"  {label:<28} {ms:8.3f} ms{bw}")
                if a.profile:
                    profile(name, DTYPES[dn], layout)


if __name__ == "__main__":
    main()
