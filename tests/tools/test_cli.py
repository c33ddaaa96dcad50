"""The command line: verify exits 0 on a passing suite, bench writes its table, JSON and plot."""
import json
import subprocess
import sys

import pytest
import torch

from lkconv.cli import main


def test_help_and_unknown_command(capsys):
    assert main([]) == 0
    assert "verify" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "autotune cache" in out


def test_verify_runs_and_passes(capsys):
    """The default suite: every algorithm that runs here (and auto) on the tiny CPU cases."""
    assert main(["verify", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out
    for algo in ("direct", "implicit_gemm", "fft", "torch", "auto"):
        assert f" {algo} " in out, algo


def test_verify_fails_on_a_wrong_algorithm(monkeypatch, capsys):
    """A kernel that computes the wrong thing must make verify exit non-zero."""
    from lkconv.ops.depthwise2d import dispatch

    real = dispatch.TorchAlgorithm.fwd
    monkeypatch.setattr(dispatch.TorchAlgorithm, "fwd", lambda self, *a: real(self, *a) * 1.001)
    assert main(["verify", "--algorithms", "torch", "--seed", "1"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_verify_covers_the_1d_convolutions(capsys):
    assert main(["verify", "--ops", "conv1d", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "short_conv1d" in out and "long_conv1d" in out and " 0 failed" in out


@pytest.mark.parametrize("op", ["short", "long"])
def test_verify_1d_fails_on_a_wrong_kernel(op, monkeypatch, capsys):
    """A wrong 1D result, or one in the wrong layout, must make verify exit non-zero."""
    from lkconv.tools import verify1d

    if op == "short":
        real = verify1d.short_conv1d
        monkeypatch.setattr(verify1d, "short_conv1d", lambda *a: real(*a).contiguous() * 1.001)
    else:
        real = verify1d.long_conv1d
        monkeypatch.setattr(verify1d, "long_conv1d", lambda x, k, d, causal, algo: real(x, k, d, not causal, algo))
    assert main(["verify", "--ops", "conv1d", "--dtypes", "fp32", "--seed", "2"]) == 1
    assert f"{op}_conv1d" in "".join(line for line in capsys.readouterr().out.splitlines() if "FAIL" in line)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal of --graph")
def test_bench_graph_needs_cuda(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--graph", "--device", "cpu"])
    assert "--graph needs a CUDA device" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_bench_graph_times_gpu_work(tmp_path, capsys):
    assert main(["bench", "--graph", "--shapes", "convnext_t.s1", "--dtypes", "fp32", "--layouts", "nchw",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert {r["direction"] for r in rows} == {"fwd", "fwd+bwd"}
    assert all(r["timing"] == "cuda-graph" and r["lkconv_ms"] > 0 and r["torch_ms"] > 0 for r in rows)


def test_bench_cpu_writes_json_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    cmd = [sys.executable, "-m", "lkconv", "bench", "--shapes", "convnext_t.s1,slak_t.s1.wide", "--dtypes", "fp32",
           "--layouts", "nchw", "--directions", "fwd,fwd+bwd", "--algorithm", "torch", "--out", str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "convnext_t.s1" in res.stdout and "speedup" in res.stdout
    data = json.loads((tmp_path / "bench.json").read_text())
    assert len(data["rows"]) == 4 and all(r["lkconv_ms"] > 0 and r["torch_ms"] > 0 for r in data["rows"])
    assert (tmp_path / "bench.png").stat().st_size > 1000


@pytest.mark.parametrize("op", ["long_conv1d", "short_conv1d"])
def test_bench_1d_ops_on_cpu(op, tmp_path):
    cmd = [sys.executable, "-m", "lkconv", "bench", "--op", op, "--quick", "--directions", "fwd", "--out", str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / f"bench_{op}.json").read_text())["rows"]
    assert rows and all(r["op"] == op and r["lkconv_ms"] > 0 and r["baseline_ms"] > 0 for r in rows)
