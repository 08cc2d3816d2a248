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

Then the whole photo with 20 point hints correcting the model's colours (``colorize --hint``),
the correction's guide the lightness alone (the baseline) against the lightness and the model's
colours (``core.CORRECTION_GUIDE_AB``, the default), and the whole photo with ``--propagate``.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from benchmarks.harness import TETONS, Results, benchmark, best_of, option, require
from colorizer import Colorizer, imageio, planes
from colorizer.guidance import Guidance, core, propagate, strokes
from colorizer.guidance.guiders import MicroScribbles
from colorizer.guidance.protocol import ground_truth_hints


def stroke_layers(colorizer: Colorizer, lightness: np.ndarray):
    """The strokes ``guided_ab`` would propagate for micro-scribbles + 20 hints."""
    height, width = lightness.shape
    rng = np.random.default_rng(0)
    fake_truth = np.dstack([lightness / 100] * 3).astype(np.float32)
    points = ground_truth_hints(fake_truth, 20)
    points = [p.__class__(p.x, p.y, tuple(rng.normal(0, 30, 2)), p.patch) for p in points]
    plan = Guidance(points=points, propagate=True).plan(
        lightness, accepts_hints=colorizer.accepts_hints, grid=colorizer.size
    )
    assert plan.request is not None
    prediction = colorizer.predict(lightness, plan.request)
    base = MicroScribbles().base_strokes(lightness, prediction)
    mine = strokes.hint_strokes(points, height, width, colorizer.size)
    radius = max(2, round(max(height, width) / core.CLEAR_FRACTION))
    base = strokes.clear_near(base, mine[1], radius)  # type: ignore[arg-type]
    return strokes.merge([base, mine], height, width), points


def corrected_with(colorizer: Colorizer, rgb: np.ndarray, points, guide_ab: float):
    """The whole photo with ``points`` correcting the model's colours, the correction's guide
    weighing the model's colours by ``guide_ab`` (0: the lightness alone)."""
    saved = core.CORRECTION_GUIDE_AB
    core.CORRECTION_GUIDE_AB = guide_ab
    try:
        return colorizer.colorize(rgb, Guidance(points=points))
    finally:
        core.CORRECTION_GUIDE_AB = saved


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
    timed = {}
    for name, run in methods.items():
        timed[name] = best_of(run, args.repeat)
        print(f"  {name}: {timed[name][0]:.2f} s", flush=True)
    baseline_time, baseline_ab = next(iter(timed.values()))
    print("\n| method | seconds | x baseline speed | mean abs delta ab vs baseline |")
    print("|---|---|---|---|")
    for name, (seconds, result) in timed.items():
        delta = float(np.abs(result - baseline_ab).mean())
        print(f"| {name} | {seconds:.2f} | {baseline_time / seconds:.2f} | {delta:.2f} |")
        results.add({"method": name}, seconds=seconds, mean_delta_ab=delta)
    whole = {
        "whole colorize, 20 hints correcting, lightness guide (baseline)": lambda: corrected_with(
            colorizer, picture.rgb, points, 0.0
        ),
        "whole colorize, 20 hints correcting, lightness + colours guide (default)": lambda: (
            corrected_with(colorizer, picture.rgb, points, core.CORRECTION_GUIDE_AB)
        ),
        "whole colorize, propagate + 20 hints": lambda: colorizer.colorize(
            picture.rgb, Guidance(points=points, propagate=True)
        ),
    }
    print("\n| whole photo (network, strokes, solve, sRGB) | seconds | x baseline time |")
    print("|---|---|---|")
    first = None
    for name, run in whole.items():
        seconds, _ = best_of(run, args.repeat)
        first = first or seconds
        print(f"| {name} | {seconds:.2f} | {seconds / first:.2f} |", flush=True)
        results.add({"method": name}, seconds=seconds)
