"""Helpers for the video tests: a synthetic clip, its frames and packets, the kill of a run.

Plain functions (the fixtures are in tests/video/conftest.py); the server and cluster tests
write their clips with them too.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from colorizer.video import VideoOptions
from colorizer.video import output as video_output

FPS = 12
FRAMES = 24
WIDTH, HEIGHT = 96, 64
SAMPLE_RATE = 16000


def moving_shapes(index: int) -> np.ndarray:
    """A grey field with a red block moving right and a green block moving left."""
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    frame[10:30, 2 * index : 2 * index + 20] = (220, 40, 40)
    frame[35:55, 60 - index : 80 - index] = (40, 200, 60)
    return frame


def write_clip(path: Path, *, audio: bool = True, video: bool = True) -> Path:
    """A small H.264 + AAC (440 Hz sine) MP4 with a title, made with PyAV.

    Both streams are added before anything is muxed: the header is written with the first
    packet, and a stream added after it has no time base (PyAV: "Cannot rebase to zero time").
    """
    with av.open(str(path), "w") as container:
        container.metadata["title"] = "synthetic test clip"
        picture = video_stream(container) if video else None
        sound = _audio_stream(container) if audio else None
        if picture is not None:
            write_video(container, picture)
        if sound is not None:
            _write_tone(container, sound)
    return path


def video_stream(container):
    stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    return stream


def _audio_stream(container):
    stream = container.add_stream("aac", rate=SAMPLE_RATE)
    stream.layout = "mono"
    return stream


def write_video(container, stream) -> None:
    for index in range(FRAMES):
        frame = av.VideoFrame.from_ndarray(moving_shapes(index), format="rgb24")
        frame.pts, frame.time_base = index, Fraction(1, FPS)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _write_tone(container, stream) -> None:
    samples = FRAMES * SAMPLE_RATE // FPS
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
    for start in range(0, samples, 1024):
        frame = av.AudioFrame.from_ndarray(
            tone[None, start : start + 1024].copy(), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def decoded_frames(path: Path) -> list[tuple[int, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[int, int, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(p.pts, p.duration, bytes(p)) for p in container.demux(stream) if p.size]


OPTIONS = VideoOptions(segment_seconds=0.5, batch_size=4)


def kill_at_frame_write(patch: pytest.MonkeyPatch, number: int) -> None:
    """Make the ``number``-th frame written raise KeyboardInterrupt, as a kill would."""
    write, calls = video_output.SegmentWriter.write, []

    def killed(self, *args):
        calls.append(1)
        if len(calls) == number:
            raise KeyboardInterrupt
        write(self, *args)

    patch.setattr(video_output.SegmentWriter, "write", killed)


def interrupt_at_frame_write(monkeypatch: pytest.MonkeyPatch, number: int, run) -> None:
    """Call ``run()`` with its ``number``-th frame write killed (``kill_at_frame_write``); it
    must stop there, as a killed run would."""
    with monkeypatch.context() as patch:
        kill_at_frame_write(patch, number)
        with pytest.raises(KeyboardInterrupt):
            run()


def assert_resume_matches_clean_run(
    colorizer, clip: Path, folder: Path, options: VideoOptions, monkeypatch, kill_at: int
):
    """Colorize ``clip`` once straight through and once killed at frame write ``kill_at`` then
    resumed; both films must be the same, bit for bit. Returns the resumed run's report."""
    from colorizer.video.colorize import colorize_video

    clean, resumed = folder / "clean.mp4", folder / "resumed.mp4"
    colorize_video(colorizer, clip, clean, options)
    interrupt_at_frame_write(
        monkeypatch, kill_at, lambda: colorize_video(colorizer, clip, resumed, options)
    )
    report = colorize_video(colorizer, clip, resumed, options)
    assert_same_frames(clean, resumed)
    return report


def assert_same_frames(clip_a: Path, clip_b: Path) -> None:
    """Both films decode to the same frames at the same timestamps, bit for bit."""
    for (pts_a, a), (pts_b, b) in zip(decoded_frames(clip_a), decoded_frames(clip_b), strict=True):
        assert pts_a == pts_b
        np.testing.assert_array_equal(a, b)
