"""Shared assertions and set-ups of the op tests."""
import torch

from lkconv.ops import autotune_cache
from lkconv.ops.depthwise2d import dispatch
from lkconv.tools import verify


def fake_cuda_autotune_cache(monkeypatch, tmp_path) -> str:
    """An empty autotune cache in tmp_path, keys without a device name, no graph capture in progress; returns the
    key prefix of the cache's entries."""
    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    autotune_cache.clear_memory()
    monkeypatch.setattr(dispatch, "_cache_key", lambda prob: "depthwise2d|fake|" + prob.key())
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    return "depthwise2d|fake|"


def assert_verified(case, algorithm, device):
    """``lkconv verify``'s check of one case: runs, and every direction is within the case's tolerance."""
    res = verify.check(case, algorithm, device)
    assert res.error is None, res.error
    for name, err in res.errors.items():
        assert err <= res.tol, f"{name}: rel error {err:.2e} > {res.tol:.0e} for {case.label()} ({algorithm})"
    return res


def warm_on_side_stream(step, times: int = 3) -> None:
    """Run ``step`` a few times on a side stream, as CUDA graph capture wants before it (choices made, kernels
    compiled); the current stream then waits for it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(times):
            step()
    torch.cuda.current_stream().wait_stream(side)
