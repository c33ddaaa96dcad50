"""Independent launches on side streams, so that the last wave of one launch overlaps the others.

A launch grid rarely fills the GPU's last wave exactly; independent launches on separate streams fill each
other's tails. Measured on an H100 (fp32 NCHW, ``benchmarks/overlap_probe.py``, 2026-11-25): slak_t.s1.long's
input and weight gradients 0.854 -> 0.791 ms, its forward (two launches) 0.278 -> 0.271 ms, replknet_31b.s1's
gradients 2.607 -> 2.514 ms; eager forward+backward steps of slak_t.s1.long 1.166 -> 1.108 ms and slak_t.s1.wide
1.537 -> 1.446 ms. Each fork costs host time (an event record and wait per stream each way): the eager step of
unireplknet_t.s1 (2.7e9 multiply-adds per direction), about as long on the host as on the GPU, went 0.597 -> 0.616
ms. So only work of at least :data:`MIN_MACS` multiply-adds forks, and only float32 work: bf16 eager steps of
slak_t.s1.long under "auto" took 1.63-1.74 ms with side streams against 1.01-1.16 ms without (``lkconv bench``,
H100, 2026-11-25), although their GPU time through CUDA graphs was 0.864 ms. ``LKCONV_STREAMS=0`` (read at
import) keeps every launch on the current stream.

Side streams belong to the stream that forks (one set per device and caller stream), so callers on different
streams or threads never wait on, or reuse memory through, each other's side work. A tensor returned from a side
stream is recorded on the caller's stream (``record_stream``): its memory is not reused until the caller's work
queued by then is done. The side streams always rejoin the caller's stream, also when a forked function raises.
Under CUDA graph capture the forks and joins are captured as graph dependencies.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Dict, Iterator, List, Sequence, Tuple, TypeVar

import torch

T = TypeVar("T")

MIN_MACS = 5 * 2**30  # slak_t.s1 (6.3e9) forks; unireplknet_t.s1 (2.7e9) and replknet_31b.s3 (4.7e9) do not
FORK_DTYPES = (torch.float32,)  # None: any dtype

# side stream indices: the weight gradient beside the input gradient, then the forward's further launches
WGRAD_SIDE = 0
LAUNCH_SIDE = 1

_side: Dict[Tuple[int, int, int], torch.cuda.Stream] = {}  # (device, caller stream, index) -> side stream
_SIDE_MAX = 256  # side streams kept at most (callers that make a new stream per step would grow the cache)


def _enabled() -> bool:
    return os.environ.get("LKCONV_STREAMS", "1").strip().lower() not in ("0", "false", "off", "no")


_ENABLED = _enabled()


@contextlib.contextmanager
def forcing() -> Iterator[None]:
    """Within the block, fork every CUDA problem whatever its size and dtype (``lkconv verify`` checks the forked paths on
    small problems this way); the previous settings return after it."""
    global MIN_MACS, _ENABLED, FORK_DTYPES
    saved = MIN_MACS, _ENABLED, FORK_DTYPES
    MIN_MACS, _ENABLED, FORK_DTYPES = 0, True, None
    try:
        yield
    finally:
        MIN_MACS, _ENABLED, FORK_DTYPES = saved


def worth_forking(t: torch.Tensor, macs: int) -> bool:
    """Fork work of ``macs`` multiply-adds on ``t``'s device: CUDA, large enough, of a forking dtype, and not
    turned off."""
    return (_ENABLED and t.is_cuda and macs >= MIN_MACS
            and (FORK_DTYPES is None or t.dtype in FORK_DTYPES))


def side_stream(main: torch.cuda.Stream, index: int) -> torch.cuda.Stream:
    """The ``index``-th side stream of the caller stream ``main`` (made once, on main's device)."""
    key = (main.device_index, main.cuda_stream, index)
    s = _side.get(key)
    if s is None:
        if len(_side) >= _SIDE_MAX:
            _side.clear()
        s = _side[key] = torch.cuda.Stream(device=main.device_index)
    return s


def _record(result, stream: torch.cuda.Stream) -> None:
    """record_stream(stream) on the tensors of a result (a tensor or a tuple/list of them)."""
    for t in result if isinstance(result, (tuple, list)) else (result,):
        if isinstance(t, torch.Tensor) and t.is_cuda:
            t.record_stream(stream)


def run_forked(device: torch.device, fns: Sequence[Callable[[], T]], first_side: int) -> List[T]:
    """``[fn() for fn in fns]`` with fns[0] on the current stream and fns[i] on side stream ``first_side + i - 1``.

    Each side stream starts after the work queued so far on the current stream; the current stream goes on only
    after all of them, also when a function raises. The fns must be independent of each other (no fn reads what
    another writes)."""
    main = torch.cuda.current_stream(device)
    out: List[T] = [None] * len(fns)  # type: ignore[list-item]
    joined = []
    try:
        for i in range(1, len(fns)):
            s = side_stream(main, first_side + i - 1)
            s.wait_stream(main)
            joined.append(s)
            with torch.cuda.stream(s):
                out[i] = fns[i]()
        out[0] = fns[0]()
    finally:
        for s in joined:
            main.wait_stream(s)
    for result in out[1:]:
        _record(result, main)
    return out
