"""Timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so
this folder is on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], n: int = 3) -> float:
    """The fastest of ``n`` runs of ``fn``, in seconds: the least disturbed by a noisy
    machine."""
    times = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)
