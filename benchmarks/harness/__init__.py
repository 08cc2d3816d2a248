"""The benchmarks' harness: registration and the runner, timing, data, the ``colorize`` command.

A benchmark module::

    from benchmarks.harness import benchmark, best_times, option

    @benchmark("name", option("--repeat", type=int, default=3))
    def name(args, results):
        ...                        # print the table as before
        results.add({"size": "256x256"}, seconds=0.012)   # and hand over each row

``python -m benchmarks name --repeat 5`` runs it (``runner``). Heavier helpers stay in their
modules and are imported from there: ``benchmarks.harness.eccv16`` (random ECCV16 weights, the
Caffe release stand-in), ``benchmarks.harness.commands`` (the installed ``colorize`` script).
"""

from benchmarks.harness.data import (
    BENCH_CLIP,
    BSDS500_TEST,
    BW,
    DATA,
    MIGRANT_MOTHER,
    ROOT,
    SHARED,
    TETONS,
    VIDEO,
    Skip,
    grey_photo,
    require,
)
from benchmarks.harness.runner import Results, benchmark, option
from benchmarks.harness.timing import Stopwatch, best_of, best_time, best_times, ratio

__all__ = [
    "BENCH_CLIP",
    "BSDS500_TEST",
    "BW",
    "DATA",
    "MIGRANT_MOTHER",
    "ROOT",
    "SHARED",
    "TETONS",
    "VIDEO",
    "Results",
    "Skip",
    "Stopwatch",
    "benchmark",
    "best_of",
    "best_time",
    "best_times",
    "grey_photo",
    "option",
    "ratio",
    "require",
]
