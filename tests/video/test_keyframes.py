"""Keyframe files (``colorizer.video.keyframes``): manifests, images named by position, the film's
clock, every refusal, and the digest of the files."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from colorizer import imageio
from colorizer.errors import ColorizerError
from colorizer.guidance.hints import PointHint
from colorizer.video.keyframes import (
    KeyframeError,
    Timeline,
    keyframes_digest,
    load_keyframes,
    read_reference,
)
from colorizer.video.source import probe
from tests.video import clips

# The clip: 24 frames at 12 frames/s, 96 x 64, frame k shown from k/12 s; it ends at 2 s.
HINT = {"x": 10, "y": 5, "color": "#8a2be2"}


@pytest.fixture(scope="module")
def info(clip):
    return probe(clip)


def colour_frame(index: int = 0, width: int = clips.WIDTH, height: int = clips.HEIGHT):
    return np.ascontiguousarray(clips.moving_shapes(index)[:height, :width]) / np.float32(255)


def write_frame(path, index: int = 0, **size):
    imageio.write_image(path, colour_frame(index, **size))
    return path


def write_manifest(folder, *entries, **top):
    path = folder / "shots.json"
    path.write_text(json.dumps({"keyframes": list(entries), **top}))
    return path


def refusal(spec, info) -> str:
    with pytest.raises(KeyframeError) as error:
        load_keyframes(spec, info)
    return str(error.value)


# --- what is read ------------------------------------------------------------------------------


def test_a_manifest_gives_colour_frames_and_hints_sorted_by_frame(info, tmp_path):
    write_frame(tmp_path / "late.png", 18)
    manifest = write_manifest(
        tmp_path, {"time": 1.5, "image": "late.png"}, {"frame": 4, "hints": [HINT]}
    )
    hinted, coloured = load_keyframes(manifest, info)
    assert (hinted.frame, coloured.frame) == (4, 18)  # 1.5 s x 12 frames/s
    assert hinted.rgb is None and hinted.points == (PointHint(10.0, 5.0, "#8a2be2"),)
    assert hinted.source == f"{manifest}: keyframe 1"
    assert coloured.points == () and coloured.source == f"{manifest}: keyframe 0 (late.png)"
    assert coloured.rgb is not None and coloured.rgb.dtype == np.float32
    # An 8-bit PNG holds the frame exactly: 1/255 steps.
    np.testing.assert_allclose(coloured.rgb, colour_frame(18), atol=1e-6)


def test_images_and_hint_files_named_by_position(info, tmp_path):
    write_frame(tmp_path / "f000002.png", 2)
    write_frame(tmp_path / "t1.25.jpg", 15)
    (tmp_path / "f000020.json").write_text(json.dumps({"points": [HINT]}))
    (tmp_path / "notes.txt").write_text("left alone: not an image")
    (tmp_path / ".hidden.png").write_bytes(b"left alone: hidden")
    keyframes = load_keyframes(tmp_path, info)
    assert [k.frame for k in keyframes] == [2, 15, 20]
    assert [k.rgb is not None for k in keyframes] == [True, True, False]
    assert keyframes[2].points == (PointHint(10.0, 5.0, "#8a2be2"),)
    (single,) = load_keyframes(tmp_path / "f000002.png", info)  # one image alone
    assert single.frame == 2 and single.source == str(tmp_path / "f000002.png")


@pytest.mark.parametrize(
    ("seconds", "frame"),
    [
        (0, 0),
        (0.082, 0),  # frame 1 starts at 0.08333 s
        (0.0833, 1),  # a time a player rounded to the millisecond is that frame
        (0.5, 6),
        (1.99, 23),
    ],
)
def test_a_time_is_the_frame_on_screen_then(info, tmp_path, seconds, frame):
    manifest = write_manifest(tmp_path, {"time": seconds, "hints": [HINT]})
    assert [k.frame for k in load_keyframes(manifest, info)] == [frame]


def test_times_count_from_the_first_frame_by_the_films_own_timestamps(tmp_path):
    """A film whose first frame is stamped 5/12 s: 0 s is that frame, not a time before it."""
    path = tmp_path / "late_start.mp4"
    with av.open(str(path), "w") as container:
        stream = clips.video_stream(container)
        for index in range(6):
            frame = av.VideoFrame.from_ndarray(clips.moving_shapes(index), format="rgb24")
            frame.pts, frame.time_base = index + 5, Fraction(1, clips.FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe(path)
    timeline = Timeline.of(info)
    assert timeline.starts[:2] == (0, Fraction(1, 12)) and timeline.end == Fraction(1, 2)
    manifest = write_manifest(
        tmp_path, {"time": 0.0, "hints": [HINT]}, {"time": 0.25, "hints": [HINT]}
    )
    assert [k.frame for k in load_keyframes(manifest, info)] == [0, 3]


def test_a_reference_may_have_any_size_but_needs_colour(tmp_path):
    small = write_frame(tmp_path / "ref.png", 3, width=40, height=30)
    assert read_reference(small).shape == (30, 40, 3)
    grey = tmp_path / "grey.png"
    imageio.write_image(grey, np.full((30, 40, 3), 0.4, np.float32))
    with pytest.raises(KeyframeError, match=r"grey\.png: the reference photo has no colour"):
        read_reference(grey)


def test_a_films_reference_follows_the_rule_of_a_photos_reference(tmp_path):
    from colorizer.guidance.reference import read_reference as photo_reference

    # A sepia print: one tint over a grey photo, strong enough for a keyframe to keep.
    ramp = np.linspace(0.2, 0.9, 40, dtype=np.float32)[None, :, None]
    sepia = tmp_path / "sepia.png"
    imageio.write_image(sepia, np.broadcast_to(ramp * np.float32([1.0, 0.85, 0.65]), (30, 40, 3)))
    with pytest.raises(ColorizerError, match="no colour to transfer"):
        photo_reference(sepia)
    with pytest.raises(KeyframeError, match=r"sepia\.png: the reference photo has no colour"):
        read_reference(sepia)
    with pytest.raises(KeyframeError, match="no such reference photo"):
        read_reference(tmp_path / "missing.png")


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ([{"frame": 24, "hints": [HINT]}], "keyframe 0: frame 24 is outside the film (it has 24"),
        ([{"time": 2.0, "hints": [HINT]}], "keyframe 0: 2 s is past the end of the film (2.000 s)"),
        ([{"time": -0.5, "hints": [HINT]}], "'time' must be 0 or more seconds, got -0.5"),
        ([{"time": "1.0", "hints": [HINT]}], "'time' must be a number of seconds, got '1.0'"),
        ([{"time": True, "hints": [HINT]}], "'time' must be a number of seconds, got True"),
        ([{"frame": 1.5, "hints": [HINT]}], "'frame' must be a whole number, got 1.5"),
        ([{"frame": -1, "hints": [HINT]}], "'frame' must be 0 or more, got -1"),
        ([{"frame": 1, "time": 0.1, "hints": [HINT]}], "exactly one of 'time' (seconds) and"),
        ([{"frame": 1}], "keyframe 0: give exactly one of 'image' and 'hints'"),
        ([{"frame": 1, "hints": [HINT], "colour": "red"}], "keyframe 0: unknown keys ['colour']"),
        ([{"frame": 1, "hints": [[200, 5, "#ff0000"]]}], "point 0 at (200, 5) lies outside"),
        ([{"frame": 1, "hints": [{"x": 1, "y": 1}]}], "keyframe 0: hints: point 0: needs a"),
        ([{"frame": 1, "image": 7}], "keyframe 0: 'image' must be a file name, got 7"),
        (["f000001.png"], "keyframe 0: expected an object"),
        (
            [{"frame": 6, "hints": [HINT]}, {"time": 0.5, "hints": [HINT]}],
            "keyframe 1: a second keyframe on frame 6 (also",
        ),
    ],
)
def test_bad_manifest_entries_are_named(info, tmp_path, entries, words):
    manifest = write_manifest(tmp_path, *entries)
    message = refusal(manifest, info)
    assert message.startswith(f"{manifest}: ") and words in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ('[{"frame": 1}]', 'expected an object {"keyframes": [...]}'),
        ('{"keyframes": [], "fps": 24}', "unknown keys ['fps'] (only 'keyframes')"),
        ('{"keyframes": {"frame": 1}}', "'keyframes' must be a list"),
        ('{"keyframes": [{"time": NaN, "hints": []}]}', "'time' must be 0 or more seconds"),
        ('{"keyframes": []}', "holds no keyframes"),
    ],
)
def test_bad_manifests_are_refused(info, tmp_path, text, words):
    manifest = tmp_path / "shots.json"
    manifest.write_text(text)
    assert words in refusal(manifest, info)


def test_bad_keyframe_images_are_named(info, tmp_path):
    write_frame(tmp_path / "small.png", width=48, height=32)
    imageio.write_image(tmp_path / "grey.png", np.full((64, 96, 3), 0.5, np.float32))
    (tmp_path / "text.png").write_text("not an image")
    cases = {
        "small.png": "keyframe 0 (small.png) is 48x32; the film is 96x64",
        "grey.png": "keyframe 0 (grey.png): the image has no colour",
        "text.png": "keyframe 0 (text.png): cannot read the image",
        "missing.png": "keyframe 0 (missing.png): cannot read the image: no such file",
    }
    for name, words in cases.items():
        assert words in refusal(write_manifest(tmp_path, {"frame": 0, "image": name}), info)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("shot1.png", "shot1.png: not named by position; name keyframes fNNNNNN.png"),
        ("t-1.png", "t-1.png: a negative time (-1 s)"),
        ("tabc.png", "t'abc' is not a time in seconds"[1:]),
        ("f12a.png", "'12a' is not a frame number"),
        ("f000024.png", "f000024.png: frame 24 is outside the film"),
        ("t2.png", "t2.png: 2 s is past the end of the film"),
    ],
)
def test_badly_named_images_are_refused(info, tmp_path, name, words):
    write_frame(tmp_path / name)
    assert words in refusal(tmp_path, info)


def test_two_files_on_one_frame_and_an_empty_folder_are_refused(info, tmp_path):
    assert "holds no keyframes" in refusal(tmp_path, info)
    write_frame(tmp_path / "f000006.png")
    write_frame(tmp_path / "t0.5.png")
    assert "a second keyframe on frame 6" in refusal(tmp_path, info)
    assert "no such keyframe file or folder" in refusal(tmp_path / "nope", info)
    (tmp_path / "notes.txt").write_text("x")
    assert "not a keyframe manifest (.json), an image" in refusal(tmp_path / "notes.txt", info)


# --- the digest --------------------------------------------------------------------------------


def test_the_digest_follows_the_bytes_of_every_file(tmp_path):
    image = write_frame(tmp_path / "late.png", 18)
    reference = write_frame(tmp_path / "ref.png", 3)
    manifest = write_manifest(tmp_path, {"time": 1.5, "image": "late.png"})
    assert keyframes_digest(None, None) is None
    first = keyframes_digest(manifest, reference)
    assert first == keyframes_digest(manifest, reference)  # the same files, the same digest
    assert len(first or "") == 64
    assert keyframes_digest(manifest, None) != first != keyframes_digest(None, reference)
    write_frame(image, 19)  # the image the manifest names changed: a different digest
    assert keyframes_digest(manifest, reference) != first
    folder = tmp_path / "keys"
    folder.mkdir()
    write_frame(folder / "f000001.png", 1)
    before = keyframes_digest(folder, None)
    (folder / "f000005.json").write_text(json.dumps([HINT]))
    assert keyframes_digest(folder, None) != before
