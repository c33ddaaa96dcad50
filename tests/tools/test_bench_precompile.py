"""lkconv bench's parallel compile: one task per (configuration, algorithm, direction), each runnable alone."""

from lkconv.ops.depthwise2d import dispatch
from lkconv.tools import bench

SHAPE = dict(name="tiny", n=1, c=2, h=6, w=7, kh=3, kw=5, d=1, s=1)


def test_tasks_cover_every_algorithm_and_direction_of_auto():
    tasks = bench.precompile_tasks([SHAPE], ["fp32", "bf16"], ["nchw"], "auto", True)
    kinds = {(t[1], t[3], t[4]) for t in tasks}
    for dt in ("fp32", "bf16"):
        for alg in ("direct", "implicit_gemm", "fft"):
            assert {(dt, alg, d) for d in ("fwd", "dgrad", "wgrad")} <= kinds
        assert (dt, "direct", "wgrad:split1") in kinds and (dt, "fft", "bwd") in kinds
    assert len(tasks) == len(kinds) == 2 * (3 * 3 + 2)
    assert {t[3] for t in bench.precompile_tasks([SHAPE], ["fp32"], ["nchw"], "direct", True)} == {"direct"}
    assert {t[4] for t in bench.precompile_tasks([SHAPE], ["fp32"], ["nchw"], "auto", False)} == {"fwd"}


def test_each_task_runs_its_own_direction(monkeypatch, device):
    calls = []
    real_run, real_both = dispatch.run, dispatch.backward_both
    monkeypatch.setattr(dispatch, "run", lambda direction, alg, *a: calls.append((alg, direction)) or real_run(
        direction, alg, *a))
    monkeypatch.setattr(dispatch, "backward_both", lambda alg, *a: calls.append((alg, "bwd")) or real_both(alg, *a))
    for task in bench.precompile_tasks([SHAPE], ["fp32"], ["nchw", "nhwc"], "auto", True):
        calls.clear()
        assert bench.compile_task(task, device.type) is None, task
        if task[4] != "wgrad:split1":
            assert calls == [(task[3], task[4])], (task[1:], calls)


def test_a_failing_task_reports_itself(monkeypatch):
    def boom(*a):
        raise RuntimeError("compile failed")

    monkeypatch.setattr(dispatch, "run", boom)
    err = bench.compile_task((SHAPE, "fp32", "nchw", "direct", "fwd"), "cpu")
    assert "tiny fp32 nchw direct fwd" in err and "compile failed" in err
    monkeypatch.setattr(dispatch, "run", lambda *a: (_ for _ in ()).throw(ValueError("cannot serve")))
    assert bench.compile_task((SHAPE, "fp32", "nchw", "implicit_gemm", "fwd"), "cpu") is None  # not served: fine


def test_bench_precompiles_only_on_cuda(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(bench, "precompile", lambda *a: seen.append(a))
    from lkconv.cli import main

    main(["bench", "--device", "cpu", "--shapes", "convnext_t.s1", "--dtypes", "fp32", "--layouts", "nchw",
          "--directions", "fwd", "--jobs", "4", "--out", str(tmp_path)])
    assert not seen
