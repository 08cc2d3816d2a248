"""Global hints on a model: does a target saturation reach its target, does a palette pull?

Run:  python -m benchmarks global_hints [--photos 50] [--models colornet-v2,colornet-v1]

On the first N photos of ``../shared/data/val/bsds500-test`` turned grey (a measurement of what
the knobs do, nothing is chosen on it), for each model:

saturation: ``Guidance(saturation=s)`` for s = 0.1, 0.3, 0.5; the mean HSV saturation of each
            result (the guidance's own definition), averaged over photos, against s;
palette:    ``Guidance(palette=[(blue, 1)])`` and ``[(sand, 1)]``; the share of the result's
            clearly coloured pixels (chroma > 10) whose hue lies within 30 degrees of the palette
            colour's, with the palette and without it.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from PIL import Image

from benchmarks.harness import BSDS500_TEST, Results, benchmark, option, require
from colorizer import Colorizer
from colorizer.guidance import Guidance

DATA = BSDS500_TEST
PALETTE = {"blue": "#3a6ea5", "sand": "#c2b280"}
SATURATIONS = (0.1, 0.3, 0.5)


def mean_saturation(rgb: np.ndarray) -> float:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return float(hsv[..., 1].mean() / 255)


def hue_share(rgb: np.ndarray, colour: str) -> float:
    """Share of the clearly coloured pixels within 30 degrees of ``colour``'s hue in ab."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    target = cv2.cvtColor(
        np.array([[[int(colour[i : i + 2], 16) for i in (1, 3, 5)]]], np.float32) / 255,
        cv2.COLOR_RGB2Lab,
    )[0, 0]
    a, b = lab[..., 1], lab[..., 2]
    coloured = np.hypot(a, b) > 10
    if not coloured.any():
        return 0.0
    angle = np.degrees(np.arctan2(b, a) - np.arctan2(target[2], target[1]))
    near = np.abs((angle + 180) % 360 - 180) < 30
    return float((near & coloured).sum() / coloured.sum())


@benchmark(
    "global_hints",
    option("--photos", type=int, default=50),
    option("--models", default="colornet-v2,colornet-v1"),
)
def global_hints(args: argparse.Namespace, results: Results) -> None:
    paths = sorted(require(DATA).glob("*.jpg"))[: args.photos]
    greys = [np.asarray(Image.open(p).convert("L")) for p in paths]
    print(f"{len(greys)} photos of {DATA.name}, grey")
    print("| model | none | " + " | ".join(f"target {s}" for s in SATURATIONS) + " |")
    print("|---|---|" + "---|" * len(SATURATIONS))
    shares = {}
    for name in args.models.split(","):
        colorizer = Colorizer(name)
        plain = [colorizer.colorize(g) for g in greys]
        reached = [
            np.mean([mean_saturation(colorizer.colorize(g, Guidance(saturation=s))) for g in greys])
            for s in SATURATIONS
        ]
        none = np.mean([mean_saturation(r) for r in plain])
        print(f"| {name} | {none:.3f} | " + " | ".join(f"{r:.3f}" for r in reached) + " |")
        results.add({"model": name, "saturation": None}, mean_saturation=none)
        for target, mean in zip(SATURATIONS, reached, strict=True):
            results.add({"model": name, "saturation": target}, mean_saturation=mean)
        for label, colour in PALETTE.items():
            guided = [colorizer.colorize(g, Guidance(palette=[(colour, 1.0)])) for g in greys]
            shares[name, label] = (
                np.mean([hue_share(r, colour) for r in plain]),
                np.mean([hue_share(r, colour) for r in guided]),
            )
    print()
    print("| model | palette | share near its hue, without | with |")
    print("|---|---|---|---|")
    for (name, label), (without, with_palette) in shares.items():
        print(f"| {name} | {label} {PALETTE[label]} | {without:.2f} | {with_palette:.2f} |")
        case = {"model": name, "palette": PALETTE[label]}
        results.add(case, share_near_hue_without=without, share_near_hue_with=with_palette)
