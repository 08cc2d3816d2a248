"""Small synthetic photos for the guidance tests (and the album tests of tests/test_batch.py)."""

from __future__ import annotations

import numpy as np

from colorizer import planes


def scene(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """Sky, grass with texture, a red disc and a yellow block: H x W x 3 float sRGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    image = np.empty((height, width, 3), np.float32)
    image[...] = (0.35, 0.55, 0.85)
    ground = y > 0.55
    image[ground] = (0.3, 0.6, 0.2)
    image[(x - 0.3) ** 2 + (y - 0.7) ** 2 < 0.02] = (0.85, 0.2, 0.15)
    image[(x > 0.6) & (x < 0.85) & (y > 0.3) & (y < 0.8)] = (0.9, 0.8, 0.2)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32) * ground[..., None]
    return np.clip(image, 0, 1)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    lightness = planes.lightness_image(rgb)
    return planes.lab_to_rgb_image(np.dstack([lightness, np.zeros((*lightness.shape, 2))]))
