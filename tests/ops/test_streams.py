"""Side streams: when lkconv forks independent launches, and that forked results equal serial ones."""
import types

import pytest
import torch
import torch.nn.functional as F

import lkconv
from lkconv.ops import _streams
from lkconv.ops.depthwise2d import direct, dispatch
from lkconv.testing import rel_error

from ..conftest import gpu


def test_worth_forking_needs_cuda_size_and_the_switch(monkeypatch):
    cuda_like = types.SimpleNamespace(is_cuda=True)
    monkeypatch.setattr(_streams, "_ENABLED", True)
    assert _streams.worth_forking(cuda_like, _streams.MIN_MACS)
    assert not _streams.worth_forking(cuda_like, _streams.MIN_MACS - 1)
    assert not _streams.worth_forking(torch.empty(1), 2 * _streams.MIN_MACS)  # CPU: never
    monkeypatch.setattr(_streams, "_ENABLED", False)
    assert not _streams.worth_forking(cuda_like, 2 * _streams.MIN_MACS)


@pytest.mark.parametrize("value,on", [("0", False), ("off", False), ("1", True), ("", True)])
def test_streams_switch_reads_the_environment(monkeypatch, value, on):
    monkeypatch.setenv("LKCONV_STREAMS", value)
    assert _streams._enabled() is on


def test_cpu_backward_pair_does_not_fork(monkeypatch):
    forks = []
    monkeypatch.setattr(_streams, "run_forked", lambda *a: forks.append(a))
    monkeypatch.setattr(_streams, "MIN_MACS", 0)
    x, w = torch.randn(1, 2, 6, 6, requires_grad=True), torch.randn(2, 1, 3, 3, requires_grad=True)
    lkconv.depthwise_conv2d(x, w, None, 1, 1).sum().backward()
    assert not forks


def _step(x, w, dy, pad, algorithm):
    xs, ws = x.detach().requires_grad_(), w.detach().requires_grad_()
    y = lkconv.depthwise_conv2d(xs, ws, None, 1, pad, algorithm=algorithm)
    return (y,) + torch.autograd.grad(y, (xs, ws), dy)


@gpu
def test_forked_launches_equal_serial_ones_and_float64(monkeypatch):
    """A forward of two strip launches and the pair of gradients, forked (every size) and serial: same bits."""
    monkeypatch.setattr(direct, "_ONE_LAUNCH_TAPS", 0)  # one launch per strip position
    direct._plan_fwd.cache_clear()
    dispatch.forget_choices()
    x = torch.randn(3, 5, 29, 23, device="cuda")
    w = torch.randn(5, 1, 15, 3, device="cuda")
    dy = torch.randn(3, 5, 29, 23, device="cuda")
    pad = (7, 1)
    cfg = direct.DirectConfig(15, 2, 16, 1)  # 29 lines: two strips
    plan = direct._plan_fwd(tuple(x.shape), x.stride(), tuple(dy.shape), dy.stride(), tuple(w.shape), w.stride(), 4,
                            (1, 1), (1, 1), 7, 1, 1, 1, ((0, 1), (0, 1)), False, cfg)
    assert len(plan.launches) > 1
    forks = []
    real = _streams.run_forked
    monkeypatch.setattr(_streams, "run_forked", lambda dev, fns, side: forks.append(len(fns)) or real(dev, fns, side))
    monkeypatch.setattr(_streams, "_ENABLED", False)
    y_serial = direct.conv_fwd(x, w, None, (1, 1), (7, 7, 1, 1), (1, 1), torch.full_like(dy, float("nan")), cfg)
    serial = _step(x, w, dy, pad, "direct")
    assert not forks
    monkeypatch.setattr(_streams, "_ENABLED", True)
    monkeypatch.setattr(_streams, "MIN_MACS", 0)
    y_forked = direct.conv_fwd(x, w, None, (1, 1), (7, 7, 1, 1), (1, 1), torch.full_like(dy, float("nan")), cfg)
    forked = _step(x, w, dy, pad, "direct")
    torch.cuda.synchronize()
    assert forks and forks[0] == len(plan.launches) and 2 in forks  # the strips, and the gradient pair
    assert torch.equal(y_forked, y_serial)
    for a, b in zip(forked, serial):
        assert torch.equal(a, b)
    x64, w64 = (t.double().requires_grad_() for t in (x, w))
    ref = F.conv2d(x64, w64, None, 1, pad, 1, 5)
    for got, want in zip(forked, (ref,) + torch.autograd.grad(ref, (x64, w64), dy.double())):
        assert rel_error(got, want) < 1e-5
    direct._plan_fwd.cache_clear()
    dispatch.forget_choices()


@gpu
def test_forked_backward_inside_a_cuda_graph(monkeypatch):
    """Forks and joins captured into a graph: replayed on fresh inputs, the step matches float64."""
    monkeypatch.setattr(_streams, "_ENABLED", True)
    monkeypatch.setattr(_streams, "MIN_MACS", 0)
    dispatch.forget_choices()
    x = torch.randn(2, 6, 40, 40, device="cuda", requires_grad=True)
    w = torch.randn(6, 1, 31, 5, device="cuda", requires_grad=True)
    dy = torch.randn(2, 6, 40, 40, device="cuda")

    def step():
        y = lkconv.depthwise_conv2d(x, w, None, 1, (15, 2), algorithm="direct")
        return (y,) + torch.autograd.grad(y, (x, w), dy)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for t in (x, w, dy):
        t.detach().copy_(torch.randn_like(t))
    graph.replay()
    torch.cuda.synchronize()
    x64, w64 = (t.detach().double().requires_grad_() for t in (x, w))
    ref = F.conv2d(x64, w64, None, 1, (15, 2), 1, 6)
    for got, want in zip(out, (ref,) + torch.autograd.grad(ref, (x64, w64), dy.double())):
        assert rel_error(got, want) < 1e-5
    dispatch.forget_choices()
