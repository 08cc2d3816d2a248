"""SOM + MLP colorization in CIELUV (Richart, Visca and Baliosian, "Image Colorization with
Neural Networks", WVC 2017; seed 004).

A Self-Organising Map quantises the (u, v) chromaticity of the training pixels into a codebook of
``grid x grid`` colours; an MLP reads the ``patch x patch`` neighbourhood of L around each pixel
and picks the codebook entry of its colour. The per-pixel MLP runs as convolutions: a
``patch x patch`` conv followed by 1x1 convs applies the same MLP to every pixel's patch at once.
The defaults are the paper's choice (a 5 x 5 patch, two hidden layers of 50) except the map:
8 x 8 (64 colours) instead of its 3 x 3, whose results its conclusion finds short of a full
colour range.

Everything else in colorizer speaks Lab, so ``forward`` turns (L, u, v) back into Lab.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from colorizer import color
from colorizer.registry import register_architecture


@register_architecture("som-mlp")
class SomMLP(nn.Module):
    """``forward(l)``: raw L (N x 1 x H x W, 0..100) -> ab (N x 2 x H x W) in Lab units."""

    codebook: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, grid: int = 8, patch: int = 5, hidden: Sequence[int] = (50, 50)) -> None:
        super().__init__()
        classes = grid * grid
        # The (u, v) colour of each SOM node; fitted to the training photos before the MLP.
        self.register_buffer("codebook", torch.zeros(classes, 2))
        widths = [*hidden, classes]
        layers: list[nn.Module] = [
            nn.Conv2d(1, widths[0], patch, padding=patch // 2, padding_mode="replicate")
        ]
        for c_in, c_out in pairwise(widths):
            layers += [nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, 1)]
        self.mlp = nn.Sequential(*layers)

    @staticmethod
    def normalize(l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        return (l - 50) / 100

    def classes(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        """Index of the predicted codebook colour of each pixel, N x H x W (the winning neuron)."""
        return self.mlp(self.normalize(l)).argmax(dim=1)

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        uv = self.codebook[self.classes(l)].permute(0, 3, 1, 2).to(l.dtype)
        rgb = color.luv_to_rgb(torch.cat([l, uv], dim=1))
        return color.rgb_to_lab(rgb)[:, 1:]
