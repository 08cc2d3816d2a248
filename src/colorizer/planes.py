"""Full-resolution image conversions for inference, in numpy and OpenCV (no PyTorch).

``colorizer.color`` is the reference colour maths, in torch, for the networks and training.
At full resolution a 12-megapixel photo makes every torch element-wise pass cost ~0.1 s on a
small CPU, and those conversions take ~20 passes; OpenCV does the same sRGB/Lab maths (same
matrix, same D65 white to 4 digits) in one fused, vectorised pass, ~10x faster. The tests hold
this module to ``colorizer.color`` (within 5e-4 in gamut; out-of-gamut colours are clipped by
both, differently). Keeping PyTorch out lets a colorizer running on OpenVINO start without it.

``compose`` works in bounded strips of rows: the ab upsampling, the Lab -> sRGB conversion and
the clipping of one strip stay in the cache, both cores share the strips, and the full-size
float ab and Lab images are never made. ``compose(..., out_dtype=np.uint8)`` writes straight
into the 8-bit result, so a 200 MP scan needs its L* plane and its result and little else.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from colorizer.errors import ColorizerError

# The Y row of sRGB (linear) -> XYZ (colorizer.color.XYZ_FROM_RGB, skimage's); tests hold them
# equal. CIE L*'s linear-segment threshold (6/29)^3 and slope, as skimage rounds them.
SRGB_Y_WEIGHTS = (0.212671, 0.715160, 0.072169)
LAB_EPS = 0.008856
LAB_KAPPA = 7.787

STRIP_ROWS = 64  # 64 rows of a 4000-px-wide photo: 3 MB of Lab floats per strip, in the cache


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb > 0.04045, ((np.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def lightness_from_y(y: np.ndarray) -> np.ndarray:
    """CIE L* from relative luminance Y (white = 1)."""
    y = np.asarray(y, dtype=np.float64)
    f = np.where(y > LAB_EPS, np.cbrt(np.maximum(y, LAB_EPS)), LAB_KAPPA * y + 16 / 116)
    return 116 * f - 16


def lab_to_rgb_image(lab: np.ndarray) -> np.ndarray:
    """H x W x 3 float32 Lab -> H x W x 3 float32 sRGB clipped to [0, 1]."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def is_grey(rgb: np.ndarray) -> bool:
    """Whether an H x W x 3 image has R = G = B everywhere (``lightness_image``'s fast path)."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an H x W (x C) float32 map: area averaging when shrinking (no aliasing from a
    12 MP photo), else bilinear with half-pixel centres as the published models upsample ab.
    """
    shrinking = height <= plane.shape[0] and width <= plane.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(plane, (width, height), interpolation=interpolation)


def _row_weights(rows: np.ndarray, source: int, target: int):
    """Bilinear (half-pixel centres, edges clamped) source rows and weights of target rows."""
    position = np.maximum((rows + 0.5) * (source / target) - 0.5, 0.0)
    top = np.minimum(position.astype(np.int64), source - 1)
    below = np.minimum(top + 1, source - 1)
    weight = (position - top).astype(np.float32)[:, None, None]
    return top, below, weight


def _compose_strip(lightness, ab_wide, start, stop, out) -> None:
    """Rows start..stop of ``compose``: ab interpolated down the rows (across them it already
    is, in ``ab_wide``), merged with L*, converted, clipped, stored in ``out``."""
    top, below, weight = _row_weights(np.arange(start, stop), ab_wide.shape[0], out.shape[0])
    ab = ab_wide[below]  # top + (below - top) x weight, in place: one temporary, float32
    upper = ab_wide[top]
    ab -= upper
    ab *= weight
    ab += upper
    lab = cv2.merge([np.ascontiguousarray(lightness[start:stop]), ab])
    rgb: np.ndarray = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    if out.dtype == np.uint8:
        # Rounded as imageio quantises float outputs: OpenCV's scale, round (half to even) and
        # saturate, so a photo composed to bytes equals its float result written out.
        out[start:stop] = cv2.convertScaleAbs(rgb, alpha=255)
    else:
        np.clip(rgb, 0.0, 1.0, out=out[start:stop])


@functools.cache
def _strip_pool() -> ThreadPoolExecutor:
    # OpenCV and numpy release the GIL in their loops, so threads share the strips out.
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="strips")


def compose(
    lightness: np.ndarray,
    ab: np.ndarray,
    *,
    out_dtype: type = np.float32,
    strip_rows: int = STRIP_ROWS,
) -> np.ndarray:
    """Full-resolution L* (H x W) + network ab (h x w x 2) -> H x W x 3 sRGB: float32 in
    [0, 1], or uint8 with ``out_dtype=np.uint8``. The result does not depend on ``strip_rows``.
    """
    height, width = lightness.shape
    out: np.ndarray = np.empty((height, width, 3), dtype=out_dtype)
    ab = np.ascontiguousarray(ab, dtype=np.float32)
    if height < ab.shape[0] or width < ab.shape[1]:  # smaller than the network's grid
        ab_wide = resize_plane(ab, height, width)  # at full size: the strips copy its rows
    else:  # bilinear across the rows here, down them strip by strip (separable, as OpenCV)
        ab_wide = cv2.resize(ab, (width, ab.shape[0]), interpolation=cv2.INTER_LINEAR)
    starts = range(0, height, strip_rows)
    jobs = [(lightness, ab_wide, s, min(s + strip_rows, height), out) for s in starts]
    if len(jobs) == 1:
        _compose_strip(*jobs[0])
    else:
        list(_strip_pool().map(lambda job: _compose_strip(*job), jobs))
    return out


def lightness_image(rgb: np.ndarray, grey: bool = False) -> np.ndarray:
    """H x W x 3 float sRGB in [0, 1] -> H x W float32 L* (0..100); ``grey``: R = G = B.

    Looks values up in 2^16-entry tables of ``srgb_to_linear`` and ``lightness_from_y``: exact
    for 8- and 16-bit sources, within 1e-3 L* for float ones (OpenCV's own RGB2Lab is off by up
    to 0.25 L*).
    """
    if grey:
        return _lightness_table()[_table_index(rgb[..., 0])]
    linear = _linearisation_table()
    return _lightness_of_channels([linear[_table_index(rgb[..., c])] for c in range(3)])


def lightness_u8(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 sRGB -> H x W float32 L*, ``lightness_image(rgb / 255)`` (to 1e-4)
    without making the float image: level v is entry v x 257 of the 2^16-entry tables, looked
    up and weighted by OpenCV in two passes (a 720p video frame in ~6 ms, not ~25; the exact
    ``lightness_of_bytes`` takes 11)."""
    if is_grey(rgb):
        return _lightness_table()[::257][rgb[..., 0]]
    linear = cv2.LUT(np.ascontiguousarray(rgb), _linearisation_table()[::257].reshape(1, 256))
    y = cv2.transform(linear, np.array([SRGB_Y_WEIGHTS], np.float32))
    return _lightness_from_y_f32(y)


def lightness_of_bytes(data: np.ndarray, strip_rows: int = 256) -> np.ndarray:
    """H x W grey or H x W x 3 RGB uint8 -> H x W float32 L*, exactly ``lightness_image`` of
    ``data / 255`` (the same table entries, the same float32 operations) but strip by strip,
    never making the float image: for photos, whose bytes path must match the float one.
    ``lightness_u8`` is the faster, approximate choice for video frames."""
    # cv2.LUT: the same table entries as numpy's indexing, on both cores (12 MP: 8 ms, not 32).
    if data.ndim == 2 or is_grey(data):
        grey = np.ascontiguousarray(data if data.ndim == 2 else data[..., 0])
        return cv2.LUT(grey, _bytes_table(_lightness_table()))
    linear = _bytes_table(_linearisation_table())
    out = np.empty(data.shape[:2], dtype=np.float32)
    for start in range(0, data.shape[0], strip_rows):
        strip = cv2.LUT(np.ascontiguousarray(data[start : start + strip_rows]), linear)
        out[start : start + strip_rows] = _lightness_of_channels([strip[..., c] for c in range(3)])
    return out


def _bytes_table(table: np.ndarray) -> np.ndarray:
    """A 2^16-entry table's entries for the 256 byte values (level v is entry v x 257)."""
    return np.ascontiguousarray(table[::257]).reshape(1, 256)


def _lightness_of_channels(linear: list[np.ndarray]) -> np.ndarray:
    """L* from the three linear sRGB channels, in float32."""
    red, green, blue = SRGB_Y_WEIGHTS
    y = linear[0] * np.float32(red)
    y += linear[1] * np.float32(green)
    y += linear[2] * np.float32(blue)
    return _lightness_from_y_f32(y)


def _lightness_from_y_f32(y: np.ndarray) -> np.ndarray:
    above = y > LAB_EPS
    f = np.where(above, np.cbrt(np.maximum(y, np.float32(LAB_EPS))), y * np.float32(LAB_KAPPA))
    f[~above] += np.float32(16 / 116)
    f *= np.float32(116)
    f -= np.float32(16)
    return f


def _table_index(channel: np.ndarray) -> np.ndarray:
    scaled = np.multiply(channel, 65535, dtype=np.float32)
    scaled += 0.5
    return np.clip(scaled, 0, 65535, out=scaled).astype(np.uint16)


@functools.cache
def _linearisation_table() -> np.ndarray:
    return srgb_to_linear(np.arange(65536) / 65535).astype(np.float32)


@functools.cache
def _lightness_table() -> np.ndarray:
    return lightness_from_y(srgb_to_linear(np.arange(65536) / 65535)).astype(np.float32)


def rgb_to_lab_image(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 float sRGB in [0, 1] -> H x W x 3 float32 Lab: L* from ``lightness_image``,
    ab from OpenCV's fused conversion (within 5e-4 of ``color.rgb_to_lab``, see above)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    lab[..., 0] = lightness_image(rgb)
    return lab


def check_point(x: float, y: float, width: int, height: int, label: str = "point") -> None:
    """A point in image pixel coordinates must lie on the image (``-0.5 <= x < W - 0.5``,
    likewise y); ``label`` names it in the error."""
    if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5):
        raise ColorizerError(
            f"{label} at ({x:g}, {y:g}) lies outside the {width}x{height} "
            "image (x in 0..width-1, y in 0..height-1)"
        )
