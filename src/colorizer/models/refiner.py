"""``video-refiner``: a recurrent refiner that steadies any per-frame colorization of a film.

Per frame it sees the grey frame (L*), the per-frame model's ab, the previous refined ab carried
to this frame along the optical flow, and the mask of pixels where that flow is trusted. A
convolutional GRU at a quarter of the resolution keeps a memory (its hidden state is carried
along the flow too), and the head predicts a gate and a small correction:

    ab_out = ab + gate * (carried - ab) + correction

so with the gate shut it gives back the per-frame colours, and it cannot invent colour where
the flow is lost. Trained by ``colorize train refiner`` on synthetic camera-motion sequences
(pan, zoom, small rotation) cut from still photos, with a flow-warping term in the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.color import AB_SCALE
from colorizer.registry import register_architecture

CORRECTION = 10.0  # the correction is at most this many ab units


class ConvGRUCell(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.gates = nn.Conv2d(channels + hidden, 2 * hidden, 3, padding=1)
        self.candidate = nn.Conv2d(channels + hidden, hidden, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * h], 1)))
        return (1 - update) * h + update * candidate


@register_architecture("video-refiner")
class VideoRefiner(nn.Module):
    """ConvGRU refiner; ``forward(l, ab, carried, mask, hidden)`` -> (ab_out, hidden)."""

    input_multiple = 4
    inputs = 8  # L, ab, carried ab, mask, carried - ab

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.hidden = width
        self.encode = nn.Sequential(
            nn.Conv2d(self.inputs, 16, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.gru = ConvGRUCell(width, width)
        self.head = nn.Sequential(
            nn.Conv2d(width + self.inputs, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 3, 3, padding=1),
        )

    def initial_hidden(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        n, _, h, w = l.shape
        return l.new_zeros(n, self.hidden, (h + 3) // 4, (w + 3) // 4)

    def forward(
        self,
        l: torch.Tensor,  # noqa: E741 - N x 1 x H x W L* (0..100)
        ab: torch.Tensor,  # N x 2 x H x W per-frame prediction
        carried: torch.Tensor,  # N x 2 x H x W previous output warped here (ab where none)
        mask: torch.Tensor,  # N x 1 x H x W 1 where the flow is trusted
        hidden: torch.Tensor | None = None,  # N x C x H/4 x W/4, warped previous state
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = l.shape[-2:]
        x = torch.cat(
            [l / 50 - 1, ab / AB_SCALE, carried / AB_SCALE, mask, (carried - ab) / AB_SCALE], 1
        )
        pad = (0, -width % 4, 0, -height % 4)
        padded = F.pad(x, pad, mode="replicate") if any(pad) else x
        if hidden is None:
            hidden = self.initial_hidden(padded)
        hidden = self.gru(self.encode(padded), hidden)
        up = F.interpolate(hidden, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        out = self.head(torch.cat([up, padded], 1))[..., :height, :width]
        gate = torch.sigmoid(out[:, :1])
        correction = torch.tanh(out[:, 1:]) * CORRECTION
        return ab + gate * (carried - ab) + correction, hidden


def warp_tensor(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` (N x C x h x w) sampled at x + flow[x]; ``flow`` N x H x W x 2 in pixels of a
    frame of size H x W (rescaled when the image is smaller), border pixels repeated."""
    height, width = flow.shape[1:3]
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device)
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device)
    gx = (xs[None, None, :] + flow[..., 0]) * (2 / max(width - 1, 1)) - 1
    gy = (ys[None, :, None] + flow[..., 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack([gx, gy], -1)
    if image.shape[-2:] != (height, width):
        grid = F.interpolate(
            grid.permute(0, 3, 1, 2), size=image.shape[-2:], mode="bilinear", align_corners=True
        ).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
