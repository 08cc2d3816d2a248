"""Levin propagation speed on a 2-megapixel photo: our default against direct sparse LU.

    python -m benchmarks guidance [PHOTO] [--full] [--repeat N]

The strokes are those of ``Guidance(propagate=True)`` with 20 point hints: the shipped model's
confident micro-scribbles plus 20 hint patches (fixed seed). Every method solves the same
strokes in this process; times are the best of ``--repeat`` runs, and each method's ab is
compared with the baseline's (mean |delta ab|, Lab units, full resolution).

* baseline: SuperLU direct solve at 0.25 MP, ab upsampled bilinearly;
* ours (default): cascadic multigrid at 0.25 MP, ab upsampled bilinearly;
* multigrid at 1 MP, for the quality/speed trade-off;
* ``--full``: the direct solve at full resolution (minutes, GBs of fill-in).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from benchmarks.harness import TETONS, Results, benchmark, best_of, option, require
from colorizer import Colorizer, imageio, planes
from colorizer.guidance import Guidance, core, propagate, strokes
from colorizer.guidance.protocol import ground_truth_hints


def stroke_layers(colorizer: Colorizer, lightness: np.ndarray):
    """The strokes ``guided_ab`` would propagate for micro-scribbles + 20 hints."""
    height, width = lightness.shape
    rng = np.random.default_rng(0)
    fake_truth = np.dstack([lightness / 100] * 3).astype(np.float32)
    points = ground_truth_hints(fake_truth, 20)
    points = [p.__class__(p.x, p.y, tuple(rng.normal(0, 30, 2)), p.patch) for p in points]
    prediction = core.network_prediction(colorizer, lightness, points, None)
    chosen = strokes.confident_cells(prediction.entropy)
    base = strokes.grid_strokes(prediction.ab, chosen, height, width)
    mine = strokes.hint_strokes(points, height, width, colorizer.size)
    base = strokes.clear_near(base, mine[1], max(2, round(max(height, width) / 24)))
    return strokes.merge([base, mine], height, width), points


@benchmark(
    "guidance",
    option("photo", nargs="?", default=str(TETONS)),
    option("--full", action="store_true", help="also the full-resolution LU"),
    option("--repeat", type=int, default=2),
)
def guidance(args: argparse.Namespace, results: Results) -> None:
    picture = imageio.read_image(require(args.photo))
    lightness = planes.lightness_image(picture.rgb)
    height, width = lightness.shape
    colorizer = Colorizer(device="cpu")
    (ab, mask), points = stroke_layers(colorizer, lightness)
    print(
        f"{args.photo}: {width}x{height} = {width * height / 1e6:.2f} MP, "
        f"{mask.sum()} stroke pixels"
    )

    def direct_at(pixels):
        def run():
            h, w = propagate.working_size(height, width, pixels)
            small_l = cv2.resize(lightness, (w, h), interpolation=cv2.INTER_AREA)
            small_ab, small_mask = propagate.downscale_strokes(ab, mask, h, w)
            result = propagate.solve_direct(small_l, small_ab, small_mask)
            return cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)

        return run

    methods = {"baseline: direct LU at 0.25 MP": direct_at(propagate.DEFAULT_WORK_PIXELS)}
    methods["ours: multigrid at 0.25 MP (default)"] = lambda: propagate.propagate(
        lightness, ab, mask
    )
    methods["multigrid at 1 MP"] = lambda: propagate.propagate(lightness, ab, mask, 1_000_000)
    if args.full:
        methods["direct LU at full resolution"] = lambda: propagate.solve_direct(
            lightness, ab, mask
        )
    results = {}
    for name, run in methods.items():
        results[name] = best_of(run, args.repeat)
        print(f"  {name}: {results[name][0]:.2f} s", flush=True)
    guided, _ = best_of(
        lambda: colorizer.colorize(picture.rgb, Guidance(points=points, propagate=True)),
        args.repeat,
    )
    baseline_time, baseline_ab = next(iter(results.values()))
    print("\n| method | seconds | x baseline speed | mean abs delta ab vs baseline |")
    print("|---|---|---|---|")
    for name, (seconds, result) in results.items():
        delta = float(np.abs(result - baseline_ab).mean())
        print(f"| {name} | {seconds:.2f} | {baseline_time / seconds:.2f} | {delta:.2f} |")
        results.add({"method": name}, seconds=seconds, mean_delta_ab=delta)
    print(
        f"| whole `colorize` with propagate + 20 hints (network, strokes, solve, sRGB) | "
        f"{guided:.2f} | | |"
    )
    results.add({"method": "whole colorize, propagate + 20 hints"}, seconds=guided)
