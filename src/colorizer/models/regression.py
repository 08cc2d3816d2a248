"""The small regression colorizer of the Keras listing in seed 001: three stride-2 convs down,
three x2 upsamplings back, ab through tanh, trained with mean squared error.

Layer for layer as the listing: 3x3 convs with ReLU and "same" padding, widths
8 (s2), 8, 16, 16 (s2), 32, 32 (s2) | up, 32 | up, 16 | up, 2 (tanh). Keras' UpSampling2D is
nearest-neighbour. The listing scales ab by 1/128; here tanh is scaled by 110, the reach of
sRGB colours in ab, as the other architectures do.
"""

from __future__ import annotations

import torch
from torch import nn

from colorizer.color import AB_SCALE
from colorizer.registry import register_architecture


def conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, padding=1), nn.ReLU(inplace=True)]


def up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


@register_architecture("regression")
class Regression(nn.Module):
    """``forward(l)``: raw L (N x 1 x H x W, 0..100) -> ab (N x 2 x H x W) in Lab units."""

    input_multiple = 8  # three stride-2 convs, undone by three x2 upsamplings

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *conv(1, 8, stride=2),
            *conv(8, 8),
            *conv(8, 16),
            *conv(16, 16, stride=2),
            *conv(16, 32),
            *conv(32, 32, stride=2),
            up(),
            *conv(32, 32),
            up(),
            *conv(32, 16),
            up(),
            nn.Conv2d(16, 2, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        return self.layers((l - 50) / 100) * AB_SCALE
