"""Launching a Triton kernel without re-binding its arguments on every call.

``kernel[grid](*args, **constexprs)`` re-derives the specialization of every argument and rebuilds the cache
key on each launch (tens of microseconds of host time, which small layers notice). :class:`FastLauncher`
keeps the compiled kernel of each launch configuration and calls it directly: ``compiled[grid](*all_args)``,
the same call Triton's JIT makes after binding. The first direct launch of each configuration is checked
bit for bit against the JIT launch on the same inputs; any difference, or any exception, keeps that
configuration on the JIT launch (with a warning; ``FastLauncher.refused`` says why).
``LKCONV_FAST_LAUNCH=0`` turns the fast path off from the start.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Dict, Sequence, Tuple

import torch


def strided_copy(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` with its exact strides (``clone`` makes a strided view dense): a launch's scratch output."""
    out = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=t.device)
    return out.copy_(t)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def _grid3(grid: Sequence[int]) -> Tuple[int, int, int]:
    """grid with three entries (a compiled kernel's launch reads grid[0], grid[1] and grid[2])."""
    return tuple(grid) + (1,) * (3 - len(grid))


class FastLauncher:
    """Direct launches of one @triton.jit kernel, keyed by launch configuration."""

    def __init__(self, kernel):
        self.kernel = kernel
        names = list(getattr(kernel, "arg_names", []))
        # pointer parameters lead every kernel launched this way: only they vary in dtype and alignment
        self.n_tensors = next((i for i, n in enumerate(names) if not n.endswith("_ptr")), len(names))
        self.compiled: Dict[tuple, tuple] = {}  # key -> (compiled[grid] runner, constexpr values)
        self.refused: Dict[tuple, str] = {}  # key -> why its direct launch was not used
        self.enabled = os.environ.get("LKCONV_FAST_LAUNCH", "1").strip().lower() not in ("0", "false", "off", "no")

    def _key(self, plan_key, args: Sequence) -> tuple:
        """The plan plus what Triton specializes on per call (tensor dtypes and 16-byte alignment) and the device:
        a compiled kernel is loaded onto the GPU that was current at its first launch."""
        return (plan_key, args[0].device) + tuple((a.dtype, a.data_ptr() % 16 == 0) for a in args[:self.n_tensors])

    def checked(self, plan_key, grid: Tuple[int, int, int], args: Sequence) -> bool:
        """Whether a launch of this configuration runs without its first-launch check (compiled or refused, or
        the fast path is off): it then writes nothing but its output."""
        if not self.enabled:
            return True
        key = self._key((plan_key, _grid3(grid)), args)
        return key in self.compiled or key in self.refused

    def __call__(self, plan_key, grid: Tuple[int, int, int], args: Sequence, kwargs: dict, out_index: int,
                 scratch: Callable[[], torch.Tensor]) -> None:
        """Launch ``kernel[grid](*args, **kwargs)``; ``args[out_index]`` is the only tensor the kernel writes.

        ``scratch()`` returns a copy of ``args[out_index]`` (same layout, same content); it is taken before the
        first launch of a configuration and receives the check launch, so that a launch that writes only part of
        its output is checked on that part.
        """
        grid = _grid3(grid)
        key = self._key((plan_key, grid), args) if self.enabled else None
        hit = self.compiled.get(key) if key is not None else None
        if hit is not None:
            hit[0](*args, *hit[1])
            return
        out = args[out_index]
        check = key is not None and key not in self.refused and not (
            out.is_cuda and torch.cuda.is_current_stream_capturing())  # a graph capture must not synchronize
        probe = scratch() if check else None
        result = self.kernel[grid](*args, **kwargs)
        if not check or not hasattr(result, "__getitem__"):
            return  # the interpreter returns no compiled kernel
        try:  # first direct launch of this configuration: must reproduce the JIT launch exactly
            fast_args = list(args)
            fast_args[out_index] = probe
            runner, consts = result[grid], self._constexpr_values(args, kwargs)
            runner(*fast_args, *consts)
            why = None if _same_bits(probe, args[out_index]) else "output differs from the JIT launch"
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
        if why is None:
            self.compiled[key] = (runner, consts)
            return
        self.refused[key] = why
        warnings.warn(f"lkconv: direct launch of {getattr(self.kernel, '__name__', self.kernel)} refused ({why}); "
                      f"this configuration keeps the JIT launch")

    def _constexpr_values(self, args: Sequence, kwargs: dict) -> list:
        """Values of the parameters after the positional ones, in signature order (what the JIT passes)."""
        return [kwargs[n] for n in self.kernel.arg_names[len(args):]]
