"""Registers, spill stack and shared memory of Triton kernels, compiled for sm_90 without a GPU: long_conv1d's
fused kernels (default); with --igemm, the implicit-GEMM forward at each public stride-1 shape (with --row-blocks
or --planes, its block-Toeplitz or whole-plane forms); with --wgrad, the
batch-summed direct weight gradient (direct_wgrad.py) at each public shape it serves, with compile times; with
--fwd SHAPES, the direct forward kernel (forward and input gradient) of those shapes, per strip and not; with
--strips SHAPES, direct.py's strip weight-gradient kernel of those shapes.

Triton compiles for a target it is told (here an H100, sm_90); ``cuobjdump -res-usage`` from Triton's bundled
CUDA tools reads the cubin. Each kernel is specialized as a real launch would be: integer arguments equal to 1
become constants, pointers and integers divisible by 16 carry that divisibility (without it Triton neither
vectorizes nor pipelines those loads, and the counts differ from what runs). A spill stack above 0 means the
kernel keeps part of its working set in local memory. These are compile facts, not timings.

    python benchmarks/kernel_resources.py [--sizes 2048,8192] [--block-rows 16,32] [--warps 4,8]
    python benchmarks/kernel_resources.py --igemm [--warps 4,8]
    python benchmarks/kernel_resources.py --planes 32,64 [--shapes unireplknet_t.s3] [--warps 4]
    python benchmarks/kernel_resources.py --wgrad [--dtypes fp32,bf16]
    python benchmarks/kernel_resources.py --fwd replknet_31b.s3,slak_t.s1.long [--dtypes fp32,bf16] [--layouts nchw]
    python benchmarks/kernel_resources.py --strips slak_t.s1.long,convnext_t.s1 [--layouts nchw]
    python benchmarks/kernel_resources.py --staged 1024:4,2048:2,4096:1,1024:4:12288 [--block-rows 0,32] [--warps 4,8]
"""
from __future__ import annotations

import argparse
import itertools
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

from lkconv.ops.conv1d import fused_fft, staged_fft  # noqa: E402
from lkconv.ops.depthwise2d import direct, direct_wgrad, implicit_gemm  # noqa: E402
from lkconv.tools.bench import _geometry, load_shapes  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)


def resources(fn, pointers: dict, ints: dict, constexprs: dict, num_warps: int, num_stages: int = 1,
              maxnreg=None, loads=False):
    """(registers, spill stack bytes, shared bytes) of fn compiled for TARGET with the given pointer types
    ({name: "*bf16"}), integer argument values and constexprs, specialized like a launch; with ``loads``, also
    the number of global load instructions of each width in the PTX ({"v4": 12, "v2": 0, "s": 40})."""
    sig, const = dict(pointers), dict(constexprs)
    for name, value in ints.items():
        if value == 1:
            const[name] = 1
        else:
            sig[name] = "i64" if abs(value) >= 2**31 else "i32"
    sig.update({k: "constexpr" for k in const})
    divisible = list(pointers) + [n for n, v in ints.items() if v != 1 and v % 16 == 0]
    attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in divisible}
    options = {"num_warps": num_warps, "num_stages": num_stages}
    if maxnreg:
        options["maxnreg"] = maxnreg
    kernel = triton.compile(ASTSource(fn, sig, const, attrs), target=TARGET, options=options)
    import triton.backends.nvidia as nv

    cubin = tempfile.mktemp(suffix=".cubin")
    Path(cubin).write_bytes(kernel.asm["cubin"])
    tool = os.path.join(os.path.dirname(nv.__file__), "bin", "cuobjdump")
    out = subprocess.run([tool, "-res-usage", cubin], capture_output=True, text=True).stdout
    sass = subprocess.run([tool, "-sass", cubin], capture_output=True, text=True).stdout if loads else ""
    os.unlink(cubin)
    m = re.search(r"REG:(\d+).*?STACK:(\d+).*?SHARED:(\d+)", out)
    regs, stack, static = (int(v) for v in m.groups()) if m else (-1, -1, -1)
    if loads:
        ptx = kernel.asm["ptx"]
        counts = {"v4": len(re.findall(r"ld\.global(?:\.\w+)*\.v4", ptx)),
                  "v2": len(re.findall(r"ld\.global(?:\.\w+)*\.v2", ptx))}
        counts["s"] = len(re.findall(r"ld\.global", ptx)) - counts["v4"] - counts["v2"]
        sizes = [int(v, 0) for v in re.findall(r"cp\.async\.c[ag]\.shared\.global[^,]*,[^,]*,\s*(0x[0-9a-f]+|\d+)",
                                               ptx)]
        counts["async"] = {n: sizes.count(n) for n in sorted(set(sizes))}  # asynchronous copies by size in bytes
        # tensor-core products each wait leaves in flight (0: every product waited for before the next step)
        waits = re.findall(r"WARPGROUP\.DEPBAR\.LE gsb0, (0x[0-9a-f]+)", sass)
        counts["in_flight"] = sorted({int(v, 0) for v in waits})
        # tensor-core products reading their left operand from registers (the rest read both from shared memory)
        counts["left_in_registers"] = len(re.findall(r"HGMMA\.\S+ R\d+, R\d+,", sass))
        counts["products"] = len(re.findall(r"HGMMA\.", sass))
        return regs, stack, max(static, kernel.metadata.shared), counts
    return regs, stack, max(static, kernel.metadata.shared)


def _planned_fwd(s, cfg):
    """(kh, kw, plan) of implicit_gemm's bf16 forward launch for public shape s (batch as benchmarked, NCHW input
    and output) in the orientation it picks (a transposed problem reads a transposed view of x, so its rows are
    copied), or None where cfg's column form does not fit."""
    pad, ho, wo = _geometry(s)
    n, c, h, w, kh, kw, d = s["n"], s["c"], s["h"], s["w"], s["kh"], s["kw"], s["d"]
    x_stride, pads = (c * h * w, h * w, w, 1), (pad[0], pad[1])
    if implicit_gemm.transposes(kh, kw, (d, d), ho, wo, 2):
        kh, kw, h, w, ho, wo, pads = kw, kh, w, h, wo, ho, pads[::-1]
        x_stride = (c * h * w, h * w, 1, h)
    aligned = w if x_stride[3] == 1 and w * 2 % 16 == 0 else 0
    try:
        plan = implicit_gemm._fwd_plan((n, c, h, w), x_stride, 2, aligned, (n, c, ho, wo),
                                       (c * ho * wo, ho * wo, wo, 1), (c, 1, kh, kw), (kh * kw, kh * kw, kw, 1), (d, d),
                                       pads[0], pads[1], 1, 1, ((0, 1), (0, 1)), True, cfg, "ieee", False)
    except ValueError:  # whole rows that do not fit
        return None
    return kh, kw, plan


def _compile_plan(fn, n_tensors: int, plan, warps: int):
    """resources() of fn compiled as the plan launches it (its integers and constexprs) on warps warps."""
    names = list(fn.arg_names)
    consts = dict(plan.consts)
    consts.pop("num_warps")
    ints = dict(zip(names[n_tensors:n_tensors + len(plan.ints)], plan.ints))
    return resources(fn, {p: "*bf16" for p in names[:n_tensors]}, ints, consts, warps, consts["STAGES"], loads=True)


PLAN_CELLS = ("loads v4/v2/s, async copies {bytes: count}, tensor-core products in flight at waits, products reading "
              "their left operand from registers / all")  # the last columns of _plan_resources


def _plan_resources(fn, n_tensors: int, plan, warps: int) -> str:
    """The registers, spill stack, shared memory and global loads of fn compiled as plan launches it, as report
    columns."""
    regs, stack, shared, loads = _compile_plan(fn, n_tensors, plan, warps)
    return (f"{warps:>5} {regs:>5} {stack:>8} {shared:>9}  {loads['v4']}/{loads['v2']}/{loads['s']} "
            f"async {loads['async']} in flight {loads['in_flight']} left from registers "
            f"{loads['left_in_registers']}/{loads['products']}")


def igemm_report(warps_list, kernel_rows_list=(0,), other_columns=("band",)):
    """The bf16 forward kernel of every public stride-1 shape (batch 64 as benchmarked) as implicit_gemm plans it,
    in its column form and (where that is whole rows) as a band too, with gathered and with table-read Toeplitz
    tiles, for each count of kernel rows per product; the global loads of each width in the PTX (v4 = 16 bytes,
    s = scalar)."""
    print(f"{'shape':<22} {'kernel':>7} {'form':<13} {'KR':>2} {'BM':>4} {'BN':>3} {'BK':>4} {'st':>2} {'T':<6} "
          f"{'warps':>5} {'regs':>5} {'spill B':>8} {'shared B':>9}  {PLAN_CELLS}")
    for s in load_shapes():
        if s["s"] != 1:
            continue
        one_row = dict(row_block=1, plane=False)  # this kernel's tiles: one output row each
        planned = _planned_fwd(s, implicit_gemm.IgemmConfig(**one_row))
        chosen = "band" if planned[2].source == "band" else "rows"
        for columns, kernel_rows, table in itertools.product(dict.fromkeys((chosen, *other_columns)),
                                                             kernel_rows_list, ("gather", "table")):
            planned = _planned_fwd(s, implicit_gemm.IgemmConfig(columns=columns, kernel_rows=kernel_rows,
                                                                toeplitz=table, **one_row))
            if planned is None:
                continue
            kh, kw, plan = planned
            c = dict(plan.consts)
            for warps in warps_list:
                cells = _plan_resources(implicit_gemm.depthwise_conv2d_igemm_fwd_kernel, 5, plan, warps)
                print(f"{s['name']:<22} {kh:>3}x{kw:<3} {columns:<13} {c['KR']:>2} {c['BM']:>4} {c['BN']:>3} "
                      f"{c['BK']:>4} {c['STAGES']:>2} {table:<6} {cells}", flush=True)


def row_block_report(warps_list, row_blocks, columns=("rows",), shapes=None, toeplitz="", left=False):
    """The bf16 block-Toeplitz forward (IgemmConfig.row_block) of every public stride-1 shape (or the named ones), as
    implicit_gemm plans it (NCHW input, batch 64), with whole-row tiles where the rows fit them and with band column
    blocks ("band" in columns); left: the product transposed (IgemmConfig.toeplitz_left)."""
    print(f"{'shape':<22} {'kernel':>7} {'form':<5} {'R':>2} {'BM':>4} {'BN':>3} {'BK':>4} {'warps':>5} {'regs':>5} "
          f"{'spill B':>8} {'shared B':>9}  {PLAN_CELLS}")
    for s in load_shapes():
        if s["s"] != 1 or (shapes and s["name"] not in shapes):
            continue
        for form, rb, warps in itertools.product(columns, row_blocks, warps_list):
            planned = _planned_fwd(s, implicit_gemm.IgemmConfig(columns=form, row_block=rb, toeplitz=toeplitz,
                                                                toeplitz_left=left))
            if planned is None or planned[2].kernel != "row_block":
                break
            kh, kw, plan = planned
            c = dict(plan.consts)
            cells = _plan_resources(implicit_gemm.depthwise_conv2d_igemm_row_block_kernel, 4, plan, warps)
            print(f"{s['name']:<22} {kh:>3}x{kw:<3} {form:<5} {rb:>2} {c['BM']:>4} {c['BN']:>3} {c['BK']:>4} {cells}",
                  flush=True)


def plane_report(warps_list, block_cols, shapes=None):
    """The bf16 whole-plane forward (IgemmConfig.plane) of the public stride-1 shapes with planes of at most 1024
    elements (or the named ones), as implicit_gemm plans it (NCHW input, batch 64), at each BN, reading the input
    through its strides and (runs) as contiguous runs of its dense planes (IgemmConfig.plane_runs), with Toeplitz
    tiles gathered through the tap tests, read from the canvas (IgemmConfig.toeplitz "canvas") and copied as aligned
    runs from the shifted canvas ("shifted_canvas"; /4: 4-element runs, canvas_run=4); canvas/left: the product
    transposed (toeplitz_left)."""
    print(f"{'shape':<22} {'kernel':>7} {'T':<16} {'runs':>4} {'BM':>4} {'BN':>4} {'BK':>3} {'warps':>5} {'regs':>5} "
          f"{'spill B':>8} {'shared B':>9}  {PLAN_CELLS}")
    for s in load_shapes():
        if s["s"] != 1 or (shapes and s["name"] not in shapes) or (not shapes and s["h"] * s["w"] > 1024):
            continue
        forms = (("gather", 8, False), ("canvas", 8, False), ("shifted_canvas", 8, False), ("shifted_canvas", 4, False),
                 ("canvas", 8, True))
        for (toeplitz, run, left), runs, bn, warps in itertools.product(forms, (False, True), block_cols, warps_list):
            kh, kw, plan = _planned_fwd(s, implicit_gemm.IgemmConfig(plane=True, bn=bn, plane_runs=runs,
                                                                    toeplitz=toeplitz, canvas_run=run,
                                                                    toeplitz_left=left))
            c = dict(plan.consts)
            cells = _plan_resources(implicit_gemm.depthwise_conv2d_igemm_plane_kernel, 5, plan, warps)
            form = toeplitz + ("/4" if run == 4 else "") + ("/left" if left else "")
            print(f"{s['name']:<22} {kh:>3}x{kw:<3} {form:<16} {'yes' if c['PLANE'] else 'no':>4} {c['BM']:>4} "
                  f"{c['BN']:>4} {c['BK']:>3} {cells}", flush=True)


def fused_report(sizes, dtypes, block_rows, warps_list, pairs_list, precisions=None, products=("karatsuba",),
                 joint=False):
    """Both fused kernels, causal with Lk = L = N/2 (batch 16, 768 channels as hyena_4k); with ``joint``, the
    input-gradient kernel making the weight gradient's sums too ("joint") in place of the forward."""
    ptr = {"fp32": "*fp32", "bf16": "*bf16"}
    print(f"{'kernel':<6} {'N':>5} {'dtype':<5} {'prec':<6} {'products':<9} {'BK':>3} {'P':>2} {'warps':>5} {'regs':>5} "
          f"{'spill B':>8} {'shared B':>9}")
    b, c = 16, 768
    for n in sizes:
        length = n // 2
        _, n1, n2, shift, rows, rows_shifted = fused_fft._geometry(length, length, True)
        for dt in dtypes:
            precs = precisions or ["tf32" if dt == "bf16" else "tf32x3"]
            for prec, emb, bk, p, warps in itertools.product(precs, [v == "embedded" for v in products], block_rows,
                                                             pairs_list, warps_list):
                if bk > n1:
                    continue
                mats = "*bf16" if prec == "bf16" else "*fp32"  # fused_fft._operand_dtype
                conv = (fused_fft.long_conv1d_fused_kernel,
                        {a: ptr[dt] if a in ("in_ptr", "out_ptr", "x_ptr") else mats if a in ("f1_ptr", "f2_ptr", "g2_ptr")
                         else "*fp32"
                         for a in ("in_ptr", "kf_ptr", "d_ptr", "out_ptr", "f1_ptr", "f2_ptr", "tw_ptr", "g2_ptr",
                                   "x_ptr", "sp_ptr", "dd_ptr")},
                        dict(B=b, C=c, L=length, IN_SHIFT=shift if joint else 0, OUT_SHIFT=0 if joint else shift,
                             GROUPS_PER_PROG=2, sib=c * length, sic=length, sob=c * length, soc=length, sd=1,
                             sxb=c * length, sxc=length),
                        dict(N1=n1, N2=n2, R_IN=rows_shifted if joint else rows, R_OUT=rows if joint else rows_shifted,
                             BK=bk, P=p, CONJ=joint, HAS_D=True, PREC=prec, EMB=emb, JOINT=joint, R_X=rows, DD=joint,
                             HOLD_ROWS=fused_fft._holds_rows((rows_shifted if joint else rows) * p * n2, prec, emb)))
                dk = (fused_fft.long_conv1d_fused_dk_kernel,
                      {a: ptr[dt] if a in ("x_ptr", "dy_ptr") else mats if a in ("f1_ptr", "f2_ptr", "g2_ptr")
                       else "*fp32"
                       for a in ("x_ptr", "dy_ptr", "sp_ptr", "dd_ptr", "f1_ptr", "f2_ptr", "tw_ptr", "g2_ptr")},
                      dict(B=b, C=c, L=length, shift=shift, GROUPS_PER_PROG=2, sxb=c * length, sxc=length,
                           syb=c * length, syc=length),
                      dict(N1=n1, N2=n2, R_X=rows, R_DY=rows_shifted, BK=bk, P=p, HAS_D=True, PREC=prec, EMB=emb))
                for name, (fn, ptrs, ints, const) in (("joint", conv),) if joint else (("conv", conv), ("dk", dk)):
                    head = (f"{name:<6} {n:>5} {dt:<5} {prec:<6} {'embedded' if emb else 'karatsuba':<9} {bk:>3} {p:>2} "
                            f"{warps:>5}")
                    try:
                        regs, stack, shared = resources(fn, ptrs, ints, const, warps,
                                                        maxnreg=fused_fft._register_cap().get("maxnreg"))
                    except Exception as exc:  # noqa: BLE001 - reported, not fatal
                        print(f"{head}  {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                        continue
                    print(f"{head} {regs:>5} {stack:>8} {shared:>9}", flush=True)


def staged_report(rows_specs, block_rows, warps_list, products=("karatsuba",)):
    """The staged long_conv1d's row kernels (bf16 products, bfloat16 workspace, the default register cap) for each
    Q:P[:N] (row length, rows per program, points: by default 32768 (sgconv_16k), or 16 Q where more): batch pairs
    with the kernel's half spectrum ("rows") or its row-order spectrum ("rows/rs"), channel pairs ("pairs",
    "pairs/rs"), the spectrum's own transform ("spectrum") and the joint weight-gradient kernels ("corr/jb",
    "pcorr/jb"); and the column kernels (M = N / Q padded to a power of two >= 16)."""
    print(f"{'kernel':<9} {'N':>6} {'Q':>5} {'P':>2} {'BK':>3} {'products':<9} {'warps':>5} {'regs':>5} {'spill B':>8} "
          f"{'shared B':>9}")
    bf16_args = ("w_ptr", "out_ptr", "wz_ptr", "wx_ptr", "dx_ptr", "f1_ptr", "f2_ptr", "g2_ptr")

    def ptrs(names):
        return {a: "*bf16" if a in bf16_args else "*fp32" for a in names}

    rows_args = ("w_ptr", "kf_ptr", "u_ptr", "v_ptr", "f1_ptr", "f2_ptr", "tw_ptr", "g2_ptr")
    pairs_args = ("w_ptr", "out_ptr", "kf_ptr", "ksc_ptr", "ph_ptr", "u_ptr", "v_ptr", "f1_ptr", "f2_ptr", "tw_ptr",
                  "g2_ptr")
    corr_args = ("wz_ptr", "wx_ptr", "out_ptr", "kf_ptr", "u_ptr", "v_ptr", "f1_ptr", "f2_ptr", "tw_ptr", "g2_ptr")
    pcorr_args = ("wz_ptr", "wx_ptr", "out_ptr", "dx_ptr", "kf_ptr", "ksc_ptr", "ph_ptr", "u_ptr", "v_ptr", "f1_ptr",
                  "f2_ptr", "tw_ptr", "g2_ptr", "wgt_ptr")
    for spec in rows_specs:
        q, p, *size = (int(v) for v in spec.split(":"))
        n = size[0] if size else max(32768, 16 * q)
        n1, n2 = fused_fft._factors(q)
        m = n // q
        for bk, emb, warps in itertools.product(block_rows, [v == "embedded" for v in products], warps_list):
            bk = bk or n1
            if bk > n1:
                continue
            common = dict(M=m, N1=n1, N2=n2, BK=bk, P=p, PREC="bf16", EMB=emb)
            kernels = [
                ("rows", staged_fft.staged_rows_kernel, ptrs(rows_args), dict(G=4),
                 dict(common, CONJ=False, FACTORED=False, GP=1, SPEC_ROWS=False)),
                ("rows/rs", staged_fft.staged_rows_kernel, ptrs(rows_args), dict(G=4),
                 dict(common, CONJ=False, FACTORED=False, GP=1, SPEC_ROWS=True)),
                ("pairs", staged_fft.staged_paired_rows_kernel, ptrs(pairs_args), dict(G=1, C=128),
                 dict(common, CONJ=False, FACTORED=False, SPEC_ROWS=False)),
                ("pairs/rs", staged_fft.staged_paired_rows_kernel, ptrs(pairs_args), dict(G=1, C=128),
                 dict(common, CONJ=False, FACTORED=False, SPEC_ROWS=True)),
                ("spectrum", staged_fft.staged_spectrum_rows_kernel,
                 ptrs(("w_ptr", "f1_ptr", "f2_ptr", "tw_ptr", "g2_ptr")), {}, common),
            ]
            if bk == n1:
                kernels += [
                    ("corr/jb", staged_fft.staged_correlation_rows_kernel, ptrs(corr_args), dict(G=4),
                     dict(common, JOINT=True, FACTORED=False, SPEC_ROWS=False)),
                    ("pcorr/jb", staged_fft.staged_paired_correlation_rows_kernel, ptrs(pcorr_args),
                     dict(G=1, C=128), dict(common, JOINT=True, FACTORED=False, SPEC_ROWS=True)),
                ]
            for name, fn, kptrs, ints, const in kernels:
                head = (f"{name:<9} {n:>6} {q:>5} {p:>2} {bk:>3} {'embedded' if emb else 'karatsuba':<9} "
                        f"{warps:>5}")
                try:
                    regs, stack, shared = resources(fn, kptrs, ints, const, warps,
                                                    maxnreg=staged_fft.StagedConfig().row_registers or None)
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    print(f"{head}  {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                    continue
                print(f"{head} {regs:>5} {stack:>8} {shared:>9}", flush=True)
        bka = min(64, max(16, 1 << (m - 1).bit_length()))
        for channels in (False, True):
            cols = (staged_fft.staged_columns_kernel,
                    {"in_ptr": "*bf16", "w_ptr": "*bf16", "fm_ptr": "*bf16", "u_ptr": "*fp32", "scale_ptr": "*fp32"},
                    dict(B=8, C=256, G=4, L=16000, IN_SHIFT=0, ROWS=n // q // 2, sib=256 * 16000, sic=16000),
                    dict(M=m, Q=q, BKA=bka, BQ=64, BR=bka, PREC="bf16", CHANNELS=channels, SCALED=channels))
            out = (staged_fft.staged_output_kernel, {a: "*bf16" if a not in ("d_ptr", "scale_ptr") else "*fp32"
                                                     for a in ("w_ptr", "fm_ptr", "in_ptr", "d_ptr", "out_ptr",
                                                               "scale_ptr")},
                   dict(B=8, C=256, G=4, L=16000, OUT_SHIFT=0, sib=256 * 16000, sic=16000, sob=256 * 16000,
                        soc=16000, sd=1),
                   dict(M=m, Q=q, BR=bka, BQ=64, BKA=bka, PREC="bf16", HAS_D=True, CHANNELS=channels,
                        SCALED=channels))
            forms = [("columns", cols), ("output", out)]
            if m >= staged_fft.MIN_FOURSTEP_M and m & (m - 1) == 0:
                m1, m2 = fused_fft._factors(m)
                four = dict(M=m, Q=q, M1=m1, M2=m2, R=max(16, m1 // 2), BK=min(m1, 32), BQ=16, PREC="bf16",
                            EMB=False, CHANNELS=channels, SCALED=channels)
                consts = {a: "*bf16" if a in ("f1_ptr", "f2_ptr", "g2_ptr") else "*fp32"
                          for a in ("f1_ptr", "f2_ptr", "tw_ptr", "g2_ptr", "scale_ptr")}
                forms += [
                    ("cols/4s", (staged_fft.staged_columns_fourstep_kernel,
                                 dict(consts, in_ptr="*bf16", w_ptr="*bf16", u_ptr="*fp32"),
                                 dict(B=1, C=128, G=1, L=n // 2, IN_SHIFT=0, ROW0=0, sib=128 * (n // 2), sic=n // 2),
                                 four)),
                    ("out/4s", (staged_fft.staged_output_fourstep_kernel,
                                dict(consts, w_ptr="*bf16", in_ptr="*bf16", d_ptr="*fp32", out_ptr="*bf16"),
                                dict(B=1, C=128, G=1, L=n // 2, OUT_SHIFT=0, ROW0=0, sib=128 * (n // 2), sic=n // 2,
                                     sob=128 * (n // 2), soc=n // 2, sd=1),
                                dict(four, HAS_D=True)))]
            for name, (fn, kptrs, ints, const) in forms:
                name = name + ("/ch" if channels else "")
                for warps in (warps_list if "4s" in name else (4,)):  # the four-step ones take the row kernels'
                    regs, stack, shared = resources(fn, kptrs, ints, const, warps, maxnreg=(
                        staged_fft.StagedConfig().row_registers or None) if "4s" in name else None)
                    print(f"{name:<9} {n:>6} {q:>5} {'':>2} {'':>3} {'karatsuba':<9} {warps:>5} {regs:>5} {stack:>8} "
                          f"{shared:>9}", flush=True)


def _meta_pair(s: dict, ho: int, wo: int, layout: str):
    """x (N, C, H, W) and an output-sized (N, C, Ho, Wo) tensor of shape ``s`` on the meta device, in ``layout``."""
    import torch

    x = torch.empty(s["n"], s["c"], s["h"], s["w"], device="meta")
    y = torch.empty(s["n"], s["c"], ho, wo, device="meta")
    if layout == "nhwc":
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    return x, y


def _wgrad_problems(s: dict, layouts, dtypes):
    """(layout, dtype, element size, x, dy, axes, pad) of shape ``s``'s weight gradient in each layout and dtype."""
    pad, ho, wo = _geometry(s)
    for layout, dt in itertools.product(layouts, dtypes):
        x, dy = _meta_pair(s, ho, wo, layout)
        ax = direct._axes(x, s["kh"], s["kw"], (s["s"],) * 2, (s["d"],) * 2, pad[0], pad[1], (ho, wo))
        yield layout, dt, 4 if dt == "fp32" else 2, x, dy, ax, pad


def _wgrad_resources(fn, s: dict, x, dy, pad, elem: int, dt: str, cfg):
    """(registers, spill bytes, compile seconds) of weight-gradient kernel ``fn`` as direct._plan_wgrad plans it
    for ``cfg`` on an H100 (132 SMs)."""
    import time

    plan = direct._plan_wgrad(tuple(x.shape), x.stride(), tuple(dy.shape), dy.stride(), s["kh"], s["kw"], elem,
                              (s["s"],) * 2, (s["d"],) * 2, pad[0], pad[1], cfg, 132)
    consts = dict(plan.consts)
    warps = consts.pop("num_warps")
    ints = dict(zip(fn.arg_names[3:3 + len(plan.ints)], plan.ints))
    ptrs = {"x_ptr": "*" + dt, "dy_ptr": "*" + dt, "part_ptr": "*fp32"}
    t0 = time.perf_counter()
    regs, stack, _ = resources(fn, ptrs, ints, consts, warps)
    return regs, stack, time.perf_counter() - t0


def wgrad_report(dtypes, tiles=None):
    """The batch-summed weight-gradient kernel of every public shape and layout that direct picks it for, at its
    default tile (or at each (block_0, block_1, warps) of ``tiles``), specialized as direct._plan_wgrad plans it
    for an H100 (132 SMs)."""
    import dataclasses

    fn = direct_wgrad.depthwise_conv2d_wgrad_planes_kernel
    print(f"{'shape':<22} {'layout':<6} {'dtype':<5} {'r':>3} {'ta':>3} {'tile':>6} {'warps':>5} {'regs':>5} "
          f"{'spill B':>8} {'compile s':>9}")
    for s in load_shapes():
        for layout, dt, elem, x, dy, ax, pad in _wgrad_problems(s, ("nchw", "nhwc"), dtypes):
            if not direct_wgrad.preferred(ax):
                continue
            base = direct_wgrad.choose_config(ax, s["c"])
            for b0, b1, nw in tiles or [(base.block_0, base.block_1, base.num_warps)]:
                cfg = dataclasses.replace(base, block_0=b0, block_1=b1, num_warps=nw)
                regs, stack, secs = _wgrad_resources(fn, s, x, dy, pad, elem, dt, cfg)
                print(f"{s['name']:<22} {layout:<6} {dt:<5} {cfg.r:>3} {cfg.ta:>3} {f'{b0}x{b1}':>6} {nw:>5} "
                      f"{regs:>5} {stack:>8} {secs:9.1f}", flush=True)


def fwd_report(names, dtypes, layouts):
    """The direct forward kernel (forward and input gradient) of the named public shapes at its default tile,
    with and without strips compiled at their positions (config "skip" / "noskip"), specialized as
    direct._plan_fwd plans it: fixed is the number of strips one launch branches between (0: strips placed at run
    time), a0 the first output line of the launch's first strip (one row per launch); global loads of each width."""
    import dataclasses
    import time

    import torch

    fn = direct.depthwise_conv2d_fwd_kernel
    print(f"{'shape':<22} {'dir':<5} {'layout':<6} {'dtype':<5} {'config':<14} {'strips':>6} {'fixed':>5} {'a0':>5} "
          f"{'regs':>5} {'spill B':>8} {'shared':>6} {'v4/v2/s loads':>13} {'compile s':>9}")
    shapes = {s["name"]: s for s in load_shapes()}
    for name in names:
        s = shapes[name]
        pad, ho, wo = _geometry(s)
        for direction, layout, dt in itertools.product(("fwd", "dgrad"), layouts, dtypes):
            if direction == "dgrad" and s["s"] != 1:
                continue
            elem = 4 if dt == "fp32" else 2
            x, y = _meta_pair(s, ho, wo, layout)
            kh, kw, d = s["kh"], s["kw"], s["d"]
            w = torch.empty(s["c"], 1, kh, kw, device="meta")
            src, dst, st, p_t, p_l = x, y, (s["s"],) * 2, pad[0], pad[1]
            taps = ((0, 1), (0, 1))
            if direction == "dgrad":  # the forward kernel on dy with the reversed kernel
                src, dst, p_t, p_l = y, x, d * (kh - 1) - pad[0], d * (kw - 1) - pad[1]
                taps = ((kh - 1, -1), (kw - 1, -1))
            ax = direct._axes(src, kh, kw, st, (d, d), p_t, p_l, tuple(dst.shape[-2:]))
            base = direct.choose_config(ax, s["c"], "fwd", elem)
            configs = [(label, dataclasses.replace(base, skip_border=skip))
                       for label, skip in (("skip", True), ("noskip", False))]
            for label, cfg in configs:
                plan = direct._plan_fwd(tuple(src.shape), src.stride(), tuple(dst.shape), dst.stride(),
                                        tuple(w.shape), w.stride(), elem, st, (d, d), p_t, p_l, 1, 1, taps, True, cfg)
                ints = dict(zip(fn.arg_names[4:4 + len(plan.ints)], plan.ints))
                wdt = "fp32" if plan.w_f32 else dt
                ptrs = {"x_ptr": "*" + dt, "w_ptr": "*" + wdt, "b_ptr": "*" + wdt, "y_ptr": "*" + dt}
                for _, kwargs in plan.launches:  # one per strip where each is compiled with its position
                    consts = dict(kwargs)
                    warps = consts.pop("num_warps")
                    t0 = time.perf_counter()
                    regs, stack, shared, lds = resources(fn, ptrs, ints, consts, warps, loads=True)
                    loads = f"{lds['v4']}/{lds['v2']}/{lds['s']}"
                    print(f"{name:<22} {direction:<5} {layout:<6} {dt:<5} {label:<14} {ax.n_strips(cfg.r):>6} "
                          f"{consts['FIXED_STRIPS']:>5} {consts['FIXED_A0']:>5} {regs:>5} {stack:>8} {shared:>6} "
                          f"{loads:>13} {time.perf_counter() - t0:9.1f}", flush=True)


def strips_report(names, dtypes, layouts):
    """direct.py's strip weight-gradient kernel of the named public shapes at its default tile, specialized as
    direct._plan_wgrad plans it for an H100 (132 SMs) (shapes that direct_wgrad's kernel serves are skipped)."""
    fn = direct.depthwise_conv2d_wgrad_kernel
    print(f"{'shape':<22} {'layout':<6} {'dtype':<5} {'r':>3} {'jb':>3} {'tile':>6} {'regs':>5} {'spill B':>8} "
          f"{'compile s':>9}")
    shapes = {s["name"]: s for s in load_shapes()}
    for name in names:
        s = shapes[name]
        for layout, dt, elem, x, dy, ax, pad in _wgrad_problems(s, layouts, dtypes):
            if direct_wgrad.preferred(ax):
                continue
            cfg = direct.choose_config(ax, s["c"], "wgrad", elem)
            regs, stack, secs = _wgrad_resources(fn, s, x, dy, pad, elem, dt, cfg)
            print(f"{name:<22} {layout:<6} {dt:<5} {cfg.r:>3} {cfg.jb:>3} {f'{cfg.block_0}x{cfg.block_1}':>6} "
                  f"{regs:>5} {stack:>8} {secs:9.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igemm", action="store_true")
    ap.add_argument("--wgrad", action="store_true")
    ap.add_argument("--fwd", default=None, help="shapes: the direct forward kernel (forward, input gradient)")
    ap.add_argument("--strips", default=None, help="shapes: direct.py's strip weight-gradient kernel")
    ap.add_argument("--layouts", default="nchw,nhwc")
    ap.add_argument("--tiles", default=None, help="--wgrad: block_0xblock_1xwarps,... (default: the chosen tile)")
    ap.add_argument("--sizes", default="2048,8192,32768")
    ap.add_argument("--block-rows", default="16,32")
    ap.add_argument("--warps", default="4,8")
    ap.add_argument("--kernel-rows", default="0", help="--igemm: kernel rows per product (0: the default)")
    ap.add_argument("--columns", default=None, help="--igemm: column forms reported beside the chosen one (default "
                    "band); --row-blocks: rows and/or band (default rows)")
    ap.add_argument("--row-blocks", default=None, help="the block-Toeplitz forward at these output rows per tile")
    ap.add_argument("--toeplitz", default="", help="--row-blocks: IgemmConfig.toeplitz ('' or table)")
    ap.add_argument("--left", action="store_true",
                    help="--row-blocks: the product transposed (IgemmConfig.toeplitz_left)")
    ap.add_argument("--planes", default=None,
                    help="the whole-plane forward at these flattened outputs per tile (BN), e.g. 32,64")
    ap.add_argument("--shapes", default=None, help="--planes: only these public shapes")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--pairs", default="1,2")
    ap.add_argument("--precisions", default=None, help="tl.dot precisions (default: tf32 for bf16, else tf32x3)")
    ap.add_argument("--products", default="karatsuba", help="fused kernels' complex products: karatsuba,embedded")
    ap.add_argument("--joint", action="store_true", help="the fused input-gradient kernel with the weight gradient's "
                    "sums (FusedConfig.joint_backward)")
    ap.add_argument("--staged", default=None, help="Q:P,...: the staged long_conv1d kernels")
    args = ap.parse_args()
    warps = [int(w) for w in args.warps.split(",")]
    if args.staged:
        staged_report(args.staged.split(","), [int(v) for v in args.block_rows.split(",")], warps,
                      args.products.split(","))
    elif args.fwd:
        fwd_report(args.fwd.split(","), args.dtypes.split(","), args.layouts.split(","))
    elif args.strips:
        strips_report(args.strips.split(","), args.dtypes.split(","), args.layouts.split(","))
    elif args.planes:
        plane_report(warps, [int(v) for v in args.planes.split(",")], args.shapes and args.shapes.split(","))
    elif args.row_blocks:
        row_block_report(warps, [int(v) for v in args.row_blocks.split(",")], (args.columns or "rows").split(","),
                         args.shapes and args.shapes.split(","), args.toeplitz, args.left)
    elif args.igemm:
        igemm_report(warps, [int(v) for v in args.kernel_rows.split(",")], (args.columns or "band").split(","))
    elif args.wgrad:
        tiles = [tuple(int(v) for v in t.split("x")) for t in args.tiles.split(",")] if args.tiles else None
        wgrad_report(args.dtypes.split(","), tiles)
    else:
        fused_report([int(v) for v in args.sizes.split(",")], args.dtypes.split(","),
                     [int(v) for v in args.block_rows.split(",")], warps, [int(v) for v in args.pairs.split(",")],
                     args.precisions.split(",") if args.precisions else None, args.products.split(","), args.joint)


if __name__ == "__main__":
    main()
