"""colornet-v3's network beside colornet-v2's on OpenVINO, and what the mirror average costs.

Run:  python -m benchmarks v3_network [--repeat 15]

One 256 x 256 L* plane through ``Colorizer(name, backend="openvino").predict_planes``, the
models interleaved in one process (``timing.best_times``), so the ratios hold on a noisy
machine. colornet-v3 runs twice: alone (``mirror_average=False``: the issue's network target,
at most 30 ms) and as its catalogue entry runs it, with the mirror image in the same batch;
then both on a 12 MP photo end to end (grey array in, colour array out), where the network is
one stage of several.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from benchmarks.harness import Results, Skip, benchmark, best_times, grey_photo, option, ratio
from colorizer import Colorizer, runtime

TARGET_MS = 30.0


@benchmark("v3_network", option("--repeat", type=int, default=15))
def v3_network(args: argparse.Namespace, results: Results) -> None:
    if not runtime.openvino_available():
        raise Skip("OpenVINO is not installed (the `fast` extra)")
    models = {
        "colornet-v2": Colorizer("colornet-v2", backend="openvino"),
        "colornet-v3": Colorizer("colornet-v3", backend="openvino", mirror_average=False),
        "colornet-v3 + mirror": Colorizer("colornet-v3", backend="openvino"),
    }
    plane = np.random.default_rng(0).uniform(0, 100, (256, 256)).astype(np.float32)
    times = best_times(
        {name: partial(m.predict_planes, [plane]) for name, m in models.items()}, args.repeat
    )
    print(f"OpenVINO, one 256x256 plane, best of {args.repeat} interleaved calls:")
    for name, seconds in times.items():
        verdict = ""
        if name == "colornet-v3":
            verdict = f"  target <= {TARGET_MS:.0f} ms: " + (
                "met" if seconds * 1e3 <= TARGET_MS else "MISSED"
            )
        against = ratio(seconds, times["colornet-v2"], "4.2f")
        print(f"  {name:22} {seconds * 1e3:6.1f} ms  x v2 {against}{verdict}")
        results.add({"model": name, "size": "256x256", "backend": "openvino"}, seconds=seconds)
    v3 = {name: m for name, m in models.items() if name.startswith("colornet-v3")}
    photo = grey_photo(3000, 4000)
    whole = best_times({name: partial(m.colorize, photo) for name, m in v3.items()}, 3)
    print("a 12 MP photo end to end, best of 3:")
    for name, seconds in whole.items():
        against = ratio(seconds, whole["colornet-v3"], "4.2f")
        print(f"  {name:22} {seconds:6.3f} s  x one view {against}")
        results.add({"model": name, "size": "4000x3000", "stage": "end to end"}, seconds=seconds)
