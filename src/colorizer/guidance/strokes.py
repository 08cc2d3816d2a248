"""Stroke layers for propagation: user scribbles, hint patches, the network's micro-scribbles.

A layer is (ab, mask) at the photo's full resolution: H x W x 2 float32 Lab ab and an H x W
bool mask. ``merge`` lays later layers over earlier ones (user input last: it wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from colorizer import imageio, planes
from colorizer.errors import ColorizerError
from colorizer.guidance.hints import PointHint, patch_box

# A scribble pixel is a stroke when its Lab chroma exceeds this (grey and white are not).
STROKE_CHROMA = 6.0
# Micro-scribbles: grid cells whose bin distribution has entropy in the lowest this fraction
# (the rebalanced classifier's distributions are broad, 3-4 nats: a relative threshold).
CONFIDENT_FRACTION = 0.25


def load_scribbles(source: Any, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A scribble image (path, PIL or array; H x W like the photo) -> (ab, mask) of its coloured
    pixels; transparent pixels (alpha < 0.5) are never strokes."""
    name = str(source) if isinstance(source, str | Path) else "scribble image"
    picture = imageio.read_image(source)
    if picture.rgb.shape[:2] != (height, width):
        h, w = picture.rgb.shape[:2]
        raise ColorizerError(
            f"{name}: scribbles are {w}x{h} but the photo is {width}x{height}; "
            "paint them on a layer of the photo's size"
        )
    lab = planes.rgb_to_lab_image(picture.rgb)
    ab = lab[..., 1:]
    mask = np.hypot(ab[..., 0], ab[..., 1]) > STROKE_CHROMA
    if picture.alpha is not None:
        alpha: np.ndarray = np.asarray(picture.alpha, dtype=np.float32)
        if alpha.max() > 1:
            alpha = alpha / np.iinfo(picture.alpha.dtype).max
        mask &= alpha >= 0.5
    return np.where(mask[..., None], ab, 0).astype(np.float32), mask


def hint_strokes(
    points: Sequence[PointHint], height: int, width: int, grid: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each hint's patch (measured on the grid x grid network input) at full resolution."""
    ab = np.zeros((height, width, 2), np.float32)
    mask = np.zeros((height, width), bool)
    for point in points:
        top, bottom, left, right = patch_box(point, width, height, grid, grid)
        rows = slice(int(top * height / grid), max(int(np.ceil(bottom * height / grid)), 1))
        cols = slice(int(left * width / grid), max(int(np.ceil(right * width / grid)), 1))
        ab[rows, cols] = point.ab
        mask[rows, cols] = True
    return ab, mask


def grid_strokes(
    ab_grid: np.ndarray, chosen: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One stroke pixel per chosen cell of a g_h x g_w grid, at the cell's centre."""
    grid_h, grid_w = chosen.shape
    ab = np.zeros((height, width, 2), np.float32)
    mask = np.zeros((height, width), bool)
    rows, cols = np.nonzero(chosen)
    ys = np.minimum(((rows + 0.5) * height / grid_h).astype(int), height - 1)
    xs = np.minimum(((cols + 0.5) * width / grid_w).astype(int), width - 1)
    ab[ys, xs] = ab_grid[rows, cols]
    mask[ys, xs] = True
    return ab, mask


def confident_cells(entropy: np.ndarray, fraction: float = CONFIDENT_FRACTION) -> np.ndarray:
    """Cells whose entropy is among the lowest ``fraction``."""
    return entropy <= np.quantile(entropy, fraction)


def ab_variation(ab_grid: np.ndarray) -> np.ndarray:
    """Per cell, how much the predicted ab varies around it (|Laplacian| of a plus of b): for
    models without a distribution, flat colour stands in for confidence."""
    variation = sum(
        np.abs(cv2.Laplacian(np.ascontiguousarray(ab_grid[..., c]), cv2.CV_32F)) for c in range(2)
    )
    assert isinstance(variation, np.ndarray)  # 0 + an array: sum's start value is gone
    return variation


def flat_cells(ab_grid: np.ndarray, fraction: float = CONFIDENT_FRACTION) -> np.ndarray:
    """For models without a distribution: the cells where the predicted ab varies least."""
    variation = ab_variation(ab_grid)
    return variation <= np.quantile(variation, fraction)


def lowest_per_block(score: np.ndarray, block: int) -> np.ndarray:
    """The cell of lowest ``score`` in each ``block`` x ``block`` tile of the grid (the last
    tiles of a side may be smaller): one per tile, so they cover the whole photo."""
    height, width = score.shape
    chosen = np.zeros(score.shape, bool)
    for top in range(0, height, block):
        for left in range(0, width, block):
            tile = score[top : top + block, left : left + block]
            row, col = np.unravel_index(int(np.argmin(tile)), tile.shape)
            chosen[top + row, left + col] = True
    return chosen


def merge(
    layers: Sequence[tuple[np.ndarray, np.ndarray] | None], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Later layers win where they have strokes; a user layer also clears the automatic strokes
    within a few pixels of its own, so that the user's colour is what spreads there."""
    ab = np.zeros((height, width, 2), np.float32)
    mask = np.zeros((height, width), bool)
    for layer in layers:
        if layer is None:
            continue
        layer_ab, layer_mask = layer
        ab[layer_mask] = layer_ab[layer_mask]
        mask |= layer_mask
    return ab, mask


def clear_near(layer: tuple[np.ndarray | None, np.ndarray], user_mask: np.ndarray, radius: int):
    """Drop the strokes of ``layer`` within ``radius`` pixels of the user's strokes."""
    if radius < 1 or not user_mask.any():
        return layer
    # Distance to the nearest user stroke pixel: linear time whatever the radius.
    distance = cv2.distanceTransform((~user_mask).astype(np.uint8), cv2.DIST_L2, 3)
    near = distance <= radius
    ab, mask = layer
    return ab, mask & ~near
