"""Keyframe-guided film colorization: each shot takes its colours from its nearest keyframe.

A keyframe is a colour frame (or point hints the model colours first) pinned to a frame number.
Shots come from a pre-pass over the film's grey thumbnails (``FilmShots``, decode only), so every
frame knows its shot and its keyframe before any colouring, identically in every segment and on
resume. Then, frame by frame at work resolution, four candidates for ab:

(a) the keyframe's ab warped along a DIRECT flow from this frame to the keyframe: no drift,
    taken where the flow is forward-backward consistent and the grey levels agree;
(b) the previous output frame's ab warped along the frame-to-frame flow: chained, so it follows
    large motion the direct flow cannot span. It is the base everywhere (a) is not taken, even
    where its own flow is not trusted: flat sky and noise fail the flow tests without being
    wrong, and the carried colours measured far closer to the truth there than the model's;
(c) exemplar transfer from the keyframe (``colorizer.guidance.exemplar``) on every
    ``EXEMPLAR_EVERY``-th frame (an encoder pass), where the direct flow is not trusted: it
    fills what neither flow reaches (new or uncovered content), and it corrects the chain
    where the chain still carries the model's colours but the keyframe shows, with confidence,
    the same thing coloured otherwise (a bottle brought in by a hand keeps the hand's
    model-coloured orange along the chain until the transfer sees it is one of the keyframe's
    blue bottles);
(d) the automatic model's ab, inside (c): the transfer blends it in where nothing matched.

Shots without a keyframe are coloured as without keyframes (the model's ab steadied along the
flow, exactly as ``FlowPropagator``), or, with a reference photo, by exemplar transfer from it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from colorizer import planes
from colorizer.errors import ColorizerError
from colorizer.guidance.exemplar import (
    Exemplar,
    blend_by_confidence,
    full_resolution_match,
    make_exemplar,
    transfer,
)
from colorizer.video import flow
from colorizer.video.consistency import (
    DEFAULT_FLOW,
    DEFAULT_STRENGTH,
    PropagatorState,
    is_scene_cut,
)
from colorizer.video.keyframes import Keyframe, plan_keyframes, read_reference
from colorizer.video.source import (
    Position,
    SourceInfo,
    decode,
    open_input,
    read_frames,
    video_stream,
)

if TYPE_CHECKING:
    from colorizer.pipeline import Colorizer
    from colorizer.video.workfolder import WorkFolder

# Exemplar transfer costs an encoder pass: it runs on every EXEMPLAR_EVERY-th frame of the film
# (by number, so segments and resumed runs pick the same ones), and only when more than
# EXEMPLAR_UNCOVERED of the frame is outside the direct flow's reach. Between those frames the
# chained flow carries what it filled in. Every 3rd frame measured the same on the shared clips
# as every 6th, at 0.70x the automatic run's speed instead of 0.85x.
EXEMPLAR_EVERY = 6
EXEMPLAR_UNCOVERED = 0.02
# Each exemplar frame moves this share of the way to the transfer's colours: where neither flow
# reaches (NOVEL_SHARE), and where the chain's colours are the model's and the match is
# confident (CORRECTION_SHARE, times the match's confidence). Halves measured better than whole
# steps on the shared clips; a whole step for NOVEL_SHARE put clip 09 0.52 dB below the paste
# (benchmarks/RESULTS.md, "Guided films: keyframes").
NOVEL_SHARE = 0.5
CORRECTION_SHARE = 0.5
# Chained colours within about this ab distance of the model's own prediction are taken to have
# come from the model (filled in where the keyframe did not reach) rather than from the keyframe,
# which the model rarely matches: only those are corrected.
MODEL_LIKE_AB = 20.0
# As in FlowPropagator: trust masks softened inwards over this many work pixels.
_MASK_BLUR = 5

Features = Callable[[np.ndarray], np.ndarray]  # L* (H x W) -> encoder features C x h x w


@dataclass(frozen=True)
class FilmShots:
    """Every frame's shot: ``pts`` of each frame in decode order (its index is the frame number)
    and ``starts``, the first frame number of each shot (0 first)."""

    pts: tuple[int, ...]
    starts: tuple[int, ...]

    def frame_of(self, pts: int) -> int:
        index = bisect.bisect_left(self.pts, pts)
        if index == len(self.pts) or self.pts[index] != pts:
            raise ColorizerError(f"frame at pts {pts} was not seen by the shot pre-pass")
        return index

    def shot_of(self, frame: int) -> int:
        return bisect.bisect_right(self.starts, frame) - 1

    def to_json(self) -> dict:
        return {"pts": list(self.pts), "starts": list(self.starts)}

    @classmethod
    def from_json(cls, saved: dict) -> FilmShots:
        return cls(tuple(saved["pts"]), tuple(saved["starts"]))


def shot_starts(greys: Iterable[np.ndarray]) -> list[int]:
    """First frame of each shot of a sequence of grey frames (scene cuts as FlowPropagator's)."""
    starts, previous = [], None
    for number, grey in enumerate(greys):
        if previous is None or is_scene_cut(previous, grey):
            starts.append(number)
        previous = grey
    return starts


def film_shots(info: SourceInfo, work_hw: tuple[int, int]) -> FilmShots:
    """The pre-pass: decode the whole film to grey thumbnails (luma, scaled by FFmpeg) at work
    size and find its shots. Costs a decode, no colour conversion, no network."""
    pts: list[int] = []
    greys: list[np.ndarray] = []
    height, width = work_hw
    with open_input(info.path) as container:
        stream = video_stream(container, info.path)
        previous = None
        for frame in decode(container, stream, info.path):
            stamp = (
                frame.pts
                if frame.pts is not None
                else (0 if previous is None else previous + info.frame_duration())
            )
            previous = stamp
            pts.append(stamp)
            greys.append(frame.reformat(width=width, height=height, format="gray").to_ndarray())
    return FilmShots(tuple(pts), tuple(shot_starts(greys)))


@dataclass(frozen=True)
class KeyColours:
    """A keyframe ready for propagation, at work resolution: its grey (uint8, for the flow), its
    ab, and its exemplar for transfer (None when the model has no encoder)."""

    frame: int
    grey: np.ndarray
    ab: np.ndarray
    exemplar: Exemplar | None = None


def key_colours(
    frame: int, rgb: np.ndarray, work_hw: tuple[int, int], features: Features | None = None
) -> KeyColours:
    """A colour keyframe (H x W x 3 float sRGB in [0, 1], any size) at work size ``work_hw``."""
    lab = planes.rgb_to_lab_image(np.asarray(rgb, np.float32))
    small = cv2.resize(lab, work_hw[::-1], interpolation=cv2.INTER_AREA)
    exemplar = None
    if features is not None:
        exemplar = make_exemplar(features(small[..., 0]), rgb)
    return KeyColours(
        frame,
        flow.grey_u8(np.ascontiguousarray(small[..., 0])),
        np.ascontiguousarray(small[..., 1:]),
        exemplar,
    )


def reference_exemplar(path: str | Path, features: Features) -> Exemplar:
    """A colour photo (``--reference``) prepared for exemplar transfer."""
    rgb = read_reference(path)
    return make_exemplar(features(planes.lightness_image(rgb)), rgb)


def work_lightness(grey: np.ndarray) -> np.ndarray:
    """L* of a work-size 8-bit grey frame: what exemplar transfer sees of it."""
    return grey.astype(np.float32) / np.float32(2.55)


def trust_mask(trusted: np.ndarray) -> np.ndarray:
    """A boolean trust mask softened inwards (as FlowPropagator's), float32 in [0, 1]."""
    mask = trusted.astype(np.float32)
    return cv2.blur(mask, (_MASK_BLUR, _MASK_BLUR)) * mask


class KeyframePropagator:
    """Frame by frame (in order), the keyframe-guided ab of each frame at work resolution.

    ``shot_of``: frame number -> shot; ``keyframes``: the keyframes' frame numbers;
    ``colours(frame)``: that keyframe's ``KeyColours`` (prepared on first use);
    ``strength``: the flow consistency of shots without a keyframe (as FlowPropagator's);
    ``reference``: an exemplar for shots without a keyframe; ``features``: the encoder, for
    exemplar transfer (None: no transfer). ``state`` is the previous frame's grey and output,
    as FlowPropagator's, so resuming and segments save and restore it the same way.
    """

    def __init__(
        self,
        shot_of: Callable[[int], int],
        keyframes: Iterable[int],
        colours: Callable[[int], KeyColours],
        *,
        strength: float = DEFAULT_STRENGTH,
        method: str = DEFAULT_FLOW,
        reference: Exemplar | None = None,
        features: Features | None = None,
    ) -> None:
        self.shot_of, self.colours = shot_of, colours
        self.keyframes = sorted(set(keyframes))
        self.strength, self.reference, self.features = strength, reference, features
        self.estimate = flow.FlowEstimator(method)
        self._direct_estimate = flow.FlowEstimator(method)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="direct-flow")
        self.state: PropagatorState | None = None
        self.scene_cuts = 0
        self.transfers = 0  # frames that ran exemplar transfer, for reports
        self._given_features: np.ndarray | None = None  # the current frame's, if computed

    def nearest_keyframe(self, frame: int) -> int | None:
        """The keyframe of ``frame``'s shot nearest to it (the earlier one on a tie)."""
        shot = self.shot_of(frame)
        same = [k for k in self.keyframes if self.shot_of(k) == shot]
        return min(same, key=lambda k: (abs(k - frame), k)) if same else None

    def needs_model(self, frame: int) -> bool:
        """Whether ``frame``'s output may read the model's ab: in shots without a keyframe,
        and on the frames that may run exemplar transfer. Others may pass None for it."""
        key = self.nearest_keyframe(frame)
        if key is None:
            return True
        return frame != key and self.features is not None and frame % EXEMPLAR_EVERY == 0

    def wants_features(self, frame: int) -> bool:
        """Whether ``frame`` may run exemplar transfer (and so need its encoder features)."""
        if self.features is None:
            return False
        key = self.nearest_keyframe(frame)
        if key is None:
            return self.reference is not None
        return frame != key and frame % EXEMPLAR_EVERY == 0

    def frame_features(self, grey: np.ndarray) -> np.ndarray:
        """The encoder features exemplar transfer uses for the frame of work-size ``grey``;
        the caller may compute them ahead (on another thread) and pass them in."""
        assert self.features is not None  # wants_features says False without an encoder
        return self.features(work_lightness(grey))

    def __call__(
        self,
        frame: int,
        grey: np.ndarray,
        ab: np.ndarray | None,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """``frame``: its number in the film; ``grey``: H x W uint8; ``ab``: the model's
        H x W x 2 prediction (None where ``needs_model`` says it is not read); ``features``:
        ``frame_features(grey)`` if computed already -> the output ab. The state always holds
        frame - 1 (or nothing)."""
        self._given_features = features
        previous = self.state
        if previous is not None and self.shot_of(frame - 1) != self.shot_of(frame):
            self.scene_cuts += 1
            previous = None
        key = self.nearest_keyframe(frame)
        if key is None:
            assert ab is not None  # needs_model asks for it on every frame of such shots
            result = self._unkeyed(grey, ab, previous)
        else:
            result = self._keyed(self.colours(key), frame, grey, ab, previous)
        self.state = PropagatorState(grey, result)
        return result

    def _carried(
        self,
        grey: np.ndarray,
        source_grey: np.ndarray,
        source_ab: np.ndarray,
        estimate: flow.FlowEstimator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``source_ab`` warped onto ``grey`` along the flow, and the trust of each pixel."""
        estimate = estimate or self.estimate
        backward = estimate(grey, source_grey)
        forward = estimate(source_grey, grey)
        trusted = flow.reliable(grey, source_grey, backward, forward)
        return trust_mask(trusted), flow.warp(source_ab, backward)

    def _unkeyed(
        self, grey: np.ndarray, ab: np.ndarray, previous: PropagatorState | None
    ) -> np.ndarray:
        base = ab if self.reference is None else self._transferred(self.reference, grey, ab)
        if self.strength == 0 or previous is None:
            return base
        trust, carried = self._carried(grey, previous.grey, previous.ab)
        weight = trust * self.strength  # as FlowPropagator, to the last bit
        return base + weight[..., None] * (carried - base)

    def _keyed(
        self,
        key: KeyColours,
        frame: int,
        grey: np.ndarray,
        ab: np.ndarray | None,
        previous: PropagatorState | None,
    ) -> np.ndarray:
        if key.grey.shape != grey.shape:
            raise ColorizerError(
                f"keyframe of frame {key.frame} is {key.grey.shape} at work size, the film "
                f"{grey.shape}"
            )
        if frame == key.frame:
            return key.ab.copy()
        if previous is None:  # a segment's first frame: the direct flow alone
            return self._carried(grey, key.grey, key.ab)[1]
        # The two flows in two threads (OpenCV lets go of the GIL; each thread has its own
        # estimator): the same result, sooner, on the stage that sets the film's pace.
        direct_job = self._pool.submit(self._carried, grey, key.grey, key.ab, self._direct_estimate)
        # Where neither flow is trusted the chained warp still carries the keyframe's colours
        # along the best motion estimate: measured far closer to the truth than the model's
        # (flat sky and noise fail the forward-backward test without being wrong).
        chained_trust, chained = self._carried(grey, previous.grey, previous.ab)
        direct_trust, direct = direct_job.result()
        base = chained
        if key.exemplar is not None and ab is not None and frame % EXEMPLAR_EVERY == 0:
            base = self._corrected(key.exemplar, grey, ab, chained, direct_trust, chained_trust)
        return base + direct_trust[..., None] * (direct - base)

    def _corrected(
        self,
        exemplar: Exemplar,
        grey: np.ndarray,
        ab: np.ndarray,
        chained: np.ndarray,
        direct_trust: np.ndarray,
        chained_trust: np.ndarray,
    ) -> np.ndarray:
        """The chain corrected by exemplar transfer where the direct flow does not reach, when
        enough of the frame is outside it to be worth an encoder pass: filled where the chain
        is not trusted either, corrected where it carries the model's colours (see the module)."""
        outside = 1 - direct_trust
        if float(outside.mean()) <= EXEMPLAR_UNCOVERED:
            return chained
        matched, confidence = self._match(exemplar, grey)
        novel = blend_by_confidence(matched, confidence, ab)
        uncovered = outside * (1 - chained_trust)
        base = chained + (NOVEL_SHARE * uncovered)[..., None] * (novel - chained)
        model_like = np.exp(-np.square(chained - ab).sum(axis=-1) / MODEL_LIKE_AB**2)
        correction = CORRECTION_SHARE * outside * chained_trust * confidence * model_like
        return base + correction[..., None] * (matched - base)

    def _match(self, exemplar: Exemplar, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exemplar's colours matched onto this frame, and the match's confidence, both at
        work size."""
        self.transfers += 1
        lightness = work_lightness(grey)
        features = self._given_features
        if features is None:
            features = self.frame_features(grey)
        matched, confidence = transfer(exemplar, features, lightness)
        return full_resolution_match(lightness, matched, confidence)

    def _transferred(self, exemplar: Exemplar, grey: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """The exemplar's colours where it matches this frame, the model's elsewhere."""
        if self.features is None:
            return ab
        return blend_by_confidence(*self._match(exemplar, grey), ab)


# --------------------------------------------------------------------------- on a film


class FilmKeyframePropagator(KeyframePropagator):
    """The engine over a film: frames named by their timestamps (as they are decoded)."""

    def __init__(self, shots: FilmShots, keyframes: Iterable[int], colours, **kwargs) -> None:
        super().__init__(shots.shot_of, keyframes, colours, **kwargs)
        self.shots = shots

    def at_pts(
        self, pts: int, grey: np.ndarray, ab: np.ndarray | None, features: np.ndarray | None
    ) -> np.ndarray:
        return self(self.shots.frame_of(pts), grey, ab, features)

    def needs_model_at(self, pts: int) -> bool:
        return self.needs_model(self.shots.frame_of(pts))

    def features_at(self, pts: int, grey: np.ndarray) -> np.ndarray | None:
        """The frame's encoder features when it may run exemplar transfer, else None."""
        if not self.wants_features(self.shots.frame_of(pts)):
            return None
        return self.frame_features(grey)


@dataclass(frozen=True)
class KeyedSettings:
    """What the engine takes of ``VideoOptions`` (which it cannot import: it imports this)."""

    keyframes: str | None
    reference: str | None
    consistency: float
    flow: str
    work_side: int


def film_propagator(
    colorizer: Colorizer, info: SourceInfo, options: KeyedSettings, work: WorkFolder
) -> FilmKeyframePropagator:
    """The engine for ``colorize_video`` with ``options.keyframes`` / ``options.reference``:
    the shots from the work folder (the pre-pass runs once per job, whoever comes first), the
    keyframes read and checked now, each prepared when its shot first needs it."""
    work_hw = flow.work_shape(info.height, info.width, options.work_side)
    shots = _cached_shots(info, work, work_hw)
    features = _encoder(colorizer, options.reference)
    # Checked now, read when their shot comes: a long film's keyframes at full size would not
    # all fit in memory, their work-size colours do.
    planned = [] if options.keyframes is None else plan_keyframes(options.keyframes, info)
    keyframes = {key.frame: key for key in planned}
    for key in planned:
        if key.frame >= len(shots.pts):
            raise ColorizerError(
                f"{key.entry.where}: frame {key.frame} is past the film's {len(shots.pts)} frames"
            )
    prepared: dict[int, KeyColours] = {}

    def colours(frame: int) -> KeyColours:
        if frame not in prepared:
            rgb = _key_rgb(colorizer, info, shots, keyframes[frame].load(info))
            prepared[frame] = key_colours(frame, rgb, work_hw, features)
        return prepared[frame]

    reference = None
    if options.reference is not None:
        assert features is not None  # _encoder refused a model without one
        reference = reference_exemplar(options.reference, features)
    return FilmKeyframePropagator(
        shots,
        keyframes,
        colours,
        strength=options.consistency,
        method=options.flow,
        reference=reference,
        features=features,
    )


def _cached_shots(info: SourceInfo, work: WorkFolder, work_hw: tuple[int, int]) -> FilmShots:
    saved = work.shots()
    if saved is not None:
        return FilmShots.from_json(saved)
    shots = film_shots(info, work_hw)
    work.save_shots(shots.to_json())
    return shots


def _encoder(colorizer: Colorizer, reference: str | None) -> Features | None:
    """The model's encoder for exemplar transfer; None without one (keyframes then rely on the
    flow and the model alone), an error when a reference photo needs it."""
    from colorizer.pipeline import encoder_refusal

    refusal = encoder_refusal(colorizer.name, colorizer.arch)
    if refusal is None:
        return colorizer.encoder_features
    if reference is not None:
        raise ColorizerError(f"{reference}: a reference photo needs {refusal}")
    return None


def _key_rgb(colorizer: Colorizer, info: SourceInfo, shots: FilmShots, key: Keyframe):
    """A keyframe's colour frame: given, or the film's grey frame coloured by the model under
    the keyframe's point hints."""
    if key.rgb is not None:
        return key.rgb
    from colorizer.guidance.core import Guidance

    after = shots.pts[key.frame - 1] if key.frame else None
    frames = read_frames(info, Position(after_pts=after, first_index=key.frame), None)
    try:
        frame = next(frames)
    finally:
        frames.close()
    lightness = planes.lightness_u8(frame.rgb)
    ab = colorizer.guided_ab(lightness, Guidance(points=key.points))
    return planes.compose(lightness, ab)
