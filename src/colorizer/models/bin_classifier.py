"""What our 313-bin classifiers share: ECCV16's decoding of scores over ``color.ab_bins()``.

A subclass defines ``logits(l, *hints)`` (N x 313 x h x w at any stride); this base turns them
into a distribution and, by the annealed mean at ``temperature`` (a plain attribute, so it can
be changed after loading), into ab upsampled bilinearly to the input's size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorizer import color


class BinClassifier(nn.Module):
    num_bins = 313
    bins: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, temperature: float = color.DEFAULT_TEMPERATURE) -> None:
        super().__init__()
        self.temperature = temperature
        self.register_buffer("bins", color.ab_bins(), persistent=False)

    # Each subclass has its own signature: (l) alone, or (l, hint_ab, hint_mask).
    def logits(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError

    def distribution(self, l: torch.Tensor, *hints: torch.Tensor | None) -> torch.Tensor:  # noqa: E741
        """Probabilities over the 313 bins of ``color.ab_bins()``, on the logits' grid."""
        return F.softmax(self.logits(l, *hints), dim=1)

    def forward(self, l: torch.Tensor, *hints: torch.Tensor | None) -> torch.Tensor:  # noqa: E741
        return self.decode(self.logits(l, *hints), l.shape[-2:])

    def decode(self, logits: torch.Tensor, size: tuple[int, ...] | torch.Size) -> torch.Tensor:
        """The annealed mean of ``logits``, N x 2 x ``size`` ab upsampled bilinearly."""
        ab = color.annealed_mean(logits, self.bins, self.temperature)
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
