"""``colorize video --refiner CKPT``: the learned alternative to flow propagation.

``RefinerPropagator`` has ``FlowPropagator``'s interface (frames in order, ``state`` to resume,
``scene_cuts``) and runs the recurrent ``video-refiner`` (``colorizer.models.refiner``) on the
per-frame prediction, the previous output carried along the DIS flow and the trust mask, at work
resolution, exactly as ``colorize train refiner`` trained it. A scene cut restarts its memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from colorizer.models.refiner import warp_tensor
from colorizer.video import flow
from colorizer.video.consistency import DEFAULT_FLOW, PropagatorState, is_scene_cut
from colorizer.weights import create_model

ARCH = "video-refiner"


class RefinerPropagator:
    """Steady each frame's ab with the trained recurrent refiner in ``weights``."""

    def __init__(self, weights: str | Path, method: str = DEFAULT_FLOW) -> None:
        self.net = create_model(ARCH, weights)  # eval mode, CPU: it is small
        self.estimate = flow.FlowEstimator(method)
        self.state: PropagatorState | None = None
        self.scene_cuts = 0

    def reset(self) -> None:
        self.state = None

    @torch.inference_mode()
    def __call__(self, grey: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """``grey``: H x W uint8 frame; ``ab``: its H x W x 2 prediction -> steadied ab."""
        previous = self.state
        lightness = torch.from_numpy(grey.astype(np.float32) / np.float32(2.55))[None, None]
        ab_t = torch.from_numpy(np.ascontiguousarray(ab, np.float32)).permute(2, 0, 1)[None]
        mask = torch.zeros_like(lightness)
        carried, hidden = ab_t, None
        if previous is not None and is_scene_cut(previous.grey, grey):
            self.scene_cuts += 1
        elif previous is not None:
            backward = self.estimate(grey, previous.grey)
            forward = self.estimate(previous.grey, grey)
            trusted = flow.reliable(grey, previous.grey, backward, forward)
            mask = torch.from_numpy(trusted.astype(np.float32))[None, None]
            motion = torch.from_numpy(backward)[None]
            carried = warp_tensor(torch.from_numpy(previous.ab).permute(2, 0, 1)[None], motion)
            if previous.hidden is not None:
                hidden = warp_tensor(torch.from_numpy(previous.hidden)[None], motion)
        out, hidden = self.net(lightness, ab_t, carried, mask, hidden)
        result = np.ascontiguousarray(out[0].permute(1, 2, 0).numpy(), dtype=np.float32)
        self.state = PropagatorState(grey, result, hidden[0].numpy().copy())
        return result
