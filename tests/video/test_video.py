"""Video: streaming colorization keeps timing and sound, resumes exactly, fails clearly."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from colorizer.errors import ColorizerError
from colorizer.video import VideoOptions, colorize_video
from tests.video.clips import (
    FPS,
    FRAMES,
    HEIGHT,
    OPTIONS,
    SAMPLE_RATE,
    WIDTH,
    assert_same_frames,
    audio_packets,
    decoded_frames,
    interrupt_at_frame_write,
    moving_shapes,
    video_stream,
    write_clip,
    write_video,
)


def test_keeps_frames_timing_resolution_and_audio(colorizer, clip, tmp_path):
    out = tmp_path / "colour.mp4"
    report = colorize_video(colorizer, clip, out, OPTIONS)

    assert report.frames == report.colorized == FRAMES
    with av.open(str(clip)) as source, av.open(str(out)) as result:
        before, after = source.streams.video[0], result.streams.video[0]
        assert (after.width, after.height) == (WIDTH, HEIGHT)
        assert after.average_rate == before.average_rate == FPS
        assert result.duration == source.duration
        assert result.metadata["title"] == "synthetic test clip"
    frames, originals = decoded_frames(out), decoded_frames(clip)
    assert [pts for pts, _ in frames] == [pts for pts, _ in originals]
    assert audio_packets(out) == audio_packets(clip)
    block = frames[5][1][12:28, 14:26].astype(int)  # inside the moving red block, now recoloured
    assert np.ptp(block, axis=-1).mean() > 5
    assert not out.with_name("colour.mp4.parts").exists()


def test_resume_after_kill_matches_an_uninterrupted_run(colorizer, clip, tmp_path, monkeypatch):
    clean = tmp_path / "clean.mp4"
    colorize_video(colorizer, clip, clean, OPTIONS)

    resumed = tmp_path / "resumed.mp4"
    interrupt_at_frame_write(
        monkeypatch, 15, lambda: colorize_video(colorizer, clip, resumed, OPTIONS)
    )  # inside the third segment of six
    parts = tmp_path / "resumed.mp4.parts"
    assert not resumed.exists()
    assert not list(parts.glob("*partial*"))

    report = colorize_video(colorizer, clip, resumed, OPTIONS)

    assert report.resumed_segments == 2
    assert report.colorized == FRAMES - 12
    assert_same_frames(clean, resumed)
    assert audio_packets(resumed) == audio_packets(clean)
    assert not parts.exists()


_ENCODE_SEGMENT = """
import hashlib, sys
from fractions import Fraction
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.video.clips import FPS, FRAMES, HEIGHT, WIDTH, moving_shapes
from colorizer.video.output import EncoderSettings, SegmentWriter
from colorizer.video.source import SourceInfo

info = SourceInfo(Path("clip.mp4"), WIDTH, HEIGHT, Fraction(1, 12288), Fraction(FPS), FRAMES,
                  FRAMES / FPS, 2, 0, 2, 2)
writer = SegmentWriter(Path(sys.argv[1]), info, EncoderSettings())
for index in range(12):
    frame = moving_shapes(index)
    frame[..., 1] = frame[..., 1] // 2 + 3 * index  # texture that x264's rate control weighs
    writer.write(frame, index * 1024, 1024)
writer.finish()
"""


def test_encoder_output_does_not_depend_on_uninitialised_memory(tmp_path):
    """The same frames encode to the same bytes whatever fills fresh heap memory.

    glibc's MALLOC_PERTURB_ fills every malloc'd block with a given byte: an encoder that reads
    memory it never wrote (x264's AVX-512 MB-tree on small frames) then encodes differently, as
    it does at random in a busy process, and a resumed film would differ from a clean one.
    """
    import os
    import subprocess
    import sys

    outputs = []
    for perturb in ("0", "1", "200"):
        out = tmp_path / f"segment-{perturb}.mov"
        env = {**os.environ, "MALLOC_PERTURB_": perturb}
        subprocess.run(
            [sys.executable, "-c", _ENCODE_SEGMENT, str(out), str(Path(__file__).parents[2])],
            env=env,
            check=True,
            timeout=120,
        )
        with av.open(str(out)) as segment:
            outputs.append([bytes(p) for p in segment.demux(video=0) if p.size])
    assert outputs[0] == outputs[1] == outputs[2]


def test_start_and_end_cut_a_segment_starting_at_zero(colorizer, clip, tmp_path):
    out = tmp_path / "part.mp4"
    options = VideoOptions(start_s=0.5, end_s=1.5, consistency=0.0)
    report = colorize_video(colorizer, clip, out, options)

    assert report.frames == FPS
    frames = decoded_frames(out)
    assert len(frames) == FPS and frames[0][0] == 0
    seconds = sum(duration for _, duration, _ in audio_packets(out)) / SAMPLE_RATE
    assert seconds == pytest.approx(1.0, abs=0.07)  # whole AAC packets of 64 ms


# --------------------------------------------------------------------------- bad inputs


def audio_only(path: Path) -> Path:
    return write_clip(path.with_suffix(".m4a"), video=False)


def garbage(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    return path


def truncated(path: Path, clip: Path) -> Path:
    data = clip.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def damaged_in_the_middle(path: Path, clip: Path) -> Path:
    """A Matroska file (header intact) whose middle is overwritten with noise."""
    whole = path.with_suffix(".mkv")
    with av.open(str(whole), "w") as container:
        write_video(container, video_stream(container))
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = np.random.default_rng(0).bytes(400)
    whole.unlink()
    path.write_bytes(bytes(data))
    return path


def still_image(path: Path, suffix: str) -> Path:
    """A photo: FFmpeg opens it as a one-frame stream (a PNG has no duration at all)."""
    from PIL import Image

    photo = path.with_suffix(suffix)
    Image.fromarray(moving_shapes(3)).save(photo)
    return photo


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda path, clip: still_image(path, ".png"),
            r"is not a video: it is a still image \(PNG",
        ),
        (
            lambda path, clip: still_image(path, ".jpg"),
            r"is not a video: it is a still image \(JPEG",
        ),
        (lambda path, clip: audio_only(path), "has no video stream"),
        (lambda path, clip: garbage(path), "not a readable video"),
        (truncated, "not a readable video"),
        (damaged_in_the_middle, "damaged video"),
    ],
    ids=["png-photo", "jpeg-photo", "no-video-stream", "garbage", "truncated", "damaged-frames"],
)
def test_bad_input_is_a_clear_error_and_leaves_nothing(colorizer, clip, tmp_path, make, message):
    bad = make(tmp_path / "bad.mp4", clip)
    out = tmp_path / "out" / "colour.mp4"
    out.parent.mkdir()
    with pytest.raises(ColorizerError, match=message) as error:
        colorize_video(colorizer, bad, out, OPTIONS)
    assert bad.name in str(error.value)
    assert list(out.parent.iterdir()) == []


def test_unwritable_output_is_a_clear_error(colorizer, clip, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    out = blocker / "colour.mp4"
    with pytest.raises(ColorizerError, match="not a folder") as error:
        colorize_video(colorizer, clip, out, OPTIONS)
    assert "colour.mp4" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_an_audio_codec_is_refused_as_the_video_encoder():
    from colorizer.video.output import EncoderSettings, VideoWriteError, encoder_options

    with pytest.raises(VideoWriteError, match="'aac' is an audio encoder, not a video one"):
        encoder_options(EncoderSettings(codec="aac"))
