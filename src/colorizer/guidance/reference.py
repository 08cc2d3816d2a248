"""Colour transfer from a user's reference photo, in the spirit of Welsh, Ashikhmin & Mueller
(SIGGRAPH 2002), with no trained model.

Both photos are taken to a small working size. The reference's lightness is remapped to the grey
photo's mean and spread (luminance remapping), and every pixel is described by its lightness and
the standard deviation of lightness in its 5 x 5 neighbourhood (texture). Each grey pixel takes
the ab of the reference sample nearest in that feature space (a k-d tree over a few thousand
jittered samples). Where the match is good (the best-matching ``STROKE_FRACTION`` of each
16 x 16 tile) the
transferred colours become strokes, and Levin propagation (``propagate``) fills the rest
edge-aware: the photo's own edges decide where each colour stops, not the noisy matches.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from scipy.spatial import cKDTree

from colorizer import imageio, planes
from colorizer.errors import ColorizerError

WORK_PIXELS = 65_536
SAMPLES = 4000
STROKE_FRACTION = 0.3
TILE = 16
TEXTURE_WEIGHT = 1.0


def _features(lightness: np.ndarray) -> np.ndarray:
    mean = cv2.blur(lightness, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(lightness * lightness, (5, 5)) - mean * mean, 0))
    return np.stack([lightness, TEXTURE_WEIGHT * std], axis=-1)


def _shrink(image: np.ndarray, pixels: int) -> np.ndarray:
    height, width = image.shape[:2]
    if height * width <= pixels:
        return image
    scale = np.sqrt(pixels / (height * width))
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def read_reference(source: Any) -> np.ndarray:
    """The reference photo as H x W x 3 float sRGB; it must have colour. Errors say that the
    file is the reference."""
    name = str(source) if not hasattr(source, "shape") else "reference image"
    try:
        picture = imageio.read_image(source)
    except ColorizerError as exc:
        raise ColorizerError(f"reference photo: {exc}") from None
    if not picture.looks_colour:
        raise ColorizerError(f"{name}: the reference photo has no colour to transfer")
    return picture.rgb


def transfer(lightness: np.ndarray, reference_rgb: np.ndarray, seed: int = 0):
    """Matched colours on a working grid: (ab g_h x g_w x 2, match distance g_h x g_w)."""
    target = _shrink(lightness.astype(np.float32), WORK_PIXELS)
    ref_lab = planes.rgb_to_lab_image(_shrink(reference_rgb.astype(np.float32), WORK_PIXELS))
    ref_light = ref_lab[..., 0]
    # Luminance remapping: the reference's lightness histogram moved onto the photo's.
    spread = ref_light.std()
    scale = target.std() / spread if spread > 1e-3 else 1.0
    ref_light = (ref_light - ref_light.mean()) * scale + target.mean()
    ref_features = _features(ref_light.astype(np.float32)).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    count = min(SAMPLES, len(ref_features))
    picks = rng.choice(len(ref_features), size=count, replace=False)
    tree = cKDTree(ref_features[picks])
    distance, nearest = tree.query(_features(target).reshape(-1, 2))
    ab = ref_lab[..., 1:].reshape(-1, 2)[picks][nearest]
    return ab.reshape(*target.shape, 2).astype(np.float32), distance.reshape(target.shape)


def reference_cells(distance: np.ndarray, tile: int = TILE) -> np.ndarray:
    """The best-matched cells of every ``tile`` x ``tile`` block (so that every part of the
    photo gets strokes, not only the part that matches best overall): the strokes to
    propagate."""
    chosen = np.zeros(distance.shape, bool)
    for top in range(0, distance.shape[0], tile):
        for left in range(0, distance.shape[1], tile):
            block = distance[top : top + tile, left : left + tile]
            chosen[top : top + tile, left : left + tile] = block <= np.quantile(
                block, STROKE_FRACTION
            )
    return chosen
