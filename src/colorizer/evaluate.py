"""`colorize eval`: turn colour photos grey, colorize them, and score against the originals.

Every model sees only the lightness of each photo (``Colorizer.colorize_pictures`` uses L*
alone), so no colour leaks in. A "grey" row (the lightness with ab = 0) is the baseline every
model must beat. The class-rebalanced AuC weighs each pixel by the inverse frequency of its true
ab bin over the whole evaluated set, unless a prior file (e.g. the published ImageNet
``prior_probs.npy``) is given.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from colorizer import color, imageio, metrics, planes
from colorizer.errors import ColorizerError

log = logging.getLogger(__name__)

GREY = "grey"
COLUMNS = ["psnr", "ssim", "ciede2000", "auc", "auc_rebal", "cf", "delta_cf", "cast"]
Method = Callable[[imageio.Picture], np.ndarray]


@dataclass
class Evaluation:
    """Per-image metric rows for each method, and the files that could not be read."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    pooled: dict[str, metrics.PooledAuC] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        """Per-method means of the per-image metrics, and the pooled rebalanced AuC."""
        return {
            method: {key: float(np.mean([row[key] for row in rows])) for key in COLUMNS}
            | {"cf_truth": float(np.mean([row["cf_truth"] for row in rows]))}
            | ({"auc_rebal_pooled": self.pooled[method].value} if method in self.pooled else {})
            for method, rows in self.rows.items()
            if rows
        }


def grey_method(picture: imageio.Picture) -> np.ndarray:
    light = planes.lightness_image(picture.rgb)
    return planes.lab_to_rgb_image(np.dstack([light, np.zeros((*light.shape, 2), np.float32)]))


def colorizer_method(colorizer) -> Method:
    return lambda picture: colorizer.colorize_pictures([picture])[0]


def find_photos(folder: Path) -> list[Path]:
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in imageio.PHOTO_SUFFIXES)
    if not photos:
        raise ColorizerError(f"{folder}: no photos to evaluate (jpg, png, tif, bmp, webp)")
    return photos


def read_prior(path: str | Path) -> np.ndarray:
    """A prior file (``--prior``): the 313 bins' frequencies as a .npy array, checked."""
    try:
        prior = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ColorizerError(f"{path}: cannot read a .npy prior ({exc})") from None
    if prior.shape != (313,):
        raise ColorizerError(f"{path}: expected 313 bin frequencies, found shape {prior.shape}")
    return prior


def dataset_prior(pictures: Iterable[imageio.Picture]) -> np.ndarray:
    """Frequency of each of the 313 ab bins over all ground-truth pixels."""
    counts = np.zeros(313)
    for picture in pictures:
        lab = color.rgb_to_lab(torch.from_numpy(picture.rgb).permute(2, 0, 1))
        bins = metrics.ab_bin_index(lab[1:].permute(1, 2, 0).numpy())
        counts += np.bincount(bins.ravel(), minlength=313)
    return counts / counts.sum()


def evaluate(
    methods: dict[str, Method],
    photos: list[Path],
    *,
    prior: np.ndarray | None = None,
    sheet_dir: Path | None = None,
    progress: bool = True,
) -> Evaluation:
    from tqdm import tqdm

    names = [GREY, *methods]
    result = Evaluation(rows={name: [] for name in names})
    pictures = {}
    for path in photos:
        try:
            pictures[path] = imageio.read_image(path)
        except ColorizerError as exc:
            result.failed.append((path, str(exc)))
    warn_grey_truth(pictures)
    if prior is None:
        prior = dataset_prior(pictures.values())
    result.pooled = {name: metrics.PooledAuC(prior) for name in names}
    for path, truth in tqdm(
        pictures.items(), desc="evaluating", unit="photo", disable=not progress
    ):
        outputs = {GREY: grey_method(truth)} | {name: run(truth) for name, run in methods.items()}
        for name, output in outputs.items():
            row = metrics.evaluate_pair(output, truth.rgb, prior=prior, pooled=result.pooled[name])
            result.rows[name].append({"image": path.name, **row})
        if sheet_dir is not None:
            write_contact_sheet(sheet_dir / f"{path.stem}.jpg", outputs, truth.rgb)
    return result


def warn_grey_truth(pictures: dict[Path, imageio.Picture]) -> None:
    """Warn about ground truth without colour (grey, or one tint such as sepia): every method
    is scored against its lightness alone there, which measures no colorizing at all."""
    grey = [path for path, truth in pictures.items() if not truth.looks_colour]
    if grey:
        shown = ", ".join(str(path) for path in grey[:3]) + (", ..." if grey[3:] else "")
        log.warning(
            "%d of %d photos have no colour (%s): grey photos make no colour truth; "
            "evaluate on colour photos",
            len(grey),
            len(pictures),
            shown,
        )


def write_contact_sheet(path: Path, outputs: dict[str, np.ndarray], truth: np.ndarray) -> None:
    """input (grey) | each method | ground truth, side by side."""
    gap = np.ones((truth.shape[0], 4, 3), np.float32)
    panels = [*outputs.values(), truth]
    strip = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    imageio.write_image(path, strip)


def format_table(means: dict[str, dict[str, float]]) -> str:
    header = ["method", "PSNR dB", "SSIM", "dE2000", "AuC %", "AuC rebal %"]
    header += ["AuC rebal pooled %", "CF", "dCF", "cast"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, m in means.items():
        cells = [
            method,
            f"{m['psnr']:.2f}",
            f"{m['ssim']:.3f}",
            f"{m['ciede2000']:.2f}",
            f"{100 * m['auc']:.1f}",
            f"{100 * m['auc_rebal']:.1f}",
            f"{100 * m['auc_rebal_pooled']:.1f}" if "auc_rebal_pooled" in m else "-",
            f"{m['cf']:.1f}",
            f"{m['delta_cf']:+.1f}",
            f"{m['cast']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    truth_cf = next(iter(means.values()))["cf_truth"]
    lines.append(f"\nground truth CF: {truth_cf:.1f}")
    return "\n".join(lines)


def write_csv(path: Path, evaluation: Evaluation) -> None:
    """Per-image rows of every method, written atomically."""
    from colorizer.files import atomic_write  # (a foundation module: no cycle)

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "image", *COLUMNS, "cf_truth"])
        for method, rows in evaluation.rows.items():
            for row in rows:
                writer.writerow([method, row["image"], *(row[k] for k in [*COLUMNS, "cf_truth"])])
