"""The published SIGGRAPH17 evaluation protocol: hints sampled from the ground truth.

For each photo and each N: N points drawn uniformly on the network's S x S grid (the photo
resized to it), each a 5 x 5 patch valued at the patch's mean ground-truth ab. The draw depends
only on the photo's pixels and N, so every method sees the same hints.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from colorizer import imageio, planes
from colorizer.guidance.core import Guidance, propagated_ab
from colorizer.guidance.hints import DEFAULT_PATCH, PointHint, sample_hints
from colorizer.planes import compose

GRID = 256


def ground_truth_hints(
    rgb: np.ndarray, count: int, grid: int = GRID, patch: int = DEFAULT_PATCH
) -> list[PointHint]:
    """``count`` hints for the colour photo ``rgb`` (H x W x 3), in image pixel coordinates."""
    if count == 0:
        return []
    height, width = rgb.shape[:2]
    small = cv2.resize(
        np.ascontiguousarray(rgb, dtype=np.float32), (grid, grid), interpolation=cv2.INTER_AREA
    )
    ab = planes.rgb_to_lab_image(small)[..., 1:]
    seed = zlib.crc32(np.ascontiguousarray(rgb[::7, ::7]).tobytes()) ^ (count * 7919)
    hints = sample_hints(ab, count, np.random.default_rng(seed), patch=patch)
    return [
        PointHint(
            (h.x + 0.5) * width / grid - 0.5, (h.y + 0.5) * height / grid - 0.5, h.color, h.patch
        )
        for h in hints
    ]


def hinted_method(colorizer, count: int, grid: int | None = None, propagate: bool = False):
    """``evaluate`` method: ``colorizer`` (None: Levin propagation alone) with ``count`` hints,
    and with ``propagate`` its micro-scribbles too."""
    grid = grid or (colorizer.size if colorizer is not None else GRID)

    def run(picture: imageio.Picture) -> np.ndarray:
        points = ground_truth_hints(picture.rgb, count, grid)
        light = planes.lightness_image(picture.rgb)
        if colorizer is not None and not points:
            return colorizer.colorize_pictures([picture])[0]
        guidance = Guidance(points=points, propagate=propagate)
        if colorizer is None:
            return compose(light, propagated_ab(light, guidance))
        return compose(light, colorizer.guided_ab(light, guidance))

    return run


def propagation_method(colorizer):
    """``evaluate`` method: the model's micro-scribbles propagated (``propagate=True``)."""
    guidance = Guidance(propagate=True)
    return lambda picture: colorizer.colorize_pictures([picture], guidance)[0]
