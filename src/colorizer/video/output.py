"""Writing the colorized film: encoded segments, then one remux with the original audio.

Video is encoded in segments, each a complete file with its own encoder (so each starts on a
keyframe and a finished segment never changes). The final file is a remux: the segments' video
packets and the source's audio and subtitle packets, copied unchanged, merged by time.

Segments are QuickTime (.mov) files: unlike Matroska (millisecond clock) or NUT (it shifts
timestamps), the QuickTime muxer keeps every pts and dts exactly in the source's time base.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np

from colorizer import files
from colorizer.errors import ColorizerError
from colorizer.video.source import SourceInfo, open_input

log = logging.getLogger(__name__)

# Colour matrices libswscale converts with; the codes equal FFmpeg's AVColorSpace values.
_SWS_COLORSPACES = {1, 4, 5, 6, 7, 9}
_JPEG_RANGE = 2
_MPEG_RANGE = 1
_CHROMA_SUBSAMPLED = {"yuv420p", "yuv422p", "nv12", "yuv420p10le", "yuv422p10le"}
_FASTSTART_FORMATS = {"mp4", "mov"}
# The tag of the work folder's temp files (``colorizer.files.temp_path``): a file being written.
PARTIAL = "partial"


class VideoWriteError(ColorizerError):
    """The output cannot be written (unwritable place, unknown codec or container)."""


@dataclass(frozen=True)
class EncoderSettings:
    """``colorize video``'s encoder options; ``None`` leaves the codec's own default."""

    codec: str = "libx264"
    crf: float | None = 18
    preset: str | None = "veryfast"  # 2.45x medium's speed, same fidelity (bench_x264.py)
    pix_fmt: str = "yuv420p"


# Options that make an encoder's output depend on its input alone. x264's macroblock-tree rate
# control (on in every preset but ultrafast) reads memory it never initialised in its AVX-512 code
# for some small frame sizes (96x64, 160x64, 192x128, 320x192 but not 128x64, 640x384 or 1920x1080
# on an AMD EPYC with AVX-512): the same frames then encode differently from run to run, and a
# resumed film's segments would not match an uninterrupted run's. Without MB-tree, x264 (and its
# threads: frame and sliced threading are deterministic) gives the same bytes every run.
_DETERMINISTIC = {"libx264": {"mbtree": "0"}}


def encoder_options(settings: EncoderSettings) -> dict[str, str]:
    """--crf and --preset as the codec's private options, where it has them, and the options
    that make the codec deterministic (``_DETERMINISTIC``)."""
    try:
        codec = av.codec.Codec(settings.codec, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise VideoWriteError(f"unknown video encoder {settings.codec!r} ({exc})") from exc
    if codec.type != "video":
        raise VideoWriteError(f"{settings.codec!r} is an {codec.type} encoder, not a video one")
    context = codec.create("video")
    offered = {option.name for option in context.supported_options.private}
    wanted = {"crf": settings.crf, "preset": settings.preset}
    options = {
        name: value
        for name, value in _DETERMINISTIC.get(context.codec.name, {}).items()
        if name in offered
    }
    for name, value in wanted.items():
        if value is None:
            continue
        if name in offered:
            options[name] = f"{value:g}" if isinstance(value, float) else str(value)
        else:
            log.warning("encoder %s has no %s option; --%s ignored", settings.codec, name, name)
    return options


def pixel_format(settings: EncoderSettings, info: SourceInfo) -> str:
    # Halved chroma needs even sides; rather than crop or pad, keep full chroma.
    odd = info.width % 2 or info.height % 2
    if odd and settings.pix_fmt in _CHROMA_SUBSAMPLED:
        log.warning(
            "%s is %dx%d (odd size): encoding yuv444p instead of %s to keep every pixel",
            info.path,
            info.width,
            info.height,
            settings.pix_fmt,
        )
        return "yuv444p"
    return settings.pix_fmt


class SegmentWriter:
    """Encode frames into one segment file; it appears under its name only once complete."""

    def __init__(self, path: Path, info: SourceInfo, settings: EncoderSettings) -> None:
        self.path = path
        self.partial = files.temp_path(path, tag=PARTIAL)
        self.info = info
        self.container = av.open(str(self.partial), "w", format="mov")
        try:
            self.stream = self._add_stream(settings)
        except BaseException:
            self.abandon()
            raise
        # Keyed by pts; an encoded packet without one (None) keeps its own duration.
        self.durations: dict[int | None, int] = {}
        self.colorspace = info.colorspace if info.colorspace in _SWS_COLORSPACES else None
        self.color_range = _JPEG_RANGE if info.color_range == _JPEG_RANGE else _MPEG_RANGE

    def _add_stream(self, settings: EncoderSettings) -> av.VideoStream:
        info = self.info
        # The codec is named at run time, so the stubs cannot tell it is a video encoder.
        stream = cast(
            av.VideoStream,
            self.container.add_stream(
                settings.codec, rate=info.frame_rate, options=encoder_options(settings)
            ),
        )
        stream.width, stream.height = info.width, info.height
        stream.pix_fmt = pixel_format(settings, info)
        stream.time_base = info.time_base
        context = stream.codec_context
        context.time_base = info.time_base
        # Tag the output as the input was tagged, and convert with the same matrix and range.
        context.colorspace = info.colorspace
        context.color_range = info.color_range
        context.color_primaries = info.color_primaries
        context.color_trc = info.color_trc
        return stream

    def write(self, rgb: np.ndarray, pts: int, duration: int) -> None:
        """Encode one H x W x 3 uint8 sRGB frame shown at ``pts`` for ``duration``."""
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=self.stream.pix_fmt,
            dst_colorspace=self.colorspace,
            dst_color_range=self.color_range,
        )
        frame.pts, frame.time_base = pts, self.info.time_base
        self.durations[pts] = duration
        self._mux(self.stream.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        # Encoders drop frame durations; the last frame's sets the film's length, so restore them.
        for packet in packets:
            packet.duration = self.durations.pop(packet.pts, packet.duration)
            self.container.mux(packet)

    def finish(self) -> None:
        self._mux(self.stream.encode(None))
        self.container.close()
        files.commit(self.partial, self.path)

    def abandon(self) -> None:
        with contextlib.suppress(av.FFmpegError):  # a half-written segment goes anyway
            self.container.close()
        files.discard(self.partial)


# --------------------------------------------------------------------------- final remux


@dataclass(frozen=True)
class Trim:
    """The part of the source kept, [start_s, end_s) (``None``: no limit), and how far it moves
    so that a trimmed film starts at 0. Untrimmed, every packet is kept where it was.
    """

    start_s: float | None = None
    end_s: float | None = None
    shift_s: float = 0.0

    def keeps(self, seconds: float) -> bool:
        after_start = self.start_s is None or seconds >= self.start_s
        return after_start and (self.end_s is None or seconds < self.end_s)


def remux(info: SourceInfo, segments: list[Path], destination: Path, trim: Trim) -> None:
    """Write ``destination``: the segments' video, then the source's audio and subtitles
    (copied packet for packet), its container and stream metadata kept.
    """
    format_name = check_output_type(destination)
    options = {"movflags": "+faststart"} if format_name in _FASTSTART_FORMATS else {}
    with (
        open_input(info.path) as source,
        av.open(segments[0]) as first_segment,
        av.open(str(destination), "w", format=format_name, options=options) as output,
    ):
        output.metadata.update(_without_encoder(source.metadata))
        video = output.add_stream_from_template(first_segment.streams.video[0])
        video.time_base = info.time_base
        video.metadata.update(_without_encoder(source.streams.video[0].metadata))
        copied = _copy_streams(source, output, destination)
        packets = heapq.merge(
            _segment_packets(segments, video),
            _source_packets(source, copied, trim),
            key=_seconds,
        )
        for packet in packets:
            output.mux(packet)


def check_output_type(destination: Path) -> str:
    """The muxer for ``destination``'s suffix, or a clear error."""
    try:
        return av.format.ContainerFormat(_format_for_suffix(destination), "w").name
    except (ValueError, av.FFmpegError) as exc:
        raise VideoWriteError(f"{destination}: unknown container format ({exc})") from exc


def _format_for_suffix(destination: Path) -> str:
    formats = {
        ".mp4": "mp4",
        ".m4v": "mp4",
        ".mov": "mov",
        ".mkv": "matroska",
        ".webm": "webm",
        ".avi": "avi",
    }
    suffix = destination.suffix.lower()
    if suffix not in formats:
        known = ", ".join(formats)
        raise VideoWriteError(f"{destination}: unsupported output type {suffix!r}; use {known}")
    return formats[suffix]


def _without_encoder(metadata: dict) -> dict:
    # "encoder" names the program that wrote the source; the muxer writes the true one.
    return {k: v for k, v in metadata.items() if k.lower() != "encoder"}


def _copy_streams(source, output, destination: Path) -> dict[int, av.stream.Stream]:
    """Audio and subtitle streams the output container can hold: source index -> new stream."""
    copied = {}
    for stream in source.streams:
        if stream.type not in ("audio", "subtitle"):
            continue
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        if codec not in output.supported_codecs:
            log.warning(
                "%s cannot hold %s stream #%d (%s); it is left out",
                destination,
                stream.type,
                stream.index,
                codec,
            )
            continue
        copy = output.add_stream_from_template(stream)
        copy.time_base = stream.time_base
        copy.metadata.update(_without_encoder(stream.metadata))
        copy.disposition = stream.disposition
        copied[stream.index] = copy
    return copied


def _segment_packets(segments: list[Path], video: av.VideoStream) -> Iterator[av.Packet]:
    for path in segments:
        with av.open(str(path)) as segment:
            for packet in segment.demux(segment.streams.video[0]):
                if packet.size:
                    packet.stream = video
                    yield packet


def _source_packets(source, copied: dict, trim: Trim) -> Iterator[av.Packet]:
    if not copied:
        return
    streams = [source.streams[index] for index in copied]
    for packet in source.demux(streams):
        if not packet.size or packet.pts is None:
            continue
        if not trim.keeps(float(packet.pts * packet.time_base)):
            continue
        if trim.shift_s:
            shift = round(trim.shift_s / packet.time_base)
            packet.pts -= shift
            packet.dts = None if packet.dts is None else packet.dts - shift
        packet.stream = copied[packet.stream_index]
        yield packet


def _seconds(packet: av.Packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    assert stamp is not None  # source packets without pts are skipped; segments all have one
    return float(stamp * packet.time_base)
