"""The one place that decides which algorithm computes a depthwise convolution.

``algorithm="auto"`` measures every algorithm that can serve the call once per problem key (direction,
shapes, kernel, stride, dilation, padding, dtype, layout, device) on the call's own tensors, and caches the
winner in memory and on disk (:mod:`lkconv.ops.autotune_cache`). ``LKCONV_AUTOTUNE=0`` replaces measuring
with a fixed heuristic. An explicit algorithm that cannot serve the call raises ValueError saying why.

Two winners are kept per problem: one by the time a call takes when launched from Python (host work counts
where it exceeds the GPU's), used in eager mode, and one by GPU time alone, used while a CUDA graph is being
captured (a replayed graph has no host cost, so a kernel that loses to PyTorch's launch overhead in eager
mode can win there). Where "direct" wins the weight gradient, "auto" also times how many strips each of its
programs sums and whether each pass of kernel columns gets its own program (:func:`choose_wgrad_chunks`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import statistics
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ...testing import poisoning
from .. import _streams
from . import direct, fft, implicit_gemm, reference
from .params import conv_out_hw, output_memory_format
from .problem import Problem

ALGORITHMS = ("auto", "direct", "implicit_gemm", "fft", "torch")


def _alloc(shape, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    t = torch.empty(shape, dtype=dtype, device=like.device, memory_format=output_memory_format(like))
    if poisoning():
        t.fill_(float("nan"))
    return t


class _Algorithm:
    """An algorithm computes fwd(x, w, b, ...), dgrad(dy, x, w, ...) and wgrad(dy, x, w, ...)."""

    name = ""

    def bind(self, direction: str, x, w, b, stride, pad, dil) -> Callable:
        """A callable computing ``direction`` for later calls with the same x/w signature: fwd(x, w, b),
        dgrad(dy, x, w) or wgrad(dy, x, w). Binding once keeps per-call host work small."""
        return lambda t0, t1, t2: getattr(self, direction)(t0, t1, t2, stride, pad, dil)


class TorchAlgorithm(_Algorithm):
    """PyTorch's own convolution (cuDNN on CUDA, oneDNN/ATen on CPU)."""

    name = "torch"

    def reason(self, prob: Problem) -> Optional[str]:
        return None

    def fwd(self, x, w, b, stride, pad, dil):
        y = reference.depthwise_conv2d_fwd_torch(x, w, b, stride, pad, dil)
        return y.contiguous(memory_format=output_memory_format(x))

    def dgrad(self, dy, x, w, stride, pad, dil):
        dx = reference.depthwise_conv2d_dgrad_torch(dy, x, w, stride, pad, dil)
        return dx.contiguous(memory_format=output_memory_format(x))

    def wgrad(self, dy, x, w, stride, pad, dil):
        return reference.depthwise_conv2d_wgrad_torch(dy, x, w, stride, pad, dil).contiguous()


class DirectAlgorithm(_Algorithm):
    """Triton direct kernels on CUDA cores (:mod:`.direct`)."""

    name = "direct"

    def reason(self, prob: Problem) -> Optional[str]:
        return direct.unsupported_reason_for(prob)

    # Unbound calls (autotune timing, the FFT's fallback) bind on the spot; plans are cached by the direct module.
    def fwd(self, x, w, b, stride, pad, dil):
        return self.bind("fwd", x, w, b, stride, pad, dil)(x, w, b)

    def dgrad(self, dy, x, w, stride, pad, dil):
        return self.bind("dgrad", x, w, None, stride, pad, dil)(dy, x, w)

    def wgrad(self, dy, x, w, stride, pad, dil):
        return self.bind("wgrad", x, w, None, stride, pad, dil)(dy, x, w)

    def bind(self, direction, x, w, b, stride, pad, dil):
        if direction == "fwd":
            return self._bind_fwd(x, w, b, stride, pad, dil)
        if direction == "dgrad":
            return self._bind_dgrad(x, w, stride, pad, dil)
        return self._bind_wgrad(w, stride, pad, dil)

    @staticmethod
    def _bind_fwd(x, w, b, stride, pad, dil):
        n = x.shape[0]
        ho, wo = conv_out_hw(x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, pad, dil)
        shape = (n, w.shape[0], ho, wo)
        strides = direct._dense_strides(shape, output_memory_format(x) == torch.channels_last)
        plan = direct.plan_conv_fwd(x, w, b, shape, strides, stride, pad, dil) if n * w.shape[0] * ho * wo else None
        dtype, device = x.dtype, x.device

        def fwd(x, w, b):
            y = torch.empty_strided(shape, strides, dtype=dtype, device=device)
            if plan is None:
                return y
            if poisoning():
                y.fill_(float("nan"))
            return direct.run_planned_fwd(plan, x, w, b, y)

        return fwd

    @staticmethod
    def _bind_dgrad(x, w, stride, pad, dil):
        shape, dtype, device = tuple(x.shape), x.dtype, x.device
        strides = direct._dense_strides(shape, output_memory_format(x) == torch.channels_last)
        plans = {}  # output-gradient strides -> launch steps

        def dgrad(dy, x, w):
            dx = torch.empty_strided(shape, strides, dtype=dtype, device=device)
            if dx.numel() == 0:
                return dx
            if dy.numel() == 0:
                return dx.zero_()
            if poisoning():
                dx.fill_(float("nan"))
            steps = plans.get(dy.stride())
            if steps is None:
                steps = plans[dy.stride()] = direct.plan_conv_dgrad(dy, dx, w, stride, pad, dil)
            return direct.run_planned_dgrad(steps, stride, dy, w, dx)

        return dgrad

    @staticmethod
    def _bind_wgrad(w, stride, pad, dil, per_prog: int = 0, split: int = 0):
        """per_prog, split: strips (or items) per program of the weight-gradient kernel and programs sharing a
        chunk's passes (:func:`direct.plan_conv_wgrad`); 0 for its heuristic."""
        w_shape, w_dtype = tuple(w.shape), w.dtype
        plans = {}  # output-gradient strides -> launch plan

        def wgrad(dy, x, w):
            if dy.numel() == 0:
                return torch.zeros(w_shape, dtype=w_dtype, device=dy.device)
            plan = plans.get(dy.stride())
            if plan is None:
                plan = plans[dy.stride()] = direct.plan_conv_wgrad(dy, x, w_shape, stride, pad, dil, per_prog=per_prog,
                                                                   split=split)
            return direct.run_planned_wgrad(plan, dy, x, w_dtype)

        return wgrad


class FFTAlgorithm(_Algorithm):
    """Spectral products with torch.fft (:mod:`.fft`); out of memory falls back to the direct kernels or PyTorch."""

    name = "fft"

    def reason(self, prob: Problem) -> Optional[str]:
        return fft.unsupported_reason_for(prob)

    @staticmethod
    def _fallback(x, w, stride, pad, dil) -> object:
        """The direct kernels when they can serve the call, else PyTorch."""
        prob = Problem.make("fwd", x, w, stride, pad, dil)
        return _REGISTRY["direct"] if _REGISTRY["direct"].reason(prob) is None else _REGISTRY["torch"]

    def fwd(self, x, w, b, stride, pad, dil):
        try:
            return fft.conv_fwd(x, w, b, stride, pad, dil)  # laid out like x
        except torch.cuda.OutOfMemoryError:
            return self._fallback(x, w, stride, pad, dil).fwd(x, w, b, stride, pad, dil)

    def dgrad(self, dy, x, w, stride, pad, dil):
        try:
            return fft.conv_dgrad(dy, x.shape, w, stride, pad, dil, output_memory_format(x))
        except torch.cuda.OutOfMemoryError:
            return self._fallback(x, w, stride, pad, dil).dgrad(dy, x, w, stride, pad, dil)

    def wgrad(self, dy, x, w, stride, pad, dil):
        try:
            return fft.conv_wgrad(dy, x, w.shape, stride, pad, dil).to(w.dtype)
        except torch.cuda.OutOfMemoryError:
            return self._fallback(x, w, stride, pad, dil).wgrad(dy, x, w, stride, pad, dil)

    def backward(self, dy, x, w, stride, pad, dil):
        """(dgrad, wgrad) from one spectrum of dy: where "fft" serves both gradients, or where "auto" measured this
        faster than its two per-direction choices (:func:`choose_backward`)."""
        try:
            dx, dw = fft.conv_backward(dy, x, w, stride, pad, dil)  # dx laid out like x
        except torch.cuda.OutOfMemoryError:
            return self.dgrad(dy, x, w, stride, pad, dil), self.wgrad(dy, x, w, stride, pad, dil)
        return dx, dw.to(w.dtype)


class ImplicitGemmAlgorithm(_Algorithm):
    """Tensor-core banded-Toeplitz GEMM (:mod:`.implicit_gemm`): stride 1, any layout, tall kernels transposed."""

    name = "implicit_gemm"

    def reason(self, prob: Problem) -> Optional[str]:
        return implicit_gemm.unsupported_reason_for(prob)

    def fwd(self, x, w, b, stride, pad, dil):
        ho, wo = conv_out_hw(x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, pad, dil)
        y = _alloc((x.shape[0], w.shape[0], ho, wo), x, x.dtype)
        return implicit_gemm.conv_fwd(x, w, b, stride, pad, dil, y) if y.numel() else y

    def dgrad(self, dy, x, w, stride, pad, dil):
        dx = _alloc(x.shape, x, x.dtype)
        return implicit_gemm.conv_dgrad(dy, x.shape, w, stride, pad, dil, dx) if dx.numel() else dx

    def wgrad(self, dy, x, w, stride, pad, dil):
        if dy.numel() == 0:
            return torch.zeros_like(w, memory_format=torch.contiguous_format)
        return implicit_gemm.conv_wgrad(dy, x, w.shape, stride, pad, dil).to(w.dtype)


_REGISTRY: Dict[str, object] = {"direct": DirectAlgorithm(), "implicit_gemm": ImplicitGemmAlgorithm(),
                                "fft": FFTAlgorithm(), "torch": TorchAlgorithm()}
_AUTO_ORDER = ("direct", "implicit_gemm", "fft", "torch")  # candidates of "auto", timed in this order


def check_algorithm_name(algorithm) -> None:
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")


def explain(prob: Problem, algorithm: str) -> Optional[str]:
    """Why ``algorithm`` cannot serve ``prob`` (None if it can)."""
    return _REGISTRY[algorithm].reason(prob)


def _autotune_enabled() -> bool:
    return os.environ.get("LKCONV_AUTOTUNE", "1").strip().lower() not in ("0", "false", "off", "no")


def heuristic(prob: Problem, candidates: List[str]) -> str:
    """Choice without measuring: the direct kernels for kernels of 3x3 and larger, cuDNN for tiny kernels."""
    if "direct" in candidates and prob.kh * prob.kw >= 9:
        return "direct"
    return candidates[-1]


def _median_ms(fn: Callable[[], object], reps: int = 5, spin_cycles: int = 0) -> float:
    """Median milliseconds of one call of ``fn`` between CUDA events (after one untimed call). With
    ``spin_cycles``, a spin kernel of that many cycles is queued before each timed call (see :func:`_gpu_ms`)."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if spin_cycles:
            torch.cuda._sleep(spin_cycles)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


_cycles_per_ms: Dict[int, float] = {}


def _spin_cycles_per_ms(device: torch.device) -> float:
    """Clock cycles of ``torch.cuda._sleep`` per millisecond on ``device`` (measured once)."""
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _cycles_per_ms:
        with torch.cuda.device(idx):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda._sleep(1000)
            start.record()
            torch.cuda._sleep(2_000_000)
            end.record()
            end.synchronize()
            _cycles_per_ms[idx] = 2_000_000 / max(start.elapsed_time(end), 1e-3)
    return _cycles_per_ms[idx]


def _gpu_ms(fn: Callable[[], object], device: torch.device, host_bound_ms: float, reps: int = 5) -> float:
    """Median GPU milliseconds of one call of ``fn``, host time excluded.

    A spin kernel queued first keeps the GPU busy while the host enqueues the call (``host_bound_ms`` bounds
    the host's time per call), so the events around the call time only the GPU's work, as in a CUDA graph.
    Without ``torch.cuda._sleep`` this is the time with host work (:func:`_median_ms`).
    """
    if not hasattr(torch.cuda, "_sleep"):
        return _median_ms(fn, reps)
    cycles = int(_spin_cycles_per_ms(device) * (2.0 * host_bound_ms + 0.2))
    with torch.cuda.device(device):
        return _median_ms(fn, reps, cycles)


_GPU_TIMED_BELOW_MS = 1.0  # candidates slower than this in eager mode are GPU-bound: their eager time stands


def _cache_key(prob: Problem) -> str:
    dev = torch.cuda.get_device_name(prob.device) if prob.device.type == "cuda" else prob.device.type
    return f"depthwise2d|{dev}|{prob.key()}"


def choose(prob: Problem, algorithm: str, runner: Callable[[str], Callable[[], object]]) -> str:
    """Resolve ``algorithm`` for ``prob``; ``runner(name)`` gives a zero-argument callable used to time it."""
    if algorithm != "auto":
        why = explain(prob, algorithm)
        if why is not None:
            raise ValueError(f"algorithm={algorithm!r} cannot serve this call: {why}")
        return algorithm
    candidates = [a for a in _AUTO_ORDER if a in _REGISTRY and _REGISTRY[a].reason(prob) is None]
    if prob.device.type != "cuda" or len(candidates) == 1:
        return "torch"
    from ..autotune_cache import lookup, store

    key = _cache_key(prob)
    hit = lookup(key)
    capturing = torch.cuda.is_current_stream_capturing()
    if hit is not None:
        name = hit.get("graph_algorithm", hit["algorithm"]) if capturing else hit["algorithm"]
        if name in candidates:
            return name
    if not _autotune_enabled() or capturing:
        return heuristic(prob, candidates)
    # back to back, as a training loop launches: host work counts only where it exceeds the GPU's
    times = _interleaved_ms({name: runner(name) for name in candidates}, lambda fn: _loop_ms(fn), prob, rounds=1)
    gpu_times = {}
    for name, t in times.items():
        gpu_times[name] = t
        if t < _GPU_TIMED_BELOW_MS:
            try:
                gpu_times[name] = _gpu_ms(runner(name), prob.device, t)
            except Exception:  # it ran above; a failure here keeps its eager time
                pass
    best = min(times, key=times.get)
    store(key, {"algorithm": best, "times_ms": times, "graph_algorithm": min(gpu_times, key=gpu_times.get),
                "gpu_times_ms": gpu_times})
    return best


def _loop_ms(fn: Callable[[], object], reps: int = 3) -> float:
    """Median milliseconds per call of ``fn`` run back to back (host work per call counts when it dominates)."""
    single = _median_ms(fn, reps=1)
    n = max(1, min(20, int(2.0 / max(single, 1e-3))))
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / n)
    return statistics.median(times)


# lkconv takes a whole step only when it measured this much faster than PyTorch's: within it the two are level up
# to the host's run-to-run spread, and PyTorch's step carries no wrapper work of lkconv's
_STEP_MARGIN = 0.05


def choose_whole_step(prob: Problem, ours: Callable[[], object], theirs: Callable[[], object]) -> str:
    """"lkconv" or "torch": which ran a whole training step of ``prob`` (forward and both gradients) faster.

    Per-direction choices can each beat PyTorch while the step as a whole does not (for tiny layers the host
    work of three launches outweighs the kernels), so "auto" also times the step back to back, once per problem
    key, cached like the per-direction choices.
    """
    return _choose_measured(prob, {"lkconv": ours, "torch": theirs}, default="lkconv", prefer="torch",
                            margin=_STEP_MARGIN)


def choose_backward(prob: Problem, separate: Callable[[], object], joint: Callable[[], object]) -> str:
    """"joint" or "separate": both gradients of ``prob`` from the FFT's joint backward (one spectrum of the output
    gradient), or each from its own per-direction choice. "auto" picks each direction alone, so where the FFT won
    only one of them the pair is timed both ways, once per problem key, cached."""
    return _choose_measured(prob, {"separate": separate, "joint": joint}, default="separate")


def _choose_measured(prob: Problem, fns: Dict[str, Callable[[], object]], default: str,
                     prefer: Optional[str] = None, margin: float = 0.0,
                     timer: Optional[Callable[[Callable[[], object]], float]] = None) -> str:
    """The fastest of ``fns`` by ``timer`` (default: run back to back, :func:`_loop_ms`), the candidates taking
    turns, cached per problem key; where ``prefer`` is given, another candidate must beat it by ``margin`` (a
    fraction of its time). ``default`` off CUDA, with autotuning off, and under graph capture when nothing is
    cached."""
    if prob.device.type != "cuda":
        return default
    from ..autotune_cache import lookup, store

    key = _cache_key(prob)
    hit = lookup(key)
    if hit is not None and hit["algorithm"] in fns:
        return hit["algorithm"]
    if not _autotune_enabled() or torch.cuda.is_current_stream_capturing():
        return default
    times = _interleaved_ms(fns, timer or (lambda fn: _loop_ms(fn, reps=1)), prob)
    best = min(times, key=lambda k: (times[k], k != default))  # ties go to the default
    if prefer is not None and best != prefer and times[best] > (1.0 - margin) * times[prefer]:
        best = prefer
    store(key, {"algorithm": best, "times_ms": times})
    return best


def _interleaved_ms(fns: Dict, timer: Callable[[Callable[[], object]], float], prob: Optional[Problem] = None,
                    rounds: int = 3) -> Dict:
    """Median over ``rounds`` of ``timer(fn)`` per entry of ``fns``, the entries taking turns in each round, so
    that a slow spell of the machine falls on all of them alike. A candidate that raises gets infinity."""
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if samples[name] and samples[name][-1] == float("inf"):
                continue
            try:
                samples[name].append(timer(fn))
            except Exception as exc:  # a candidate that fails (out of memory, compile error) just loses
                where = f" on {prob.key()}" if prob is not None else ""
                warnings.warn(f"lkconv autotune: {name} failed{where}: {exc}")
                samples[name].append(float("inf"))
    return {name: statistics.median(ts) for name, ts in samples.items()}


def _split(direction: str, args):
    """(tensors the bound callable takes, x, w, b, stride, pad, dil) from run()'s argument convention."""
    if direction == "fwd":
        x, w, b, stride, pad, dil = args
        return (x, w, b), x, w, b, stride, pad, dil
    dy, x, w, stride, pad, dil = args
    return (dy, x, w), x, w, None, stride, pad, dil


def bind(direction: str, algorithm: str, *args) -> Tuple[str, Callable]:
    """Resolve ``algorithm`` for this call (measuring once under "auto") and bind it to the call's signature.

    Returns (algorithm name, callable): fwd(x, w, b) or dgrad/wgrad(dy, x, w), valid for later calls whose
    x and w have the same shapes, strides, dtype and device (the output gradient may vary).
    """
    _, x, w, b, stride, pad, dil = _split(direction, args)
    prob = Problem.make(direction, x, w, stride, pad, dil)
    name = choose(prob, algorithm, lambda a: (lambda: getattr(_REGISTRY[a], direction)(*args)))
    if algorithm == "auto" and name == "direct" and direction == "wgrad":
        per_prog, split = choose_wgrad_chunks(prob, *args)
        return name, DirectAlgorithm._bind_wgrad(w, tuple(stride), tuple(pad), tuple(dil), per_prog, split)
    return name, _REGISTRY[name].bind(direction, x, w, b, tuple(stride), tuple(pad), tuple(dil))


# strips (or items) per program that "auto" times for the direct weight gradient, beside its heuristic's count;
# no single count was fastest on the public shapes (H100, fp32: 4 per program 20-28% faster on van_b0.lka_dil,
# cfsr.convmod, puyun.lka_latlon and unireplknet_t.dil, 13-25% slower on convnext_t.s1 and yolov13_n.dsconv)
_WGRAD_PER_PROG = (2, 4, 8, 16, 32)
_KEEP_HEURISTIC_WITHIN = 0.02  # a measured count must beat the heuristic's by this fraction
_PART_GROWTH, _PART_ELEMENTS = 4, 2**24  # counts whose partial sums exceed both bounds are not tried


def choose_wgrad_chunks(prob: Problem, dy, x, w, stride, pad, dil) -> Tuple[int, int]:
    """(strips or items per program, programs per chunk's passes) for the direct weight gradient of ``prob``:
    (0, 0) (the kernel's heuristics) or the launch that ran fastest by GPU time among the counts of
    :data:`_WGRAD_PER_PROG`, each with the heuristic's pass programs and with one program for all passes
    (:func:`_choose_measured`, problem direction "wgrad:launch", keys "per" or "per/split"), measured once per
    problem key and cached. Either changes how the sum is split over programs, not what is summed."""
    if prob.device.type != "cuda":
        return 0, 0
    plans, launches = {}, set()
    for per, split in [(p, 0) for p in (0,) + _WGRAD_PER_PROG] + [(p, 1) for p in (0,) + _WGRAD_PER_PROG]:
        try:
            plan = direct.plan_conv_wgrad(dy, x, w.shape, stride, pad, dil, per_prog=per, split=split)
        except ValueError:  # a count that cannot be launched (too many chunks for the grid) is not a candidate
            if not (per or split):
                raise
            continue
        launch = (plan.grid, plan.part_shape)  # the same launch again (e.g. one pass, or a count past the total)
        if launch in launches or ((per or split) and math.prod(plan.part_shape) > max(
                _PART_GROWTH * math.prod(plans["0"].part_shape), _PART_ELEMENTS)):
            continue  # the same launch again, or a buffer of partial sums much larger than the heuristic's
        plans[f"{per}/{split}" if split else str(per)] = plan
        launches.add(launch)
    fns = {key: (lambda plan=plan: direct.run_planned_wgrad(plan, dy, x, w.dtype)) for key, plan in plans.items()}
    best = _choose_measured(dataclasses.replace(prob, direction="wgrad:launch"), fns, default="0", prefer="0",
                            margin=_KEEP_HEURISTIC_WITHIN,
                            timer=lambda fn: _gpu_ms(fn, prob.device, host_bound_ms=0.2, reps=3))
    per, _, split = best.partition("/")
    return int(per), int(split or 0)


def backward_both(algorithm: str, dy, x, w, stride, pad, dil) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """(dx, dw) in one pass when ``algorithm`` computes both gradients together (the FFT shares dy's spectrum),
    else None."""
    alg = _REGISTRY.get(algorithm)
    if not hasattr(alg, "backward"):
        return None
    return alg.backward(dy, x, w, tuple(stride), tuple(pad), tuple(dil))


# The FFT's joint backward computes both gradients from one spectrum of the output gradient: on replknet_31b.s1
# (H100, bf16 NCHW) it took 1.92 ms against 1.35 + 1.31 ms for the FFT's two gradients apart (0.72x). "auto"
# times it against any pair of choices slower than this fraction of those two.
_JOINT_FFT_FRACTION = 0.6


def _joint_fft_may_win(dname: str, wname: str, x, w, stride, pad, dil) -> bool:
    """Whether "auto" should time the FFT's joint backward against the pair (dname, wname): the FFT won one of
    them, or its measured gradients (autotune cache) are close enough that sharing a spectrum could win."""
    if "fft" in (dname, wname):
        return True
    from ..autotune_cache import lookup

    fft_ms = chosen_ms = 0.0
    for direction, chosen in (("dgrad", dname), ("wgrad", wname)):
        hit = lookup(_cache_key(Problem.make(direction, x, w, stride, pad, dil))) or {}
        times = hit.get("times_ms", {})
        if "fft" not in times or chosen not in times:
            return False
        fft_ms, chosen_ms = fft_ms + times["fft"], chosen_ms + times[chosen]
    return fft_ms * _JOINT_FFT_FRACTION < chosen_ms


def run_pair(dgrad_hit, wgrad_hit, dy, x, w, stride, pad, dil, verdicts: dict, auto: bool = False):
    """(dx, dw) from the bound per-direction choices ``(name, callable)``: in one pass when "fft" serves both, or,
    under "auto", when the FFT's joint backward measured faster than the pair (:func:`choose_backward`, timed where
    :func:`_joint_fft_may_win`; the verdict is kept in ``verdicts``, per pair, when made outside graph capture)."""
    dname, wname = dgrad_hit[0], wgrad_hit[0]
    joint = dname == wname == "fft"
    if not joint and auto:  # explicit algorithms bind both gradients to themselves
        verdict = verdicts.get((dname, wname))  # a measured verdict holds under graph capture too
        if verdict is None:
            capturing = x.is_cuda and torch.cuda.is_current_stream_capturing()
            verdict = False
            if _joint_fft_may_win(dname, wname, x, w, stride, pad, dil):
                prob = Problem.make(f"bwd:{dname}+{wname}", x, w, stride, pad, dil)
                verdict = choose_backward(prob, lambda: separate_pair(dgrad_hit, wgrad_hit, dy, x, w),
                                          lambda: backward_both("fft", dy, x, w, stride, pad, dil)) == "joint"
            if not capturing:
                verdicts[(dname, wname)] = verdict
        joint = verdict
    both = backward_both("fft", dy, x, w, stride, pad, dil) if joint else None
    return both if both is not None else separate_pair(dgrad_hit, wgrad_hit, dy, x, w)


_FORKED_PAIRS = ("direct", "implicit_gemm")  # Triton kernels whose workspace lives only during their call


def separate_pair(dgrad_hit, wgrad_hit, dy, x, w):
    """(dx, dw) from the bound choices ``(name, callable)`` apart; for large problems of lkconv's own kernels, the
    weight gradient runs on a side stream beside the input gradient (:mod:`lkconv.ops._streams`)."""
    (dname, dfn), (wname, wfn) = dgrad_hit, wgrad_hit
    if (dname in _FORKED_PAIRS and wname in _FORKED_PAIRS
            and _streams.worth_forking(dy, dy.numel() * w.shape[-2] * w.shape[-1])):
        return tuple(_streams.run_forked(dy.device, (lambda: dfn(dy, x, w), lambda: wfn(dy, x, w)),
                                         _streams.WGRAD_SIDE))
    return dfn(dy, x, w), wfn(dy, x, w)


def run_backward(algorithm: str, dy, x, w, stride, pad, dil):
    """(dx, dw) of one call: each gradient bound as :func:`run` binds it, both through :func:`run_pair`."""
    args = (dy, x, w, stride, pad, dil)
    verdicts = _pair_verdicts.setdefault(_memo_key("bwd", algorithm, x, w, None, stride, pad, dil), {})
    return run_pair(_memo_bind("dgrad", algorithm, args), _memo_bind("wgrad", algorithm, args), *args, verdicts,
                    algorithm == "auto")


def _memo_key(direction, algorithm, x, w, b, stride, pad, dil):
    return (direction, algorithm, x.shape, x.stride(), x.dtype, x.device, w.shape, w.stride(), b is None,
            tuple(stride), tuple(pad), tuple(dil))


def run(direction: str, algorithm: str, *args) -> torch.Tensor:
    """Compute one direction. fwd args: (x, w, b, stride, pad, dil); dgrad/wgrad: (dy, x, w, stride, pad, dil)."""
    return _memo_bind(direction, algorithm, args)[1](*_split(direction, args)[0])


def _memo_bind(direction: str, algorithm: str, args) -> Tuple[str, Callable]:
    """:func:`bind`, memoized per call signature (not under graph capture, where "auto" picks by GPU time)."""
    _, x, w, b, stride, pad, dil = _split(direction, args)
    if x.device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return bind(direction, algorithm, *args)
    key = _memo_key(direction, algorithm, x, w, b, stride, pad, dil)
    hit = _bound.get(key)
    if hit is None:
        hit = bind(direction, algorithm, *args)
        if len(_bound) > 4096:
            _bound.clear()
        _bound[key] = hit
    return hit


_bound: Dict[tuple, Tuple[str, Callable]] = {}  # per call signature: (algorithm, bound callable)
_pair_verdicts: Dict[tuple, dict] = {}  # per call signature: {(dgrad, wgrad) algorithms: joint FFT backward wins}
_forget_hooks: List[Callable[[], None]] = []


def forget_choices() -> None:
    """Drop the in-process memo of bound choices (the autotune cache itself is untouched)."""
    _bound.clear()
    _pair_verdicts.clear()
    for hook in _forget_hooks:
        hook()
