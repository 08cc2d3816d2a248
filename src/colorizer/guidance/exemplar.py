"""Exemplar colour transfer by meaning: a colour reference's ab moved onto a grey target where
the pretrained encoder sees the same things in both.

The encoder (``Colorizer.encoder_features``: colornet-v2 / v3's ImageNet EfficientNet-Lite)
describes every cell of a coarse grid (32 x 32 for a 256 px network input) by a unit-length
feature vector. ``make_exemplar`` prepares a reference once: its features, and its L* and ab
averaged onto the same grid. ``transfer`` matches a target's cells to the reference's: cosine
similarity (one matrix product), less a penalty for a lightness difference, then a softmax over
the ``TOP_K`` best matches at ``TEMPERATURE`` averages their ab. The best similarity alone,
mapped linearly between ``UNRELATED_SIMILARITY`` (0) and ``SAME_SIMILARITY`` (1), is the
confidence: it is high where the reference shows the same object and low where nothing in it
looks like the target cell.

``full_resolution_ab`` brings the matched grid to the photo's size edge-aware (a guided filter
of He, Sun & Tang, guided by the grey photo's own L*, so colours stop at its edges) and blends it
with the automatic model's ab by the confidence: where nothing matched, the automatic colours
stay.

Pure numpy / OpenCV: the features come from the pipeline (a layer below guidance never runs
the network here).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from colorizer import planes
from colorizer.errors import ColorizerError
from colorizer.planes import resize_plane

TOP_K = 8  # reference cells averaged per target cell
TEMPERATURE = 0.02  # softmax temperature over their scores (cosine units)
LIGHTNESS_WEIGHT = 0.5  # score penalty per 100 L* of difference
# Best cosine similarity -> confidence: at or below UNRELATED 0, at or above SAME 1.
UNRELATED_SIMILARITY = 0.35
SAME_SIMILARITY = 0.65
GUIDE_RADIUS_FRACTION = 1 / 64  # guided filter radius: this share of the photo's longer side
GUIDE_WORK_SIDE = 512  # the guided filter's coefficients are solved at most this size
GUIDE_EPSILON = 0.01  # guided filter regularisation, on L* / 100 (lightness steps of ~10 L*)


@dataclass(frozen=True)
class Exemplar:
    """A colour reference prepared once (a photo or a coloured keyframe), on the encoder's grid.

    ``features``: C x h x w float32, unit length at every position (``encoder_features``).
    ``lightness``: h x w float32 L* of the reference, averaged onto the grid.
    ``ab``: h x w x 2 float32 ab of the reference, averaged onto the grid.
    """

    features: np.ndarray
    lightness: np.ndarray
    ab: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the feature grid."""
        return self.features.shape[1], self.features.shape[2]


def unit_features(features: np.ndarray) -> np.ndarray:
    """C x h x w features scaled to unit length at each position (zero vectors stay zero)."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=0, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _check_features(features: np.ndarray, what: str) -> None:
    if features.ndim != 3 or min(features.shape) < 1:
        raise ColorizerError(f"{what}: expected C x h x w encoder features, got {features.shape}")


def make_exemplar(features: np.ndarray, rgb: np.ndarray) -> Exemplar:
    """A reference from its encoder features (C x h x w, from ``Colorizer.encoder_features`` of
    its L*) and its colour pixels (H x W x 3 float sRGB in [0, 1], any size)."""
    _check_features(features, "reference")
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ColorizerError(f"reference: expected H x W x 3 sRGB, got {rgb.shape}")
    _, height, width = features.shape
    lab = resize_plane(planes.rgb_to_lab_image(rgb), height, width)
    return Exemplar(
        unit_features(features),
        np.ascontiguousarray(lab[..., 0], dtype=np.float32),
        np.ascontiguousarray(lab[..., 1:], dtype=np.float32),
    )


def transfer(
    exemplar: Exemplar, features: np.ndarray, lightness: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A target's encoder features (C x h x w) and its L* (h x w on the same grid, or any size:
    it is averaged onto the grid) -> (ab h x w x 2 float32, confidence h x w float32 in [0, 1]).

    Each target cell takes the ab of the reference cells whose features match it best (and whose
    lightness is close), softmax-weighted; the confidence says how well the best one matched."""
    _check_features(features, "target")
    if features.shape[0] != exemplar.features.shape[0]:
        raise ColorizerError(
            f"target features have {features.shape[0]} channels but the reference's have "
            f"{exemplar.features.shape[0]}: both must come from the same model"
        )
    channels, height, width = features.shape
    target = unit_features(features).reshape(channels, -1)
    target_light = resize_plane(np.asarray(lightness, np.float32), height, width).reshape(-1)
    reference = exemplar.features.reshape(channels, -1)
    similarity = target.T @ reference  # target cells x reference cells
    light_gap = np.abs(target_light[:, None] - exemplar.lightness.reshape(1, -1)) / 100
    score = similarity - LIGHTNESS_WEIGHT * light_gap
    k = min(TOP_K, score.shape[1])
    best = np.argpartition(-score, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(score, best, axis=1)
    weights = np.exp((top - top.max(axis=1, keepdims=True)) / TEMPERATURE)
    weights /= weights.sum(axis=1, keepdims=True)
    ab = np.einsum("nk,nkc->nc", weights, exemplar.ab.reshape(-1, 2)[best])
    confidence = match_confidence(similarity.max(axis=1))
    return (
        ab.reshape(height, width, 2).astype(np.float32),
        confidence.reshape(height, width).astype(np.float32),
    )


def match_confidence(best_similarity: np.ndarray) -> np.ndarray:
    """The best cosine similarity of each target cell -> confidence in [0, 1]."""
    span = SAME_SIMILARITY - UNRELATED_SIMILARITY
    return np.clip((best_similarity - UNRELATED_SIMILARITY) / span, 0.0, 1.0)


def guided_filter_coefficients(guide: np.ndarray, source: np.ndarray, radius: int, epsilon: float):
    """He, Sun & Tang's guided filter as its linear coefficients: (slope, offset), each
    H x W x C, such that ``slope * guide + offset`` is ``source`` (H x W x C) smoothed with
    its edges following the grey ``guide`` (H x W, roughly 0..1)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, -1, size).reshape(plane.shape)  # keeps a channel of one

    guide = guide.astype(np.float32)[..., None]
    source = source.astype(np.float32)
    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i * mean_i
    mean_p = box(source)
    slope = (box(guide * source) - mean_i * mean_p) / (var_i + epsilon)
    offset = mean_p - slope * mean_i
    return box(slope), box(offset)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, epsilon: float):
    """He, Sun & Tang's guided filter: ``source`` (H x W x C) smoothed so that its edges follow
    the grey ``guide`` (H x W, roughly 0..1)."""
    slope, offset = guided_filter_coefficients(guide, source, radius, epsilon)
    return slope * guide[..., None] + offset


def full_resolution_match(
    lightness: np.ndarray, ab: np.ndarray, confidence: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The matched grid (ab h x w x 2, confidence h x w) at the photo's size (``lightness``,
    H x W L*), edge-aware: (ab H x W x 2, confidence H x W in [0, 1]), float32.

    The guided filter runs on a copy at most ``GUIDE_WORK_SIDE`` pixels a side and its linear
    coefficients are scaled up (He & Sun's fast guided filter): the colours come from a 32 x 32
    grid, so a finer solve adds nothing but time; the photo's own lightness still places the
    edges at full resolution."""
    height, width = lightness.shape
    scale = min(1.0, GUIDE_WORK_SIDE / max(height, width))
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    guide = np.asarray(lightness, np.float32) / 100
    small_guide = resize_plane(guide, small_h, small_w)
    grids = np.dstack([ab, confidence]).astype(np.float32)
    small = resize_plane(np.ascontiguousarray(grids), small_h, small_w).reshape(small_h, small_w, 3)
    radius = max(1, round(max(small_h, small_w) * GUIDE_RADIUS_FRACTION))
    slope, offset = guided_filter_coefficients(small_guide, small, radius, GUIDE_EPSILON)
    slope = resize_plane(slope, height, width).reshape(height, width, 3)
    offset = resize_plane(offset, height, width).reshape(height, width, 3)
    filtered = slope * guide[..., None] + offset
    return (
        np.ascontiguousarray(filtered[..., :2], dtype=np.float32),
        np.ascontiguousarray(np.clip(filtered[..., 2], 0, 1), dtype=np.float32),
    )


def full_resolution_ab(
    lightness: np.ndarray,
    ab: np.ndarray,
    confidence: np.ndarray,
    automatic_ab: np.ndarray | None = None,
) -> np.ndarray:
    """The matched grid (ab h x w x 2, confidence h x w) at the photo's size (``lightness``,
    H x W L*; ``full_resolution_match``), blended with the automatic model's ab (any grid
    size) by the confidence; without ``automatic_ab``, the matched colours alone."""
    matched, trust = full_resolution_match(lightness, ab, confidence)
    if automatic_ab is None:
        return matched
    automatic = resize_plane(np.ascontiguousarray(automatic_ab, np.float32), *lightness.shape)
    return blend_by_confidence(matched, trust, automatic)


def blend_by_confidence(matched: np.ndarray, trust: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``matched`` ab where ``trust`` is 1, ``fallback`` where it is 0 (H x W x 2, H x W)."""
    mixed = fallback + trust[..., None] * (matched - fallback)
    return np.ascontiguousarray(mixed, dtype=np.float32)
