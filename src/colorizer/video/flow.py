"""Optical flow on the grey frames, and the tests of where it can be trusted.

Flow is always computed on the grey input (never on the colours being judged), at a reduced
"work" resolution: colour (ab) varies slowly across an image, so a few hundred pixels per side
carry it, and flow there costs a few milliseconds a frame.

A flow field maps each pixel ``x`` of frame ``t`` to ``x + flow[x]`` in the other frame, in
pixels, as OpenCV returns it (H x W x 2, float32, x then y).
"""

from __future__ import annotations

import cv2
import numpy as np

from colorizer.errors import ColorizerError

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# Forward-backward test of Sundaram et al. (ECCV 2010), as Ruder et al. use it for video style
# transfer: a pixel is occluded when following the flow there and back misses it by more than
# 1% of the squared motion plus half a pixel squared.
FB_RELATIVE = 0.01
FB_ABSOLUTE = 0.5
# A pixel whose grey level changes by more than this along the flow (0..255 scale) is taken to be
# occluded or relit; colour carried there would be wrong.
PHOTOMETRIC_LIMIT = 16.0


def grey_u8(lightness: np.ndarray) -> np.ndarray:
    """L* (0..100, float) -> 8-bit grey (0..255), the input OpenCV's flow methods need."""
    return cv2.convertScaleAbs(lightness, alpha=2.55)


def work_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """(height, width) with the long side at most ``side``, aspect kept, at least 8 px."""
    scale = min(1.0, side / max(height, width))
    return max(8, round(height * scale)), max(8, round(width * scale))


class FlowEstimator:
    """Dense optical flow between grey frames: OpenCV's DIS (fast, default) or Farneback."""

    def __init__(self, method: str = "medium") -> None:
        if method != "farneback" and method not in DIS_PRESETS:
            known = ", ".join([*DIS_PRESETS, "farneback"])
            raise ColorizerError(f"unknown optical flow method {method!r}; known: {known}")
        self.method = method
        preset = DIS_PRESETS.get(method)
        # The stubs name only DISOpticalFlow.create; the module-level alias exists at runtime.
        self._dis = None if preset is None else cv2.DISOpticalFlow_create(preset)  # type: ignore[attr-defined]

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` (both H x W uint8): source[x] ~ target[x + flow]."""
        if self._dis is not None:
            return self._dis.calc(source, target, None)
        # OpenCV's stubs type the flow argument as required; None (allocate one) is documented.
        return cv2.calcOpticalFlowFarneback(source, target, None, 0.5, 4, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]


def _sample_grid(flow: np.ndarray) -> np.ndarray:
    height, width = flow.shape[:2]
    grid = np.empty_like(flow)
    grid[..., 0] = flow[..., 0] + np.arange(width, dtype=np.float32)
    grid[..., 1] = flow[..., 1] + np.arange(height, dtype=np.float32)[:, None]
    return grid


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``x + flow[x]`` (bilinear; border pixels repeat outside the frame)."""
    grid = _sample_grid(flow)
    # The stubs type map2 as required; None (map1 holds both coordinates) is documented.
    return cv2.remap(image, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose flow to t-1 (``backward``) and the flow back (``forward``, from
    t-1 to t) agree, and whose source lies inside frame t-1: True where the motion is trusted.
    """
    height, width = backward.shape[:2]
    grid = _sample_grid(backward)
    inside = (
        (grid[..., 0] >= 0)
        & (grid[..., 0] <= width - 1)
        & (grid[..., 1] >= 0)
        & (grid[..., 1] <= height - 1)
    )
    # (As in warp: the stubs want map2, which OpenCV lets be None.)
    returned = cv2.remap(forward, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]
    miss = np.square(backward + returned).sum(axis=-1)
    scale = np.square(backward).sum(axis=-1) + np.square(returned).sum(axis=-1)
    return inside & (miss <= FB_RELATIVE * scale + FB_ABSOLUTE)


def reliable(
    grey: np.ndarray, previous_grey: np.ndarray, backward: np.ndarray, forward: np.ndarray
) -> np.ndarray:
    """Where colour may be carried from t-1 to t: flow consistent and grey level unchanged."""
    seen = warp(previous_grey, backward).astype(np.float32)
    unchanged = np.abs(seen - grey.astype(np.float32)) <= PHOTOMETRIC_LIMIT
    return consistent(backward, forward) & unchanged
