"""ColorNet v3: one network for automatic colour and point hints, with a calibrated confidence.

``colornet-v2``'s encoder and decoder (its weights load into v3 unchanged: only the ``hint_*``
and ``confidence`` keys are new, all zero-initialised, so step 0 colorizes exactly as v2) plus:

* SIGGRAPH17's hint planes (``colornet_hints.hint_channels``: ab / 110 where hinted, 0 elsewhere,
  and a 0/1 mask) entering at stride 8 (added to the encoder's stride-8 features, so the rest of
  the encoder sees them), at stride 16 after the top-down merge (a hint reaches the whole object)
  and at stride 4 where the bins are scored (a hinted colour wins locally). Unlike
  ``colornet-v2-hints`` nothing enters at the stem: the stem and the first
  ``EARLY_BLOCKS`` blocks can then stay frozen in training and be run without gradients
  (``early_features`` / ``late_logits``), which is most of what makes v3's training fast.
* ``confidence(l, ...)``: per pixel, the probability that the decoded ab lies within
  ``CONFIDENT_WITHIN`` Lab units of the truth, from a 1x1 convolution on the stride-4 features,
  trained with binary cross-entropy against exactly that event (a proper scoring rule, so the
  probability is calibrated on the training distribution). It reads the features detached:
  learning it never changes the colours.

A model trained with hints sampled as SIGGRAPH17 did, some photos with none, is the automatic
model when given no hints: ``forward(l)`` is the automatic colorization.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorizer import color
from colorizer.models.colornet_hints import hint_channels
from colorizer.models.colornet_v2 import DECODER_WIDTHS, ColorNetV2, lightness_to_grey_rgb
from colorizer.models.colornet_v2_hints import pool_hints, zero_conv
from colorizer.registry import ModelSpec, register_architecture, register_models

EARLY_BLOCKS = 5  # the stem and blocks 0..4 (strides 2 to 8) of EfficientNet-Lite0
CONFIDENT_WITHIN = 12.0  # Lab ab units: "right" for the confidence, ~ a just-noticeable hue step


@register_architecture("colornet-v3")
class ColorNetV3(ColorNetV2):
    """``forward(l, hint_ab=None, hint_mask=None)`` -> ab (N x 2 x H x W, Lab units);
    ``confidence(l, hint_ab=None, hint_mask=None)`` -> N x 1 x H x W in [0, 1]."""

    accepts_hints = True
    initial_model = "colornet-v2"  # the first run of the campaign started from these weights

    def __init__(self, variant: str = "lite0", temperature: float = color.DEFAULT_TEMPERATURE):
        super().__init__(variant, temperature)
        w4, _, w16, _ = DECODER_WIDTHS
        c8 = self.encoder.channels[2]
        self.hint_8 = zero_conv(3, c8)
        self.hint_16 = zero_conv(3, w16)
        self.hint_4 = zero_conv(3, w4)
        self.confidence_head = nn.Conv2d(w4, 1, 1)
        nn.init.zeros_(self.confidence_head.weight)
        nn.init.zeros_(self.confidence_head.bias)  # type: ignore[arg-type]  # bias=True above

    def early_parameters(self) -> list[nn.Parameter]:
        """The stem and the first ``EARLY_BLOCKS`` blocks: frozen in training."""
        encoder = self.encoder
        modules = [encoder._conv_stem, encoder._bn0, *encoder._blocks[:EARLY_BLOCKS]]
        return [p for module in modules for p in module.parameters()]

    def early_features(self, l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: E741
        """(stride-4 skip, stride-8 features) of the grey photo: no hint enters here."""
        encoder = self.encoder
        x = F.relu6(encoder._bn0(encoder._conv_stem(encoder.normalize(lightness_to_grey_rgb(l)))))
        x4 = x
        for index, block in enumerate(encoder._blocks[:EARLY_BLOCKS]):
            x = block(x)
            if index == encoder.stage_ends[1]:
                x4 = x
        return x4, x

    def late_features(
        self, x4: torch.Tensor, x8: torch.Tensor, hints: torch.Tensor
    ) -> torch.Tensor:
        """The decoder's stride-4 features from the early features and the hint planes."""
        encoder = self.encoder
        x = x8 + self.hint_8(pool_hints(hints, 8))
        x8 = x
        x16 = x
        for index, block in enumerate(encoder._blocks):
            if index < EARLY_BLOCKS:
                continue
            x = block(x)
            if index == encoder.stage_ends[3]:
                x16 = x
        head = F.relu6(encoder._bn1(encoder._conv_head(x)))
        scene = self.scene(head.mean(dim=(2, 3)))[:, :, None, None]
        y = self.top_conv(self.top(x) + scene)
        y = self.merge16(y, x16) + self.hint_16(pool_hints(hints, 16))
        y = self.merge4(self.merge8(y, x8), x4)
        return y + self.hint_4(pool_hints(hints, 4))

    def features(
        self,
        l: torch.Tensor,  # noqa: E741 - L is the Lab name
        hint_ab: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x4, x8 = self.early_features(l)
        return self.late_features(x4, x8, hint_channels(l, hint_ab, hint_mask))

    def logits(
        self,
        l: torch.Tensor,  # noqa: E741 - L is the Lab name
        hint_ab: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores over the 313 ab bins, N x 313 x H/4 x W/4."""
        return self.head(self.features(l, hint_ab, hint_mask))

    def confidence_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.confidence_head(features.detach())

    @torch.no_grad()
    def confidence(
        self,
        l: torch.Tensor,  # noqa: E741 - L is the Lab name
        hint_ab: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """P(decoded ab within ``CONFIDENT_WITHIN`` of the truth), N x 1 x H x W, input grid."""
        return self.confidence_from(self.features(l, hint_ab, hint_mask), l.shape[-2:])

    def confidence_from(
        self, features: torch.Tensor, size: tuple[int, ...] | torch.Size
    ) -> torch.Tensor:
        """``confidence`` from the decoder's ``features``, upsampled bilinearly to ``size``."""
        probability = torch.sigmoid(self.confidence_logits(features))
        return F.interpolate(probability, size=size, mode="bilinear", align_corners=False)


MODEL_SPECS = register_models(
    ModelSpec(
        name="colornet-v3",
        arch="colornet-v3",
        description="Ours, the 15-hour campaign of issue 26: colornet-v2 + point hints + a "
        "calibrated confidence, one network for automatic colour and hints; more vivid, opt-in",
        input_size=256,
        filename="colornet-v3.safetensors",
        url=None,
        size_bytes=17_052_768,
        sha256="16db11db42dfde3a425ba462b89e3c63ba46b7568eb71175f28e2f34df7f5a3a",
        license="MIT (this network); encoder initialised (through colornet-v2) from Apache-2.0 "
        "EfficientNet-Lite0 ImageNet weights; trained on research-use photo sets, see "
        "colornet-v3.md",
        source="this project: the weight average of the colornet-v3 campaign's runs 7, 8 and 9 "
        "and the earlier average of runs 1, 3, 4, 5 and 6 (colorize train guided, then "
        "colorize export), see colornet-v3.md",
        packaged=True,
        # Its hint input, trained for 6 CPU-hours, measured 1.4 dB below correcting its
        # automatic colours with 10 hints (23.84 against 25.26 dB on 205 photos of the train
        # split; 1 hint 22.89 against 23.12; benchmarks/RESULTS.md, "Hints").
        native_hints=False,
        # Averaged with its colours of the mirror image: +0.11 dB PSNR, +0.1 pooled rebalanced
        # AuC on the 409-photo train split, for twice the network time (benchmarks/RESULTS.md,
        # "Mirror average").
        mirror_average=True,
    ),
)
