"""Multi-core CPU execution for the numba kernels: threads over index ranges, no pickling.

The kernels are compiled with ``nogil=True``, so Python threads run them in parallel on shared
input arrays (no copies, no per-task serialisation). Each call builds and closes its own pool:
nothing global, nothing left running.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def default_threads() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> int:
    """``None`` -> all usable cores; otherwise a positive int."""
    if threads is None:
        return default_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads: expected a positive int or None (all cores), received "
                         f"{threads!r}")
    return threads


def parallel_ranges(fn: Callable[[int, int], object], total: int, threads: int | None,
                    tasks_per_thread: int = 4) -> None:
    """Call ``fn(lo, hi)`` over a partition of ``range(total)`` on up to ``threads`` threads.

    Ranges are small enough (``tasks_per_thread`` per thread) to balance uneven work; the
    first exception raised by a task is re-raised here.
    """
    threads = min(check_threads(threads), max(1, total))
    if total <= 0:
        return
    if threads == 1:
        fn(0, total)
        return
    step = max(1, -(-total // (tasks_per_thread * threads)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(fn, lo, min(lo + step, total)) for lo in range(0, total, step)]
        for f in futures:
            f.result()
