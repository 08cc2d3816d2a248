"""Reading the input film with PyAV: checks with clear errors, stream facts, frames in order.

Every error names the file. Frames come out in presentation order with their own timestamps
(``pts``, in the video stream's time base) and durations, so the output can keep them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from colorizer.errors import ColorizerError


class VideoReadError(ColorizerError):
    """The input cannot be read as a video: missing, corrupt, or without a video stream."""


@dataclass(frozen=True)
class SourceInfo:
    """What the output must match: the video stream's geometry, timing and colour tags."""

    path: Path
    width: int
    height: int
    time_base: Fraction
    frame_rate: Fraction
    frame_count: int  # an estimate from the header; 0 when unknown
    duration_s: float
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    duration_is_video: bool = True  # False: the container's, which may count longer audio

    def frame_duration(self) -> int:
        """One frame period in time-base units (for frames that carry no duration)."""
        return max(1, round(1 / (self.frame_rate * self.time_base)))


@dataclass
class SourceFrame:
    """One decoded frame: its position, timing and sRGB pixels (H x W x 3 uint8)."""

    index: int
    pts: int
    duration: int
    rgb: np.ndarray


def open_input(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    try:
        return av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoReadError(f"{path}: not a readable video file ({_reason(exc)})") from exc


def video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "no streams at all"
        raise VideoReadError(f"{path}: has no video stream (found {kinds})")
    return container.streams.video[0]


def probe(path: Path) -> SourceInfo:
    """Check that ``path`` is a readable video and describe its video stream.

    Decodes the first frame, so a file whose header opens but whose video cannot be decoded
    fails here, before any work starts.
    """
    with open_input(path) as container:
        stream = video_stream(container, path)
        _refuse_still_image(container, stream, path)
        context = stream.codec_context
        first = next(decode(container, stream, path), None)
        if first is None:
            raise VideoReadError(f"{path}: the video stream holds no decodable frame")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = _duration_seconds(container, stream)
        return SourceInfo(
            path=path,
            width=first.width,
            height=first.height,
            time_base=stream.time_base or Fraction(1, 90000),
            frame_rate=Fraction(rate),
            frame_count=stream.frames or (round(duration * rate) if math.isfinite(duration) else 0),
            duration_s=duration,
            colorspace=context.colorspace,
            color_range=context.color_range,
            color_primaries=context.color_primaries,
            color_trc=context.color_trc,
            duration_is_video=bool(stream.duration and stream.time_base),
        )


def _refuse_still_image(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> None:
    """A photo opens as a one-frame "video" (FFmpeg's image demuxers): say what it is instead."""
    name = container.format.name
    still = name == "image2" or name.endswith("_pipe")
    if name == "gif" and stream.frames <= 1:
        still = True
    if still:
        kind = {"mjpeg": "JPEG"}.get(stream.codec_context.name, stream.codec_context.name.upper())
        raise VideoReadError(
            f"{path} is not a video: it is a still image ({kind}); "
            "colorize photos with `colorize image`"
        )


def _duration_seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else math.nan


def decode(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    """Frames of ``stream`` in order; a decoding error or a damaged frame is a clear error."""
    stream.thread_type = "AUTO"
    try:
        for frame in container.decode(stream):
            if frame.is_corrupt:
                raise VideoReadError(f"{path}: damaged video frame at {_when(frame)}")
            yield frame
    except av.FFmpegError as exc:
        raise VideoReadError(f"{path}: cannot decode the video ({_reason(exc)})") from exc


def _when(frame: av.VideoFrame) -> str:
    return "an unknown time" if frame.time is None else f"{frame.time:.3f} s"


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def frame_timestamps(info: SourceInfo, start_s: float | None, end_s: float | None) -> list[int]:
    """The presentation timestamps of the frames ``read_frames`` gives from ``start_s`` to
    ``end_s``, in order, from the container's packets (nothing is decoded)."""
    with open_input(info.path) as container:
        stream = video_stream(container, info.path)
        try:
            stamps = [p.pts for p in container.demux(stream) if p.size]
        except av.FFmpegError as exc:
            raise VideoReadError(f"{info.path}: cannot read the video ({_reason(exc)})") from exc
    if None in stamps:
        raise VideoReadError(
            f"{info.path}: some video packets carry no timestamp, so its segments cannot be "
            "found without decoding; colorize it with the local engine"
        )
    low = Fraction(start_s or 0) / info.time_base
    high = None if end_s is None else Fraction(end_s) / info.time_base
    return sorted(
        pts for pts in stamps if pts is not None and pts >= low and (high is None or pts < high)
    )


@dataclass(frozen=True)
class Position:
    """Where decoding starts: after frame ``after_pts`` (resume) or at ``start_s`` (trim).

    ``first_index`` is the index the first frame delivered gets.
    """

    start_s: float = 0.0
    after_pts: int | None = None
    first_index: int = 0


def read_frames(
    info: SourceInfo, position: Position, end_s: float | None
) -> Generator[SourceFrame, None, None]:
    """Decoded frames from ``position`` until ``end_s`` (exclusive), as sRGB arrays.

    Seeks to the nearest keyframe before the position when the container allows, and decodes
    from the start instead when the seek lands after it.
    """
    for from_start in (False, True):
        with open_input(info.path) as container:
            stream = video_stream(container, info.path)
            frames = _frames_from(container, stream, info, position, end_s, seek=not from_start)
            first = next(frames, None)
            if first is None:
                return
            if first is _SEEK_MISSED:
                continue
            yield first
            yield from frames
            return


_SEEK_MISSED = object()


def _frames_from(container, stream, info: SourceInfo, position: Position, end_s, seek: bool):
    target = _seek_target(info, position)
    seeked = seek and target is not None and target > 0
    if seeked:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    index = position.first_index
    previous_pts = None
    shown_until = None  # end of the last frame, in time-base units
    for number, frame in enumerate(decode(container, stream, info.path)):
        pts = _frame_pts(frame, previous_pts, info)
        previous_pts = pts
        if number == 0 and seeked and (frame.pts is None or not _at_or_before(pts, position, info)):
            yield _SEEK_MISSED
            return
        if not _reached(pts, position, info):
            continue
        if end_s is not None and pts * info.time_base >= end_s:
            return
        duration = frame.duration or info.frame_duration()
        shown_until = pts + duration
        yield SourceFrame(index, pts, duration, frame.to_ndarray(format="rgb24"))
        index += 1
    if shown_until is not None:
        _check_complete(info, shown_until * info.time_base, end_s)


# Frames may stop this many frame periods, or this share of the stated duration, before it ends;
# more when only the container states a duration (its audio may run longer than the video).
_MISSING_PERIODS = 3
_MISSING_SHARE = 0.05
_MISSING_SHARE_CONTAINER = 0.25


def _check_complete(info: SourceInfo, shown_until: Fraction, end_s: float | None) -> None:
    """A video that stops well before the container's stated duration lost data: an error, not
    a shorter film."""
    expected = info.duration_s if end_s is None else min(end_s, info.duration_s)
    if math.isnan(expected):
        return
    share = _MISSING_SHARE if info.duration_is_video else _MISSING_SHARE_CONTAINER
    periods: Fraction | float = _MISSING_PERIODS / info.frame_rate  # max() may pick either
    slack = max(periods, share * expected)
    if shown_until < expected - float(slack):
        raise VideoReadError(
            f"{info.path}: damaged video: its frames stop at {float(shown_until):.2f} s "
            f"of {expected:.2f} s"
        )


def _seek_target(info: SourceInfo, position: Position) -> int | None:
    if position.after_pts is not None:
        return position.after_pts
    if position.start_s > 0:
        return math.floor(position.start_s / info.time_base)
    return None


def _frame_pts(frame: av.VideoFrame, previous_pts: int | None, info: SourceInfo) -> int:
    # Streams without timestamps get a steady clock at the nominal rate.
    if frame.pts is not None:
        return frame.pts
    return 0 if previous_pts is None else previous_pts + info.frame_duration()


def _at_or_before(pts: int, position: Position, info: SourceInfo) -> bool:
    if position.after_pts is not None:
        return pts <= position.after_pts
    return pts * info.time_base <= position.start_s


def _reached(pts: int, position: Position, info: SourceInfo) -> bool:
    if position.after_pts is not None:
        return pts > position.after_pts
    return pts * info.time_base >= position.start_s
