"""``Guidance``: what a user tells the colorizer, planned for one photo from its guiders.

``Guidance.plan(lightness, accepts_hints=..., grid=...)`` returns a ``GuidedPlan``: what to ask
the network (``request``; None when the network is not needed) and ``finish(prediction)``, the
photo's full-resolution ab. ``Colorizer`` runs the network in between; nothing here calls it.
The guiders (``colorizer.guidance.guiders``, one class per kind) are composed so:

* Point hints: the network's colours plus a correction, the difference between the hints'
  (and scribbles') colours and the network's, spread by Levin propagation (guided by the
  lightness and the network's own colours, ``CORRECTION_GUIDE_AB``) and held at zero at
  the model's most confident cells far from the hints (``ANCHOR_BLOCK``,
  ``ANCHOR_REACH_FRACTION``): a hint recolours its surroundings edge-aware, the far side of
  the photo keeps the model's confident colours. A model that takes hints natively (siggraph17)
  is given them in the published encoding first, so the correction only finishes what the
  network did not follow; the catalogue says which models do (colornet-v3's hint input
  measured below the correction alone, see its card).
* A reference photo, with a model that has an encoder ('exemplar'): the reference's colours
  matched by meaning (``colorizer.guidance.exemplar``), blended with the automatic colours by
  the match's confidence; hints and scribbles then correct that as they correct the automatic
  colours below.
* ``propagate=True`` (with or without hints), scribbles, or a reference photo with a model
  without an encoder: strokes + Levin propagation. The strokes are, from weakest to strongest:
  the network's confident colours (micro-scribbles: grid cells whose bin distribution has low
  entropy) or the reference photo's well-matched colours, the hint patches, the user's
  scribbles. Scribbles alone, or no network, propagate the user's strokes only.
* Global hints, last: a palette reweights the model's bin distribution towards its colours
  (models with ``distribution``; others are pulled towards the palette afterwards), and a target
  saturation scales the chroma until the mean HSV saturation of the result reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorizer.errors import ColorizerError
from colorizer.guidance import propagate, strokes
from colorizer.guidance.guiders import (
    Guider,
    MicroScribbles,
    Palette,
    PointHints,
    Reference,
    Saturation,
    Scribbles,
)
from colorizer.guidance.hints import PointHint, check_inside, hint_ab
from colorizer.planes import resize_plane
from colorizer.prediction import NetworkRequest, Prediction

DEFAULT_GRID = 256  # hint grid when no network is involved
# Automatic strokes within 1/24 of the photo's size of a user's stroke give way to it.
CLEAR_FRACTION = 24
# A correction (hints and scribbles on the model's colours) is held at zero at anchors: the
# model's most confident cell (lowest entropy) of each ANCHOR_BLOCK x ANCHOR_BLOCK tile of its
# grid, so that they cover the photo, and only those farther than 1/ANCHOR_REACH_FRACTION of
# the photo's longer side from every user stroke. Nearer, the correction spreads edge-aware
# where the lightness and the automatic colours (their ab x CORRECTION_GUIDE_AB, in L* units)
# are alike: a hint recolours the region the model coloured as one, and stops where the model's
# colours change even if the lightness does not. Chosen on the train split (benchmarks/
# RESULTS.md, "Hints"): colornet-v3 on two disjoint sets of 51-52 photos, against the
# lightness alone with anchors beyond 1/3, 10 hints +0.46 and +0.30 dB, 1 hint +0.06 and +0.08.
ANCHOR_BLOCK = 8
ANCHOR_REACH_FRACTION = 2
CORRECTION_GUIDE_AB = 4.0
CORRECTION_SIGMA_FLOOR = 4e-4


@dataclass(frozen=True)
class Guidance:
    """User guidance for one photo (see the module docstring); all parts optional.

    ``points``: ``PointHint`` s in image pixel coordinates. ``saturation``: target mean HSV
    saturation of the result, 0..1. ``palette``: ``[("#RRGGBB" or (a, b), weight), ...]``.
    ``scribbles``: path / PIL / array of the photo's size, every coloured pixel a stroke.
    ``reference``: path / PIL / array colour photo to take colours from, or an ``Exemplar``
    prepared once from one (``colorizer.guidance.exemplar``; an album). ``propagate``: spread
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

    @property
    def wants_hint_model(self) -> bool:
        """Point hints go to the model's hint-aware sibling when it has one."""
        return bool(self.points)

    def plan(
        self,
        lightness: np.ndarray,
        *,
        accepts_hints: bool,
        grid: int,
        network: bool = True,
        encoder: bool = False,
    ) -> GuidedPlan:
        """This guidance for the photo of L* ``lightness``: the guiders it needs, and how they
        combine. ``accepts_hints``: whether the model takes hints; ``grid``: the network's
        side (the hint grid); ``network=False``: no model at all (propagation only);
        ``encoder``: whether the model has a pretrained encoder (a reference photo is then
        matched by meaning)."""
        height, width = lightness.shape
        check_inside(self.points, width, height)
        palette = self.palette_ab()
        user = Scribbles(self.scribbles, height, width) if self.scribbles is not None else None
        exemplar = network and encoder and self.reference is not None
        # Without an encoder, a reference photo replaces the network.
        network = network and (self.reference is None or exemplar)
        native = network and accepts_hints
        hints = PointHints(self.points, native) if self.points else None
        if exemplar:
            mode = "exemplar"
        elif network and hints is not None and not self.propagate:
            mode = "correct"
        elif network and user is None and not self.propagate:
            mode = "automatic"
        else:
            mode = "propagate"
        base: Guider | None = None
        if self.reference is not None:
            base = Reference(self.reference, exemplar)
        elif network and (self.propagate or hints is not None):
            base = MicroScribbles()
        finishers: list[Guider] = []
        if palette:
            finishers.append(Palette(palette))
        if self.saturation is not None:
            finishers.append(Saturation(self.saturation))
        users: list[Guider] = [g for g in (hints, user) if g is not None]
        return GuidedPlan(lightness, grid, mode, network, hints, base, users, finishers)


def _anchors(prediction: Prediction, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's colours at the most confident cell of each ANCHOR_BLOCK-cell tile of its
    grid, as strokes on the photo."""
    score = prediction.entropy
    if score is None:
        score = strokes.ab_variation(prediction.ab)
    chosen = strokes.lowest_per_block(score, ANCHOR_BLOCK)
    return strokes.grid_strokes(prediction.ab, chosen, height, width)


def _resize_ab(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    return resize_plane(np.ascontiguousarray(ab, dtype=np.float32), height, width)


@dataclass
class GuidedPlan:
    """One photo's guidance, composed (``Guidance.plan``): ``mode`` is 'automatic' (the
    network's colours), 'correct' (hints correcting the network's colours, which had the hints
    as input if the model takes them), 'exemplar' (a reference's colours matched by meaning,
    blended with the automatic ones, then corrected by any hints and scribbles) or
    'propagate' (strokes spread edge-aware)."""

    lightness: np.ndarray
    grid: int
    mode: str
    network: bool
    hints: PointHints | None
    base: Guider | None
    users: list[Guider]
    finishers: list[Guider]

    @property
    def request(self) -> NetworkRequest | None:
        """What the network must be given, or None when it is not run."""
        needed = self.mode != "propagate" or isinstance(self.base, MicroScribbles)
        if not (self.network and needed):
            return None
        planes = self.hints.hint_planes(self.lightness, self.grid) if self.hints else None
        weights = None
        for finisher in self.finishers:
            weights = finisher.bin_weights() if weights is None else weights
        features = self.base.feature_planes(self.lightness) if self.base else ()
        return NetworkRequest(planes, weights, features)

    def finish(self, prediction: Prediction | None) -> np.ndarray:
        """The full-resolution H x W x 2 ab, from the network's ``prediction`` (None when
        ``request`` was None)."""
        if self.mode == "automatic":
            assert prediction is not None
            ab = _resize_ab(prediction.ab, *self.lightness.shape)
        elif self.mode == "correct":
            assert prediction is not None
            ab = self._corrected(prediction, _resize_ab(prediction.ab, *self.lightness.shape))
        elif self.mode == "exemplar":
            assert prediction is not None and self.base is not None
            matched = self.base.base_ab(self.lightness, prediction)
            assert matched is not None
            ab = self._corrected(prediction, matched) if self.users else matched
        else:
            ab = self._propagated(prediction)
        for finisher in self.finishers:
            ab = finisher.finish(self.lightness, ab, prediction)
        return np.ascontiguousarray(ab, dtype=np.float32)

    def _user_strokes(self) -> tuple[np.ndarray, np.ndarray]:
        layers = [g.user_strokes(self.lightness, self.grid) for g in self.users]
        return strokes.merge(layers, *self.lightness.shape)

    def _clear_radius(self, fraction: int = CLEAR_FRACTION) -> int:
        """1/``fraction`` of the photo's longer side, in pixels (at least 2)."""
        return max(2, round(max(self.lightness.shape) / fraction))

    def _propagated(self, prediction: Prediction | None) -> np.ndarray:
        """The base strokes (cleared near the user's), the user's strokes, propagated."""
        height, width = self.lightness.shape
        base = self.base.base_strokes(self.lightness, prediction) if self.base else None
        mine = self._user_strokes()
        if base is not None and mine[1].any():
            base = strokes.clear_near(base, mine[1], self._clear_radius())
        ab_strokes, mask = strokes.merge([base, mine], height, width)
        return propagate.propagate(self.lightness, ab_strokes, mask)

    def _corrected(self, prediction: Prediction, automatic: np.ndarray) -> np.ndarray:
        """Hints (and scribbles) for a model without a hint input: the ``automatic`` colours
        (full resolution: the network's, or a reference's matched onto them), plus the
        difference between the user's colours and them, propagated edge-aware. The model's
        confident cells far from the user's strokes anchor that correction at zero
        (``_anchors``), so a hint recolours its surroundings and the far side of the photo keeps
        the automatic colours."""
        anchors = _anchors(prediction, *self.lightness.shape)
        mine_ab, mine_mask = self._user_strokes()
        reach = self._clear_radius(ANCHOR_REACH_FRACTION)
        _, anchor_mask = strokes.clear_near((None, anchors[1]), mine_mask, reach)
        correction = np.where(mine_mask[..., None], mine_ab - automatic, 0).astype(np.float32)
        guide = (
            np.dstack([self.lightness, CORRECTION_GUIDE_AB * automatic])
            if CORRECTION_GUIDE_AB
            else self.lightness
        )
        correction = propagate.propagate(
            guide, correction, mine_mask | anchor_mask, sigma_floor=CORRECTION_SIGMA_FLOOR
        )
        return automatic + correction


def propagated_ab(lightness: np.ndarray, guidance: Guidance) -> np.ndarray:
    """``guidance`` without any network: its strokes (hints, scribbles, a reference photo)
    propagated on the photo of L* ``lightness``."""
    return guidance.plan(lightness, accepts_hints=False, grid=DEFAULT_GRID, network=False).finish(
        None
    )
