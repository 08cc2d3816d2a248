"""``Guidance``: what a user tells the colorizer, and how each kind of guidance is applied.

``guided_ab(colorizer, lightness, guidance)`` returns the full-resolution ab of one photo:

* Point hints, with a model that takes hints (``forward(l, hint_ab, hint_mask)``: siggraph17,
  colornet-hints): the published encoding, straight into the network.
* Point hints with a model that takes none (the shipped colornet-v1): the automatic colours
  plus a correction, the difference between the hints' (and scribbles') colours and the
  automatic ones, spread by Levin propagation and held at zero at the model's confident cells
  away from the hints: a hint recolours its region, the rest keeps the automatic colours.
* ``propagate=True`` (with or without hints) or a reference photo: strokes + Levin propagation.
  The strokes are, from weakest to strongest: the network's confident colours (micro-scribbles:
  grid cells whose bin distribution has low entropy) or the reference photo's well-matched
  colours, the hint patches, the user's scribbles.
* Scribbles alone: Levin propagation of the scribbles only, no network.
* Global hints, last: a palette reweights the model's bin distribution towards its colours
  (models with ``distribution``; others are pulled towards the palette afterwards), and a target
  saturation scales the chroma until the mean HSV saturation of the result reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from colorizer import color, planes
from colorizer.errors import ColorizerError
from colorizer.guidance import propagate, reference, strokes
from colorizer.guidance.hints import PointHint, check_inside, encode_hints, hint_ab
from colorizer.planes import resize_plane

if TYPE_CHECKING:
    from colorizer.pipeline import Colorizer

PALETTE_SIGMA = 15.0  # ab spread of each palette colour over the bins
PALETTE_FLOOR = 0.05  # share of the reweighting left uniform: colours off the palette stay possible
DEFAULT_GRID = 256  # hint grid when no network is involved
# Automatic strokes within 1/24 of the photo's size of a user's stroke give way to it.
CLEAR_FRACTION = 24


@dataclass(frozen=True)
class Guidance:
    """User guidance for one photo (see the module docstring); all parts optional.

    ``points``: ``PointHint`` s in image pixel coordinates. ``saturation``: target mean HSV
    saturation of the result, 0..1. ``palette``: ``[("#RRGGBB" or (a, b), weight), ...]``.
    ``scribbles``: path / PIL / array of the photo's size, every coloured pixel a stroke.
    ``reference``: path / PIL / array colour photo to take colours from. ``propagate``: spread
    the network's confident colours edge-aware (micro-scribbles) instead of its raw output.
    """

    points: Sequence[PointHint] = ()
    saturation: float | None = None
    palette: Sequence[tuple[Any, float]] | None = None
    scribbles: Any = None
    reference: Any = None
    propagate: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(self.points))
        for i, point in enumerate(self.points):
            if not isinstance(point, PointHint):
                raise ColorizerError(f"guidance point {i}: expected a PointHint, got {point!r}")
        if self.saturation is not None and not 0 <= self.saturation <= 1:
            raise ColorizerError(f"saturation must be in [0, 1], got {self.saturation}")
        if self.palette is not None:
            object.__setattr__(self, "palette", tuple(self.palette))
            self.palette_ab()  # validates

    def ab(
        self, colorizer: Colorizer | None, lightness: np.ndarray, *, size: int | None = None
    ) -> np.ndarray:
        """``guided_ab``: what ``Colorizer.colorize_pictures`` calls to apply this guidance."""
        return guided_ab(colorizer, lightness, self, size=size)

    def palette_ab(self) -> list[tuple[tuple[float, float], float]]:
        """The palette as ((a, b), weight) pairs; raises naming a bad entry."""
        checked = []
        if self.palette is not None:
            for i, entry in enumerate(self.palette):
                try:
                    value, weight = entry
                    ab = hint_ab(value)
                    weight = float(weight)
                except (TypeError, ValueError) as exc:
                    raise ColorizerError(
                        f"palette entry {i}: expected (colour, weight), colour '#RRGGBB' or "
                        f"(a, b), got {entry!r} ({exc})"
                    ) from None
                if not weight > 0:
                    raise ColorizerError(f"palette entry {i}: weight must be > 0, got {weight}")
                checked.append((ab, weight))
            if not checked:
                raise ColorizerError("palette is empty")
        return checked

    @property
    def empty(self) -> bool:
        return not (
            self.points
            or self.saturation is not None
            or self.palette
            or self.scribbles is not None
            or self.reference is not None
            or self.propagate
        )


# -- the network's part ------------------------------------------------------------------------


def palette_bin_weights(palette: list[tuple[tuple[float, float], float]]) -> torch.Tensor:
    """Relative weight of each of the 313 bins under the palette (mean 1)."""
    bins = color.ab_bins(torch.float64)
    total = torch.zeros(len(bins), dtype=torch.float64)
    weight_sum = sum(w for _, w in palette)
    for (a, b), weight in palette:
        squared = ((bins - torch.tensor([a, b], dtype=torch.float64)) ** 2).sum(1)
        total += weight / weight_sum * torch.exp(-squared / (2 * PALETTE_SIGMA**2))
    total = total / total.mean()
    return ((1 - PALETTE_FLOOR) * total + PALETTE_FLOOR).float()


@dataclass
class Prediction:
    ab: np.ndarray  # g x g x 2 (grid of the distribution) or S x S x 2
    entropy: np.ndarray | None  # g x g, None for models without a distribution
    palette_done: bool


def network_prediction(
    colorizer: Colorizer,
    lightness: np.ndarray,
    points: Sequence[PointHint],
    palette: list | None,
    size: int | None = None,
) -> Prediction:
    """The model's ab for one photo on its own grid, hints given natively when it takes them."""
    hints = _native_hints(colorizer, lightness, points, size)
    distribution = colorizer.predict_bins([lightness], hints, size=size)
    if distribution is None:
        ab = colorizer.predict_planes([lightness], hints, size=size)[0]
        return Prediction(ab, None, False)
    if palette:
        distribution = distribution * palette_bin_weights(palette).view(1, -1, 1, 1)
        distribution = distribution / distribution.sum(dim=1, keepdim=True)
    temperature = getattr(colorizer.net, "temperature", color.DEFAULT_TEMPERATURE)
    ab = color.annealed_mean(distribution.clamp_min(1e-12).log(), temperature=temperature)
    entropy = color.distribution_entropy(distribution)[0].numpy()
    return Prediction(ab[0].permute(1, 2, 0).numpy(), entropy, bool(palette))


def _native_hints(
    colorizer: Colorizer, lightness: np.ndarray, points: Sequence[PointHint], size: int | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The published hint planes (batch of one) for a model that takes hints, else None."""
    if not (points and colorizer.accepts_hints):
        return None
    height, width = lightness.shape
    ab, mask = encode_hints(points, width, height, size or colorizer.size)
    return ab[None], mask[None]


# -- global hints -------------------------------------------------------------------------------


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


def pull_to_palette(ab: np.ndarray, palette: list, strength: float = 0.6) -> np.ndarray:
    """Models without a distribution: move each pixel's ab towards the palette colours near it
    (softly assigned, weighted by the palette weights)."""
    centres = np.array([c for c, _ in palette], np.float32)
    weights = np.array([w for _, w in palette], np.float32)
    distances = ((ab[..., None, :] - centres) ** 2).sum(-1)
    logits = np.log(weights) - distances / (2 * 30.0**2)
    logits -= logits.max(-1, keepdims=True)
    share = np.exp(logits)
    share /= share.sum(-1, keepdims=True)
    target = share @ centres
    return (1 - strength) * ab + strength * target


# -- putting it together ------------------------------------------------------------------------


def _resize_ab(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    return resize_plane(np.ascontiguousarray(ab, dtype=np.float32), height, width)


def guided_ab(
    colorizer: Colorizer | None,
    lightness: np.ndarray,
    guidance: Guidance,
    size: int | None = None,
) -> np.ndarray:
    """Full-resolution H x W x 2 ab for the photo with L* ``lightness`` under ``guidance``.

    ``colorizer`` may be None when the guidance needs no network (scribbles, hints propagated
    alone, a reference photo). ``size``: the network's side for this call (default its own).
    """
    height, width = lightness.shape
    points = guidance.points
    check_inside(points, width, height)
    if points and colorizer is not None:
        colorizer = colorizer.for_hints()  # the model's hint-aware sibling, when it has one
    palette = guidance.palette_ab()
    user = None
    if guidance.scribbles is not None:
        user = strokes.load_scribbles(guidance.scribbles, height, width)
    use_network = colorizer is not None and guidance.reference is None
    propagating = (
        colorizer is None
        or user is not None
        or guidance.reference is not None
        or guidance.propagate
        or (points and not (use_network and colorizer.accepts_hints))
    )
    # Hints for a network without a hint input correct its automatic colours (see docstring).
    correcting = (
        use_network
        and colorizer is not None  # (implied by use_network; for the type checker)
        and points
        and not colorizer.accepts_hints
        and not guidance.propagate
    )
    palette_done = False
    if correcting:
        ab, palette_done = _corrected_by_hints(colorizer, lightness, points, user, palette, size)
    elif not propagating:
        assert colorizer is not None  # without one, the guidance is propagated
        prediction = network_prediction(colorizer, lightness, points, palette, size)
        ab = _resize_ab(prediction.ab, height, width)
        palette_done = prediction.palette_done
    else:
        base = None
        if guidance.reference is not None:
            matched, distance = reference.transfer(
                lightness, reference.read_reference(guidance.reference)
            )
            base = strokes.grid_strokes(matched, reference.reference_cells(distance), height, width)
        elif use_network and (guidance.propagate or points):
            assert colorizer is not None  # implied by use_network
            prediction = network_prediction(colorizer, lightness, points, palette, size)
            palette_done = prediction.palette_done
            chosen = (
                strokes.confident_cells(prediction.entropy)
                if prediction.entropy is not None
                else strokes.flat_cells(prediction.ab)
            )
            base = strokes.grid_strokes(prediction.ab, chosen, height, width)
        grid = (size or colorizer.size) if colorizer is not None else DEFAULT_GRID
        hinted = strokes.hint_strokes(points, height, width, grid) if points else None
        mine = strokes.merge([hinted, user], height, width)
        if base is not None and mine[1].any():
            radius = max(2, round(max(height, width) / CLEAR_FRACTION))
            base = strokes.clear_near(base, mine[1], radius)
        ab_strokes, mask = strokes.merge([base, mine], height, width)
        ab = propagate.propagate(lightness, ab_strokes, mask)
    if palette and not palette_done:
        ab = pull_to_palette(ab, palette)
    if guidance.saturation is not None:
        ab = match_saturation(lightness, ab, guidance.saturation)
    return np.ascontiguousarray(ab, dtype=np.float32)


def _corrected_by_hints(
    colorizer, lightness, points, user, palette, size=None
) -> tuple[np.ndarray, bool]:
    """Hints (and scribbles) for a model without a hint input: the automatic colours, plus the
    difference between the user's colours and them, propagated edge-aware. The model's
    confident cells away from the user's strokes anchor that correction at zero, so a hint
    recolours its region and the rest of the photo keeps the automatic colours."""
    height, width = lightness.shape
    prediction = network_prediction(colorizer, lightness, points, palette, size)
    automatic = _resize_ab(prediction.ab, height, width)
    chosen = (
        strokes.confident_cells(prediction.entropy)
        if prediction.entropy is not None
        else strokes.flat_cells(prediction.ab)
    )
    _, anchor_mask = strokes.grid_strokes(prediction.ab, chosen, height, width)
    mine_ab, mine_mask = strokes.merge(
        [strokes.hint_strokes(points, height, width, size or colorizer.size), user], height, width
    )
    radius = max(2, round(max(height, width) / CLEAR_FRACTION))
    _, anchor_mask = strokes.clear_near((None, anchor_mask), mine_mask, radius)
    correction = np.where(mine_mask[..., None], mine_ab - automatic, 0).astype(np.float32)
    correction = propagate.propagate(lightness, correction, mine_mask | anchor_mask)
    return automatic + correction, prediction.palette_done


def suggest_colors(
    colorizer: Colorizer,
    lightness: np.ndarray,
    x: float,
    y: float,
    k: int = 5,
    points: Sequence[PointHint] = (),
    size: int | None = None,
) -> list[dict]:
    """The top-``k`` colours of the model's distribution at image point (x, y), best first."""
    height, width = lightness.shape
    check_inside([PointHint(x, y, (0.0, 0.0))], width, height, source="point")
    if k < 1:
        raise ColorizerError(f"k must be at least 1, got {k}")
    row = min(max(round(y), 0), height - 1)
    col = min(max(round(x), 0), width - 1)
    light = float(lightness[row, col])
    if points:
        colorizer = colorizer.for_hints()
    hints = _native_hints(colorizer, lightness, points, size)
    distribution = colorizer.predict_bins([lightness], hints, size=size)
    if distribution is None:
        ab = colorizer.predict_planes([lightness], hints, size=size)[0]
        side = ab.shape[0]
        gy = min(int((y + 0.5) * side / height), side - 1)
        gx = min(int((x + 0.5) * side / width), side - 1)
        a, b = (float(v) for v in ab[gy, gx])
        return [{"hex": color.lab_to_hex(light, a, b), "ab": [a, b], "probability": 1.0}]
    distribution = distribution[0]
    grid_h, grid_w = distribution.shape[-2:]
    gy = min(int((y + 0.5) * grid_h / height), grid_h - 1)
    gx = min(int((x + 0.5) * grid_w / width), grid_w - 1)
    modes = distribution_modes(distribution[:, gy, gx].double().numpy(), k)
    return [
        {"hex": color.lab_to_hex(light, a, b), "ab": [a, b], "probability": probability}
        for (a, b), probability in modes
    ]


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
