"""pix2pix (Isola et al. 2017) for colorization: a U-Net generator L -> ab, and the PatchGAN
discriminator that judges (L, ab) pairs patch by patch during training.

Blocks as in the published ``unet_256`` / ``basic`` (70 x 70) networks: 4x4 stride-2 convs with
BatchNorm and LeakyReLU(0.2) down, 4x4 stride-2 transposed convs with BatchNorm, ReLU and (in the
three innermost blocks) dropout up, skip connections by concatenation. The published generator
goes down 8 levels at 64 channels (54 M parameters); the default here goes down 6 at 32 channels
(7.3 M), which a CPU can train.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from colorizer.color import AB_SCALE
from colorizer.registry import register_architecture


def channels(width: int, depth: int) -> list[int]:
    return [min(width * 2**level, 8 * width) for level in range(depth)]


def down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)]
    layers += [nn.BatchNorm2d(c_out)] if norm else []
    return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))


def up(c_in: int, c_out: int, dropout: bool) -> nn.Sequential:
    layers = [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out)]
    layers += [nn.ReLU(inplace=True)] + ([nn.Dropout(0.5)] if dropout else [])
    return nn.Sequential(*layers)


@register_architecture("pix2pix")
class Pix2Pix(nn.Module):
    """U-Net generator. ``forward(l)``: raw L (N x 1 x H x W, 0..100) -> ab (N x 2 x H x W)."""

    def __init__(self, width: int = 32, depth: int = 6) -> None:
        super().__init__()
        self.input_multiple = 2**depth
        sizes = channels(width, depth)
        # The outermost block has no BatchNorm (as published); nor does the innermost, whose
        # 1 x 1 map at the published depth would make BatchNorm undefined.
        self.downs = nn.ModuleList(
            down(c_in, c_out, norm=0 < level < depth - 1)
            for level, (c_in, c_out) in enumerate(pairwise([1, *sizes]))
        )
        # Up block k takes the innermost features (k = 0) or the previous up block's output
        # concatenated with the matching skip, and returns the next level's width.
        self.ups = nn.ModuleList(
            up(sizes[level] * (1 if level == depth - 1 else 2), sizes[level - 1], level > depth - 4)
            for level in range(depth - 1, 0, -1)
        )
        self.out = nn.Sequential(nn.ConvTranspose2d(2 * sizes[0], 2, 4, 2, 1), nn.Tanh())

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        x = (l - 50) / 100
        skips = []
        for block in self.downs:
            x = block(x)
            skips.append(x)
        skips.pop()  # the innermost output is x itself
        for block in self.ups:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.out(x) * AB_SCALE


class PatchGAN(nn.Module):
    """Discriminator: N x 1 x H' x W' real/fake logits, one per overlapping patch of (L, ab).

    With ``layers=3`` each output sees a 70 x 70 patch. Not registered: training uses it only.
    """

    def __init__(self, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        sizes = [min(width * 2**n, 8 * width) for n in range(layers + 1)]
        blocks: list[nn.Module] = [down(3, sizes[0], norm=False)]
        blocks += [down(c_in, c_out, norm=True) for c_in, c_out in pairwise(sizes[:-1])]
        blocks += [
            nn.Conv2d(sizes[-2], sizes[-1], 4, 1, 1, bias=False),
            nn.BatchNorm2d(sizes[-1]),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(sizes[-1], 1, 4, 1, 1),
        ]
        self.layers = nn.Sequential(*blocks)

    def forward(self, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:  # noqa: E741
        return self.layers(torch.cat([(l - 50) / 100, ab / AB_SCALE], dim=1))
