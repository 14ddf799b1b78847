"""Interleaved timing of callables: the measurement loop shared by in-process backends."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from nas.latency.backends.base import Settings, Timing, summarize


def iterations_for(run: Callable[[], None], settings: Settings) -> int:
    """Warm ``run`` up for ``settings.warmup_ms`` and return how many runs fill one timed sample."""
    start = time.perf_counter()
    runs = 0
    while runs < 3 or (time.perf_counter() - start) * 1e3 < settings.warmup_ms:
        t0 = time.perf_counter()
        run()
        last = time.perf_counter() - t0
        runs += 1
    return max(1, math.ceil(settings.sample_ms / max(last * 1e3, 1e-3)))


def interleave(runs: dict[str, Callable[[], None]], settings: Settings) -> dict[str, Timing]:
    """Round-robin timing: every round runs each item ``iterations`` times in a freshly shuffled order."""
    iterations = {name: iterations_for(run, settings) for name, run in runs.items()}
    samples: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    rng = random.Random(settings.seed)
    clock = time.perf_counter_ns
    for _ in range(settings.rounds):
        rng.shuffle(order)
        for name in order:
            run, n = runs[name], iterations[name]
            t0 = clock()
            for _ in range(n):
                run()
            samples[name].append((clock() - t0) / n / 1e6)
    return {name: summarize(values) for name, values in samples.items()}
