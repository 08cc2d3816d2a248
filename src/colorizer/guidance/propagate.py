"""Colorization by optimisation (Levin, Lischinski & Weiss, SIGGRAPH 2004).

Neighbouring pixels of similar lightness should have similar colours: each free pixel's ab is
the weighted mean of its 3 x 3 neighbours', with weights exp(-(Y_r - Y_s)^2 / sigma_r^2) from the
lightness (sigma_r from the window's variance, as in the authors' code), normalised to sum 1;
a guide of several planes (the lightness and a model's colours) sums their squared differences;
scribbled pixels keep their colour. That is one sparse linear system (I - W) x = b, the same
for a and b, solved once by LU (SciPy's SuperLU) for both right-hand sides.

Speed: a direct solve grows faster than the pixel count, and a 2-megapixel photo takes tens of
seconds. The colours are smooth where the lightness is, and the output keeps the photo's own
full-resolution lightness, so the system is solved on a copy scaled down to at most
``work_pixels`` (default 0.25 MP), by the cascadic multigrid of ``solve``. Strokes are kept:
a working pixel that holds any stroke pixel is constrained to the strokes' mean colour there.
The ab planes are scaled back up bilinearly, stroke pixels restored exactly.
``benchmarks/bench_guidance.py`` measures both.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import sparse
from scipy.sparse import linalg

DEFAULT_WORK_PIXELS = 250_000
COARSE_PIXELS = 20_000
SMOOTHING_ITERATIONS = 30
# Levin's floor under the affinity's scale (his code's 2e-6, in (L*/100)^2): in a flat window
# any difference at all is an edge. A guide with the model's colours in it takes a higher floor.
SIGMA_FLOOR = 2e-6
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def levin_matrix(
    guide: np.ndarray, constrained: np.ndarray, sigma_floor: float = SIGMA_FLOOR
) -> sparse.csc_matrix:
    """The system matrix for an H x W L* plane (0..100), or an H x W x C guide in the same
    units (L* first, then planes that should also bound the colours): identity rows at
    ``constrained`` pixels, I - W elsewhere (W: normalised 3 x 3 guide affinities, whose scale
    is the window's variance, at least ``sigma_floor``)."""
    height, width = guide.shape[:2]
    y = guide.astype(np.float64).reshape(height, width, -1).transpose(2, 0, 1) / 100
    padded = np.pad(y, ((0, 0), (1, 1), (1, 1)), mode="edge")
    valid_pad = np.pad(np.ones((height, width), dtype=bool), 1, constant_values=False)
    neighbours = np.stack(
        [padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _OFFSETS]
    )  # 8 x C x H x W
    valid = np.stack(
        [valid_pad[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _OFFSETS]
    )
    # Window statistics over the valid neighbours and the centre (the authors' c_var, csig),
    # summed over the guide's channels.
    count = valid.sum(0) + 1
    inside = valid[:, None]
    mean = (np.where(inside, neighbours, 0).sum(0) + y) / count
    spread = np.where(inside, (neighbours - mean) ** 2, 0).sum(0) + (y - mean) ** 2
    variance = spread.sum(0) / count
    squared = np.where(valid, ((neighbours - y) ** 2).sum(1), np.inf)
    sigma = np.maximum(0.6 * variance, squared.min(0) / -math.log(0.01))
    sigma = np.maximum(sigma, sigma_floor)
    weights = np.exp(-squared / sigma)
    weights /= weights.sum(0)
    weights[:, constrained] = 0.0

    index = np.arange(height * width).reshape(height, width)
    padded_index = np.pad(index, 1, constant_values=-1)
    cols = np.stack(
        [padded_index[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _OFFSETS]
    )
    keep = valid & (weights > 0)
    rows = np.broadcast_to(index, cols.shape)[keep]
    matrix = sparse.coo_matrix(
        (
            np.concatenate([-weights[keep], np.ones(height * width)]),
            (np.concatenate([rows, index.ravel()]), np.concatenate([cols[keep], index.ravel()])),
        ),
        shape=(height * width, height * width),
    )
    return matrix.tocsc()


def solve_direct(
    lightness: np.ndarray, ab: np.ndarray, mask: np.ndarray, sigma_floor: float = SIGMA_FLOOR
) -> np.ndarray:
    """The exact solution at the given resolution, by sparse LU (the reference; slow beyond a
    few hundred thousand pixels): H x W x 2 float32. No strokes: all zeros."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros((*lightness.shape[:2], 2), np.float32)
    matrix = levin_matrix(lightness, mask, sigma_floor)
    rhs = np.where(mask[..., None], ab, 0.0).reshape(-1, 2).astype(np.float64)
    solution = linalg.splu(matrix, permc_spec="COLAMD").solve(rhs)
    return solution.reshape(*lightness.shape[:2], 2).astype(np.float32)


def solve(
    lightness: np.ndarray,
    ab: np.ndarray,
    mask: np.ndarray,
    coarse_pixels: int = COARSE_PIXELS,
    iterations: int = SMOOTHING_ITERATIONS,
    sigma_floor: float = SIGMA_FLOOR,
) -> np.ndarray:
    """Cascadic multigrid: the system solved exactly (LU) on a copy halved until it has at most
    ``coarse_pixels``, then on each finer level the upsampled solution is the start of a few
    Jacobi sweeps of that level's system (the classic multigrid smoother). The coarse solve
    carries colours across the image; the sweeps sharpen them along the finer edges. An
    approximation of the exact solve (``solve_direct``): ``bench_guidance.py`` measures both.
    Returns H x W x 2 float32."""
    mask = np.asarray(mask, dtype=bool)
    height, width = lightness.shape[:2]
    if not mask.any():
        return np.zeros((height, width, 2), np.float32)
    if height * width <= coarse_pixels or min(height, width) < 8:
        return solve_direct(lightness, ab, mask, sigma_floor)
    h, w = (height + 1) // 2, (width + 1) // 2
    small_light = cv2.resize(lightness, (w, h), interpolation=cv2.INTER_AREA)
    small_ab, small_mask = downscale_strokes(ab, mask, h, w)
    guess = solve(small_light, small_ab, small_mask, coarse_pixels, iterations, sigma_floor)
    guess = cv2.resize(guess, (width, height), interpolation=cv2.INTER_LINEAR)
    # Jacobi sweeps x <- W x (strokes kept), W = I - A: each free pixel becomes the
    # affinity-weighted mean of its neighbours, so values stay within the strokes' range. One
    # sparse product per sweep for both channels, no BLAS (whose threads crawl on a busy CPU).
    system = levin_matrix(lightness, mask, sigma_floor)
    affinity = (sparse.identity(height * width, format="csr") - system).tocsr()
    fixed = mask.ravel()
    strokes = ab.reshape(-1, 2)[fixed]
    x = np.where(mask[..., None], ab, guess).reshape(-1, 2).astype(np.float64)
    for _ in range(iterations):
        x = affinity @ x
        x[fixed] = strokes
    return x.reshape(height, width, 2).astype(np.float32)


def working_size(height: int, width: int, work_pixels: int | None) -> tuple[int, int]:
    if not work_pixels or height * width <= work_pixels:
        return height, width
    scale = math.sqrt(work_pixels / (height * width))
    return max(round(height * scale), 2), max(round(width * scale), 2)


def downscale_strokes(ab: np.ndarray, mask: np.ndarray, height: int, width: int):
    """Strokes on a smaller grid: a cell holding any stroke pixel takes their mean colour."""
    if mask.shape == (height, width):
        return ab, mask
    weight = mask.astype(np.float32)
    # INTER_AREA averages every source pixel into the cells it overlaps: none is lost.
    area = cv2.resize(weight, (width, height), interpolation=cv2.INTER_AREA)
    total = cv2.resize(ab * weight[..., None], (width, height), interpolation=cv2.INTER_AREA)
    hit = area > 1e-6
    small_ab = np.where(hit[..., None], total / np.maximum(area, 1e-6)[..., None], 0)
    return small_ab.astype(np.float32), hit


def propagate(
    lightness: np.ndarray,
    ab: np.ndarray,
    mask: np.ndarray,
    work_pixels: int | None = DEFAULT_WORK_PIXELS,
    sigma_floor: float = SIGMA_FLOOR,
) -> np.ndarray:
    """Levin propagation of strokes (``ab`` where ``mask``) over an H x W L* plane (or an
    H x W x C guide, as ``levin_matrix`` takes), solved at most at ``work_pixels`` (None: full
    resolution); returns full-resolution H x W x 2 ab."""
    height, width = lightness.shape[:2]
    mask = np.asarray(mask, dtype=bool)
    ab = np.asarray(ab, dtype=np.float32)
    h, w = working_size(height, width, work_pixels)
    if (h, w) == (height, width):
        return solve(lightness, ab, mask, sigma_floor=sigma_floor)
    small_light = cv2.resize(lightness, (w, h), interpolation=cv2.INTER_AREA)
    small_ab, small_mask = downscale_strokes(ab, mask, h, w)
    result = solve(small_light, small_ab, small_mask, sigma_floor=sigma_floor)
    result = cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)
    result[mask] = ab[mask]
    return result
