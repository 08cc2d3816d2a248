"""Warping error: how much colour flickers between consecutive frames of a colorized video.

For each pair of consecutive frames, the previous output's ab is warped to the current frame
along the optical flow computed on the grey input, and compared with the current output's ab
(Euclidean distance in Lab ab units). Pixels the flow cannot follow (forward-backward
inconsistent, leaving the frame, or changing grey level: occlusions) are excluded, and so are
pairs across a scene cut, where no colour should carry over. The result is the mean over the
remaining pixels of all pairs: 0 means colours move exactly with the scene.

The flow here is Farneback's by default, a different method from the DIS flow the propagator
uses, so a method is not scored by its own motion estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from colorizer.video import flow
from colorizer.video.consistency import is_scene_cut

METRIC_FLOW = "farneback"


class WarpingError:
    """Streaming warping error of several colorizations of one grey sequence.

    Feed frames in order with ``add(grey, {method: ab})``: the flow is computed once per pair
    and shared by all methods. ``result()`` gives the mean per method.
    """

    def __init__(self, method: str = METRIC_FLOW) -> None:
        self.estimate = flow.FlowEstimator(method)
        self.previous_grey: np.ndarray | None = None
        self.previous_ab: dict[str, np.ndarray] = {}
        self.sums: dict[str, float] = {}
        self.pixels = 0
        self.pairs = 0

    def add(self, grey: np.ndarray, abs_by_method: Mapping[str, np.ndarray]) -> None:
        """``grey``: H x W uint8; each ab: H x W x 2 float at the same resolution."""
        if self.previous_grey is not None and not is_scene_cut(self.previous_grey, grey):
            self._score_pair(grey, abs_by_method)
        self.previous_grey = grey
        self.previous_ab = {name: np.asarray(ab, np.float32) for name, ab in abs_by_method.items()}

    def _score_pair(self, grey: np.ndarray, abs_by_method: Mapping[str, np.ndarray]) -> None:
        previous_grey = self.previous_grey
        assert previous_grey is not None  # add() scores a pair only after a first frame
        backward = self.estimate(grey, previous_grey)
        forward = self.estimate(previous_grey, grey)
        trusted = flow.reliable(grey, previous_grey, backward, forward)
        self.pixels += int(trusted.sum())
        self.pairs += 1
        for name, ab in abs_by_method.items():
            carried = flow.warp(self.previous_ab[name], backward)
            distance = np.linalg.norm(np.asarray(ab, np.float32) - carried, axis=-1)
            self.sums[name] = self.sums.get(name, 0.0) + float(distance[trusted].sum())

    def result(self) -> dict[str, float]:
        """Mean ab distance per method over all trusted pixels (NaN when none were)."""
        return {
            name: total / self.pixels if self.pixels else float("nan")
            for name, total in self.sums.items()
        }


def warping_error(
    frames_ab: Iterable[np.ndarray], grey_frames: Iterable[np.ndarray], method: str = METRIC_FLOW
) -> float:
    """Warping error of one colorized sequence, in ab units.

    ``frames_ab``: H x W x 2 ab per frame; ``grey_frames``: the grey input, H x W uint8 (0..255)
    or float L* (0..100), same resolution. Sequences shorter than two frames score NaN.
    """
    meter = WarpingError(method)
    for ab, grey in zip(frames_ab, grey_frames, strict=True):
        grey = np.asarray(grey)
        meter.add(grey if grey.dtype == np.uint8 else flow.grey_u8(grey), {"ab": ab})
    return meter.result().get("ab", float("nan"))


# --------------------------------------------------------------------------- CDC

CDC_BINS = 256  # one bin per 8-bit level


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """3 x 256 normalised histograms of an sRGB frame's channels (uint8, or float in [0, 1])."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    counts = np.stack(
        [np.bincount(rgb[..., c].ravel(), minlength=CDC_BINS) for c in range(3)]
    ).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, so in [0, 1]) of distributions on the last axis."""
    middle = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.where(a > 0, a / np.where(middle > 0, middle, 1), 1)
        return (a * np.log2(ratio)).sum(axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class ColourDistributionConsistency:
    """CDC of Lei & Chen (CVPR 2019, "Fully automatic video colorization with self-regularization
    and diversity"): the Jensen-Shannon divergence between the per-channel colour histograms
    (R, G, B, 256 bins each) of frames t and t+1, averaged over the three channels and all pairs.
    Flow-free; 0 means the colour distribution never changes. As with the warping error, pairs
    across a scene cut are left out (the caller says where the cuts are).

    Feed frames in order with ``add({method: rgb}, cut=...)``; ``result()`` gives the mean per
    method (NaN with no pair).
    """

    def __init__(self) -> None:
        self.previous: dict[str, np.ndarray] = {}
        self.sums: dict[str, float] = {}
        self.pairs = 0

    def add(self, rgb_by_method: Mapping[str, np.ndarray], cut: bool = False) -> None:
        histograms = {name: channel_histograms(rgb) for name, rgb in rgb_by_method.items()}
        if self.previous and not cut:
            self.pairs += 1
            for name, current in histograms.items():
                divergence = float(jensen_shannon(self.previous[name], current).mean())
                self.sums[name] = self.sums.get(name, 0.0) + divergence
        self.previous = histograms

    def result(self) -> dict[str, float]:
        return {
            name: (self.sums.get(name, 0.0) / self.pairs) if self.pairs else float("nan")
            for name in self.previous
        }


def cdc(frames_rgb: Iterable[np.ndarray]) -> float:
    """CDC of one colorized sequence (no scene cuts assumed): see ColourDistributionConsistency."""
    meter = ColourDistributionConsistency()
    for rgb in frames_rgb:
        meter.add({"rgb": rgb})
    return meter.result().get("rgb", float("nan"))
