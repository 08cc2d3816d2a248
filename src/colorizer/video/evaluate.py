"""``colorize eval --video``: colour clips turned grey, colorized three ways, and scored.

Each clip is decoded in order and brought to the work resolution (long side ``side``, 384 by
default, where flow propagation and the refiner run). The model sees only the lightness. Methods:

* ``per-frame`` - the image model on each frame alone;
* ``flow`` - the same predictions through :class:`FlowPropagator` (strength ``strength``);
* ``refiner`` - the same predictions through the trained recurrent refiner (when given).

With ``keyframes="truth"`` (``--keyframes truth``, issue 25) the methods are instead:

* ``automatic`` - the image model steadied along the flow (``flow`` above);
* ``paste`` - the keyframe's ab pasted unchanged onto every frame of its shot;
* ``keyframes`` - the keyframe engine (:class:`KeyframePropagator`);

where each shot's keyframe is its TRUE first colour frame (shots: the scene cuts of a pre-pass
over the clip's grey frames, as the engine finds them).

Scores: the warping error (``colorizer.video.metrics``; pairs across scene cuts and untrusted
pixels left out), CDC (the colour-distribution consistency of Lei & Chen, same pairs), and per
frame PSNR (dB, sRGB), AuC (raw, ECCV16) and colourfulness (CF) against the original colour
frame, averaged over all frames; with keyframes also the class-rebalanced AuC, pooled over the
clip's pixels, each weighted by the inverse frequency of its true ab bin over all evaluated clips
(as ``colorize eval`` weighs photos by their whole set).
"""

from __future__ import annotations

import bisect
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
    is_scene_cut,
)
from colorizer.video.keyframed import KeyColours, KeyframePropagator, key_colours, shot_starts
from colorizer.video.metrics import ColourDistributionConsistency, WarpingError
from colorizer.video.source import decode, open_input, video_stream

PER_FRAME, FLOW, REFINER = "per-frame", "flow", "refiner"
AUTOMATIC, PASTE, KEYFRAMES = "automatic", "paste", "keyframes"
TRUTH = "truth"  # --keyframes truth: each shot's true first frame is its keyframe
PRIOR_STRIDE = 4  # every 4th pixel each way makes the ab prior: plenty for 313 bins
SUFFIXES = imageio.VIDEO_SUFFIXES
BATCH = 8


@dataclass
class ClipScores:
    clip: str
    frames: int
    warping: dict[str, float]
    frame_rows: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    clip_values: dict[str, dict[str, float]] = field(default_factory=dict)  # CDC, pooled AuC

    def means(self) -> dict[str, dict[str, float]]:
        return {
            method: {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
            | {"warping": self.warping[method]}
            | self.clip_values.get(method, {})
            for method, rows in self.frame_rows.items()
        }


@dataclass(frozen=True)
class ClipShots:
    """What the pre-pass of ``--keyframes truth`` found: each shot's first frame."""

    starts: tuple[int, ...]


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
    shots: ClipShots | None = None,
    prior: np.ndarray | None = None,
) -> ClipScores:
    """Score one clip. ``shots`` (from ``clip_shots``) switches to the keyframe protocol:
    automatic, paste and keyframes, each shot keyed by its true first frame; ``prior`` (313 ab
    bin frequencies) adds the pooled rebalanced AuC."""
    if shots is None:
        methods = _automatic_methods(strength, refiner, flow_method)
    else:
        methods = _keyframe_methods(colorizer, shots, strength, flow_method)
    warping, consistency = WarpingError(), ColourDistributionConsistency()
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    pooled = _PooledAuC(prior, list(methods)) if prior is not None else None
    count = 0
    batch: list[np.ndarray] = []
    previous: list[np.ndarray] = []  # the previous frame's grey, for the cuts CDC leaves out

    def flush() -> None:
        nonlocal count
        lightness = [planes.lightness_image(rgb) for rgb in batch]
        predicted = colorizer.predict_planes(lightness)
        for truth, light, ab_small in zip(batch, lightness, predicted, strict=True):
            grey = flow.grey_u8(light)
            ab = resize_plane(ab_small, *light.shape)
            frame = _Frame(count, truth, grey, ab)
            outputs = {name: run(frame) for name, run in methods.items()}
            cut = bool(previous) and is_scene_cut(previous[0], grey)
            previous[:] = [grey]
            warping.add(grey, outputs)
            truth_lab = planes.rgb_to_lab_image(truth)
            truth_cf = metrics.colourfulness(truth)
            coloured = {}
            weights = None if pooled is None else pooled.weights(truth_lab[..., 1:])
            for name, out in outputs.items():
                rgb = planes.lab_to_rgb_image(cv2.merge([light, out]))
                coloured[name] = rgb
                lab = planes.rgb_to_lab_image(rgb)
                errors = np.linalg.norm(lab[..., 1:] - truth_lab[..., 1:], axis=-1)
                if pooled is not None and weights is not None:
                    pooled.add(name, errors, weights)
                rows[name].append(
                    {
                        "psnr": metrics.psnr(rgb, truth),
                        "auc": float(metrics.cmf(errors).mean()),  # = metrics.auc, OpenCV's Lab
                        "cf": metrics.colourfulness(rgb),
                        "cf_truth": truth_cf,
                    }
                )
            consistency.add(coloured, cut=cut)
            count += 1
            if on_frame is not None:
                on_frame()
        batch.clear()

    for rgb in clip_frames(path, side, frames):
        batch.append(rgb)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    cdc = consistency.result()
    values = {
        name: {"cdc": cdc[name]} | ({} if pooled is None else {"auc_rebal": pooled.value(name)})
        for name in methods
    }
    return ClipScores(path.name, count, warping.result(), rows, values)


class _PooledAuC:
    """``metrics.PooledAuC`` of several methods scored against the same truth: each pixel's
    weight (1 / prior of its true ab bin, the nearest-bin search being the cost) found once."""

    def __init__(self, prior: np.ndarray, methods: list[str]) -> None:
        prior = np.asarray(prior, np.float64)
        self.inverse = 1.0 / np.maximum(prior / prior.sum(), metrics.PRIOR_FLOOR)
        self.mass = {name: np.zeros(len(metrics.AUC_THRESHOLDS)) for name in methods}
        self.weight = dict.fromkeys(methods, 0.0)

    def weights(self, truth_ab: np.ndarray) -> np.ndarray:
        return self.inverse[metrics.ab_bin_index(truth_ab)]

    def add(self, method: str, errors: np.ndarray, weights: np.ndarray) -> None:
        total = float(weights.sum())
        self.mass[method] += metrics.cmf(errors, weights=weights) * total
        self.weight[method] += total

    def value(self, method: str) -> float:
        return float((self.mass[method] / self.weight[method]).mean())


@dataclass(frozen=True)
class _Frame:
    """One frame of a clip as the methods see it, at work resolution."""

    number: int
    truth: np.ndarray  # H x W x 3 float sRGB: only keyframes may look at it
    grey: np.ndarray  # H x W uint8
    ab: np.ndarray  # the model's H x W x 2


Method = Callable[[_Frame], np.ndarray]


def _automatic_methods(strength: float, refiner: str | Path | None, flow_method: str):
    steady: dict[str, Callable] = {FLOW: FlowPropagator(strength, flow_method)}
    if refiner is not None:
        from colorizer.video.refiner import RefinerPropagator

        steady[REFINER] = RefinerPropagator(refiner, flow_method)
    methods: dict[str, Method] = {PER_FRAME: lambda f: f.ab}
    for name, run in steady.items():
        methods[name] = _steadied(run)
    return methods


def _steadied(propagator: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Method:
    return lambda f: propagator(f.grey, f.ab)


def _keyframe_methods(
    colorizer: Colorizer, shots: ClipShots, strength: float, flow_method: str
) -> dict[str, Method]:
    """automatic, paste and keyframes, the keyframes being the true first frames of the shots
    (each taken from the truth when its frame goes by: it comes before the rest of its shot)."""
    keys: dict[int, KeyColours] = {}
    features = _features(colorizer)

    def shot_of(frame: int) -> int:
        return bisect.bisect_right(shots.starts, frame) - 1

    def colours(frame: int) -> KeyColours:
        return keys[frame]

    def key_of(f: _Frame) -> KeyColours:
        if f.number in shots.starts:
            keys[f.number] = key_colours(f.number, f.truth, f.grey.shape, features)
        return keys[shots.starts[shot_of(f.number)]]

    automatic = FlowPropagator(strength, flow_method)
    engine = KeyframePropagator(
        shot_of, shots.starts, colours, strength=strength, method=flow_method, features=features
    )

    def keyframed(f: _Frame) -> np.ndarray:
        key_of(f)
        return engine(f.number, f.grey, f.ab)

    return {
        AUTOMATIC: lambda f: automatic(f.grey, f.ab),
        PASTE: lambda f: key_of(f).ab,
        KEYFRAMES: keyframed,
    }


def _features(colorizer: Colorizer):
    """The model's encoder for exemplar transfer, or None when it has none."""
    from colorizer.pipeline import encoder_refusal

    if encoder_refusal(colorizer.name, colorizer.arch) is not None:
        return None
    return colorizer.encoder_features


def clip_shots(path: Path, side: int, limit: int | None, counts: np.ndarray) -> ClipShots:
    """The pre-pass of ``--keyframes truth``: the clip's shots, and its true ab added to the
    313-bin ``counts`` (every PRIOR_STRIDE-th pixel)."""
    greys = []
    for rgb in clip_frames(path, side, limit):
        lab = planes.rgb_to_lab_image(rgb)
        greys.append(flow.grey_u8(lab[..., 0]))
        sample = lab[::PRIOR_STRIDE, ::PRIOR_STRIDE, 1:]
        counts += np.bincount(metrics.ab_bin_index(sample).ravel(), minlength=counts.size)
    return ClipShots(tuple(shot_starts(greys)))


def evaluate_clips(
    clips: list[Path],
    colorizer: Colorizer,
    progress: bool = True,
    keyframes: str | None = None,
    **kwargs,
):
    """Score every clip; ``keyframes="truth"``: the keyframe protocol (see the module)."""
    from tqdm import tqdm

    if keyframes not in (None, TRUTH):
        raise ColorizerError(f"--keyframes {keyframes}: only 'truth' is known to eval --video")
    plans: list[dict] = [{} for _ in clips]
    if keyframes == TRUTH:
        counts = np.zeros(313)
        side = kwargs.get("side", DEFAULT_WORK_SIDE)
        for plan, path in zip(plans, clips, strict=True):
            plan["shots"] = clip_shots(path, side, kwargs.get("frames"), counts)
        for plan in plans:
            plan["prior"] = counts / counts.sum()
    results = []
    with tqdm(desc="evaluating", unit="frame", disable=not progress) as bar:
        for plan, path in zip(plans, clips, strict=True):
            results.append(evaluate_clip(colorizer, path, on_frame=bar.update, **plan, **kwargs))
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
    rebalanced = any("auc_rebal" in m for r in results for m in r.means().values())
    header = "| clip | frames | method | warping error | CDC | PSNR dB | AuC % |"
    header += " rebal. AuC % |" * rebalanced + " CF | CF truth |"
    lines = [header, "|---" * header.count(" | ") + "|---|"]

    def row(name: str, frames: str, method: str, m: dict[str, float]) -> str:
        warping = "n/a" if math.isnan(m["warping"]) else f"{m['warping']:.2f}"
        cdc = "n/a" if math.isnan(m.get("cdc", math.nan)) else f"{m['cdc']:.4f}"
        rebal = f" {100 * m.get('auc_rebal', math.nan):.1f} |" * rebalanced
        return (
            f"| {name} | {frames} | {method} | {warping} | {cdc} | {m['psnr']:.2f} | "
            f"{100 * m['auc']:.1f} |{rebal} {m['cf']:.1f} | {m['cf_truth']:.1f} |"
        )

    for result in results:
        for method, m in result.means().items():
            lines.append(row(result.clip, str(result.frames), method, m))
    total = str(sum(r.frames for r in results))
    for method, m in overall(results).items():
        lines.append(row("**mean of clips**", total, method, m))
    return "\n".join(lines)


CSV_COLUMNS = ("warping", "cdc", "psnr", "auc", "auc_rebal", "cf", "cf_truth")


def write_csv(path: Path, results: list[ClipScores]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "frames", "method", *CSV_COLUMNS])
        for result in results:
            for method, m in result.means().items():
                writer.writerow(
                    [result.clip, result.frames, method] + [m.get(k, "") for k in CSV_COLUMNS]
                )
