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
    """The default forms of the 14x14 layers compile for sm_90 without spilling: replknet_31b.s3's 4-row
    block-Toeplitz tiles (4 warps, inputs by 16-byte asynchronous copies) and unireplknet_t.s3's whole-plane tiles
    (32 flattened outputs, 4 warps), through x's strides and as contiguous runs of its planes (8-byte asynchronous
    copies)."""
    pytest.importorskip("triton")
    (s3,) = [r for r in _resources("--row-blocks", "4", "--warps", "4") if r.split()[0] == "replknet_31b.s3"]
    fields = s3.split()  # shape kernel R BM BN BK warps regs spill shared ...
    assert fields[2:4] == ["4", "64"] and fields[8] == "0" and "async {16:" in s3, s3
    strided, runs = _resources("--planes", "32", "--warps", "4", "--shapes", "unireplknet_t.s3")
    for row, kind in ((strided, "no"), (runs, "yes")):
        fields = row.split()  # shape kernel runs BM BN BK warps regs spill shared ...
        assert fields[0] == "unireplknet_t.s3" and fields[2:7] == [kind, "64", "32", "32", "4"], row
        assert fields[8] == "0", row
    assert "async {8:" in runs, runs
