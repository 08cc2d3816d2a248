"""ECCV16: Zhang et al., "Colorful Image Colorization" (ECCV 2016), as published in PyTorch.

Submodule names and indices follow ``ECCVGenerator`` in richzhang/colorization @4f6009e, so the
published ``colorization_release_v2-9b330a0b.pth`` loads with ``strict=True``. The network
classifies each pixel of the H/4 x W/4 grid into the 313 ab bins and decodes the expectation of
that distribution (``model_out`` holds the bin centres / 110).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from colorizer.color import AB_SCALE
from colorizer.registry import ModelSpec, register_architecture, register_models

# The published normalisation (colorizers/base_color.py): the net sees (L - 50) / 100 and ab / 110.
L_CENT = 50.0
L_NORM = 100.0
AB_NORM = AB_SCALE  # the published name (base_color.ab_norm)


def normalize_l(l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
    return (l - L_CENT) / L_NORM


def conv_block(
    widths: list[int], *, last_stride: int = 1, dilation: int = 1, batch_norm: bool = True
) -> list[nn.Module]:
    """3x3 conv + ReLU between consecutive widths, then BatchNorm: the published post-ReLU BN."""
    layers: list[nn.Module] = []
    pairs = list(pairwise(widths))
    for index, (c_in, c_out) in enumerate(pairs):
        stride = last_stride if index == len(pairs) - 1 else 1
        layers.append(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation))
        layers.append(nn.ReLU(inplace=True))
    if batch_norm:
        layers.append(nn.BatchNorm2d(widths[-1]))
    return layers


@register_architecture("eccv16")
class ECCV16(nn.Module):
    """ECCV16 colorizer: ``forward(l)`` maps raw L (N x 1 x H x W, 0..100) to ab (N x 2 x H x W).

    The output is exactly H x W only when H and W are multiples of 8 (three stride-2 convs, then
    a stride-2 transposed conv and a x4 upsampling), hence ``input_multiple``.
    """

    accepts_hints = False
    input_multiple = 8
    num_bins = 313

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*conv_block([1, 64, 64], last_stride=2))
        self.model2 = nn.Sequential(*conv_block([64, 128, 128], last_stride=2))
        self.model3 = nn.Sequential(*conv_block([128, 256, 256, 256], last_stride=2))
        self.model4 = nn.Sequential(*conv_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_block([512, 512, 512, 512]))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            *conv_block([256, 256, 256], batch_norm=False),
            nn.Conv2d(256, self.num_bins, 1),
        )
        self.softmax = nn.Softmax(dim=1)
        self.model_out = nn.Conv2d(self.num_bins, 2, 1, bias=False)
        # align_corners is left at its default (False), as in the published model.
        self.upsample4 = nn.Upsample(scale_factor=4, mode="bilinear")

    def logits(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        """Per-pixel scores over the 313 ab bins, N x 313 x H/4 x W/4 (the ``model8`` output).

        These are the scores the network's own softmax uses, so any sharpening the weights carry
        (the Caffe release's x2.606 temperature, folded in by the converter) is included.
        """
        x = normalize_l(l)
        for block in (
            self.model1,
            self.model2,
            self.model3,
            self.model4,
            self.model5,
            self.model6,
            self.model7,
            self.model8,
        ):
            x = block(x)
        return x

    def distribution(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        """Probabilities over the 313 bins of ``color.ab_bins()``, N x 313 x H/4 x W/4."""
        return self.softmax(self.logits(l))

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        return self.upsample4(self.model_out(self.distribution(l))) * AB_NORM


# The trained models of this architecture (the Caffe release: ``colorizer.models.caffe``).
MODEL_SPECS = register_models(
    ModelSpec(
        name="eccv16",
        arch="eccv16",
        description="Zhang et al. ECCV 2016, 313-bin classification (published PyTorch port)",
        input_size=256,
        filename="colorization_release_v2-9b330a0b.pth",
        url="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
        size_bytes=128_976_165,
        sha256="9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9",
        license="BSD-2-Clause",
        source="richzhang/colorization @4f6009e",
    ),
)
