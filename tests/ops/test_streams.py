"""Side streams: when lkconv forks independent launches, in what order it waits, and that forked results equal
serial ones."""
import types

import pytest
import torch
import torch.nn.functional as F

import lkconv
from lkconv.ops import _streams
from lkconv.ops.depthwise2d import direct, dispatch
from lkconv.testing import rel_error

from ..conftest import gpu
from .helpers import warm_on_side_stream


def test_worth_forking_needs_cuda_size_float32_and_the_switch(monkeypatch):
    cuda_like = types.SimpleNamespace(is_cuda=True, dtype=torch.float32)
    monkeypatch.setattr(_streams, "_ENABLED", True)
    assert _streams.worth_forking(cuda_like, _streams.MIN_MACS)
    assert not _streams.worth_forking(cuda_like, _streams.MIN_MACS - 1)
    assert not _streams.worth_forking(torch.empty(1), 2 * _streams.MIN_MACS)  # CPU: never
    bf16_like = types.SimpleNamespace(is_cuda=True, dtype=torch.bfloat16)
    assert not _streams.worth_forking(bf16_like, 2 * _streams.MIN_MACS)  # measured slower in eager steps
    with _streams.forcing():
        assert _streams.worth_forking(bf16_like, 1)
    assert not _streams.worth_forking(bf16_like, 2 * _streams.MIN_MACS)
    monkeypatch.setattr(_streams, "_ENABLED", False)
    assert not _streams.worth_forking(cuda_like, 2 * _streams.MIN_MACS)


@pytest.mark.parametrize("value,on", [("0", False), ("off", False), ("1", True), ("", True)])
def test_streams_switch_reads_the_environment(monkeypatch, value, on):
    monkeypatch.setenv("LKCONV_STREAMS", value)
    assert _streams._enabled() is on


class _FakeStream:
    """Records the calls run_forked makes, in order, into a shared log."""

    def __init__(self, name, log, device_index=0):
        self.name, self.log, self.device_index, self.cuda_stream = name, log, device_index, id(self)

    def wait_stream(self, other):
        self.log.append(("wait", self.name, other.name))


@pytest.fixture
def fake_streams(monkeypatch):
    log, current = [], []
    main = _FakeStream("main", log)
    current.append(main)
    sides = {}

    def side_stream(caller, index):
        return sides.setdefault((caller.name, index), _FakeStream(f"{caller.name}/side{index}", log))

    class _Ctx:
        def __init__(self, s):
            self.s = s

        def __enter__(self):
            current.append(self.s)

        def __exit__(self, *exc):
            current.pop()

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current[-1])
    monkeypatch.setattr(torch.cuda, "stream", _Ctx)
    monkeypatch.setattr(_streams, "side_stream", side_stream)
    monkeypatch.setattr(_streams, "_record", lambda result, stream: log.append(("record", result, stream.name)))
    return types.SimpleNamespace(log=log, current=current, main=main)


def test_run_forked_orders_forks_and_joins(fake_streams):
    log, current = fake_streams.log, fake_streams.current

    def work(name, result=None):
        def fn():
            log.append(("run", name, current[-1].name))
            return result
        return fn

    out = _streams.run_forked(torch.device("cuda"), [work("a", 1), work("b", 2), work("c", 3)], 4)
    assert out == [1, 2, 3]
    assert log == [
        ("wait", "main/side4", "main"), ("run", "b", "main/side4"),  # each side starts after the caller's work
        ("wait", "main/side5", "main"), ("run", "c", "main/side5"),
        ("run", "a", "main"),  # the first function on the caller's stream
        ("wait", "main", "main/side4"), ("wait", "main", "main/side5"),  # the caller waits for every side
        ("record", 2, "main"), ("record", 3, "main"),  # side results are recorded on the caller's stream
    ]
    assert current == [fake_streams.main]


def test_run_forked_joins_when_a_function_raises(fake_streams):
    log = fake_streams.log

    def boom():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        _streams.run_forked(torch.device("cuda"), [boom, lambda: None], 0)
    assert log[-1] == ("wait", "main", "main/side0")  # the side stream rejoined before the error propagated
    log.clear()
    with pytest.raises(RuntimeError, match="out of memory"):
        _streams.run_forked(torch.device("cuda"), [lambda: None, boom], 0)
    assert log == [("wait", "main/side0", "main"), ("wait", "main", "main/side0")]
    assert fake_streams.current == [fake_streams.main]


def test_separate_pair_forks_only_cuda_work_of_lkconv_kernels(monkeypatch):
    """The gradient pair forks for lkconv's own kernels on CUDA tensors of enough work, and never on CPU."""
    forks = []
    monkeypatch.setattr(_streams, "run_forked", lambda dev, fns, side: forks.append(side) or [f() for f in fns])
    monkeypatch.setattr(_streams, "_ENABLED", True)
    monkeypatch.setattr(_streams, "MIN_MACS", 0)
    dy, x, w = torch.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4), torch.ones(2, 1, 3, 3)
    hit = lambda name: (name, lambda dy, x, w: name)  # noqa: E731
    assert dispatch.separate_pair(hit("direct"), hit("direct"), dy, x, w) == ("direct", "direct")
    assert not forks  # CPU tensors
    monkeypatch.setattr(_streams, "worth_forking", lambda t, macs: True)
    for pair, forked in (((hit("direct"), hit("direct")), True), ((hit("direct"), hit("implicit_gemm")), True),
                         ((hit("torch"), hit("direct")), False), ((hit("direct"), hit("fft")), False)):
        forks.clear()
        assert dispatch.separate_pair(*pair, dy, x, w) == (pair[0][0], pair[1][0])
        assert forks == ([_streams.WGRAD_SIDE] if forked else []), pair


def _step(x, w, dy, pad, algorithm):
    xs, ws = x.detach().requires_grad_(), w.detach().requires_grad_()
    y = lkconv.depthwise_conv2d(xs, ws, None, 1, pad, algorithm=algorithm)
    return (y,) + torch.autograd.grad(y, (xs, ws), dy)


def _spy(monkeypatch):
    forks = []
    real = _streams.run_forked
    monkeypatch.setattr(_streams, "run_forked",
                        lambda dev, fns, side: forks.append((len(fns), side)) or real(dev, fns, side))
    return forks


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
    assert len(plan.launches) == 2
    forks = _spy(monkeypatch)
    monkeypatch.setattr(_streams, "_ENABLED", False)
    y_serial = direct.conv_fwd(x, w, None, (1, 1), (7, 7, 1, 1), (1, 1), torch.full_like(dy, float("nan")), cfg)
    serial = _step(x, w, dy, pad, "direct")
    assert not forks
    monkeypatch.setattr(_streams, "_ENABLED", True)
    monkeypatch.setattr(_streams, "MIN_MACS", 0)
    y_forked = direct.conv_fwd(x, w, None, (1, 1), (7, 7, 1, 1), (1, 1), torch.full_like(dy, float("nan")), cfg)
    assert forks == [(2, _streams.LAUNCH_SIDE)]  # the two strips
    forked = _step(x, w, dy, pad, "direct")
    torch.cuda.synchronize()
    assert (2, _streams.WGRAD_SIDE) in forks  # the gradient pair
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
def test_side_streams_belong_to_their_caller_stream():
    a, b = torch.cuda.Stream(), torch.cuda.Stream()
    assert _streams.side_stream(a, 0) is _streams.side_stream(a, 0)
    assert _streams.side_stream(a, 0) is not _streams.side_stream(b, 0)
    assert _streams.side_stream(a, 0) is not _streams.side_stream(a, 1)


@gpu
def test_forked_backward_inside_a_cuda_graph(monkeypatch):
    """Forks and joins captured into a graph: replayed twice on fresh inputs, the step matches float64."""
    monkeypatch.setattr(_streams, "_ENABLED", True)
    monkeypatch.setattr(_streams, "MIN_MACS", 0)
    dispatch.forget_choices()
    x = torch.randn(2, 6, 40, 40, device="cuda", requires_grad=True)
    w = torch.randn(6, 1, 31, 5, device="cuda", requires_grad=True)
    dy = torch.randn(2, 6, 40, 40, device="cuda")

    def step():
        y = lkconv.depthwise_conv2d(x, w, None, 1, (15, 2), algorithm="direct")
        return (y,) + torch.autograd.grad(y, (x, w), dy)

    warm_on_side_stream(step)
    forks = _spy(monkeypatch)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    assert (2, _streams.WGRAD_SIDE) in forks  # the captured step forked
    for _ in range(2):
        for t in (x, w, dy):
            t.detach().copy_(torch.randn_like(t))
        graph.replay()
        torch.cuda.synchronize()
        x64, w64 = (t.detach().double().requires_grad_() for t in (x, w))
        ref = F.conv2d(x64, w64, None, 1, (15, 2), 1, 6)
        for got, want in zip(out, (ref,) + torch.autograd.grad(ref, (x64, w64), dy.double())):
            assert rel_error(got, want) < 1e-5
    dispatch.forget_choices()


def test_forcing_forks_everything_then_restores(monkeypatch):
    monkeypatch.setattr(_streams, "_ENABLED", False)
    before = _streams.MIN_MACS
    cuda_like = types.SimpleNamespace(is_cuda=True)
    with _streams.forcing():
        assert _streams.worth_forking(cuda_like, 1) and not _streams.worth_forking(torch.empty(1), 1)
    assert _streams.MIN_MACS == before and not _streams._ENABLED
    with pytest.raises(KeyError):
        with _streams.forcing():
            raise KeyError("inside")
    assert _streams.MIN_MACS == before and not _streams._ENABLED


def test_verify_checks_side_streams_only_on_cuda(device):
    from lkconv.tools import verify

    results = verify.run_suite(device, ["direct"], ["fp32"], ["nchw", "nhwc"], 0, 7, tiny=device.type == "cpu")
    forked = [r for r in results if r.algorithm == "direct+streams"]
    assert all(r.ok for r in results), verify.format_table(results)
    if device.type == "cuda":
        plain = [r for r in results if r.algorithm == "direct" and r.case.layout != "strided"]
        assert len(forked) == len(plain) > 0
    else:
        assert not forked
    before = (_streams.MIN_MACS, _streams._ENABLED)
    res = verify.check(verify.Case(2, 3, 9, 8, 5, 3, padding=2), "direct", device, forked=True)
    assert res.ok and res.algorithm == "direct+streams", verify.format_table([res])
    assert (_streams.MIN_MACS, _streams._ENABLED) == before
