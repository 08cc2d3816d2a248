"""ColorNet v2 with user hints: ``colornet-v2`` plus SIGGRAPH17's local-hint input.

The hint channels are the published ones (``colornet_hints.hint_channels``: ab / 110 where a
hint is given, 0 elsewhere, and a 0/1 mask, on the input grid). Every hint path is a
zero-initialised convolution, so a freshly built model loaded with the ``colornet-v2`` weights
(``strict=False``: only the ``hint_*`` keys are missing) colorizes exactly as ``colornet-v2``.
The hints enter three times:

* at the stem (stride 2), added to the first convolution's output before its BatchNorm, so the
  pretrained encoder sees where and which colours were given;
* at stride 16, after the top-down merge: a hint's colour reaches the whole object through
  the decoder's widest receptive field;
* at stride 4, where the bins are scored: the direct path that lets a hinted colour win
  locally.

Pooling to the coarser grids keeps a single-pixel hint at full strength: the pooled ab is the
mean over the hinted pixels of the cell (not over the cell) and the pooled mask is 1 where any
pixel of the cell is hinted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorizer import color
from colorizer.models.colornet_hints import cell_mean, hint_channels
from colorizer.models.colornet_v2 import DECODER_WIDTHS, ColorNetV2, lightness_to_grey_rgb
from colorizer.models.efficientnet_lite import STEM_CHANNELS, SameConv2d
from colorizer.registry import register_architecture


def pool_hints(hints: torch.Tensor, factor: int) -> torch.Tensor:
    """[ab / 110, mask] on a grid ``factor`` times coarser: ab averaged over the hinted pixels
    of each cell, mask 1 where any pixel of the cell is hinted."""
    if factor == 1:
        return hints
    ab_sum, mask_mean = cell_mean(hints[:, :2], factor), cell_mean(hints[:, 2:], factor)
    ab_mean = ab_sum / mask_mean.clamp_min(1e-6)
    return torch.cat([ab_mean, (mask_mean > 0).to(hints)], dim=1)


def zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


@register_architecture("colornet-v2-hints")
class ColorNetV2Hints(ColorNetV2):
    """``forward(l, hint_ab=None, hint_mask=None)`` -> ab; ``distribution`` takes hints too.

    ``hint_ab`` is raw ab (N x 2 x H x W, Lab units), ``hint_mask`` 1 where hinted, 0 elsewhere
    (N x 1 x H x W), both on the input grid, as ``siggraph17`` takes them.
    """

    accepts_hints = True
    initial_model = "colornet-v2"  # training starts from these weights (the hints family)

    def __init__(self, variant: str = "lite0", temperature: float = color.DEFAULT_TEMPERATURE):
        super().__init__(variant, temperature)
        w4, _, w16, _ = DECODER_WIDTHS
        self.hint_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        nn.init.zeros_(self.hint_stem.weight)
        self.hint_16 = zero_conv(3, w16)
        self.hint_4 = zero_conv(3, w4)

    def logits(
        self,
        l: torch.Tensor,  # noqa: E741 - L is the Lab name
        hint_ab: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hints = hint_channels(l, hint_ab, hint_mask)
        encoder = self.encoder
        rgb = encoder.normalize(lightness_to_grey_rgb(l))
        x = F.relu6(encoder._bn0(encoder._conv_stem(rgb) + self.hint_stem(hints)))
        maps = encoder.features_from_stem(x)
        _, x4, x8, x16, x32, head = maps
        scene = self.scene(head.mean(dim=(2, 3)))[:, :, None, None]
        x = self.top_conv(self.top(x32) + scene)
        x = self.merge16(x, x16)
        x = x + self.hint_16(pool_hints(hints, 16))
        x = self.merge4(self.merge8(x, x8), x4)
        x = x + self.hint_4(pool_hints(hints, 4))
        return self.head(x)
