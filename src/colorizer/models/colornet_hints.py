"""ColorNet with user hints: ``colornet`` plus SIGGRAPH17's local-hint input.

The hint channels are exactly the published SIGGRAPH17 ones: ab / 110 where a hint is given
(0 elsewhere) and a 0/1 mask, on the network's input grid. They enter twice, through two
zero-initialised convolutions, so a freshly built model loaded with the ``colornet-v1`` weights
(``strict=False``: only the ``hint_*`` keys are missing) colorizes exactly as ``colornet-v1``:

* at the input, added to the first convolution's output before its BatchNorm (the encoder and
  the scene context see where and which colours the user gave);
* at 1/4 resolution, where the bins are scored, from the hint channels average-pooled to that
  grid (a direct path that lets a hinted colour win locally).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorizer import color
from colorizer.models.colornet import ColorNet
from colorizer.registry import register_architecture


def cell_mean(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over factor x factor cells: the grid ``factor`` times coarser. A fixed kernel, not
    adaptive pooling to a size, so that the ONNX export keeps its sides dynamic."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


AB_NORM = color.AB_SCALE  # the published hint normalisation (base_color.ab_norm)


def hint_channels(
    l: torch.Tensor,  # noqa: E741 - L is the Lab name
    hint_ab: torch.Tensor | None,
    hint_mask: torch.Tensor | None,
) -> torch.Tensor:
    """The published encoding: [ab / 110 (0 where not hinted), mask], N x 3 x H x W."""
    n, _, h, w = l.shape
    if hint_ab is None or hint_mask is None:
        return l.new_zeros(n, 3, h, w)
    return torch.cat([hint_ab * hint_mask / AB_NORM, hint_mask], dim=1).to(l)


@register_architecture("colornet-hints")
class ColorNetHints(ColorNet):
    """``forward(l, hint_ab=None, hint_mask=None)`` -> ab; ``distribution`` takes hints too.

    ``hint_ab`` is raw ab (N x 2 x H x W, Lab units), ``hint_mask`` 1 where hinted, 0 elsewhere
    (N x 1 x H x W), both on the input grid, as ``siggraph17`` takes them.
    """

    accepts_hints = True
    initial_model = "colornet-v1"  # training starts from these weights (the hints family)

    def __init__(self, width: int = 32, temperature: float = color.DEFAULT_TEMPERATURE) -> None:
        super().__init__(width, temperature)
        self.hint_early = nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False)
        self.hint_late = nn.Conv2d(3, 3 * width, 3, padding=1, bias=False)
        nn.init.zeros_(self.hint_early.weight)
        nn.init.zeros_(self.hint_late.weight)

    def logits(
        self,
        l: torch.Tensor,  # noqa: E741
        hint_ab: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hints = hint_channels(l, hint_ab, hint_mask)
        first = self.enc1[0]
        assert isinstance(first, nn.Sequential)  # conv_bn_relu's
        conv, norm, relu = first
        x1 = relu(norm(conv((l - 50) / 100) + self.hint_early(hints)))
        x1 = self.enc1[1](x1)
        x2 = self.enc2(x1)
        x3 = self.enc3(x2)
        x = self.context(self.enc4(x3))
        x = self.up2(self.up3(x, x3), x2)
        x = x + self.hint_late(cell_mean(hints, 4))  # the bins' grid, stride 4
        return self.head(self.refine(x))
