"""How the benchmarks time things: best of N, interleaved; a stopwatch; ratios as ``1.23x``.

A benchmark imports it as ``from benchmarks.harness import best_times``.

* ``best_times({name: function}, repeat)``: one warm-up call of each, then ``repeat`` rounds in
  which every function runs once, in turn; the best (minimum) wall time of each. Interleaving
  makes a burst of load from elsewhere on a noisy machine hit every candidate alike, and the
  minimum is the run least disturbed, so the ratios between candidates hold.
* ``best_time(function, repeat)``: the same for one function.
* ``best_of(function, repeat)``: the best of ``repeat`` calls with no warm-up (for work that
  takes seconds, where a warm-up would double the run), and the last call's result.
* ``Stopwatch``: seconds since it started (``elapsed``), laps (``lap``), or the seconds of a
  ``with`` block (``seconds``), on ``time.perf_counter``.
* ``ratio(a, b)``: ``a / b`` formatted as ``"1.23x"`` (the format spec is a parameter).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

Key = TypeVar("Key", bound=Hashable)
Result = TypeVar("Result")


def best_times(functions: Mapping[Key, Callable[[], Any]], repeat: int) -> dict[Key, float]:
    """Best wall time of each function over ``repeat`` rounds, after one warm-up call each.

    The functions run interleaved, round by round, so that a burst of load from elsewhere on a
    noisy machine hits them all alike instead of one of them.
    """
    times: dict[Key, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        function()
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def best_time(function: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``function`` over ``repeat`` calls, after one warm-up call."""
    return best_times({"f": function}, repeat)["f"]


def best_of(function: Callable[[], Result], repeat: int) -> tuple[float, Result]:
    """Best wall time of ``repeat`` calls of ``function`` (no warm-up; at least one call), and
    the last call's result."""
    start = time.perf_counter()
    result = function()
    best = time.perf_counter() - start
    for _ in range(repeat - 1):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


class Stopwatch:
    """Wall seconds on ``time.perf_counter``, from when it is made (or its ``with`` block starts).

    ``watch.elapsed()``: seconds since the start. ``watch.lap()``: seconds since the previous
    lap (or the start), and a new lap begins. ``with Stopwatch() as watch: ...`` then
    ``watch.seconds``: the seconds the block took.
    """

    def __init__(self) -> None:
        self.started = self._lap_started = time.perf_counter()
        self.seconds = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self._lap_started = now - self._lap_started, now
        return seconds

    def __enter__(self) -> Stopwatch:
        self.started = self._lap_started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self.elapsed()


def ratio(numerator: float, denominator: float, spec: str = ".2f") -> str:
    """``numerator / denominator`` as ``"1.23x"``; ``spec`` is the number's format spec."""
    return f"{numerator / denominator:{spec}}x"
