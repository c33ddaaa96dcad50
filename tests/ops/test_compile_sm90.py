"""The direct forward kernel compiles for an H100 (sm_90) in the specializations the planner makes, per strip
and not, without spilling: compiled here without a GPU through Triton's bundled ptxas.

The interpreter that runs the other kernel tests on CPU skips Triton's compiler, so a kernel that only fails to
compile (a condition that is not a compile-time constant on some Triton version, say) would pass them.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_direct_forward_compiles_for_sm90():
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_resources.py"), "--fwd",
                          "unireplknet_t.s3,convnext_t.s1", "--dtypes", "fp32,bf16", "--layouts", "nchw,nhwc"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 2 * 2 * 2 * 2 * 2, out.stdout  # shapes x directions x layouts x dtypes x (per strip, not)
    fixed = {int(r[6]) for r in rows}  # columns: shape dir layout dtype config strips fixed a0 regs spill ...
    assert fixed == {0, 1, 2}, fixed  # one strip, two strips in one launch and the runtime-strip kernel
    assert all(int(r[9]) == 0 for r in rows), out.stdout  # no spill stack


def _resources(*args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_resources.py"), *args],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return [line for line in out.stdout.splitlines()[1:] if line.strip()]


def test_implicit_gemm_default_small_plane_forms_compile_for_sm90():
    """The default block forms of the 13x13 and 27x27 layers compile for sm_90 without spilling: replknet_31b.s3's
    4-row block-Toeplitz tiles of whole rows (4 warps, inputs by 16-byte asynchronous copies), unireplknet_t.s1's
    4-row band blocks (128 pairs, 8 warps, 16-byte copies) and unireplknet_t.s3's whole-plane tiles (64 flattened
    outputs, 4 warps, the tap canvas, contiguous runs of its planes by 8-byte asynchronous copies)."""
    pytest.importorskip("triton")
    rows = _resources("--row-blocks", "4", "--columns", "rows,band", "--warps", "4,8", "--shapes",
                      "replknet_31b.s3,unireplknet_t.s1")
    (s3,) = [r for r in rows if r.split()[0] == "replknet_31b.s3" and r.split()[2] == "rows" and r.split()[7] == "4"]
    fields = s3.split()  # shape kernel form R BM BN BK warps regs spill shared ...
    assert fields[3:5] == ["4", "64"] and fields[9] == "0" and "async {16:" in s3, s3
    (s1,) = [r for r in rows if r.split()[0] == "unireplknet_t.s1" and r.split()[2] == "band" and r.split()[7] == "8"]
    fields = s1.split()
    assert fields[3:7] == ["4", "128", "16", "32"] and fields[9] == "0" and "async {16:" in s1, s1
    planes = _resources("--planes", "64", "--warps", "4", "--shapes", "unireplknet_t.s3")
    (canvas,) = [r for r in planes if r.split()[2:4] == ["canvas", "yes"]]
    fields = canvas.split()  # shape kernel T runs BM BN BK warps regs spill shared ...
    assert fields[0] == "unireplknet_t.s3" and fields[4:8] == ["64", "64", "32", "4"], canvas
    assert fields[9] == "0" and "async {8:" in canvas, canvas