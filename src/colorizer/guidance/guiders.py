"""Guiders: one small class per kind of guidance, all on one protocol (``Guider``).

A guider is given what it needs (the photo's L*, the network's ``Prediction``, the hint grid)
and returns planes; it never runs the network or calls the pipeline. ``Guidance.plan``
(``colorizer.guidance.core``) composes them for one photo. Each hook is optional:

* ``hint_planes``: the published hint planes fed to a model that takes hints;
* ``bin_weights``: a reweighting of the model's distribution over the bins;
* ``feature_planes``: L* planes whose encoder features the guider needs from the network
  (``NetworkRequest.feature_planes``; answered in ``Prediction.features``);
* ``base_ab``: the photo's full-resolution ab before the user's strokes, in place of the
  network's (a reference photo's colours matched by meaning, blended with the automatic ones);
* ``base_strokes``: weak strokes that propagation spreads unless the user's override them
  (the network's confident colours, a reference photo's matched colours);
* ``user_strokes``: the user's own strokes (hint patches, scribbles);
* ``finish``: a last change to the full-resolution ab (palette pull, target saturation).

Strokes are ``(ab, mask)``: H x W x 2 float32 and H x W bool (``colorizer.guidance.strokes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from colorizer import color, planes
from colorizer.errors import ColorizerError
from colorizer.guidance import exemplar, reference, strokes
from colorizer.guidance.exemplar import Exemplar
from colorizer.guidance.hints import PointHint, encode_hints
from colorizer.planes import resize_plane

if TYPE_CHECKING:
    import torch

    from colorizer.prediction import Prediction

Strokes = tuple[np.ndarray, np.ndarray]

PALETTE_SIGMA = 15.0  # ab spread of each palette colour over the bins
PALETTE_FLOOR = 0.05  # share of the reweighting left uniform: colours off the palette stay possible


class Guider:
    """The protocol, with every hook a no-op: a guider overrides what it contributes."""

    def hint_planes(self, lightness: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def bin_weights(self) -> torch.Tensor | None:
        return None

    def feature_planes(self, lightness: np.ndarray) -> tuple[np.ndarray, ...]:
        return ()

    def base_ab(self, lightness: np.ndarray, prediction: Prediction) -> np.ndarray | None:
        return None

    def base_strokes(self, lightness: np.ndarray, prediction: Prediction | None) -> Strokes | None:
        return None

    def user_strokes(self, lightness: np.ndarray, grid: int) -> Strokes | None:
        return None

    def finish(
        self, lightness: np.ndarray, ab: np.ndarray, prediction: Prediction | None
    ) -> np.ndarray:
        return ab


class PointHints(Guider):
    """Point hints: fed to the network as published when it takes hints (``native``), and
    always offered as the user's strokes (patches of the hinted colours)."""

    def __init__(self, points: Sequence[PointHint], native: bool) -> None:
        self.points = points
        self.native = native

    def hint_planes(self, lightness: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.native:
            return None
        height, width = lightness.shape
        ab, mask = encode_hints(self.points, width, height, grid)
        return ab[None], mask[None]

    def user_strokes(self, lightness: np.ndarray, grid: int) -> Strokes | None:
        height, width = lightness.shape
        return strokes.hint_strokes(self.points, height, width, grid)


class Scribbles(Guider):
    """Strokes painted on an image of the photo's size: every coloured pixel a stroke."""

    def __init__(self, source: Any, height: int, width: int) -> None:
        self.strokes = strokes.load_scribbles(source, height, width)  # errors before any work

    def user_strokes(self, lightness: np.ndarray, grid: int) -> Strokes | None:
        return self.strokes


class MicroScribbles(Guider):
    """The network's confident colours as weak strokes: the grid cells whose distribution has
    the lowest entropy (or, for models without one, the flattest ab)."""

    def base_strokes(self, lightness: np.ndarray, prediction: Prediction | None) -> Strokes | None:
        assert prediction is not None  # Guidance.plan runs the network for this guider
        chosen = (
            strokes.confident_cells(prediction.entropy)
            if prediction.entropy is not None
            else strokes.flat_cells(prediction.ab)
        )
        return strokes.grid_strokes(prediction.ab, chosen, *lightness.shape)


class Reference(Guider):
    """A colour photo's colours for the grey photo. With a model that has an encoder: matched
    by meaning (``colorizer.guidance.exemplar``) and blended with the automatic colours by how
    well they match (``base_ab``). Without one: matched by lightness and texture
    (``colorizer.guidance.reference``), as weak strokes where they match well, replacing the
    network (``base_strokes``).

    ``source``: a path, PIL image or array (read now: a bad reference fails before any work),
    or an ``Exemplar`` prepared once (an album's reference) for a model with an encoder."""

    def __init__(self, source: Any, encoder: bool) -> None:
        self.encoder = encoder
        if isinstance(source, Exemplar):
            if not encoder:
                raise ColorizerError(
                    "a prepared exemplar needs a model with an encoder; give the reference "
                    "photo itself for this model"
                )
            self.exemplar: Exemplar | None = source
            self.rgb = None
        else:
            self.exemplar = None
            self.rgb = reference.read_reference(source)

    def feature_planes(self, lightness: np.ndarray) -> tuple[np.ndarray, ...]:
        if not self.encoder:
            return ()
        if self.exemplar is not None:
            return (lightness,)
        assert self.rgb is not None
        return (lightness, planes.lightness_image(self.rgb))

    def base_ab(self, lightness: np.ndarray, prediction: Prediction) -> np.ndarray | None:
        if not self.encoder:
            return None
        assert len(prediction.features) == len(self.feature_planes(lightness))
        found = self.exemplar
        if found is None:
            assert self.rgb is not None
            found = exemplar.make_exemplar(prediction.features[1], self.rgb)
        matched, confidence = exemplar.transfer(found, prediction.features[0], lightness)
        return exemplar.full_resolution_ab(lightness, matched, confidence, prediction.ab)

    def base_strokes(self, lightness: np.ndarray, prediction: Prediction | None) -> Strokes | None:
        if self.encoder:
            return None
        assert self.rgb is not None
        matched, distance = reference.transfer(lightness, self.rgb)
        return strokes.grid_strokes(matched, reference.reference_cells(distance), *lightness.shape)


class Palette(Guider):
    """A few colours with weights: the model's distribution reweighted towards them, or, for
    models without one, each pixel pulled towards the palette colours near it."""

    def __init__(self, palette: list[tuple[tuple[float, float], float]]) -> None:
        self.palette = palette

    def bin_weights(self) -> torch.Tensor | None:
        return palette_bin_weights(self.palette)

    def finish(
        self, lightness: np.ndarray, ab: np.ndarray, prediction: Prediction | None
    ) -> np.ndarray:
        if prediction is not None and prediction.reweighted:
            return ab
        return pull_to_palette(ab, self.palette)


class Saturation(Guider):
    """A target mean HSV saturation: the chroma scaled until the result reaches it."""

    def __init__(self, target: float) -> None:
        self.target = target

    def finish(
        self, lightness: np.ndarray, ab: np.ndarray, prediction: Prediction | None
    ) -> np.ndarray:
        return match_saturation(lightness, ab, self.target)


# -- the global hints' maths ------------------------------------------------------------------


def palette_bin_weights(palette: list[tuple[tuple[float, float], float]]) -> torch.Tensor:
    """Relative weight of each of the 313 bins under the palette (mean 1)."""
    import torch

    bins = color.ab_bins(torch.float64)
    total = torch.zeros(len(bins), dtype=torch.float64)
    weight_sum = sum(w for _, w in palette)
    for (a, b), weight in palette:
        squared = ((bins - torch.tensor([a, b], dtype=torch.float64)) ** 2).sum(1)
        total += weight / weight_sum * torch.exp(-squared / (2 * PALETTE_SIGMA**2))
    total = total / total.mean()
    return ((1 - PALETTE_FLOOR) * total + PALETTE_FLOOR).float()


def pull_to_palette(ab: np.ndarray, palette: list, strength: float = 0.6) -> np.ndarray:
    """Move each pixel's ab towards the palette colours near it (softly assigned, weighted by
    the palette weights)."""
    centres = np.array([c for c, _ in palette], np.float32)
    weights = np.array([w for _, w in palette], np.float32)
    distances = ((ab[..., None, :] - centres) ** 2).sum(-1)
    logits = np.log(weights) - distances / (2 * 30.0**2)
    logits -= logits.max(-1, keepdims=True)
    share = np.exp(logits)
    share /= share.sum(-1, keepdims=True)
    target = share @ centres
    return (1 - strength) * ab + strength * target


def _mean_saturation(lightness: np.ndarray, ab: np.ndarray) -> float:
    rgb = planes.lab_to_rgb_image(np.dstack([lightness, ab]))
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    return float(np.mean(np.where(high > 1e-6, (high - low) / np.maximum(high, 1e-6), 0)))


def match_saturation(lightness: np.ndarray, ab: np.ndarray, target: float) -> np.ndarray:
    """Scale the chroma so the mean HSV saturation of the result is ``target`` (bisection on a
    small copy)."""
    height, width = lightness.shape
    scale = min(1.0, 256 / max(height, width))
    h, w = max(round(height * scale), 1), max(round(width * scale), 1)
    small_l, small_ab = resize_plane(lightness, h, w), resize_plane(ab, h, w)
    low, high = 0.0, 8.0
    for _ in range(24):
        middle = (low + high) / 2
        if _mean_saturation(small_l, small_ab * middle) < target:
            low = middle
        else:
            high = middle
    return ab * ((low + high) / 2)
