"""depthwise_conv2d: every algorithm against the float64 reference, in every direction; contract; errors.

On CPU the Triton kernels run in the interpreter (tests/conftest.py sets TRITON_INTERPRET=1) on tiny shapes.
"""
import dataclasses
import json
import time

import pytest
import torch
import torch.nn.functional as F

import lkconv
from lkconv.ops import autotune_cache
from lkconv.ops.depthwise2d import dispatch
from lkconv.ops.depthwise2d.problem import Problem
from lkconv.testing import rel_error
from lkconv.tools import verify

from ..conftest import HAS_CUDA, gpu
from .helpers import assert_verified, fake_cuda_autotune_cache, warm_on_side_stream

TINY = verify.base_cases(tiny=True)


@pytest.mark.parametrize("case", TINY, ids=[c.label() for c in TINY])
def test_direct_matches_float64_reference(case, device):
    assert_verified(case, "direct", device)


@pytest.mark.parametrize("case", TINY[:4], ids=[c.label() for c in TINY[:4]])
def test_torch_algorithm_matches_reference(case, device):
    assert_verified(case, "torch", device)


def test_direct_large_kernels_and_bands(device):
    for case in [
        verify.Case(1, 3, 14, 13, 9, 9, padding=4),  # padded copy path in the weight gradient
        verify.Case(1, 2, 9, 20, 1, 11, padding=(0, 15), dilation=(1, 3)),
        verify.Case(1, 2, 20, 9, 11, 1, padding=(5, 0), layout="nhwc"),
        verify.Case(1, 3, 13, 12, 7, 8, stride=(2, 2), padding=(3, 2), dilation=(1, 2), mult=2, layout="nhwc"),
        verify.Case(1, 2, 40, 5, 35, 3, padding=(17, 1)),  # tall kernels: strips of more than 16 lines
        verify.Case(1, 3, 40, 4, 35, 3, padding=(17, 1), layout="nhwc"),
        verify.Case(2, 3, 12, 10, 11, 11, padding=5),  # batch-summed weight gradient (>= 100 taps)
        verify.Case(1, 3, 9, 12, 10, 13, padding=(4, 6), mult=2, layout="nhwc"),
        # 16-bit inputs with >= 100 taps (weights widened to fp32 before the launch), planes covered by one strip
        verify.Case(2, 3, 7, 9, 11, 11, padding=5, dtype="bf16"),
        verify.Case(1, 4, 8, 6, 13, 9, stride=(2, 1), padding=(6, 4), layout="nhwc", dtype="bf16"),
        verify.Case(1, 2, 7, 8, 10, 12, padding=(3, 7), layout="strided", dtype="fp16"),
    ]:
        assert_verified(case, "direct", device)


def test_tall_kernels_get_long_strips():
    from lkconv.ops.depthwise2d import direct

    x = torch.empty(1, 4, 56, 56).contiguous(memory_format=torch.channels_last)
    tall = direct._axes(x, 51, 5, (1, 1), (1, 1), 25, 2, (56, 56))
    square = direct._axes(x, 31, 31, (1, 1), (1, 1), 15, 15, (56, 56))
    assert direct.choose_config(tall, 4, "fwd").r == 28 and direct.choose_config(tall, 4, "wgrad").r == 28
    assert direct.choose_config(square, 4, "wgrad").r <= 16


def test_channels_last_tiles_of_small_kernels():
    """The channels_last tiles measured best for kernels under 13x13 (docs/BENCHMARKS.md, ninth session)."""
    from lkconv.ops.depthwise2d import direct

    def axes(c, h, w, k, stride=1, dil=1):
        x = torch.empty(1, c, h, w).contiguous(memory_format=torch.channels_last)
        ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
        return direct._axes(x, k, k, (stride, stride), (dil, dil), dil * (k // 2), dil * (k // 2), (ho, wo))

    def tile(cfg):
        return cfg.block_0, cfg.block_1, cfg.num_warps

    assert tile(direct.choose_config(axes(48, 128, 128, 9), 48, "fwd")) == (8, 16, 4)  # 32 would idle 16 lanes
    assert tile(direct.choose_config(axes(128, 180, 360, 7, dil=3), 128, "fwd")) == (8, 32, 4)
    assert tile(direct.choose_config(axes(96, 112, 112, 7, stride=2), 96, "fwd")) == (8, 32, 8)
    assert tile(direct.choose_config(axes(128, 180, 360, 7, dil=3), 128, "wgrad")) == (4, 32, 4)  # wide rows
    assert tile(direct.choose_config(axes(64, 56, 56, 7, dil=3), 64, "wgrad")) == (8, 16, 4)
    assert tile(direct.choose_config(axes(64, 80, 80, 7), 64, "wgrad")) == (4, 32, 4)  # one pass over columns
    assert tile(direct.choose_config(axes(64, 56, 56, 13), 64, "fwd")) == (4, 32, 4)  # 13x13: 128 threads


def test_channels_last_small_kernel_tiles_verified(device):
    """The channels_last small-kernel tiles at their defaults, against float64 in every direction: 16-channel
    forward tiles over 48 channels, 4x32 weight-gradient tiles over part-filled channel blocks and on rows at least
    128 wide, a strided forward."""
    for case in (verify.Case(1, 48, 4, 9, 3, 3, padding=1, layout="nhwc"),
                 verify.Case(1, 32, 3, 130, 3, 3, padding=2, dilation=(2, 2), layout="nhwc"),
                 verify.Case(1, 40, 5, 7, 3, 3, stride=(2, 2), padding=1, layout="nhwc")):
        assert_verified(case, "direct", device)


def test_direct_config_variants_agree(device):
    """Every tile/padding variant of the kernels computes the same function."""
    from lkconv.ops.depthwise2d import direct

    x = torch.randn(2, 3, 11, 10, device=device)
    w = torch.randn(3, 1, 5, 5, device=device)
    dy = torch.randn(2, 3, 11, 10, device=device)
    ref_y = lkconv.depthwise_conv2d(x.double(), w.double(), None, 1, 2)
    xr = x.double().requires_grad_()
    wr = w.double().requires_grad_()
    lkconv.depthwise_conv2d(xr, wr, None, 1, 2).backward(dy.double())
    for cfg in [direct.DirectConfig(3, 2, 16, 1, False, 1, 1), direct.DirectConfig(5, 4, 16, 2, True, 3, 2),
                direct.DirectConfig(11, 1, 16, 1, True, 0, 5), direct.DirectConfig(11, 2, 16, 1, False, 0, 1),
                direct.DirectConfig(11, 2, 16, 1, False, 0, 1, skip_border=False),
                direct.DirectConfig(11, 2, 16, 1, False, 0, 1, split=1), direct.DirectConfig(4, 2, 16, 1, False, 1, 2, split=2)]:
        y = direct.conv_fwd(x, w, None, (1, 1), (2, 2, 2, 2), (1, 1), torch.full_like(ref_y, float("nan"), dtype=x.dtype), cfg)
        assert rel_error(y, ref_y) < 1e-5
        dx = direct.conv_dgrad(dy, x.shape, w, (1, 1), (2, 2, 2, 2), (1, 1), torch.full_like(x, float("nan")), cfg)
        assert rel_error(dx, xr.grad) < 1e-5
        dw = direct.conv_wgrad(dy, x, w.shape, (1, 1), (2, 2, 2, 2), (1, 1), cfg)
        assert rel_error(dw, wr.grad) < 1e-5


def test_direct_forward_one_launch_per_strip(device, monkeypatch):
    """Two strips compiled at their positions, as one launch per strip (large bodies) and as one launch."""
    from lkconv.ops.depthwise2d import direct

    x = torch.randn(2, 3, 13, 9, device=device)
    w = torch.randn(3, 1, 7, 5, device=device)
    dy = torch.randn(2, 3, 13, 9, device=device)
    xr, wr = x.double().requires_grad_(), w.double().requires_grad_()
    y_ref = lkconv.depthwise_conv2d(xr, wr, None, 1, (3, 2))
    y_ref.backward(dy.double())
    cfg = direct.DirectConfig(7, 2, 16, 1)  # 13 lines: two strips
    for taps in (0, 10**9):
        monkeypatch.setattr(direct, "_ONE_LAUNCH_TAPS", taps)
        direct._plan_fwd.cache_clear()
        plan = direct._plan_fwd(tuple(x.shape), x.stride(), tuple(y_ref.shape), y_ref.stride(), tuple(w.shape),
                                w.stride(), 4, (1, 1), (1, 1), 3, 2, 1, 1, ((0, 1), (0, 1)), False, cfg)
        assert plan.a0s == ((0, 7) if taps == 0 else (0,)) and dict(plan.consts)["FIXED_STRIPS"] == (
            1 if taps == 0 else 2)
        y = direct.conv_fwd(x, w, None, (1, 1), (3, 3, 2, 2), (1, 1), torch.full_like(x, float("nan")), cfg)
        assert rel_error(y, y_ref) < 1e-5
        dx = direct.conv_dgrad(dy, x.shape, w, (1, 1), (3, 3, 2, 2), (1, 1), torch.full_like(x, float("nan")), cfg)
        assert rel_error(dx, xr.grad) < 1e-5
    direct._plan_fwd.cache_clear()


def _random_wgrad_problem(rng, device):
    """(x, dy, weight shape, stride, pad, dilation) of a random geometry: asymmetric and wide padding, stride,
    dilation, multiplier, either layout for x and dy."""
    while True:
        n, c, m = rng.randint(1, 3), rng.randint(1, 5), rng.choice([1, 1, 2])
        kh, kw = rng.randint(1, 7), rng.randint(1, 7)
        sh, sw, dh, dw = rng.choice([1, 1, 2, 3]), rng.choice([1, 2]), rng.choice([1, 1, 2, 3]), rng.choice([1, 2])
        h = rng.randint(max(1, (kh - 1) * dh - 3), max(12, (kh - 1) * dh))
        w = rng.randint(max(1, (kw - 1) * dw - 3), max(12, (kw - 1) * dw))
        pad = tuple(rng.randint(0, 4) for _ in range(4))
        ho = (h + pad[0] + pad[1] - dh * (kh - 1) - 1) // sh + 1
        wo = (w + pad[2] + pad[3] - dw * (kw - 1) - 1) // sw + 1
        if ho > 0 and wo > 0:
            break
    x = torch.randn(n, c, h, w, device=device)
    dy = torch.randn(n, c * m, ho, wo, device=device)
    if rng.random() < 0.4:
        x = x.contiguous(memory_format=torch.channels_last)
    if rng.random() < 0.3:
        dy = dy.contiguous(memory_format=torch.channels_last)
    return x, dy, (c * m, 1, kh, kw), (sh, sw), pad, (dh, dw)


def _check_random_wgrad(device, rounds: int, make_config):
    """The weight gradient against float64 on ``rounds`` random geometries (:func:`_random_wgrad_problem`, 30%
    bf16), with the kernel config ``make_config(rng, axes)`` of each; the seed is in every failure message."""
    import os
    import random

    from lkconv.ops.depthwise2d import direct, reference

    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    for _ in range(rounds):
        x, dy, w_shape, stride, pad, dil = _random_wgrad_problem(rng, device)
        if rng.random() < 0.3:
            x, dy = x.bfloat16(), dy.bfloat16()
        cfg = make_config(rng, direct._axes(x, w_shape[2], w_shape[3], stride, dil, pad[0], pad[2], dy.shape[-2:]))
        w64 = torch.empty(w_shape, dtype=torch.float64, device=device)
        ref = reference.depthwise_conv2d_wgrad_torch(dy.double(), x.double(), w64, stride, pad, dil)
        dw = direct.conv_wgrad(dy, x, w_shape, stride, pad, dil, cfg)
        assert dw.shape == w_shape and rel_error(dw, ref) < 1e-5, (seed, x.shape, x.stride(), x.dtype, dy.stride(),
                                                                   w_shape, stride, pad, dil, cfg)


def test_wgrad_planes_kernel_random_geometries(device):
    """The batch-summed weight-gradient kernel against float64 on random geometries, dtypes and tiles (weight
    lines per program, output-gradient lines per block, tile shape, batch chunks): several tiles per launch."""
    from lkconv.ops.depthwise2d import direct_wgrad

    def planes(rng, ax):
        b0, b1 = rng.choice([1, 2, 4]), rng.choice([1, 2, 4])
        if rng.random() < 0.5:  # every line in one program and one block: border products skipped
            r, ta = ax.ka, ax.a_out
        else:
            r, ta = rng.randint(1, ax.ka), rng.randint(1, ax.a_out)
        return direct_wgrad.PlanesConfig(r, ta, b0, b1, 1, rng.choice([0, 1, 2, 5]), rng.random() < 0.8)

    _check_random_wgrad(device, 12 if device.type == "cpu" else 20, planes)


def test_wgrad_strip_kernel_random_geometries(device):
    """The strip weight-gradient kernel against float64 on random geometries, dtypes and tiles (strip length,
    tile, strips per program, kernel columns per pass, programs sharing a chunk's passes, zero-bordered copy or
    bounds checks)."""
    from lkconv.ops.depthwise2d import direct

    def strips(rng, ax):
        return direct.DirectConfig(rng.randint(1, -(-ax.a_out // ax.p)), rng.choice([1, 2, 4]), 16, 1,
                                   rng.random() < 0.3, rng.choice([0, 1, 2]), rng.choice([1, 2, ax.kb]),
                                   split=rng.choice([0, 1, 2, 3]))

    _check_random_wgrad(device, 10 if device.type == "cpu" else 20, strips)


def test_wgrad_planes_kernel_64bit_offsets(device):
    """The kernel's 64-bit addressing (used past 2**30 elements) computes the same gradient."""
    import dataclasses

    from lkconv.ops.depthwise2d import direct, direct_wgrad, reference

    x = torch.randn(2, 5, 9, 8, device=device).contiguous(memory_format=torch.channels_last)
    dy = torch.randn(2, 10, 9, 8, device=device)
    w_shape, stride, pad, dil = (10, 1, 11, 11), (1, 1), (5, 5, 6, 4), (1, 1)
    plan = direct.plan_conv_wgrad(dy, x, w_shape, stride, pad, dil, direct_wgrad.PlanesConfig(4, 3, 2, 4, 1, 2))
    wide = dataclasses.replace(plan, consts=tuple((k, True if k == "INT64" else v) for k, v in plan.consts))
    ref = reference.depthwise_conv2d_wgrad_torch(dy.double(), x.double(), torch.empty(w_shape, dtype=torch.float64,
                                                 device=device), stride, pad, dil)
    assert dict(plan.consts)["INT64"] is False
    assert rel_error(direct.run_planned_wgrad(wide, dy, x), ref) < 1e-5


def test_wgrad_kernel_choice():
    """Large kernels on small output-gradient planes take the batch-summed kernel; small kernels, narrow tiles,
    large and empty planes the other."""
    from lkconv.ops.depthwise2d import direct, direct_wgrad

    x = torch.empty(1, 4, 14, 14)
    assert direct_wgrad.preferred(direct._axes(x, 27, 27, (1, 1), (1, 1), 13, 13, (14, 14)))
    assert isinstance(direct.plan_conv_wgrad(torch.empty(1, 4, 14, 14), x, (4, 1, 27, 27), (1, 1), (13,) * 4, (1, 1)),
                      direct_wgrad.PlanesPlan)
    assert not direct_wgrad.preferred(direct._axes(x, 3, 3, (1, 1), (1, 1), 1, 1, (14, 14)))
    assert not direct_wgrad.preferred(direct._axes(x, 51, 5, (1, 1), (1, 1), 25, 2, (14, 14)))
    big = torch.empty(1, 4, 96, 96)
    assert not direct_wgrad.preferred(direct._axes(big, 13, 13, (1, 1), (1, 1), 6, 6, (96, 96)))
    assert not direct_wgrad.preferred(direct._axes(x, 13, 13, (1, 1), (1, 1), 0, 0, (0, 2)))


@pytest.mark.parametrize("swap", [False, True])
def test_partial_sum_kernel_against_float64(device, swap):
    """The chunks' partial sums added, transposed (swap) and cast in one launch: float64 agreement for fp32,
    the torch reference's rounding for 16-bit outputs, the same bits on every call."""
    import os

    from lkconv.ops.depthwise2d import partial_sum

    seed = int.from_bytes(os.urandom(4), "little")
    gen = torch.Generator().manual_seed(seed)
    for k, c, ka, kb in ((1, 3, 5, 4), (2, 2, 3, 7), (5, 4, 1, 11), (17, 3, 7, 7), (33, 2, 9, 2)):
        part = torch.randn(k, c, ka, kb, generator=gen).to(device)
        want = part.double().sum(0)
        want = want.transpose(1, 2).reshape(c, 1, kb, ka) if swap else want.reshape(c, 1, ka, kb)
        got = partial_sum.sum_partials(part, swap, torch.float32)
        assert got.shape == want.shape and got.dtype == torch.float32
        assert rel_error(got, want) < 1e-6, (seed, k, c, ka, kb)
        assert torch.equal(got, partial_sum.sum_partials(part, swap, torch.float32))
        wide = torch.empty_like(got)  # 64-bit element indices (taken past 2**31 elements): the same sums
        e, kt, block = c * ka * kb, partial_sum._chunks_per_load(k), partial_sum._BLOCK
        partial_sum.wgrad_partial_sum_kernel[(-(-e // block), 1, 1)](part, wide, k, e, ka, kb, SWAP=swap, KT=kt,
                                                                    BLOCK=block, INT64=True)
        assert torch.equal(wide, got), (seed, k, c, ka, kb)
        for dtype in (torch.bfloat16, torch.float16):
            half = partial_sum.sum_partials(part, swap, dtype)
            ref = partial_sum.sum_partials_torch(part, swap, dtype)
            assert half.dtype == dtype and half.shape == ref.shape
            assert (half.float() - ref.float()).abs().max() <= 2 * torch.finfo(dtype).eps * ref.float().abs().max()


def test_wgrad_strips_per_program_override(device):
    """Both weight-gradient kernels with the strips (items) per program set from outside: another split of the
    sum over programs, the same gradient, in the weight's dtype when asked."""
    from lkconv.ops.depthwise2d import direct, direct_wgrad, reference

    for kh, kw, layout in ((5, 5, "nchw"), (11, 11, "nchw"), (3, 7, "nhwc"), (11, 11, "nhwc")):
        x = torch.randn(3, 4, 12, 10, device=device)
        dy = torch.randn(3, 4, 12, 10, device=device)
        if layout == "nhwc":
            x, dy = (t.contiguous(memory_format=torch.channels_last) for t in (x, dy))
        w_shape, stride, pad, dil = (4, 1, kh, kw), (1, 1), (kh // 2, kh // 2, kw // 2, kw // 2), (1, 1)
        ref = reference.depthwise_conv2d_wgrad_torch(dy.double(), x.double(), torch.empty(
            w_shape, dtype=torch.float64, device=device), stride, pad, dil)
        grids = set()
        for per in (0, 1, 2, 5):
            plan = direct.plan_conv_wgrad(dy, x, w_shape, stride, pad, dil, per_prog=per)
            assert isinstance(plan, direct_wgrad.PlanesPlan) == (kh * kw >= 100)
            grids.add(plan.grid)
            assert rel_error(direct.run_planned_wgrad(plan, dy, x), ref) < 1e-5, (kh, kw, layout, per)
        assert len(grids) >= 2, (kh, kw, layout)
        half = direct.run_planned_wgrad(plan, dy.bfloat16(), x.bfloat16(), torch.bfloat16)
        assert half.dtype == torch.bfloat16 and rel_error(half, ref) < 2e-2


def test_wgrad_chunk_choice_is_measured_once_and_cached(monkeypatch, tmp_path):
    """"auto" times the weight gradient's strips per program, each with a program per pass and with one program
    for all passes; launches seen before, unplannable counts and oversized partial sums are not timed; the
    choice is cached in memory and on disk; the heuristic stays unless beaten by 2%."""
    from lkconv.ops.depthwise2d import direct

    fake_cuda_autotune_cache(monkeypatch, tmp_path)
    chunks = {0: 8, 2: 12, 4: 6, 8: 3, 16: 2, 32: 2}  # 32 per program repeats 16's launch
    parts = {per: (c, 16, 7, 7) for per, c in chunks.items()}
    fake_plan = dataclasses.make_dataclass("FakePlan", ["grid", "part_shape", "key"])

    def plan(*a, per_prog, split, **k):  # five passes: one program each, or one for all (split=1)
        return fake_plan((chunks[per_prog] * (1 if split else 5), 1, 1), parts[per_prog], (per_prog, split))

    monkeypatch.setattr(direct, "plan_conv_wgrad", plan)
    monkeypatch.setattr(direct, "run_planned_wgrad", lambda plan, dy, x, dtype: plan.key)
    speeds = {(0, 0): 1.0, (2, 0): 1.2, (4, 0): 0.7, (8, 0): 0.8, (16, 0): 0.9, (32, 0): 0.1,
              (0, 1): 1.1, (2, 1): 1.3, (4, 1): 0.9, (8, 1): 0.75, (16, 1): 1.0, (32, 1): 0.05}
    timed = []
    monkeypatch.setattr(dispatch, "_gpu_ms", lambda fn, device, host_bound_ms, reps: timed.append(fn()) or speeds[timed[-1]])
    prob = dataclasses.replace(_cuda_problem(), direction="wgrad")
    args = (torch.empty(1), torch.empty(1), torch.empty(16, 1, 7, 7), (1, 1), (3, 3, 3, 3), (1, 1))
    assert dispatch.choose_wgrad_chunks(prob, *args) == (4, 0)
    assert sorted(set(timed)) == sorted(k for k in speeds if k[0] != 32) and len(timed) == 30  # 3 rounds each
    entry = json.loads((tmp_path / "autotune.json").read_text())["entries"][
        "depthwise2d|fake|" + dataclasses.replace(prob, direction="wgrad:launch").key()]
    assert entry["algorithm"] == "4" and entry["times_ms"]["0"] == 1.0 and entry["times_ms"]["8/1"] == 0.75
    assert dispatch.choose_wgrad_chunks(prob, *args) == (4, 0) and len(timed) == 30  # cached
    autotune_cache.clear_memory()
    assert dispatch.choose_wgrad_chunks(prob, *args) == (4, 0) and len(timed) == 30  # read back from disk
    speeds.update({(8, 1): 0.3})  # one program for all passes wins
    assert dispatch.choose_wgrad_chunks(dataclasses.replace(prob, n=13), *args) == (8, 1)
    speeds.update({(4, 0): 0.99, (8, 0): 1.5, (16, 0): 1.5, (8, 1): 1.5, (4, 1): 1.5, (0, 1): 0.995})
    other = dataclasses.replace(prob, n=9)  # within 2% of the heuristic's launch: the heuristic stays
    assert dispatch.choose_wgrad_chunks(other, *args) == (0, 0)
    assert dispatch.choose_wgrad_chunks(dataclasses.replace(prob, device=torch.device("cpu")), *args) == (0, 0)
    monkeypatch.setattr(dispatch, "_PART_ELEMENTS", 0)  # partial sums over 4x the heuristic's are not tried
    parts[0] = (2, 16, 7, 7)  # 2/prog writes 12 partial sums against 2
    timed.clear()
    speeds.update({(2, 0): 0.1})
    assert dispatch.choose_wgrad_chunks(dataclasses.replace(prob, n=10), *args) == (0, 0)
    assert (2, 0) not in timed and (2, 1) not in timed
    parts[0] = (4, 16, 7, 7)  # against 4: within the bound
    assert dispatch.choose_wgrad_chunks(dataclasses.replace(prob, n=11), *args) == (2, 0)

    def plan_or_raise(*a, per_prog, split, **k):
        if per_prog == 2:
            raise ValueError("direct: too many weight-gradient chunks")
        return plan(per_prog=per_prog, split=split)

    monkeypatch.setattr(direct, "plan_conv_wgrad", plan_or_raise)  # a count that cannot be planned is skipped
    speeds.update({(4, 0): 0.5})
    assert dispatch.choose_wgrad_chunks(dataclasses.replace(prob, n=12), *args) == (4, 0)


def test_direct_wgrad_of_an_empty_batch(device):
    """Both weight-gradient kernels return zeros for an empty batch (no launch)."""
    from lkconv.ops.depthwise2d import direct

    x, dy = torch.randn(0, 3, 12, 12, device=device), torch.randn(0, 3, 12, 12, device=device)
    for k in (3, 11):
        dw = direct.conv_wgrad(dy, x, (3, 1, k, k), (1, 1), (k // 2,) * 4, (1, 1))
        assert dw.shape == (3, 1, k, k) and not dw.any()


def test_prepadded_input_with_one_pixel_planes(device):
    """A 1x1 plane is both NCHW and NHWC; the zero-bordered copy must be laid out as the kernel reads it."""
    from lkconv.ops.depthwise2d import direct

    x = torch.randn(1, 7, 13, 13, device=device)
    w = torch.randn(7, 1, 13, 13, device=device)
    dy = torch.randn(1, 7, 1, 1, device=device)
    xr, wr = x.double().requires_grad_(), w.double().requires_grad_()
    lkconv.depthwise_conv2d(xr, wr).backward(dy.double())
    cfg = direct.DirectConfig(13, 8, 16, 4, True)
    dx = direct.conv_dgrad(dy, x.shape, w, (1, 1), (0, 0, 0, 0), (1, 1), torch.full_like(x, float("nan")), cfg)
    assert rel_error(dx, xr.grad) < 1e-5
    y = direct.conv_fwd(dy, w[:, :, :1, :1], None, (1, 1), (3, 3, 3, 3), (1, 1), torch.empty(1, 7, 7, 7, device=device), cfg)
    assert rel_error(y, lkconv.depthwise_conv2d(dy.double(), w[:, :, :1, :1].double(), None, 1, 3)) < 1e-5


@pytest.mark.parametrize("algorithm", ["direct", "torch", "auto"])
def test_strided_bias_and_weight_views(algorithm, device):
    """Non-contiguous bias and weight views (the second call takes the memoized path)."""
    x = torch.randn(2, 3, 9, 8, device=device)
    w = torch.randn(3, 1, 5, 10, device=device)[:, :, :, ::2]
    b = torch.randn(6, device=device)[::2]
    ref = F.conv2d(x.double(), w.double(), b.double(), 1, 2, 1, 3)
    for _ in range(2):
        y = lkconv.depthwise_conv2d(x, w, b, 1, 2, algorithm=algorithm)
        assert rel_error(y, ref) < 1e-5


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_under_cpu_bf16_autocast_backward(mode):
    """CPU autocast pads in float32; the op must still convolve (and differentiate) in bfloat16."""
    x = torch.randn(2, 4, 9, 8, requires_grad=True)
    w = torch.randn(4, 1, 5, 5, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lkconv.depthwise_conv2d(x, w, None, 1, 2, padding_mode=mode)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert x.grad is not None and w.grad is not None and torch.isfinite(x.grad).all()


def test_auto_on_cpu_is_the_reference():
    x = torch.randn(2, 4, 10, 9)
    w = torch.randn(8, 1, 3, 5)
    b = torch.randn(8)
    y = lkconv.depthwise_conv2d(x, w, b, stride=(1, 2), padding=(1, 2), dilation=(2, 1))
    ref = F.conv2d(x, w, b, (1, 2), (1, 2), (2, 1), groups=4)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
def test_padding_modes_match_nn_conv2d(mode):
    conv = torch.nn.Conv2d(3, 3, 5, padding=2, groups=3, padding_mode=mode)
    x = torch.randn(2, 3, 9, 8)
    y = lkconv.depthwise_conv2d(x, conv.weight, conv.bias, 1, 2, 1, mode)
    torch.testing.assert_close(y, conv(x))


@pytest.mark.parametrize("k", [(4, 4), (2, 6), (1, 7), (6, 1)])
def test_same_padding_even_and_band_kernels(k):
    x = torch.randn(1, 2, 9, 10)
    w = torch.randn(2, 1, *k)
    y = lkconv.depthwise_conv2d(x, w, padding="same", dilation=(1, 2))
    torch.testing.assert_close(y, F.conv2d(x, w, None, 1, "same", (1, 2), 2))
    assert y.shape[-2:] == x.shape[-2:]


def test_output_memory_format_follows_input(device):
    x = torch.randn(2, 6, 8, 9, device=device).contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, 1, 3, 3, device=device)
    for algo in ("torch", "direct"):
        y = lkconv.depthwise_conv2d(x, w, padding=1, algorithm=algo)
        assert y.is_contiguous(memory_format=torch.channels_last)
        y = lkconv.depthwise_conv2d(x.contiguous(), w, padding=1, algorithm=algo)
        assert y.is_contiguous()


def test_empty_batch(device):
    x = torch.randn(0, 3, 8, 8, device=device, requires_grad=True)
    w = torch.randn(3, 1, 3, 3, device=device, requires_grad=True)
    y = lkconv.depthwise_conv2d(x, w, padding=1, algorithm="direct")
    assert y.shape == (0, 3, 8, 8)
    y.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))


def test_expanded_grad_output(device):
    """grad_output with zero strides (from .sum()) is read correctly."""
    x = torch.randn(1, 2, 7, 6, device=device, requires_grad=True)
    w = torch.randn(2, 1, 3, 3, device=device, requires_grad=True)
    lkconv.depthwise_conv2d(x, w, padding=1, algorithm="direct").sum().backward()
    xr, wr = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    F.conv2d(xr, wr, None, 1, 1, 1, 2).sum().backward()
    assert rel_error(x.grad, xr.grad) < 1e-5 and rel_error(w.grad, wr.grad) < 1e-5


def test_autocast_runs_in_low_precision():
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(4, 1, 3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lkconv.depthwise_conv2d(x, w, padding=1)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert w.grad.dtype == torch.float32
    assert rel_error(y, F.conv2d(x, w, None, 1, 1, 1, 4)) < 2e-2


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(x=torch.randn(3, 8, 8)), ValueError, "input must be 4-D"),
        (dict(w=torch.randn(4, 2, 3, 3)), ValueError, r"weight must be \(C\*m, 1, kh, kw\)"),
        (dict(w=torch.randn(6, 1, 3, 3)), ValueError, "multiple of the input channels"),
        (dict(w=torch.randn(4, 1, 3, 3, dtype=torch.float64)), TypeError, "weight dtype"),
        (dict(b=torch.randn(5)), ValueError, "bias must have shape"),
        (dict(b=torch.randn(4, dtype=torch.float16)), TypeError, "bias dtype"),
        (dict(stride=0), ValueError, "stride must be >= 1"),
        (dict(stride=(1, 2, 3)), TypeError, "stride must be an int or a pair"),
        (dict(padding=-1), ValueError, "padding must be >= 0"),
        (dict(padding="full"), ValueError, "padding must be an int, a pair, 'same' or 'valid'"),
        (dict(padding="same", stride=2), ValueError, "padding='same' requires stride 1"),
        (dict(dilation=0), ValueError, "dilation must be >= 1"),
        (dict(padding_mode="mirror"), ValueError, "padding_mode must be one of"),
        (dict(padding_mode="reflect", padding=9), ValueError, "too large for padding_mode='reflect'"),
        (dict(w=torch.randn(4, 1, 11, 3)), ValueError, "does not fit the padded input"),
        (dict(algorithm="winograd"), ValueError, "algorithm must be one of"),
        (dict(x=torch.ones(2, 4, 8, 8, dtype=torch.int32)), TypeError, "input dtype"),
        (dict(x="not a tensor"), TypeError, "input must be a torch.Tensor"),
    ],
)
def test_bad_input_errors_name_the_argument(kwargs, exc, match):
    x = kwargs.pop("x", torch.randn(2, 4, 8, 8))
    w = kwargs.pop("w", torch.randn(4, 1, 3, 3))
    b = kwargs.pop("b", None)
    with pytest.raises(exc, match=match):
        lkconv.depthwise_conv2d(x, w, b, **kwargs)


def test_explicit_algorithm_that_cannot_serve_raises(device):
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, device=device)
    w = torch.randn(2, 1, 3, 3, dtype=torch.float64, device=device)
    with pytest.raises(ValueError, match="algorithm='direct' cannot serve this call: .*dtype"):
        lkconv.depthwise_conv2d(x, w, algorithm="direct")


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-without-interpreter message")
def test_direct_on_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="direct.*cannot serve.*CUDA"):
        lkconv.depthwise_conv2d(torch.randn(1, 2, 6, 6), torch.randn(2, 1, 3, 3), algorithm="direct")


@pytest.mark.skipif(not HAS_CUDA, reason="needs two devices (CPU and CUDA)")
def test_mixed_devices_raise():
    with pytest.raises(ValueError, match="weight is on"):
        lkconv.depthwise_conv2d(torch.randn(1, 2, 6, 6), torch.randn(2, 1, 3, 3, device="cuda"))


# ----------------------------------------------------------------------------- custom op, compile

def test_opcheck_custom_ops():
    x = torch.randn(2, 3, 9, 8, requires_grad=True)
    w = torch.randn(6, 1, 3, 4, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    args = ([1, 2], [1, 2, 0, 1], [1, 1], "auto")
    torch.library.opcheck(torch.ops.lkconv.depthwise_conv2d_fwd.default, (x, w, b, *args))
    dy = torch.randn(2, 6, 10, 3)
    torch.library.opcheck(torch.ops.lkconv.depthwise_conv2d_dgrad.default, (dy, x.detach(), w.detach(), *args))
    torch.library.opcheck(torch.ops.lkconv.depthwise_conv2d_wgrad.default, (dy, x.detach(), w.detach(), *args))
    for algorithm in ("auto", "fft"):
        torch.library.opcheck(torch.ops.lkconv.depthwise_conv2d_bwd.default,
                              (dy, x.detach(), w.detach(), *args[:3], algorithm))


def test_torch_compile_fullgraph_no_graph_break():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 1), lkconv.nn.DepthwiseConv2d(8, 8, 7, padding=3), torch.nn.GELU(),
        lkconv.nn.DepthwiseConv2d(8, 8, 5, padding=4, dilation=2, padding_mode="circular"),
    )
    x = torch.randn(2, 4, 12, 11, requires_grad=True)
    ref = model(x)
    ref.sum().backward()
    gx_ref, gw_ref = x.grad.clone(), model[1].weight.grad.clone()
    x.grad = None
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, gx_ref)
    torch.testing.assert_close(model[1].weight.grad, gw_ref)


# ----------------------------------------------------------------------------- dispatch and cache

def _cuda_problem():
    return Problem("fwd", 8, 16, 32, 32, 1, 7, 7, 32, 32, (1, 1), (3, 3, 3, 3), (1, 1), torch.float32, "nchw",
                   torch.device("cuda"), 8 * 16 * 32 * 32)


class _Fake:
    def __init__(self, ok=True):
        self.ok = ok

    def reason(self, prob):
        return None if self.ok else "cannot"


def test_autotune_picks_fastest_and_caches_on_disk(monkeypatch, tmp_path):
    fake_cuda_autotune_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(dispatch, "_REGISTRY", {"direct": _Fake(), "torch": _Fake()})
    speeds = {"direct": 1.0, "torch": 3.0}
    calls = []
    monkeypatch.setattr(dispatch, "_loop_ms", lambda fn: fn())
    runner = lambda name: (lambda: calls.append(name) or speeds[name])  # noqa: E731
    prob = _cuda_problem()
    assert dispatch.choose(prob, "auto", runner) == "direct"
    assert sorted(calls) == ["direct", "torch"]
    data = json.loads((tmp_path / "autotune.json").read_text())
    entry = data["entries"]["depthwise2d|fake|" + prob.key()]
    assert entry["algorithm"] == "direct" and entry["times_ms"] == speeds
    calls.clear()
    assert dispatch.choose(prob, "auto", runner) == "direct" and calls == []  # memory hit
    autotune_cache.clear_memory()
    assert dispatch.choose(prob, "auto", runner) == "direct" and calls == []  # disk hit
    speeds.update(direct=5.0)
    autotune_cache.clear_memory()
    (tmp_path / "autotune.json").write_text("{not json")  # corrupt: ignored, measured again, rewritten
    assert dispatch.choose(prob, "auto", runner) == "torch"
    assert json.loads((tmp_path / "autotune.json").read_text())["format"] == 1


def test_autotune_cache_can_be_disabled(monkeypatch, tmp_path):
    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LKCONV_CACHE", "0")
    autotune_cache.clear_memory()
    autotune_cache.store("k", {"algorithm": "torch", "times_ms": {}})
    assert autotune_cache.lookup("k")["algorithm"] == "torch"
    assert not (tmp_path / "autotune.json").exists()


def test_autotune_skips_failing_candidate(monkeypatch, tmp_path):
    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    autotune_cache.clear_memory()
    monkeypatch.setattr(dispatch, "_REGISTRY", {"direct": _Fake(), "torch": _Fake()})
    monkeypatch.setattr(dispatch, "_cache_key", lambda prob: "k2")
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)

    def boom():
        raise RuntimeError("out of memory")

    monkeypatch.setattr(dispatch, "_loop_ms", lambda fn: fn())
    with pytest.warns(UserWarning, match="direct failed"):
        assert dispatch.choose(_cuda_problem(), "auto", lambda n: boom if n == "direct" else (lambda: 2.0)) == "torch"


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_whole_call_handed_to_pytorch(monkeypatch, layout):
    """Where "auto" hands a call to PyTorch: F.conv2d's values and gradients, the input's memory format, for
    symmetric, one-sided ("same" with an even kernel) and mode padding, stride, dilation, multiplier and bias."""
    from lkconv.ops.depthwise2d import op

    monkeypatch.setattr(op._Call, "use_torch", lambda self, *args: True)
    mf = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    for kh, kw, kwargs in ((3, 5, dict(padding=(1, 2), stride=2, dilation=(1, 2))), (4, 4, dict(padding="same")),
                           (3, 3, dict(padding=1, padding_mode="reflect"))):
        x = torch.randn(2, 3, 9, 10, dtype=torch.float64).contiguous(memory_format=mf).requires_grad_()
        w = torch.randn(6, 1, kh, kw, dtype=torch.float64, requires_grad=True)
        b = torch.randn(6, dtype=torch.float64, requires_grad=True)
        for _ in range(2):  # the second call reuses what the first bound
            y = lkconv.depthwise_conv2d(x, w, b, **kwargs)
            ref = torch.nn.Conv2d(3, 6, (kh, kw), groups=3, dtype=torch.float64, **kwargs)
            with torch.no_grad():
                ref.weight.copy_(w)
                ref.bias.copy_(b)
            want = ref(x)
            assert y.is_contiguous(memory_format=mf) and torch.allclose(y, want)
            dy = torch.randn_like(y)
            got = torch.autograd.grad(y, (x, w, b), dy)
            exp = torch.autograd.grad(want, (x, ref.weight, ref.bias), dy)
            for g, e in zip(got, exp):
                assert torch.allclose(g, e), kwargs


def test_whole_step_choice_is_measured_once_and_cached(monkeypatch, tmp_path):
    fake_cuda_autotune_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(dispatch, "_loop_ms", lambda fn, reps=3: fn())
    calls = []
    ours = lambda: calls.append("lkconv") or 0.30  # noqa: E731
    theirs = lambda: calls.append("torch") or 0.20  # noqa: E731
    prob = dataclasses.replace(_cuda_problem(), direction="step")
    assert dispatch.choose_whole_step(prob, ours, theirs) == "torch" and calls == ["lkconv", "torch"] * 3
    assert dispatch.choose_whole_step(prob, ours, theirs) == "torch" and len(calls) == 6  # cached
    entry = json.loads((tmp_path / "autotune.json").read_text())["entries"]["depthwise2d|fake|" + prob.key()]
    assert entry == {"algorithm": "torch", "times_ms": {"lkconv": 0.30, "torch": 0.20}}
    monkeypatch.setenv("LKCONV_AUTOTUNE", "0")
    other = dataclasses.replace(prob, n=9)
    assert dispatch.choose_whole_step(other, ours, theirs) == "lkconv" and len(calls) == 6
    assert dispatch.choose_whole_step(dataclasses.replace(prob, device=torch.device("cpu")), ours, theirs) == "lkconv"


@pytest.mark.parametrize("ours_ms, chosen", [(0.97, "torch"), (0.96, "torch"), (0.94, "lkconv"), (0.5, "lkconv")])
def test_whole_step_goes_to_lkconv_only_past_the_margin(monkeypatch, tmp_path, ours_ms, chosen):
    fake_cuda_autotune_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(dispatch, "_loop_ms", lambda fn, reps=3: fn())
    prob = dataclasses.replace(_cuda_problem(), direction="step")
    assert dispatch._STEP_MARGIN == 0.05
    assert dispatch.choose_whole_step(prob, lambda: ours_ms, lambda: 1.0) == chosen


def test_interleaved_timing_takes_turns_and_medians(monkeypatch):
    order, samples = [], {"a": iter([5.0, 1.0, 2.0]), "b": iter([3.0, 9.0, 4.0])}

    def timer(fn):
        return fn()

    fns = {name: (lambda name=name: order.append(name) or next(samples[name])) for name in ("a", "b")}
    assert dispatch._interleaved_ms(fns, timer) == {"a": 2.0, "b": 4.0}
    assert order == ["a", "b"] * 3

    def boom():
        order.append("boom")
        raise RuntimeError("out of memory")

    order.clear()
    with pytest.warns(UserWarning, match="boom failed"):
        times = dispatch._interleaved_ms({"boom": boom, "ok": lambda: order.append("ok") or 1.0}, timer)
    assert times == {"boom": float("inf"), "ok": 1.0}
    assert order == ["boom", "ok", "ok", "ok"]  # a failed candidate is not run again


def test_autotune_keeps_a_gpu_time_choice_for_graph_capture(monkeypatch, tmp_path):
    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    autotune_cache.clear_memory()
    monkeypatch.setattr(dispatch, "_REGISTRY", {"direct": _Fake(), "torch": _Fake()})
    monkeypatch.setattr(dispatch, "_cache_key", lambda prob: "depthwise2d|fake|" + prob.key())
    capturing = [False]
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: capturing[0])
    eager = {"direct": 0.40, "torch": 0.30}  # host-bound: PyTorch's lighter launch wins in eager mode
    gpu = {"direct": 0.05, "torch": 0.25}  # the kernels alone: lkconv's direct kernel wins in a graph
    timed = []
    monkeypatch.setattr(dispatch, "_loop_ms", lambda fn: eager[fn()])
    monkeypatch.setattr(dispatch, "_gpu_ms", lambda fn, device, host_ms: timed.append(host_ms) or gpu[fn()])
    runner = lambda name: (lambda: name)  # noqa: E731
    prob = _cuda_problem()
    assert dispatch.choose(prob, "auto", runner) == "torch"
    assert sorted(timed) == [0.30, 0.40]  # each candidate timed on the GPU alone, bounded by its eager time
    entry = json.loads((tmp_path / "autotune.json").read_text())["entries"]["depthwise2d|fake|" + prob.key()]
    assert entry == {"algorithm": "torch", "times_ms": eager, "graph_algorithm": "direct", "gpu_times_ms": gpu}
    capturing[0] = True
    assert dispatch.choose(prob, "auto", pytest.fail) == "direct"  # cached: nothing is timed under capture
    autotune_cache.store("depthwise2d|fake|" + prob.key(), {"algorithm": "torch", "times_ms": eager})
    assert dispatch.choose(prob, "auto", pytest.fail) == "torch"  # an entry from before keeps its one choice
    capturing[0] = False
    eager.update(direct=2.0, torch=3.0)  # GPU-bound candidates are not timed again without the host
    other = dataclasses.replace(prob, n=9)
    timed.clear()
    assert dispatch.choose(other, "auto", runner) == "direct" and timed == []


def test_unavailable_candidates_are_not_timed(monkeypatch):
    monkeypatch.setattr(dispatch, "_REGISTRY", {"direct": _Fake(ok=False), "torch": _Fake()})
    assert dispatch.choose(_cuda_problem(), "auto", lambda n: pytest.fail("must not time")) == "torch"


# ----------------------------------------------------------------------------- GPU only

@gpu
@pytest.mark.parametrize("algorithm", ["direct", "implicit_gemm", "fft"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_gpu_algorithms_on_model_shapes(algorithm, layout, dtype):
    dev = torch.device("cuda")
    for case in [verify.Case(2, 32, 56, 56, 31, 31, padding=15), verify.Case(4, 64, 14, 14, 13, 13, padding=6),
                 verify.Case(2, 40, 14, 14, 27, 27, padding=13), verify.Case(2, 24, 28, 28, 29, 29, padding=14),
                 verify.Case(2, 48, 112, 112, 7, 7, stride=(2, 2), padding=3), verify.Case(2, 24, 56, 56, 5, 51, padding=(2, 25))]:
        case.layout, case.dtype = layout, dtype
        if verify.serves(case, algorithm, dev):
            assert_verified(case, algorithm, dev)


@gpu
@pytest.mark.slow
def test_gpu_more_than_2_31_elements():
    res = verify.check_large("direct", torch.device("cuda"))
    assert res.ok, (res.error, res.errors)


@gpu
def test_gpu_time_excludes_host_time():
    dev = torch.device("cuda")
    spin = int(dispatch._spin_cycles_per_ms(dev) * 0.2)  # 0.2 ms of GPU work behind 3 ms of host work

    def call():
        time.sleep(0.003)
        torch.cuda._sleep(spin)

    eager = dispatch._median_ms(call)
    gpu_only = dispatch._gpu_ms(call, dev, eager)
    assert eager > 2.5, eager
    assert 0.1 < gpu_only < 0.6, gpu_only


@gpu
def test_auto_inside_a_cuda_graph_matches_float64(monkeypatch, tmp_path):
    """A host-bound layer: "auto" hands eager steps to PyTorch, a captured step runs the GPU-time choices."""
    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    autotune_cache.clear_memory()
    dispatch.forget_choices()
    x = torch.randn(8, 12, 56, 56, device="cuda", requires_grad=True)
    w = torch.randn(12, 1, 1, 11, device="cuda", requires_grad=True)
    dy = torch.randn(8, 12, 56, 56, device="cuda")

    def step():
        y = lkconv.depthwise_conv2d(x, w, None, 1, (0, 5), algorithm="auto")
        return (y,) + torch.autograd.grad(y, (x, w), dy)

    warm_on_side_stream(step)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for t in (x, w, dy):  # fresh inputs, replayed
        t.detach().copy_(torch.randn_like(t))
    graph.replay()
    torch.cuda.synchronize()
    x64, w64 = (t.detach().double().requires_grad_() for t in (x, w))
    ref = F.conv2d(x64, w64, None, 1, (0, 5), 1, 12)
    ref_grads = torch.autograd.grad(ref, (x64, w64), dy.double())
    for got, want in zip(out, (ref,) + ref_grads):
        assert rel_error(got, want) < 1e-4
    entries = [e for k, e in autotune_cache._memory.items() if k.startswith("depthwise2d|") and "|fwd|" in k]
    assert entries and all("graph_algorithm" in e and "gpu_times_ms" in e for e in entries), entries
