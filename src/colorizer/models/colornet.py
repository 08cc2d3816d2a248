"""ColorNet: our compact ECCV16-style classifier, small enough for a laptop CPU.

A U-Net-ish encoder-decoder: four stride-2 stages down to 1/16, a context block there (dilated
convs plus an image-level pooled feature, so every pixel sees the whole scene: sky, indoor,
vegetation), then a decoder with skip connections back to 1/4, where a 1x1 conv scores the 313
ab bins of ``color.ab_bins()``. Decoding is ECCV16's annealed mean, bilinearly upsampled x4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorizer import color
from colorizer.models.bin_classifier import BinClassifier
from colorizer.registry import ModelSpec, register_architecture, register_models


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Context(nn.Module):
    """Dilated convs at 1/16 plus a global-average-pooled feature added to every position."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.local = nn.Sequential(
            conv_bn_relu(channels, channels, dilation=2),
            conv_bn_relu(channels, channels, dilation=4),
        )
        self.scene = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.local(x)
        return x + self.scene(x.mean(dim=(2, 3), keepdim=True))


class Up(nn.Module):
    """FPN-style merge: 1x1 projection at the coarse scale (cheap), x2 upsampling, addition of
    the skip, one 3x3 conv. Concatenating instead would double the costliest convs' inputs."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(c_in, c_skip, 1)
        self.conv = conv_bn_relu(c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.project(x), size=skip.shape[-2:], mode="bilinear")
        return self.conv(x + skip)


@register_architecture("colornet")
class ColorNet(BinClassifier):
    """``forward(l)``: raw L (N x 1 x H x W, 0..100) -> ab (N x 2 x H x W) in Lab units.

    ``width`` scales every layer (the default, 32, has about 3 M parameters); ``temperature`` is
    the annealed-mean temperature, a plain attribute so that it can be changed after loading.
    """

    input_multiple = 16  # four stride-2 stages: skips only line up on multiples of 16

    def __init__(self, width: int = 32, temperature: float = color.DEFAULT_TEMPERATURE) -> None:
        super().__init__(temperature)
        w = width
        self.enc1 = nn.Sequential(conv_bn_relu(1, w, stride=2), conv_bn_relu(w, w))  # 1/2
        self.enc2 = nn.Sequential(conv_bn_relu(w, 2 * w, stride=2), conv_bn_relu(2 * w, 2 * w))
        self.enc3 = nn.Sequential(conv_bn_relu(2 * w, 4 * w, stride=2), conv_bn_relu(4 * w, 4 * w))
        self.enc4 = conv_bn_relu(4 * w, 8 * w, stride=2)  # 1/16
        self.context = Context(8 * w)
        self.up3 = Up(8 * w, 4 * w, 4 * w)  # back to 1/8
        self.up2 = Up(4 * w, 2 * w, 3 * w)  # back to 1/4, where the bins are scored
        self.refine = conv_bn_relu(3 * w, 3 * w)
        self.head = nn.Conv2d(3 * w, self.num_bins, 1)

    def logits(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        """Scores over the 313 ab bins, N x 313 x H/4 x W/4."""
        x1 = self.enc1((l - 50) / 100)
        x2 = self.enc2(x1)
        x3 = self.enc3(x2)
        x = self.context(self.enc4(x3))
        return self.head(self.refine(self.up2(self.up3(x, x3), x2)))


# The trained models of this architecture (its catalogue entries, as timm's default_cfgs).
MODEL_SPECS = register_models(
    ModelSpec(
        name="colornet-v1",
        arch="colornet",
        description="Our compact 313-bin classifier (class-rebalanced, annealed mean); "
        "shipped, smaller and from scratch",
        input_size=256,
        filename="colornet-v1.safetensors",
        url=None,
        size_bytes=8_765_820,
        sha256="ea6401f51f9bc9be5be8dde0ab72f1c818d9c202af5b30c41be8bc5b9e728d53",
        license="MIT (weights); trained on research-use photo sets, see colornet-v1.md",
        source="this project: colorize train classification, see colornet-v1.md",
        packaged=True,
    ),
)
