"""What the benchmarks run on: the photos and clips of ../shared, or synthetic stand-ins.

``../shared`` (beside the repository) holds the data sets; a benchmark that cannot run without
a file ``require``s it, which raises ``Skip`` with the missing path when it is absent, so the
runner says why instead of failing halfway. ``portable`` writes paths in results without the
user's folders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
BW = DATA / "bw"  # nine B&W photos, 0.5 to 2.1 MP
TETONS = BW / "07_landscape_tetons_snake_river_1942.jpg"
MIGRANT_MOTHER = BW / "01_portrait_migrant_mother_1936.jpg"  # 1000 x 1247
VIDEO = DATA / "video"
BENCH_CLIP = VIDEO / "bench_720p.mp4"  # 1280 x 720, 25 fps, 125 frames
BSDS500_TEST = DATA / "val" / "bsds500-test"  # the held-out evaluation set


class Skip(Exception):
    """The benchmark cannot run here (its data is absent); the message says why."""


def require(path: str | Path) -> Path:
    """``path``, or ``Skip`` when it does not exist (../shared absent, or a file left out)."""
    path = Path(path)
    if not path.exists():
        where = "" if SHARED.is_dir() else f" ({portable(SHARED)} is absent)"
        raise Skip(f"{portable(path)} does not exist{where}")
    return path


def portable(value: Any) -> Any:
    """``value`` fit for the results file: paths relative to the repository when they lie
    beside it (``../shared/...``), ``~/...`` under the home folder; numpy scalars as numbers."""
    if isinstance(value, list | tuple):
        return [portable(item) for item in value]
    if isinstance(value, Path) or (isinstance(value, str) and os.path.isabs(value)):
        return portable_path(Path(value))
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool | dict):
        return value
    return str(value)


def portable_path(path: Path) -> str:
    # abspath, not resolve: ../shared may be a link to elsewhere, and is still "../shared".
    absolute = Path(os.path.abspath(path)) if path.is_absolute() else path
    if absolute.is_relative_to(ROOT.parent):
        return os.path.relpath(absolute, ROOT)
    home = Path.home()
    if absolute.is_relative_to(home):
        return str(Path("~") / absolute.relative_to(home))
    return str(path)


def grey_photo(height: int, width: int) -> np.ndarray:
    """A photo-like grey uint8 image: a real B&W photo resized when ../shared has one, else
    smooth noise (speed does not depend on the content)."""
    from PIL import Image

    if TETONS.exists():
        image = Image.open(TETONS).convert("L").resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(image)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(height // 8 + 1, width // 8 + 1)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(noise).resize((width, height), Image.Resampling.BICUBIC))
    return np.clip(128 + 40 * smooth, 0, 255).astype(np.uint8)
