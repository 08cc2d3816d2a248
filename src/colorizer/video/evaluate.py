"""``colorize eval --video``: colour clips turned grey, colorized three ways, and scored.

Each clip is decoded in order and brought to the work resolution (long side ``side``, 384 by
default, where flow propagation and the refiner run). The model sees only the lightness. Methods:

* ``per-frame`` - the image model on each frame alone;
* ``flow`` - the same predictions through :class:`FlowPropagator` (strength ``strength``);
* ``refiner`` - the same predictions through the trained recurrent refiner (when given).

Scores: the warping error (``colorizer.video.metrics``; pairs across scene cuts and untrusted
pixels left out), and per frame PSNR (dB, sRGB), AuC (raw, ECCV16) and colourfulness (CF) against
the original colour frame, averaged over all frames.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from colorizer import imageio, metrics, planes
from colorizer.errors import ColorizerError
from colorizer.files import atomic_write
from colorizer.pipeline import Colorizer
from colorizer.planes import resize_plane
from colorizer.video import flow
from colorizer.video.consistency import (
    DEFAULT_FLOW,
    DEFAULT_STRENGTH,
    DEFAULT_WORK_SIDE,
    FlowPropagator,
)
from colorizer.video.metrics import WarpingError
from colorizer.video.source import decode, open_input, video_stream

PER_FRAME, FLOW, REFINER = "per-frame", "flow", "refiner"
SUFFIXES = imageio.VIDEO_SUFFIXES
BATCH = 8


@dataclass
class ClipScores:
    clip: str
    frames: int
    warping: dict[str, float]
    frame_rows: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        return {
            method: {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
            | {"warping": self.warping[method]}
            for method, rows in self.frame_rows.items()
        }


def find_clips(folder: Path) -> list[Path]:
    clips = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in SUFFIXES and not p.name.startswith("bench_")
    )
    if not clips:
        raise ColorizerError(
            f"{folder}: no video clips to evaluate ({', '.join(sorted(SUFFIXES))})"
        )
    return clips


def clip_frames(path: Path, side: int, limit: int | None):
    """The clip's frames as float32 sRGB in [0, 1] at work resolution, in order."""
    with open_input(path) as container:
        stream = video_stream(container, path)
        for number, frame in enumerate(decode(container, stream, path)):
            if limit is not None and number >= limit:
                return
            rgb: np.ndarray = frame.to_ndarray(format="rgb24")
            height, width = flow.work_shape(rgb.shape[0], rgb.shape[1], side)
            if (height, width) != rgb.shape[:2]:
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            yield rgb.astype(np.float32) / np.float32(255)


def evaluate_clip(
    colorizer: Colorizer,
    path: Path,
    *,
    strength: float = DEFAULT_STRENGTH,
    refiner: str | Path | None = None,
    flow_method: str = DEFAULT_FLOW,
    side: int = DEFAULT_WORK_SIDE,
    frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> ClipScores:
    steady: dict[str, Callable] = {FLOW: FlowPropagator(strength, flow_method)}
    if refiner is not None:
        from colorizer.video.refiner import RefinerPropagator

        steady[REFINER] = RefinerPropagator(refiner, flow_method)
    methods = [PER_FRAME, *steady]
    meter = WarpingError()
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    count = 0
    batch: list[np.ndarray] = []

    def flush() -> None:
        lightness = [planes.lightness_image(rgb) for rgb in batch]
        predicted = colorizer.predict_planes(lightness)
        for truth, light, ab_small in zip(batch, lightness, predicted, strict=True):
            grey = flow.grey_u8(light)
            ab = resize_plane(ab_small, *light.shape)
            outputs = {PER_FRAME: ab} | {name: run(grey, ab) for name, run in steady.items()}
            meter.add(grey, outputs)
            truth_ab = planes.rgb_to_lab_image(truth)[..., 1:]
            truth_cf = metrics.colourfulness(truth)
            for name, out in outputs.items():
                rgb = planes.lab_to_rgb_image(cv2.merge([light, out]))
                errors = np.linalg.norm(planes.rgb_to_lab_image(rgb)[..., 1:] - truth_ab, axis=-1)
                rows[name].append(
                    {
                        "psnr": metrics.psnr(rgb, truth),
                        "auc": float(metrics.cmf(errors).mean()),  # = metrics.auc, OpenCV's Lab
                        "cf": metrics.colourfulness(rgb),
                        "cf_truth": truth_cf,
                    }
                )
            if on_frame is not None:
                on_frame()
        batch.clear()

    for rgb in clip_frames(path, side, frames):
        batch.append(rgb)
        count += 1
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    return ClipScores(path.name, count, meter.result(), rows)


def evaluate_clips(clips: list[Path], colorizer: Colorizer, progress: bool = True, **kwargs):
    from tqdm import tqdm

    results = []
    with tqdm(desc="evaluating", unit="frame", disable=not progress) as bar:
        for path in clips:
            results.append(evaluate_clip(colorizer, path, on_frame=bar.update, **kwargs))
    return results


def overall(results: list[ClipScores]) -> dict[str, dict[str, float]]:
    """Means over clips (each clip counts once, whatever its length)."""
    per_clip = [r.means() for r in results]
    methods = per_clip[0]
    return {
        method: {
            key: float(np.nanmean([clip[method][key] for clip in per_clip]))
            for key in methods[method]
        }
        for method in methods
    }


def format_table(results: list[ClipScores]) -> str:
    header = "| clip | frames | method | warping error | PSNR dB | AuC % | CF | CF truth |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]

    def row(name: str, frames: str, method: str, m: dict[str, float]) -> str:
        warping = "n/a" if math.isnan(m["warping"]) else f"{m['warping']:.2f}"
        return (
            f"| {name} | {frames} | {method} | {warping} | {m['psnr']:.2f} | "
            f"{100 * m['auc']:.1f} | {m['cf']:.1f} | {m['cf_truth']:.1f} |"
        )

    for result in results:
        for method, m in result.means().items():
            lines.append(row(result.clip, str(result.frames), method, m))
    total = str(sum(r.frames for r in results))
    for method, m in overall(results).items():
        lines.append(row("**mean of clips**", total, method, m))
    return "\n".join(lines)


def write_csv(path: Path, results: list[ClipScores]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "frames", "method", "warping", "psnr", "auc", "cf", "cf_truth"])
        for result in results:
            for method, m in result.means().items():
                writer.writerow(
                    [result.clip, result.frames, method]
                    + [m[k] for k in ("warping", "psnr", "auc", "cf", "cf_truth")]
                )
