"""Compile a sweep's kernels in worker processes before it times them: Triton's on-disk cache then serves the
timing process, and a sweep of many configurations compiles on every core instead of one."""
from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Sequence


def warm_in_processes(warm: Callable, tasks: Sequence, jobs: int) -> list:
    """Run ``warm(task)`` for every task in ``jobs`` spawned processes, printing each (label, seconds, error)
    it returns as it finishes; returns them all. ``warm`` must be a module-level function of the calling script."""
    t0 = time.perf_counter()
    done = []
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(warm, t) for t in tasks]):
            label, secs, err = fut.result()
            done.append((label, secs, err))
            print(f"warm-up {time.perf_counter() - t0:6.1f}s  {secs:5.1f}s  {label}" + (f"  ERROR {err}" if err else ""),
                  flush=True)
    return done
