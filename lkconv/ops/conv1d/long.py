"""Long depthwise 1D convolution by FFT, for any sequence length (Hyena, SGConv, state-space-style kernels).

Three algorithms behind one entry point:

- "fft": y = irfft(rfft(x, n) * rfft(k, n), n) with n the smallest 2^a 3^b 5^c 7^d >= L + Lk - 1 (no
  wrap-around), in float32 (float64 for float64 input); differentiable through torch.fft.
- "fused_fft": one Triton kernel per direction (:mod:`.fused_fft`) for transforms of up to MAX_N = 16384
  points; longer ones, up to 2^21 points, in three kernels that meet in a global workspace (:mod:`.staged_fft`).
- "staged_fft": the staged kernels at any size they take (4096 .. 2^21 points).

"auto" measures the candidates once per problem (shapes, causal, dtype, skip term, device; forward and backward
when a gradient is wanted) and caches the winner like depthwise_conv2d's choices; on CPU and under torch.compile it
takes "fft". The candidates: "fft"; "fused_fft", except for float32 without PyTorch's tf32 flag within MAX_N (its
split bfloat16 products were slower than torch.fft on every public shape, H100, 2026-11-24: hyena_4k forward 2.75
against 2.03 ms, docs/BENCHMARKS.md; compiling them for the measurement alone takes tens of seconds); and
"staged_fft" within MAX_N where it applies (past MAX_N "fused_fft" is the staged kernels). The staged kernels
beat torch.fft in float32 too: sgconv_16k forward 1.06 against 1.67 ms (H100, 2026-12-07).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..depthwise2d.dispatch import _autotune_enabled, _median_ms
from ..depthwise2d.fft import next_fast_len
from . import fused_fft, staged_fft

ALGORITHMS = ("auto", "fft", "fused_fft", "staged_fft")


def _long_conv1d_torch(x, k, D, causal):
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    length, lk = x.shape[-1], k.shape[-1]
    n = next_fast_len(length + lk - 1)
    y = torch.fft.irfft(torch.fft.rfft(x.to(dt), n=n) * torch.fft.rfft(k.to(dt), n=n), n=n)
    start = 0 if causal else (lk - 1) // 2
    y = y[..., start: start + length]
    if D is not None:
        y = y + x.to(dt) * D.to(dt).view(1, -1, 1)
    return y.to(x.dtype).contiguous()  # a dense (B, C, L), not a view into the length-n transform


def _long_conv1d_fused(x, k, D, causal):
    return fused_fft.FusedLongConv1d.apply(x if x.stride(-1) == 1 else x.contiguous(), k, D, causal)


def _long_conv1d_staged(x, k, D, causal):
    return fused_fft.FusedLongConv1d.apply(x if x.stride(-1) == 1 else x.contiguous(), k, D, causal,
                                           staged_fft.StagedConfig())


_RUN = {"fft": _long_conv1d_torch, "fused_fft": _long_conv1d_fused, "staged_fft": _long_conv1d_staged}


def _staged_size(x, k) -> bool:
    """Whether the staged kernels take this problem's size: its power-of-two transform at least MIN_N points (below
    it the staged transform would be twice as long as the fused kernels'), its staged one supported."""
    length, lk = x.shape[-1], k.shape[-1]
    return (fused_fft.transform_size(length, lk) >= staged_fft.MIN_N
            and staged_fft.supports(staged_fft.transform_size(length, lk)))


def _staged_reason(x, k, causal) -> Optional[str]:
    """None when the staged kernels can serve this call, else why not."""
    why = fused_fft.unsupported_reason(x, k, causal)
    n = fused_fft.transform_size(x.shape[-1], k.shape[-1])
    if why is None and not _staged_size(x, k):
        why = f"a {n}-point transform (the staged kernels take {staged_fft.MIN_N} to " \
              f"{staged_fft.MAX_M * staged_fft.MAX_Q})"
    return why


def _candidates(x, k, causal) -> list:
    """The algorithms "auto" measures for this call (see the module docstring)."""
    if fused_fft.unsupported_reason(x, k, causal) is not None:
        return ["fft"]
    n = fused_fft.transform_size(x.shape[-1], k.shape[-1])
    names = ["fft"]
    if n > fused_fft.MAX_N or x.dtype != torch.float32 or torch.backends.cuda.matmul.allow_tf32:
        names.append("fused_fft")
    if n <= fused_fft.MAX_N and _staged_size(x, k):
        names.append("staged_fft")
    return names


def _step_ms(fn, x, k, D, causal, grad: bool) -> float:
    """Median milliseconds of one call (with its backward when grad), timed like depthwise_conv2d's candidates."""
    leaves = [t.detach().requires_grad_(grad and t.requires_grad) if t is not None else None for t in (x, k, D)]
    gen = torch.Generator(device=x.device)
    gen.manual_seed(0)  # the caller's random stream is left alone
    dy = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    wanted = [t for t in leaves if t is not None and t.requires_grad]

    def step():
        with torch.set_grad_enabled(grad):
            y = fn(leaves[0], leaves[1], leaves[2], causal)
            if wanted:
                torch.autograd.grad(y, wanted, dy)

    return _median_ms(step)


def choice_key(x, k, D, causal: bool, grad: bool, candidates: Optional[list] = None) -> str:
    """The autotune-cache key of a long_conv1d problem (grad: timed with its backward), with the candidates
    measured (_candidates' unless given): a choice made among fewer is made again."""
    dev = torch.cuda.get_device_name(x.device) if x.is_cuda else x.device.type
    names = candidates if candidates is not None else _candidates(x, k, causal)
    return (f"long_conv1d|{dev}|b{x.shape[0]}c{x.shape[1]}l{x.shape[2]}k{k.shape[1]}"
            f"|{'causal' if causal else 'centred'}|{str(x.dtype).replace('torch.', '')}"
            f"|{'D' if D is not None else 'noD'}|{'fwd+bwd' if grad else 'fwd'}|{'+'.join(names)}")


def choose(x, k, D, causal: bool, algorithm: str) -> str:
    """The algorithm that serves this call: ``algorithm`` itself unless "auto" (see the module docstring)."""
    reason = {"fused_fft": fused_fft.unsupported_reason, "staged_fft": _staged_reason}.get(algorithm)
    why = reason(x, k, causal) if reason is not None else None
    if why is not None:
        raise ValueError(f"algorithm={algorithm!r} cannot serve this call: {why}")
    if algorithm != "auto":
        return algorithm
    if not x.is_cuda or torch.compiler.is_compiling():  # compiled graphs: torch.fft's ops
        return "fft"
    candidates = _candidates(x, k, causal)
    if len(candidates) == 1:
        return "fft"
    from ..autotune_cache import lookup, store

    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, k, D))
    key = choice_key(x, k, D, causal, grad, candidates)
    hit = lookup(key)
    if hit is not None and hit["algorithm"] in _RUN:
        return hit["algorithm"]
    if torch.cuda.is_current_stream_capturing():  # nothing can be timed inside a CUDA-graph capture
        return "fft"
    if not _autotune_enabled():
        return "fft"  # without measuring, the algorithm whose speed is known
    times = {}
    for name in candidates:
        try:
            times[name] = _step_ms(_RUN[name], x, k, D, causal, grad)
        except Exception:  # a candidate that fails (out of memory, compile error) just loses
            times[name] = float("inf")
    best = min(times, key=times.get)
    store(key, {"algorithm": best, "times_ms": times})
    return best


def long_conv1d(x: torch.Tensor, k: torch.Tensor, D: Optional[torch.Tensor] = None, causal: bool = True,
                algorithm: str = "auto") -> torch.Tensor:
    """Depthwise long convolution of x (B, C, L) with a per-channel kernel k (C, Lk), 1 <= Lk <= L.

    causal=True: y[t] = sum_{s<=t} k[s] x[t - s]. causal=False: the kernel is centred on tap (Lk - 1) // 2.
    D: optional (C,) skip term, y += D * x. dtypes float32, float16, bfloat16 (computed in float32), float64.
    algorithm: "auto", "fft" (torch.fft), "fused_fft" (Triton; transforms of up to 2^21 points) or "staged_fft"
    (Triton, through a global workspace; 4096 to 2^21 points).
    Returns (B, C, L) in x's dtype; differentiable in x, k and D.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a 3-D tensor (B, C, L), got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(k, torch.Tensor) or k.dim() != 2 or k.shape[0] != x.shape[1]:
        raise ValueError(f"k must be (C, Lk) with C = {x.shape[1]}, got {getattr(k, 'shape', type(k).__name__)}")
    length, lk = x.shape[-1], k.shape[-1]
    if not 1 <= lk <= length:
        raise ValueError(f"kernel length must be between 1 and L = {length}, got {lk}")
    if D is not None and (not isinstance(D, torch.Tensor) or D.shape != (x.shape[1],)):
        raise ValueError(f"D must be a ({x.shape[1]},) tensor or None, got {getattr(D, 'shape', D)}")
    for name, t in (("k", k), ("D", D)):
        if t is not None and t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    name = choose(x, k, D, causal, algorithm)
    if x.numel() == 0:  # zeros, still connected to x and k for autograd
        return (x * 0 + (k.sum() * 0).to(x.dtype)).contiguous()
    return _RUN[name](x, k, D, causal)
