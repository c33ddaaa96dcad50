"""The FFT algorithm: every direction against the float64 reference; workspace blocking; spectrum reuse."""
import pytest
import torch

import lkconv
from lkconv.ops.depthwise2d import fft
from lkconv.testing import rel_error
from lkconv.tools import verify

from ..conftest import gpu
from .helpers import assert_verified, fake_cuda_autotune_cache, warm_on_side_stream

CASES = verify.base_cases(tiny=True) + [
    verify.Case(1, 3, 30, 33, 31, 31, padding=15),
    verify.Case(2, 4, 21, 19, 5, 11, stride=(3, 2), padding=(2, 7), dilation=(2, 3), mult=2, layout="nhwc"),
    verify.Case(1, 2, 16, 16, 9, 9, padding=0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label() for c in CASES])
def test_fft_matches_float64_reference(case, device):
    assert_verified(case, "fft", device)


def test_fft_channel_blocks_with_multiplier(monkeypatch):
    """A workspace budget smaller than one channel forces one channel per block (multiplier 3)."""
    monkeypatch.setenv("LKCONV_FFT_WORKSPACE_MB", "0.0001")
    x = torch.randn(2, 4, 13, 11, dtype=torch.float64, requires_grad=True)
    w = torch.randn(12, 1, 5, 3, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(2, 12, 7, 11, dtype=torch.float64)
    y = lkconv.depthwise_conv2d(x, w, None, (2, 1), (2, 1), (1, 1), algorithm="fft")
    y.backward(dy)
    xr, wr = x.detach().requires_grad_(), w.detach().requires_grad_()
    yr = torch.nn.functional.conv2d(xr, wr, None, (2, 1), (2, 1), 1, 4)
    yr.backward(dy)
    assert len(fft._channel_blocks(2, 12, (16, 16), 8)) == 12
    assert rel_error(y, yr) < 1e-12
    assert rel_error(x.grad, xr.grad) < 1e-12 and rel_error(w.grad, wr.grad) < 1e-12


def test_next_fast_len_has_small_prime_factors():
    assert [fft.next_fast_len(n) for n in (1, 11, 13, 17, 97, 121, 1000)] == [1, 12, 14, 18, 98, 125, 1000]
    for n in range(1, 300):
        m = fft.next_fast_len(n)
        assert m >= n
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        assert r == 1


def test_weight_spectrum_reused_in_inference_and_invalidated_by_updates():
    conv = lkconv.nn.DepthwiseConv2d(3, 3, 7, padding=3, bias=False, algorithm="fft").eval()
    x = torch.randn(1, 3, 12, 12)
    calls = []
    real = torch.fft.rfft2
    with torch.no_grad():
        torch.fft.rfft2 = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
        try:
            y1 = conv(x)
            n_first = len(calls)
            y2 = conv(x)
            assert len(calls) == 2 * n_first - 1  # only the input's spectrum: the weight's came from the cache
            conv.weight.mul_(2)  # in-place update bumps the version: recomputed
            y3 = conv(x)
            assert len(calls) == 3 * n_first - 1
        finally:
            torch.fft.rfft2 = real
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(y3, 2 * y1, rtol=1e-5, atol=1e-5)


@gpu
def test_weight_spectrum_made_inside_a_graph_capture_is_not_kept():
    """An inference call first seen inside a CUDA-graph capture: its weight spectrum holds values only once the
    graph replays, so an eager call after the capture (before any replay) computes its own; both match float64."""
    x = torch.randn(2, 4, 24, 24, device="cuda")
    warm = lkconv.nn.DepthwiseConv2d(4, 4, 9, padding=4, algorithm="fft").cuda().eval()
    conv = lkconv.nn.DepthwiseConv2d(4, 4, 9, padding=4, algorithm="fft").cuda().eval()
    with torch.no_grad():
        warm_on_side_stream(lambda: warm(x))  # transforms planned and kernels compiled; conv's weight is new
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = conv(x)
        eager = conv(x)
        graph.replay()
        torch.cuda.synchronize()
        ref = torch.nn.functional.conv2d(x.double(), conv.weight.double(), conv.bias.double(), 1, 4, 1, 4)
    assert rel_error(eager, ref) < 1e-4 and rel_error(out, ref) < 1e-4


def test_fft_out_of_memory_falls_back(monkeypatch):
    """An out-of-memory error in the FFT path is answered by another algorithm, not raised."""
    from lkconv.ops.depthwise2d import dispatch

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    for name in ("conv_fwd", "conv_dgrad", "conv_wgrad", "conv_backward"):
        monkeypatch.setattr(fft, name, oom)
    dispatch.forget_choices()
    x = torch.randn(1, 2, 9, 8, requires_grad=True)
    w = torch.randn(2, 1, 3, 3, requires_grad=True)
    y = lkconv.depthwise_conv2d(x, w, None, 1, 1, algorithm="fft")
    y.backward(torch.ones_like(y))
    xr, wr = x.detach().requires_grad_(), w.detach().requires_grad_()
    yr = torch.nn.functional.conv2d(xr, wr, None, 1, 1, 1, 2)
    yr.backward(torch.ones_like(yr))
    torch.testing.assert_close(y, yr)
    torch.testing.assert_close(x.grad, xr.grad)
    torch.testing.assert_close(w.grad, wr.grad)


@pytest.mark.parametrize("kernels,cases", [(False, 60), (True, 6)], ids=["torch-ops", "triton-kernels"])
def test_fft_random_geometries_match_float64_conv(kernels, cases, monkeypatch):
    """Frames without wrap-around for any padding (asymmetric, wider than the kernel), stride, dilation, multiplier;
    with the frame, crop and lag-spectrum passes in torch ops and (fewer cases: interpreted on CPU) in Triton."""
    import random
    import torch.nn.functional as F

    if not kernels:
        monkeypatch.setattr(fft, "can_launch", lambda t: False)
    rng = random.Random(7)
    torch.manual_seed(7)
    checked = 0
    while checked < cases:
        n, c, m = rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, 3)
        h, w, kh, kw = rng.randint(1, 12), rng.randint(1, 12), rng.randint(1, 9), rng.randint(1, 9)
        d, s = (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(1, 3), rng.randint(1, 3))
        pad = [rng.randint(0, 12) for _ in range(4)]
        if h + pad[0] + pad[1] < (kh - 1) * d[0] + 1 or w + pad[2] + pad[3] < (kw - 1) * d[1] + 1:
            continue
        checked += 1
        x = torch.randn(n, c, h, w, dtype=torch.float64)
        wt = torch.randn(c * m, 1, kh, kw, dtype=torch.float64)
        xp = F.pad(x, (pad[2], pad[3], pad[0], pad[1])).requires_grad_()
        wr = wt.clone().requires_grad_()
        y = F.conv2d(xp, wr, None, s, 0, d, c)
        dy = torch.randn_like(y)
        y.backward(dy)
        dx = xp.grad[..., pad[0]: pad[0] + h, pad[2]: pad[2] + w]
        label = (n, c, m, h, w, kh, kw, d, s, pad)
        assert rel_error(fft.conv_fwd(x, wt, None, s, pad, d), y) < 1e-12, label
        assert rel_error(fft.conv_dgrad(dy, x.shape, wt, s, pad, d), dx) < 1e-12, label
        assert rel_error(fft.conv_wgrad(dy, x, wt.shape, s, pad, d), wr.grad) < 1e-12, label
        dx_both, dw_both = fft.conv_backward(dy, x, wt, s, pad, d)
        assert rel_error(dx_both, dx) < 1e-12 and rel_error(dw_both, wr.grad) < 1e-12, label


def test_fft_frame_is_smaller_than_the_padded_input():
    """56x56 with a 31x31 kernel and padding 15: a 72-point frame (the padded input alone is 86 wide)."""
    geo = fft._Geometry((56, 56), (31, 31), (1, 1), (15, 15, 15, 15), (1, 1))
    assert geo.frame == (72, 72)
    rows = geo.taps(torch.device("cpu"))[0].tolist()
    assert rows[:2] == [15, 14] and rows[-1] == (15 - 30) % 72


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_backward_takes_one_spectrum_of_the_output_gradient(compiled, monkeypatch):
    """With "fft" for both gradients, backward transforms dy once, eager and under torch.compile (one custom op
    for both gradients); output and gradients checked against float64."""
    from lkconv.ops.depthwise2d import dispatch

    dispatch.forget_choices()
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    fn = lambda x, w: lkconv.depthwise_conv2d(x, w, None, 1, (2, 1), algorithm="fft")  # noqa: E731
    if compiled:
        fn = torch.compile(fn, fullgraph=True, backend="aot_eager")
    y = fn(x, w)
    dy = torch.randn_like(y)
    calls = []
    real = torch.fft.rfft2
    monkeypatch.setattr(torch.fft, "rfft2", lambda *a, **k: (calls.append(a[0].shape), real(*a, **k))[1])
    y.backward(dy)
    assert len(calls) == 3  # dy, x and the kernel: not dy twice
    xr, wr = x.detach().requires_grad_(), w.detach().requires_grad_()
    yr = torch.nn.functional.conv2d(xr, wr, None, 1, (2, 1), 1, 3)
    yr.backward(dy)
    assert rel_error(y, yr) < 1e-12
    assert rel_error(x.grad, xr.grad) < 1e-12 and rel_error(w.grad, wr.grad) < 1e-12


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_frame_crop_and_lag_kernels_match_torch_ops(layout, dtype, device):
    """The Triton passes of the FFT algorithm against their torch-op references (odd sizes, steps, bias)."""
    from lkconv.ops.depthwise2d import fft_kernels

    mf = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    t = torch.randn(2, 37, 5, 7, device=device).to(dtype).contiguous(memory_format=mf)
    for step in ((1, 1), (2, 3)):
        got = fft_kernels.frame(t, (13, 23), torch.float32, step)
        assert torch.equal(got, fft.framed_reference(t, (13, 23), torch.float32, step))
    src = torch.randn(2, 37, 13, 23, device=device)
    bias = torch.randn(37, device=device).to(dtype)
    for step, b in (((1, 1), None), ((2, 3), bias)):
        out = torch.empty(2, 37, 6, 7, device=device, dtype=dtype, memory_format=mf)
        fft_kernels.crop(src, out, b, step)
        ref = src[..., : 11: step[0], : 19: step[1]][..., :6, :7]
        ref = ref if b is None else ref + b.float().view(1, -1, 1, 1)
        exact = dict(rtol=0, atol=0) if dtype == torch.float32 else {}  # the interpreter may round bf16 down
        torch.testing.assert_close(out, ref.to(dtype), **exact)
    dyf = torch.randn(11, 6, 5, 4, dtype=torch.complex64, device=device)  # more images than batch groups
    for m, c in ((1, 6), (3, 2)):
        xf = torch.randn(11, c, 5, 4, dtype=torch.complex64, device=device)
        want = fft.lag_spectrum_reference(dyf, xf.clone(), m)
        torch.testing.assert_close(fft_kernels.lag_spectrum(dyf, xf, m), want, rtol=1e-5, atol=1e-5)


def test_joint_backward_chosen_by_measurement_when_fft_won_one_gradient(monkeypatch):
    """"auto" with the FFT for one gradient only: the pair is timed both ways once, and the winner runs."""
    from lkconv.ops.depthwise2d import dispatch, op
    from lkconv.ops.depthwise2d.params import parse_conv_args

    x, w = torch.randn(2, 3, 9, 9, dtype=torch.float64), torch.randn(3, 1, 5, 5, dtype=torch.float64)
    dy = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    geom = parse_conv_args(x, w, 1, 2, 1, "zeros")
    ran, asked = [], []
    for verdict in ("joint", "separate"):
        call = op._Call(geom, "auto")
        call.bound = {"dgrad": ("direct", lambda *a: ran.append("direct dgrad") or "dx"),
                      "wgrad": ("fft", lambda *a: ran.append("fft wgrad") or "dw")}
        monkeypatch.setattr(dispatch, "choose_backward",
                            lambda prob, sep, joint, v=verdict: asked.append(prob.direction) or v)
        monkeypatch.setattr(dispatch, "backward_both", lambda name, *a: ran.append(f"{name} joint") or ("dx", "dw"))
        ran.clear()
        assert call.run_backward(dy, x, w, True, True) == ("dx", "dw")
        assert call.run_backward(dy, x, w, True, True) == ("dx", "dw")
        expected = ["fft joint"] * 2 if verdict == "joint" else ["direct dgrad", "fft wgrad"] * 2
        assert ran == expected
    assert asked == ["bwd:direct+fft"] * 2  # once per call signature, keyed by the pair it was timed against
    ran.clear()
    assert call.run_backward(dy, x, w, False, True) == (None, "dw") and ran == ["fft wgrad"]


def test_joint_backward_timed_against_pairs_the_fft_came_close_to(monkeypatch, tmp_path):
    """"auto" with the same algorithm for both gradients: the FFT's joint backward is timed against the pair only
    where the FFT's measured gradients (autotune cache) come within reach of the pair's; never for an explicit
    algorithm."""
    from lkconv.ops import autotune_cache
    from lkconv.ops.depthwise2d import dispatch, op
    from lkconv.ops.depthwise2d.params import parse_conv_args
    from lkconv.ops.depthwise2d.problem import Problem

    prefix = fake_cuda_autotune_cache(monkeypatch, tmp_path)
    x, w = torch.randn(2, 3, 9, 9, dtype=torch.float64), torch.randn(3, 1, 5, 5, dtype=torch.float64)
    dy = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    geom = parse_conv_args(x, w, 1, 2, 1, "zeros")

    def measured(fft_ms, direct_ms):
        for d in ("dgrad", "wgrad"):
            prob = Problem.make(d, x, w, geom.stride, geom.pad, geom.dilation)
            autotune_cache.store(prefix + prob.key(), {"algorithm": "direct",
                                                       "times_ms": {"direct": direct_ms, "fft": fft_ms}})

    asked, ran = [], []
    monkeypatch.setattr(dispatch, "choose_backward", lambda prob, sep, joint: asked.append(prob.direction) or "joint")
    monkeypatch.setattr(dispatch, "backward_both", lambda name, *a: ran.append(f"{name} joint") or ("dx", "dw"))
    bound = {"dgrad": ("direct", lambda *a: ran.append("direct dgrad") or "dx"),
             "wgrad": ("direct", lambda *a: ran.append("direct wgrad") or "dw")}
    for fft_ms, algorithm, expect_asked in ((1.4, "auto", True), (3.0, "auto", False), (1.4, "direct", False)):
        measured(fft_ms, 1.3)  # FFT 1.4 ms per gradient: 0.6 * 2.8 < 2.6 ms of the pair; 3.0 ms: out of reach
        call = op._Call(geom, algorithm)
        call.bound = dict(bound)
        asked.clear(), ran.clear()
        for _ in range(2):
            assert call.run_backward(dy, x, w, True, True) == ("dx", "dw")
        assert asked == (["bwd:direct+direct"] if expect_asked else [])
        assert ran == (["fft joint"] * 2 if expect_asked else ["direct dgrad", "direct wgrad"] * 2)


def test_choose_backward_is_measured_once_and_cached(monkeypatch, tmp_path):
    import dataclasses

    from lkconv.ops.depthwise2d import dispatch
    from lkconv.ops.depthwise2d.problem import Problem

    fake_cuda_autotune_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(dispatch, "_loop_ms", lambda fn, reps=3: fn())
    prob = Problem.make("bwd", torch.empty(2, 3, 9, 9), torch.empty(3, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1))
    prob = dataclasses.replace(prob, device=torch.device("cuda", 0))
    timed = []
    sep, joint = (lambda: timed.append("separate") or 1.9), (lambda: timed.append("joint") or 1.6)
    assert dispatch.choose_backward(prob, sep, joint) == "joint" and timed == ["separate", "joint"] * 3  # in turns
    assert dispatch.choose_backward(prob, sep, joint) == "joint" and len(timed) == 6  # cached
    cpu = dataclasses.replace(prob, device=torch.device("cpu"))
    assert dispatch.choose_backward(cpu, sep, joint) == "separate" and len(timed) == 6


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_fft_op_with_bias_blocks_and_layouts(layout, monkeypatch):
    """Through the op (joint backward): bias, multiplier 2, stride, channels_last, channel blocks of one."""
    monkeypatch.setenv("LKCONV_FFT_WORKSPACE_MB", "0.0001")
    mf = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    x = torch.randn(2, 3, 11, 10, dtype=torch.float64).contiguous(memory_format=mf).requires_grad_()
    w = torch.randn(6, 1, 7, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    y = lkconv.depthwise_conv2d(x, w, b, (2, 1), (3, 2), (1, 2), algorithm="fft")
    assert y.is_contiguous(memory_format=mf)
    dy = torch.randn_like(y)
    y.backward(dy)
    xr, wr, br = (t.detach().clone().requires_grad_() for t in (x, w, b))
    yr = torch.nn.functional.conv2d(xr, wr, br, (2, 1), (3, 2), (1, 2), 3)
    yr.backward(dy)
    assert x.grad.is_contiguous(memory_format=mf)
    for got, want in ((y, yr), (x.grad, xr.grad), (w.grad, wr.grad), (b.grad, br.grad)):
        assert rel_error(got, want) < 1e-12

