"""What the network says about one photo, and what guidance may ask of it.

The pipeline runs the network; guidance (``colorizer.guidance``, the layer above) never does.
Between the two sit these small types: guidance says what the network should be given
(``NetworkRequest``: native hint planes, a reweighting of the bins), the pipeline answers with a
``Prediction``, and guidance turns that into the photo's ab. ``Guide`` is the protocol the
pipeline sees, so that it imports nothing of the layer above.

Also here, because it reads a prediction and nothing else: ``distribution_modes``, the distinct
likeliest colours of a distribution over the 313 ab bins (the app's suggested colours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class NetworkRequest:
    """What one guided photo asks of the network.

    ``hint_planes``: the published hint ab (1 x 2 x S x S) and 0/1 mask (1 x 1 x S x S) for a
    model that takes hints, or None. ``bin_weights``: 313 relative weights that multiply the
    model's distribution before it is decoded (a palette), or None. ``feature_planes``: L*
    planes (any size: the photo's own, a reference's) whose encoder features guidance needs
    (exemplar transfer, ``colorizer.guidance.exemplar``), answered in ``Prediction.features``
    in the same order; only asked of a model with an encoder.
    """

    hint_planes: tuple[np.ndarray, np.ndarray] | None = None
    bin_weights: torch.Tensor | None = None
    feature_planes: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class Prediction:
    """The network's answer for one photo, on its own grid.

    ``ab``: g x g x 2 (the distribution's grid, or S x S for models without one).
    ``entropy``: g x g, None for models without a distribution. ``reweighted``: whether the
    request's ``bin_weights`` were applied (models without a distribution cannot).
    ``features``: the encoder features (C x h x w, unit length per position) of the request's
    ``feature_planes``, in order.
    """

    ab: np.ndarray
    entropy: np.ndarray | None
    reweighted: bool
    features: tuple[np.ndarray, ...] = ()


class GuidedPhoto(Protocol):
    """One photo's guidance, planned: what to ask the network (None: nothing, it is not run),
    then the full-resolution H x W x 2 ab from its answer."""

    @property
    def request(self) -> NetworkRequest | None: ...

    def finish(self, prediction: Prediction | None) -> np.ndarray: ...


class Guide(Protocol):
    """What ``Colorizer`` needs of a guidance object (``colorizer.guidance.Guidance``)."""

    @property
    def empty(self) -> bool: ...

    @property
    def wants_hint_model(self) -> bool: ...

    def plan(
        self, lightness: np.ndarray, *, accepts_hints: bool, grid: int, encoder: bool = False
    ) -> GuidedPhoto: ...


def decode_distribution(
    distribution: torch.Tensor, bin_weights: torch.Tensor | None, temperature: float
) -> Prediction:
    """A 1 x 313 x g x g distribution, reweighted by ``bin_weights`` when given, decoded by the
    annealed mean at ``temperature``."""
    from colorizer import color  # torch: imported on the first guided photo, not at start-up

    if bin_weights is not None:
        distribution = distribution * bin_weights.view(1, -1, 1, 1)
        distribution = distribution / distribution.sum(dim=1, keepdim=True)
    ab = color.annealed_mean(distribution.clamp_min(1e-12).log(), temperature=temperature)
    entropy = color.distribution_entropy(distribution)[0].numpy()
    return Prediction(ab[0].permute(1, 2, 0).numpy(), entropy, bin_weights is not None)


MODE_RADIUS = 15.0  # a bin joins a mode within this many ab units (the grid's diagonal: 14.1)
MODE_SEPARATION = 10.0  # no two suggested colours closer than this (about one just-visible step)


def distribution_modes(
    probabilities: np.ndarray, k: int = 5
) -> list[tuple[tuple[float, float], float]]:
    """The ``k`` likeliest distinct colours of a distribution over the 313 ab bins, best first:
    ((a, b), probability) with the probabilities of the bins merged into each.

    Greedy, likeliest bin first: a bin within ``MODE_RADIUS`` of a mode's seed joins it, else it
    seeds a new mode; each mode's colour is its bins' probability-weighted mean. Modes that end
    up closer than ``MODE_SEPARATION`` are merged, so five suggestions are five colours, not five
    neighbouring bins of one orange."""
    import torch

    from colorizer import color

    bins = color.ab_bins(torch.float64).numpy()
    order = np.argsort(-probabilities)
    seeds: list[np.ndarray] = []
    members: list[list[int]] = []
    for index in order[probabilities[order] > 1e-6]:
        distances = [np.hypot(*(bins[index] - seed)) for seed in seeds]
        if distances and min(distances) <= MODE_RADIUS:
            members[int(np.argmin(distances))].append(int(index))
        else:
            seeds.append(bins[index])
            members.append([int(index)])
    modes = [
        (probabilities[m].sum(), probabilities[m] @ bins[m] / probabilities[m].sum())
        for m in members
    ]
    merged = _merge_close(modes)
    return [((float(c[0]), float(c[1])), float(mass)) for mass, c in merged[:k]]


def _merge_close(modes: list) -> list[tuple[float, np.ndarray]]:
    """(mass, centre) modes, heaviest first, merged until no two are under MODE_SEPARATION."""
    merged = sorted(modes, key=lambda mode: -mode[0])
    while True:
        pairs = [
            (i, j)
            for i in range(len(merged))
            for j in range(i + 1, len(merged))
            if np.hypot(*(merged[i][1] - merged[j][1])) < MODE_SEPARATION
        ]
        if not pairs:
            return merged
        i, j = pairs[0]
        (mass_i, centre_i), (mass_j, centre_j) = merged[i], merged[j]
        total = mass_i + mass_j
        merged[i] = (total, (centre_i * mass_i + centre_j * mass_j) / total)
        del merged[j]
        merged.sort(key=lambda mode: -mode[0])
