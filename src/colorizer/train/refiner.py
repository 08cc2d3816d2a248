"""``colorize train refiner``: the recurrent video refiner, trained without any video.

Each training crop becomes a short sequence by a random camera motion (a steady pan, zoom and
small rotation, plus a little jitter), rendered with one ``grid_sample`` per frame. The frozen
per-frame model (the default model, ``colornet-v2``, which ``colorize video`` runs, unless
``--init`` names another registered model or a ``colornet``-architecture weights file)
colorizes every frame on its own; the refiner (``video-refiner``) runs over the sequence with the
previous output carried along the DIS optical flow computed on the grey frames, exactly as
``colorize video --refiner`` runs it. Loss per frame, in ab / 110:

    L1(out, truth) + frame_weight * L1(out, per-frame) + warp_weight * masked L1(out, carried)

the last being the flow-warping term (pixels where the flow is not trusted are left out).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from colorizer import color
from colorizer.errors import ColorizerError
from colorizer.models.refiner import AB_SCALE, warp_tensor
from colorizer.train import data
from colorizer.train.config import TrainConfig
from colorizer.train.family import Family, descend

FRAMES = 5  # frames per synthetic sequence
FRAME_FRACTION = 0.4  # side of a frame relative to the training crop (176 -> 64)
FRAME_WEIGHT = 0.5
WARP_WEIGHT = 2.0
VAL_SEQUENCES = 16
# Camera motion per frame: pan (pixels of the frame), zoom (log scale), rotation (degrees).
PAN = 4.0
ZOOM = 0.03
ROTATION = 1.5
JITTER = 0.6  # pixels of hand-held shake on top of the steady motion


FRAME_MODEL = "colornet-v2"  # the per-frame model by default: colorize video's default


def frame_side(crop: int) -> int:
    """The frames' side: a multiple of 32, which every per-frame model we ship accepts."""
    return max(32, int(crop * FRAME_FRACTION) // 32 * 32)


def camera_sequences(
    rgb: torch.Tensor, frames: int, side: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """N x 3 x C x C photos -> N x T x 3 x side x side frames of a moving camera."""
    n, _, crop, _ = rgb.shape

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    pixel = 2 / crop  # one source pixel in normalised coordinates
    scale0 = side / crop * torch.exp(uniform(n) * 0.1)
    velocity = uniform(n, 2) * PAN * pixel
    zoom = uniform(n) * ZOOM
    spin = torch.deg2rad(uniform(n) * ROTATION)
    angle0 = torch.deg2rad(uniform(n) * 5)
    t = torch.arange(frames, dtype=torch.float32)
    shake = uniform(n, frames, 2) * JITTER * pixel
    centre = velocity[:, None] * (t[None, :, None] - (frames - 1) / 2) + shake  # N x T x 2
    scale = scale0[:, None] * torch.exp(zoom[:, None] * t[None])
    angle = angle0[:, None] + spin[:, None] * t[None]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, centre[..., 0]], -1), torch.stack([sin, cos, centre[..., 1]], -1)],
        -2,
    )  # N x T x 2 x 3
    grid = torch.nn.functional.affine_grid(
        theta.flatten(0, 1).to(rgb.device), [n * frames, 3, side, side], align_corners=False
    )
    source = rgb.repeat_interleave(frames, dim=0)
    sequence = torch.nn.functional.grid_sample(
        source, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return sequence.clamp(0, 1).view(n, frames, 3, side, side)


def sequence_flows(lightness: torch.Tensor, estimator) -> tuple[torch.Tensor, torch.Tensor]:
    """N x T x 1 x H x W L* -> backward flows (frame t to t-1; N x T x H x W x 2, zero at t=0)
    and trust masks (N x T x 1 x H x W), computed as at inference on 8-bit grey frames."""
    from colorizer.video import flow

    n, frames, _, height, width = lightness.shape
    grey = flow.grey_u8(lightness.squeeze(2).cpu().numpy().reshape(-1, width)).reshape(
        n, frames, height, width
    )
    flows = np.zeros((n, frames, height, width, 2), np.float32)
    masks = np.zeros((n, frames, 1, height, width), np.float32)
    for i in range(n):
        for t in range(1, frames):
            backward = estimator(grey[i, t], grey[i, t - 1])
            forward = estimator(grey[i, t - 1], grey[i, t])
            flows[i, t] = backward
            masks[i, t, 0] = flow.reliable(grey[i, t], grey[i, t - 1], backward, forward)
    device = lightness.device
    return torch.from_numpy(flows).to(device), torch.from_numpy(masks).to(device)


def _frame_model(init: str | None) -> tuple[str, Path]:
    """(architecture, weights) of the frozen per-frame model: a registered model's name, or
    a weights file of the ``colornet`` architecture (as before colornet-v2 was the default)."""
    from colorizer.weights import MODELS, ensure_weights

    if init is not None and init not in MODELS:
        return "colornet", Path(init)
    name = init or FRAME_MODEL
    return MODELS[name].arch, ensure_weights(name)


class RefinerFamily(Family):
    """Train ``video-refiner`` over the frozen per-frame colornet on synthetic camera motion."""

    name = "refiner"
    default_arch = "video-refiner"
    default_lr = 1e-3

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        from colorizer.video.flow import FlowEstimator
        from colorizer.weights import create_model

        super().__init__(config, device)
        if not hasattr(self.net, "gru"):
            raise ColorizerError(f"architecture {self.arch!r} is not a video refiner")
        self.frame_model = create_model(*_frame_model(config.init)).to(device).eval()
        self.frame_model.requires_grad_(False)
        self.side = frame_side(config.crop)
        self.estimate = FlowEstimator("medium")

    def unroll(self, rgb: torch.Tensor, generator: torch.Generator | None = None):
        """Sequences from ``rgb`` crops -> true ab, per-frame ab, refined ab, carried ab, trust
        masks (each N x T x C x H x W) and backward flows (N x T x H x W x 2)."""
        sequence = camera_sequences(rgb, FRAMES, self.side, generator)
        n, frames = sequence.shape[:2]
        lab = color.rgb_to_lab(sequence.flatten(0, 1))
        lightness = lab[:, :1]
        with torch.no_grad():
            per_frame = self.frame_model(lightness).float()
        lightness = lightness.view(n, frames, 1, self.side, self.side)
        truth = lab[:, 1:].reshape(n, frames, 2, self.side, self.side)
        per_frame = per_frame.view(n, frames, 2, self.side, self.side)
        flows, masks = sequence_flows(lightness, self.estimate)
        outputs: list[torch.Tensor] = []
        carried_all: list[torch.Tensor] = []
        hidden: torch.Tensor | None = None
        for t in range(frames):
            if t == 0:
                carried = per_frame[:, 0]
            else:
                carried = warp_tensor(outputs[-1], flows[:, t])
                assert hidden is not None  # the refiner returned one at t - 1
                hidden = warp_tensor(hidden, flows[:, t])
            out, hidden = self.net(lightness[:, t], per_frame[:, t], carried, masks[:, t], hidden)
            outputs.append(out)
            carried_all.append(carried)
        refined, carried = torch.stack(outputs, 1), torch.stack(carried_all, 1)
        return truth, per_frame, refined, carried, masks, flows

    def step(self, batch: data.Batch) -> dict[str, float]:
        truth, per_frame, refined, carried, masks, _ = self.unroll(batch.rgb)
        fidelity = (refined - truth).abs().mean() / AB_SCALE
        keep = (refined - per_frame).abs().mean() / AB_SCALE
        moving = masks[:, 1:]
        warp = ((refined[:, 1:] - carried[:, 1:]).abs() * moving).sum() / (
            2 * moving.sum().clamp(min=1) * AB_SCALE
        )
        loss = fidelity + FRAME_WEIGHT * keep + WARP_WEIGHT * warp
        descend(self.optimizers["net"], loss)
        return {
            "loss": loss.item(),
            "l1": fidelity.item(),
            "keep": keep.item(),
            "warp": warp.item(),
        }

    @torch.no_grad()
    def validate(self, rgb: torch.Tensor) -> dict[str, float]:
        """PSNR of ab against the truth and warping error (ab units, trusted pixels) of the
        per-frame model and of the refiner, on fixed sequences made from the validation crops."""
        self.net.eval()
        generator = torch.Generator().manual_seed(self.config.seed + 1)
        truth, per_frame, refined, _, masks, flows = self.unroll(
            rgb[:VAL_SEQUENCES].to(self.device), generator
        )
        self.net.train()
        return {
            "psnr_ab": _psnr(refined, truth),
            "psnr_ab_frame": _psnr(per_frame, truth),
            "warp": _warping_error(refined, masks, flows),
            "warp_frame": _warping_error(per_frame, masks, flows),
        }


def _psnr(ab: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR (dB) of the ab planes over the ab scale: a cheap proxy tracked during training."""
    mse = float((ab - truth).square().mean())
    return 10 * math.log10(AB_SCALE**2 / max(mse, 1e-12))


def _warping_error(ab: torch.Tensor, masks: torch.Tensor, flows: torch.Tensor) -> float:
    """Mean |ab_t - ab_{t-1} carried along the flow| (Euclidean, ab units) over trusted pixels."""
    total, pixels = 0.0, 0.0
    for t in range(1, ab.shape[1]):
        carried = warp_tensor(ab[:, t - 1], flows[:, t])
        distance = (ab[:, t] - carried).square().sum(1, keepdim=True).sqrt()
        total += float((distance * masks[:, t]).sum())
        pixels += float(masks[:, t].sum())
    return total / max(pixels, 1.0)
