"""Registers, spill stack and shared memory of Triton kernels, compiled for sm_90 without a GPU: long_conv1d's
fused kernels (default) or, with --igemm, the implicit-GEMM forward at each public shape's tile.

Triton compiles for a target it is told (here an H100, sm_90); ``cuobjdump -res-usage`` from Triton's bundled
CUDA tools reads the cubin. A spill stack above 0 means the kernel keeps part of its working set in local memory.

    python benchmarks/kernel_resources.py [--sizes 2048,8192] [--block-rows 16,32,64] [--warps 4,8]
    python benchmarks/kernel_resources.py --igemm [--warps 4,8]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lkconv.ops.conv1d import fused_fft  # noqa: E402
from lkconv.ops.depthwise2d import implicit_gemm  # noqa: E402
from lkconv.tools.bench import _geometry, load_shapes  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)


def resources(fn, signature, constexprs, num_warps, num_stages=1):
    """(registers, spill stack bytes, static shared bytes, Triton's shared bytes) of one compiled kernel."""
    sig = dict(signature, **{k: "constexpr" for k in constexprs})
    kernel = triton.compile(ASTSource(fn, sig, constexprs), target=TARGET, options={"num_warps": num_warps,
                                                                                    "num_stages": num_stages})
    import triton.backends.nvidia as nv

    cubin = tempfile.mktemp(suffix=".cubin")
    Path(cubin).write_bytes(kernel.asm["cubin"])
    tool = os.path.join(os.path.dirname(nv.__file__), "bin", "cuobjdump")
    out = subprocess.run([tool, "-res-usage", cubin], capture_output=True, text=True).stdout
    os.unlink(cubin)
    m = re.search(r"REG:(\d+).*?STACK:(\d+).*?SHARED:(\d+)", out)
    regs, stack, static = (int(v) for v in m.groups()) if m else (-1, -1, -1)
    return regs, stack, static, kernel.metadata.shared


def igemm_report(warps_list):
    """The bf16 forward kernel of every public stride-1 shape at the tile implicit_gemm picks (orientation
    included)."""
    sig = {n: "i32" for n in "M HO WO C_OUT sxn sxc sxh swc swh sww syn syc syh syw stc".split()}
    sig = dict({"x_ptr": "*bf16", "w_ptr": "*bf16", "b_ptr": "*bf16", "y_ptr": "*bf16", "t_ptr": "*bf16"}, **sig)
    print(f"{'shape':<22} {'kernel':>7} {'BM':>4} {'BN':>3} {'BK':>4} {'st':>2} {'T':<6} {'warps':>5} {'regs':>5} "
          f"{'spill B':>8} {'shared B':>9}")
    for s in load_shapes():
        if s["s"] != 1:
            continue
        _, ho, wo = _geometry(s)
        kh, kw, d = s["kh"], s["kw"], s["d"]
        if implicit_gemm.transposes(kh, kw, (d, d), ho, wo, 2):
            kh, kw, ho, wo = kw, kh, wo, ho
        bn, bk = implicit_gemm._tiles(kw, d, wo)
        cfg = implicit_gemm.IgemmConfig()
        bm, stages = implicit_gemm._fit(cfg.bm, cfg.stages, bk, bn, 2)
        for table in (False, True):
            const = dict(KH=kh, KW=kw, DH=d, DW=d, ROW0=0, ROW_STEP=1, COL0=0, COL_STEP=1, MULT_DIV=1, GROUP=1,
                         BM=bm, BN=bn, BK=bk, PREC="ieee", HAS_BIAS=True, DOT_F32=False, STAGES=stages, TABLE=table)
            for warps in warps_list:
                regs, stack, static, shared = resources(implicit_gemm.depthwise_conv2d_igemm_fwd_kernel, sig,
                                                        const, warps, stages)
                print(f"{s['name']:<22} {kh:>3}x{kw:<3} {bm:>4} {bn:>3} {bk:>4} {stages:>2} "
                      f"{'table' if table else 'gather':<6} {warps:>5} {regs:>5} {stack:>8} "
                      f"{max(static, shared):>9}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igemm", action="store_true")
    ap.add_argument("--sizes", default="2048,4096,8192")
    ap.add_argument("--block-rows", default="16,32,64")
    ap.add_argument("--warps", default="4,8")
    ap.add_argument("--dtypes", default="fp32,bf16")
    args = ap.parse_args()
    if args.igemm:
        return igemm_report([int(w) for w in args.warps.split(",")])
    ptr = {"fp32": "*fp32", "bf16": "*bf16"}
    prec = {"fp32": "tf32x3", "bf16": "tf32"}
    print(f"{'kernel':<6} {'N':>5} {'dtype':<5} {'BK':>3} {'warps':>5} {'regs':>5} {'spill B':>8} {'shared B':>9}")
    for n in map(int, args.sizes.split(",")):
        length = n // 2
        _, n1, n2, shift, rows, rows_shifted = fused_fft._geometry(length, length, True)
        for dt in args.dtypes.split(","):
            for bk in map(int, args.block_rows.split(",")):
                if bk > n1:
                    continue
                for warps in map(int, args.warps.split(",")):
                    conv_sig = {"in_ptr": ptr[dt], "kf_ptr": "*fp32", "d_ptr": "*fp32", "out_ptr": ptr[dt],
                                "f1_ptr": "*fp32", "f2_ptr": "*fp32", "tw_ptr": "*fp32", "B": "i32", "L": "i32",
                                "IN_SHIFT": "i32", "OUT_SHIFT": "i32", "B_PER_PROG": "i32", "sib": "i64",
                                "sic": "i32", "sob": "i64", "soc": "i32", "sd": "i32"}
                    conv_const = dict(N1=n1, N2=n2, R_IN=rows, R_OUT=rows_shifted, BK=bk, CONJ=False, HAS_D=True,
                                      PREC=prec[dt])
                    dk_sig = {"x_ptr": ptr[dt], "dy_ptr": ptr[dt], "sp_ptr": "*fp32", "dd_ptr": "*fp32",
                              "f1_ptr": "*fp32", "f2_ptr": "*fp32", "tw_ptr": "*fp32", "B": "i32", "C": "i32",
                              "L": "i32", "shift": "i32", "B_PER_PROG": "i32", "sxb": "i64", "sxc": "i32",
                              "syb": "i64", "syc": "i32"}
                    dk_const = dict(N1=n1, N2=n2, R_X=rows, R_DY=rows_shifted, BK=bk, HAS_D=True, PREC=prec[dt])
                    for name, fn, sig, const in (("conv", fused_fft.long_conv1d_fused_kernel, conv_sig, conv_const),
                                                 ("dk", fused_fft.long_conv1d_fused_dk_kernel, dk_sig, dk_const)):
                        try:
                            regs, stack, static, shared = resources(fn, sig, const, warps)
                        except Exception as exc:  # noqa: BLE001 - reported, not fatal
                            print(f"{name:<6} {n:>5} {dt:<5} {bk:>3} {warps:>5}  {type(exc).__name__}: "
                                  f"{str(exc)[:120]}", flush=True)
                            continue
                        print(f"{name:<6} {n:>5} {dt:<5} {bk:>3} {warps:>5} {regs:>5} {stack:>8} "
                              f"{max(static, shared):>9}", flush=True)


if __name__ == "__main__":
    main()
