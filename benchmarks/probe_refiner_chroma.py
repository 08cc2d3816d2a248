"""Why the video refiner loses on a clip: its hues or its chroma? (issue 15)

Run:  python -m benchmarks probe_refiner_chroma CLIP --refiner CKPT [--model colornet-v2]

Scores one clip as ``colorize eval --video`` does (work resolution 384, every frame, PSNR / raw
AuC / colourfulness against the colour original) for the per-frame output, the refiner's output,
and three swaps that separate hue from chroma (chroma = |ab|):

* the refiner's output rescaled, per frame, to the per-frame output's mean chroma;
* the per-frame output rescaled, per frame, to the refiner's mean chroma;
* per pixel, the refiner's hue with the per-frame output's chroma.

If the last row scores like the per-frame output, the refiner's hues are as good and what it
loses is where it takes chroma away. Prints mean PSNR, AuC and CF per row, and the mean chroma
of the per-frame output, the refiner's and the truth's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from benchmarks.harness import Results, benchmark, option, require
from colorizer import metrics, planes
from colorizer.pipeline import Colorizer
from colorizer.planes import resize_plane
from colorizer.video import flow
from colorizer.video.consistency import DEFAULT_FLOW, DEFAULT_WORK_SIDE
from colorizer.video.evaluate import clip_frames
from colorizer.video.refiner import RefinerPropagator


def chroma(ab: np.ndarray) -> np.ndarray:
    return np.linalg.norm(ab, axis=-1, keepdims=True)


@benchmark(
    "probe_refiner_chroma",
    option("clip", type=Path),
    option("--refiner", required=True),
    option("--model", default="colornet-v2"),
)
def probe_refiner_chroma(args: argparse.Namespace, results: Results) -> None:
    require(args.clip)
    colorizer = Colorizer(args.model)
    refine = RefinerPropagator(args.refiner, DEFAULT_FLOW)
    scores: dict[str, list[tuple[float, float, float]]] = {}
    means: list[tuple[float, float, float]] = []

    def score(name: str, light, ab, truth, truth_ab) -> None:
        rgb = planes.lab_to_rgb_image(cv2.merge([light, ab.astype(np.float32)]))
        errors = np.linalg.norm(planes.rgb_to_lab_image(rgb)[..., 1:] - truth_ab, axis=-1)
        row = (
            metrics.psnr(rgb, truth),
            float(metrics.cmf(errors).mean()),
            metrics.colourfulness(rgb),
        )
        scores.setdefault(name, []).append(row)

    for truth in clip_frames(args.clip, DEFAULT_WORK_SIDE, None):
        light = planes.lightness_image(truth)
        per_frame = resize_plane(colorizer.predict_planes([light])[0], *light.shape)
        refined = refine(flow.grey_u8(light), per_frame)
        truth_ab = planes.rgb_to_lab_image(truth)[..., 1:]
        own, theirs = chroma(per_frame), chroma(refined)
        gain = float(own.mean() / max(theirs.mean(), 1e-6))
        score("per-frame", light, per_frame, truth, truth_ab)
        score("refiner", light, refined, truth, truth_ab)
        score("refiner at the per-frame mean chroma", light, refined * gain, truth, truth_ab)
        score("per-frame at the refiner's mean chroma", light, per_frame / gain, truth, truth_ab)
        swapped = refined / np.maximum(theirs, 1e-6) * own
        score("refiner's hue, per-frame chroma (per pixel)", light, swapped, truth, truth_ab)
        means.append((own.mean(), theirs.mean(), chroma(truth_ab).mean()))
    print(f"{args.clip.name}: {len(means)} frames")
    print("| output | PSNR dB | AuC % | CF |\n|---|---|---|---|")
    for name, rows in scores.items():
        psnr, auc, cf = np.mean(rows, axis=0)
        print(f"| {name} | {psnr:.2f} | {100 * auc:.1f} | {cf:.1f} |")
        results.add({"output": name, "frames": len(means)}, psnr_db=psnr, auc=auc, cf=cf)
    own_mean, refined_mean, truth_mean = np.mean(means, axis=0)
    print(
        f"mean chroma |ab|: per-frame {own_mean:.1f}, refiner {refined_mean:.1f}, "
        f"truth {truth_mean:.1f}"
    )
    results.add(
        {"output": "mean chroma |ab|", "frames": len(means)},
        per_frame=own_mean,
        refiner=refined_mean,
        truth=truth_mean,
    )
