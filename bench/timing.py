"""Micro-benchmark timers shared by the bench scripts: best µs per call over repeated rounds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


def best_of(fn: Callable[[], Any], number: int, repeat: int = 5) -> float:
    """Best µs per call of `fn` over `repeat` rounds of `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


async def best_of_async(make: Callable[[], Awaitable[Any]], number: int, repeat: int = 5) -> float:
    """`best_of` for a coroutine function: each call's awaitable is awaited in turn."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            await make()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6
