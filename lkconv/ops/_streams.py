"""Independent launches on side streams, so that the last wave of one launch overlaps the others.

A launch grid rarely fills the GPU's last wave exactly; independent launches on separate streams fill each
other's tails. Measured on an H100 (fp32 NCHW, ``benchmarks/overlap_probe.py``, 2026-11-25): slak_t.s1.long's
input and weight gradients 0.854 -> 0.791 ms, its forward (two launches) 0.278 -> 0.271 ms, replknet_31b.s1's
gradients 2.607 -> 2.514 ms; eager forward+backward steps of slak_t.s1.long 1.166 -> 1.108 ms and slak_t.s1.wide
1.537 -> 1.446 ms. Each fork costs host time (an event record and wait per stream each way): the eager step of
unireplknet_t.s1 (2.7e9 multiply-adds per direction), about as long on the host as on the GPU, went 0.597 -> 0.616
ms. So only work of at least :data:`MIN_MACS` multiply-adds forks. ``LKCONV_STREAMS=0`` keeps every launch on the
current stream.

Memory: a tensor made on a side stream is used on the current stream only after the join. Its memory returns to
the side stream's pool when freed, and the side stream allocates again only after its next fork, which waits for
everything queued on the current stream until then (including every use of the freed tensor), so no
``record_stream`` is needed. Under CUDA graph capture the forks and joins are captured as graph dependencies.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Sequence, Tuple, TypeVar

import torch

T = TypeVar("T")

MIN_MACS = 5 * 2**30  # slak_t.s1 (6.3e9) forks; unireplknet_t.s1 (2.7e9) and replknet_31b.s3 (4.7e9) do not

# side stream indices: the weight gradient beside the input gradient, then the forward's further launches
WGRAD_SIDE = 0
LAUNCH_SIDE = 1

_side: Dict[Tuple[int, int], torch.cuda.Stream] = {}


def _enabled() -> bool:
    return os.environ.get("LKCONV_STREAMS", "1").strip().lower() not in ("0", "false", "off", "no")


_ENABLED = _enabled()


def worth_forking(t: torch.Tensor, macs: int) -> bool:
    """Fork work of ``macs`` multiply-adds on ``t``'s device: CUDA, large enough, and not turned off."""
    return _ENABLED and t.is_cuda and macs >= MIN_MACS


def side_stream(device: torch.device, index: int) -> torch.cuda.Stream:
    """The ``index``-th side stream of ``device`` (made once)."""
    dev = device.index if device.index is not None else torch.cuda.current_device()
    s = _side.get((dev, index))
    if s is None:
        s = _side[(dev, index)] = torch.cuda.Stream(device=dev)
    return s


def run_forked(device: torch.device, fns: Sequence[Callable[[], T]], first_side: int) -> List[T]:
    """``[fn() for fn in fns]`` with fns[0] on the current stream and fns[i] on side stream ``first_side + i - 1``.

    Each side stream starts after the work queued so far on the current stream; the current stream goes on only
    after all of them. The fns must be independent of each other (no fn reads what another writes)."""
    main = torch.cuda.current_stream(device)
    out: List[T] = [None] * len(fns)  # type: ignore[list-item]
    sides = [side_stream(device, first_side + i) for i in range(len(fns) - 1)]
    for i, s in enumerate(sides, 1):
        s.wait_stream(main)
        with torch.cuda.stream(s):
            out[i] = fns[i]()
    out[0] = fns[0]()
    for s in sides:
        main.wait_stream(s)
    return out
