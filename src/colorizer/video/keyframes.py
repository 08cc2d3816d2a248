"""Keyframes of a film: colour frames or point hints tied to a frame, and a colour reference.

``colorize video --keyframes SPEC`` takes one of

* a JSON manifest (``*.json``)::

      {"keyframes": [
          {"time": 0.0, "image": "shot1.png"},
          {"frame": 240, "hints": [{"x": 100, "y": 50, "color": "#8a2be2"}]}
      ]}

  each entry exactly one of ``time`` (seconds from the film's first frame) or ``frame``
  (0-based), and exactly one of ``image`` (a colour frame of the film's size, its path relative
  to the manifest) or ``hints`` (the point hints ``colorize image --hints FILE`` reads);
* one image, or a folder of images, named by position: ``f000240.png`` is frame 240,
  ``t12.5.png`` the frame shown at 12.5 s. In a folder, ``f000240.json`` / ``t12.5.json`` hold
  point hints for that frame; other files (no image or JSON suffix, hidden) are left alone.

A time is the frame on screen then, by the film's own timestamps (``source``: the container's
packets, nothing decoded); a time up to ``TIME_SLACK_S`` before a frame's start counts as that
frame, as players show times rounded to the millisecond. Every problem is a ``ColorizerError``
naming the file (and the manifest entry) before any frame is colorized.

``keyframes_digest`` is a SHA-256 of the bytes of every file the keyframes and the reference
come from, for the work folder's job record: a rerun with changed keyframes reuses no part made
with the old ones.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from colorizer import imageio, planes
from colorizer.errors import ColorizerError
from colorizer.guidance import reference
from colorizer.guidance.hints import PointHint, check_inside, parse_hints
from colorizer.video.source import SourceInfo, VideoReadError, open_input, video_stream

MANIFEST_SUFFIX = ".json"
ENTRY_KEYS = frozenset({"time", "frame", "image", "hints"})
TIME_SLACK_S = Fraction(1, 1000)
# An image "has colour" when some part of it, averaged over a few pixels, has a chroma of at
# least this (Lab ab units). Measured: grey photos saved as RGB JPEG reach 0.1; the dullest frame
# of the shared clips (every 10th frame) 5.5 (a parking lot from above), most 20 to 90. Laxer
# than ``imageio``'s ``looks_colour``, which refuses toned prints too (those reach 4 to 5 here):
# a keyframe of a nearly grey shot is still the user's choice.
MIN_CHROMA = 2.0
_COLOUR_SIDE = 256
_NAME = re.compile(r"^(?P<kind>[ft])(?P<value>.*)$")
_FRAME_NUMBER = re.compile(r"^\d+$")
_SECONDS = re.compile(r"^\d+(\.\d+)?$")
_NAMING = "name keyframes fNNNNNN.png (frame number) or tSECONDS.png (e.g. t12.5.png)"


class KeyframeError(ColorizerError):
    """A keyframe, its manifest or the colour reference cannot be used."""


@dataclass(frozen=True)
class Keyframe:
    """A frame whose colours the user gave: a colour frame, or point hints on the grey frame."""

    frame: int  # 0-based frame number in the film
    source: str  # the file (and entry) it came from, for messages
    rgb: np.ndarray | None = None  # a colour frame, H x W x 3 float32 sRGB 0..1, film size
    points: tuple[PointHint, ...] = ()  # or point hints on the grey frame, in film pixels


@dataclass(frozen=True)
class KeyframeEntry:
    """One keyframe as its file states it, before the film or the image is looked at."""

    where: str  # for messages: "shots.json: keyframe 2" or "keys/f000240.png"
    time: Fraction | None = None  # seconds from the film's first frame
    frame: int | None = None
    image: Path | None = None
    hints: tuple[PointHint, ...] | None = None
    name: str = ""  # the image as the manifest names it (the digest's name for it)


@dataclass(frozen=True)
class PlannedKeyframe:
    """A keyframe placed on the film and checked, its image not read yet (``load`` reads it)."""

    frame: int
    entry: KeyframeEntry

    def load(self, info: SourceInfo) -> Keyframe:
        entry = self.entry
        if entry.image is None:
            return Keyframe(self.frame, entry.where, points=entry.hints or ())
        rgb = read_colour_image(entry.image, entry.where, "keyframe")
        height, width = rgb.shape[:2]
        if (width, height) != (info.width, info.height):
            raise KeyframeError(
                f"{entry.where} is {width}x{height}; the film is {info.width}x{info.height}"
            )
        return Keyframe(self.frame, entry.where, rgb=rgb)


def load_keyframes(spec: str | Path, info: SourceInfo) -> list[Keyframe]:
    """The keyframes of ``spec`` (a manifest, an image or a folder) on the film ``info``,
    sorted by frame. ``KeyframeError`` names the file, the entry and the problem."""
    return [planned.load(info) for planned in plan_keyframes(spec, info)]


def plan_keyframes(spec: str | Path, info: SourceInfo) -> list[PlannedKeyframe]:
    """Everything ``load_keyframes`` checks except the images' pixels, sorted by frame: the
    server reads the images one at a time within its memory budget."""
    entries = keyframe_entries(spec)
    if not entries:
        raise KeyframeError(f"{spec}: holds no keyframes")
    timeline = Timeline.of(info)
    planned = sorted(
        (PlannedKeyframe(timeline.frame_of(entry), entry) for entry in entries),
        key=lambda p: p.frame,
    )
    for before, after in itertools.pairwise(planned):
        if before.frame == after.frame:
            raise KeyframeError(
                f"{after.entry.where}: a second keyframe on frame {after.frame} "
                f"(also {before.entry.where})"
            )
    for item in planned:
        if item.entry.hints is not None:
            try:
                check_inside(
                    item.entry.hints, info.width, info.height, f"{item.entry.where}: point"
                )
            except ColorizerError as exc:
                raise KeyframeError(str(exc)) from None
    return planned


def keyframe_entries(spec: str | Path) -> list[KeyframeEntry]:
    """The entries of a manifest, an image named by position or a folder of them."""
    path = Path(spec)
    if path.is_dir():
        return [_named_entry(item) for item in _named_files(path)]
    if not path.is_file():
        raise KeyframeError(f"{path}: no such keyframe file or folder")
    if path.suffix.lower() == MANIFEST_SUFFIX:
        return read_manifest(_read_text(path), path.parent, str(path))
    if path.suffix.lower() not in imageio.IMAGE_SUFFIXES:
        raise KeyframeError(
            f"{path}: not a keyframe manifest (.json), an image or a folder of images"
        )
    return [_named_entry(path)]


# --------------------------------------------------------------------------- the manifest


def read_manifest(text: str, folder: Path, source: str) -> list[KeyframeEntry]:
    """The entries of a manifest's JSON ``text``; ``image`` paths are relative to ``folder``,
    messages name ``source``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KeyframeError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "keyframes" not in data:
        raise KeyframeError(f'{source}: expected an object {{"keyframes": [...]}}')
    unknown = set(data) - {"keyframes"}
    if unknown:
        raise KeyframeError(f"{source}: unknown keys {sorted(unknown)} (only 'keyframes')")
    items = data["keyframes"]
    if not isinstance(items, list):
        raise KeyframeError(f"{source}: 'keyframes' must be a list of keyframes")
    return [
        _manifest_entry(item, folder, f"{source}: keyframe {i}") for i, item in enumerate(items)
    ]


def _manifest_entry(item, folder: Path, where: str) -> KeyframeEntry:
    if not isinstance(item, dict):
        raise KeyframeError(
            f'{where}: expected an object such as {{"time": 0.0, "image": "shot1.png"}}'
        )
    unknown = set(item) - ENTRY_KEYS
    if unknown:
        raise KeyframeError(f"{where}: unknown keys {sorted(unknown)} (time, frame, image, hints)")
    if ("time" in item) == ("frame" in item):
        raise KeyframeError(f"{where}: give exactly one of 'time' (seconds) and 'frame'")
    if ("image" in item) == ("hints" in item):
        raise KeyframeError(f"{where}: give exactly one of 'image' and 'hints'")
    time = _seconds(item["time"], where) if "time" in item else None
    frame = _frame_number(item["frame"], where) if "frame" in item else None
    if "hints" in item:
        hints = _hints(item["hints"], f"{where}: hints")
        return KeyframeEntry(where, time, frame, hints=hints)
    name = item["image"]
    if not isinstance(name, str) or not name.strip():
        raise KeyframeError(f"{where}: 'image' must be a file name, got {name!r}")
    return KeyframeEntry(f"{where} ({name})", time, frame, image=folder / name, name=name)


def _seconds(value, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KeyframeError(f"{where}: 'time' must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise KeyframeError(f"{where}: 'time' must be 0 or more seconds, got {value!r}")
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _frame_number(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KeyframeError(f"{where}: 'frame' must be a whole number, got {value!r}")
    if value < 0:
        raise KeyframeError(f"{where}: 'frame' must be 0 or more, got {value}")
    return value


# ---------------------------------------------------------------- files named by position


def _named_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that keyframes come from: images and JSON hint files."""
    try:
        children = sorted(folder.iterdir())
    except OSError as exc:
        raise KeyframeError(f"{folder}: cannot read the folder ({exc.strerror})") from None
    suffixes = imageio.IMAGE_SUFFIXES | {MANIFEST_SUFFIX}
    return [
        child
        for child in children
        if child.is_file() and not child.name.startswith(".") and child.suffix.lower() in suffixes
    ]


def _named_entry(path: Path) -> KeyframeEntry:
    """A file named ``fNNNNNN`` (frame) or ``tSECONDS`` (time): an image, or point hints."""
    match = _NAME.match(path.stem)
    if match is None:
        raise KeyframeError(f"{path}: not named by position; {_NAMING}")
    kind, value = match["kind"], match["value"]
    time = frame = None
    if kind == "f":
        if not _FRAME_NUMBER.match(value):
            raise KeyframeError(f"{path}: {value!r} is not a frame number; {_NAMING}")
        frame = int(value)
    else:
        if value.startswith("-") and _SECONDS.match(value[1:]):
            raise KeyframeError(f"{path}: a negative time ({value} s); times start at 0")
        if not _SECONDS.match(value):
            raise KeyframeError(f"{path}: {value!r} is not a time in seconds; {_NAMING}")
        time = Fraction(value)
    if path.suffix.lower() == MANIFEST_SUFFIX:
        hints = _hints(_read_text(path), str(path))
        return KeyframeEntry(str(path), time, frame, hints=hints)
    return KeyframeEntry(str(path), time, frame, image=path, name=path.name)


def _hints(data, source: str) -> tuple[PointHint, ...]:
    """Point hints in the format ``colorize image --hints FILE`` reads."""
    try:
        return tuple(parse_hints(data, source=source))
    except ColorizerError as exc:
        raise KeyframeError(str(exc)) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyframeError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise KeyframeError(f"{path}: not a text (UTF-8 JSON) file") from None


# --------------------------------------------------------------------------- the film's clock


@dataclass(frozen=True)
class Timeline:
    """When each frame of the film is shown, in seconds from its first frame."""

    starts: tuple[Fraction, ...]
    end: Fraction  # when the last frame stops being shown

    @classmethod
    def of(cls, info: SourceInfo) -> Timeline:
        stamps = _presentation_stamps(info)
        if not stamps:
            raise VideoReadError(f"{info.path}: the video stream holds no frames")
        first = stamps[0]
        starts = tuple((pts - first) * info.time_base for pts in stamps)
        return cls(starts, starts[-1] + info.frame_duration() * info.time_base)

    def frame_of(self, entry: KeyframeEntry) -> int:
        count = len(self.starts)
        if entry.frame is not None:
            if entry.frame >= count:
                raise KeyframeError(
                    f"{entry.where}: frame {entry.frame} is outside the film "
                    f"(it has {count} frames, 0 to {count - 1})"
                )
            return entry.frame
        assert entry.time is not None  # an entry has a time or a frame
        if entry.time >= self.end:
            raise KeyframeError(
                f"{entry.where}: {float(entry.time):g} s is past the end of the film "
                f"({float(self.end):.3f} s)"
            )
        return max(0, bisect.bisect_right(self.starts, entry.time + TIME_SLACK_S) - 1)


def _presentation_stamps(info: SourceInfo) -> list[int]:
    """Every frame's timestamp from the container's packets, in presentation order; packets
    without one get the nominal rate's clock, as decoding gives them (``source._frame_pts``)."""
    try:
        with open_input(info.path) as container:
            stream = video_stream(container, info.path)
            raw = [packet.pts for packet in container.demux(stream) if packet.size]
    except av.FFmpegError as exc:
        raise VideoReadError(f"{info.path}: cannot read the video ({exc})") from exc
    stamps: list[int] = []
    for pts in raw:
        stamps.append(
            pts if pts is not None else (stamps[-1] + info.frame_duration() if stamps else 0)
        )
    return sorted(stamps)


# ---------------------------------------------------------------- images and the reference


def read_colour_image(path: Path, where: str, role: str) -> np.ndarray:
    """An image with colour as H x W x 3 float32 sRGB (upright); ``where`` names it."""
    try:
        picture = imageio.read_image(path)
    except ColorizerError as exc:
        message = str(exc).replace(f"image file '{path}'", "the image")
        raise KeyframeError(f"{where}: {message}") from None
    if not has_colour(picture.rgb):
        raise KeyframeError(
            f"{where}: the image has no colour (it is grey); a {role} must be a colour image"
        )
    return picture.rgb


def read_reference(path: str | Path) -> np.ndarray:
    """The ``--reference`` photo (any size) as H x W x 3 float32 sRGB, by the rule a photo's
    ``--reference`` follows (``guidance.reference.read_reference``: real colour, not grey nor
    one tint such as sepia), so a film and an album accept the same photos. A keyframe
    (``read_colour_image``) may be nearly grey: it is that shot's own colour."""
    path = Path(path)
    if not path.is_file():
        raise KeyframeError(f"{path}: no such reference photo")
    try:
        return reference.read_reference(path)
    except ColorizerError as exc:
        raise KeyframeError(str(exc)) from None


def has_colour(rgb: np.ndarray) -> bool:
    """Whether some part of the image has a chroma of ``MIN_CHROMA`` or more, measured on a
    copy shrunk to ``_COLOUR_SIDE`` pixels by area (which averages the noise away)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, _COLOUR_SIDE / max(height, width))
    small: np.ndarray = rgb.astype(np.float32)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    lab = planes.rgb_to_lab_image(small)
    return bool(np.hypot(lab[..., 1], lab[..., 2]).max() >= MIN_CHROMA)


# --------------------------------------------------------------------------- the digest


def keyframes_digest(spec: str | Path | None, reference: str | Path | None) -> str | None:
    """SHA-256 over the bytes (and names) of every file the keyframes and the reference come
    from; None when neither is given."""
    if spec is None and reference is None:
        return None
    digest = hashlib.sha256()
    for role, name, path in _digest_files(spec, reference):
        digest.update(f"{role}\0{name}\0".encode())
        _hash_file(digest, path)
    return digest.hexdigest()


def _digest_files(
    spec: str | Path | None, reference: str | Path | None
) -> Iterator[tuple[str, str, Path | None]]:
    if spec is not None:
        path = Path(spec)
        if path.is_file():
            yield "keyframes", path.name, path
        images = _image_entries(keyframe_entries(path))
        yield from (("image", entry.name, entry.image) for entry in images)
        if path.is_dir():
            hints = (p for p in _named_files(path) if p.suffix.lower() == MANIFEST_SUFFIX)
            yield from (("hints", p.name, p) for p in hints)
    if reference is not None:
        yield "reference", Path(reference).name, Path(reference)


def _image_entries(entries: Iterable[KeyframeEntry]) -> Iterator[KeyframeEntry]:
    return (entry for entry in entries if entry.image is not None)


def _hash_file(digest, path: Path | None) -> None:
    assert path is not None  # _image_entries keeps the entries with an image
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise KeyframeError(f"{path}: cannot read ({exc.strerror})") from None
