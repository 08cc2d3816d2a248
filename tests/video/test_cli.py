"""``colorize video`` on the command line: an existing output, a film already in colour,
keyframes and a colour reference."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from colorizer import imageio
from colorizer.cli import main
from colorizer.video import cli as video_cli
from tests.video import clips


@pytest.fixture
def video(constant_weights):
    def run(*args):
        return main(
            ["video", *map(str, args), "--model", "test-constant", "--weights",
             str(constant_weights), "--size", "32", "--device", "cpu", "-q",
             "--segment-seconds", "1"]
        )  # fmt: skip

    return run


@pytest.fixture(scope="module")
def grey_clip(tmp_path_factory):
    grey = np.full((clips.HEIGHT, clips.WIDTH, 3), 120, np.uint8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clips, "moving_shapes", lambda index: grey)
        return clips.write_clip(tmp_path_factory.mktemp("grey") / "grey.mp4", audio=False)


def test_an_existing_output_is_kept_without_overwrite(video, clip, tmp_path, capsys):
    out = tmp_path / "colour.mp4"
    out.write_bytes(b"an earlier result")
    assert video(clip, "-o", out) == 0
    assert out.read_bytes() == b"an earlier result"
    assert "exists, skipped (--overwrite redoes it)" in capsys.readouterr().err
    assert video(clip, "-o", out, "--overwrite") == 0
    assert out.read_bytes() != b"an earlier result" and out.stat().st_size > 1000


def test_a_rerun_removes_the_parts_a_killed_run_left_beside_a_finished_film(video, clip, tmp_path):
    """A kill -9 between renaming the film into place and removing its work folder left
    OUT.parts/ for good (issue 22's kill -9 trials); the rerun that skips the film removes it.
    A folder that is not a colorize work folder is never touched."""
    out = tmp_path / "colour.mp4"
    out.write_bytes(b"a finished film")
    parts = tmp_path / "colour.mp4.parts"
    parts.mkdir()
    (parts / "job.json").write_text('{"source": "film.mp4"}')
    (parts / "seg-0.mov").write_bytes(b"x")
    assert video(clip, "-o", out) == 0
    assert not parts.exists() and out.read_bytes() == b"a finished film"
    other = tmp_path / "other.mp4"
    other.write_bytes(b"another film")
    foreign = tmp_path / "other.mp4.parts"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    assert video(clip, "-o", other) == 0
    assert (foreign / "notes.txt").is_file()


def test_a_colour_film_is_warned_about(video, clip, grey_clip, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="colorizer.video.cli"):
        assert video(clip, "-o", tmp_path / "a.mp4") == 0
        assert video(grey_clip, "-o", tmp_path / "b.mp4") == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "colorizer.video.cli"]
    assert warnings == [f"{clip} looks like a colour film; colorizing it from its luminance"]


def test_video_size_is_checked_before_any_work(clip, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["video", str(clip), "-o", str(tmp_path / "a.mp4"), "--size", "100000"])
    assert exit_info.value.code == 2 and "out of range" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()


# --- --keyframes and --reference ----------------------------------------------------------------


def write_frame(path, index: int = 0, size=None):
    """The clip's true colour frame ``index`` (optionally resized) as an image file."""
    rgb = clips.moving_shapes(index).astype(np.float32) / 255
    if size is not None:
        rgb = np.ascontiguousarray(rgb[: size[1], : size[0]])
    imageio.write_image(path, rgb)
    return path


def bad_keyframes(folder):
    """(arguments, words of the message) for each refusal, the files written into ``folder``."""
    grey = folder / "grey.png"
    imageio.write_image(grey, np.full((clips.HEIGHT, clips.WIDTH, 3), 0.5, np.float32))
    small = write_frame(folder / "f000002.png", size=(48, 32))
    late = write_frame(folder / "t5.png")
    manifest = folder / "shots.json"
    manifest.write_text(json.dumps({"keyframes": [{"time": "0", "image": "t5.png"}]}))
    return {
        "size": (["--keyframes", small], f"{small} is 48x32; the film is 96x64"),
        "past-the-end": (["--keyframes", late], f"{late}: 5 s is past the end of the film"),
        "bad-time": (["--keyframes", manifest], "keyframe 0: 'time' must be a number"),
        "grey-reference": (["--reference", grey], "has no colour"),
        "no-encoder": (["--reference", small], "--reference needs a model with a pretrained"),
        "missing": (["--keyframes", folder / "nope"], "no such keyframe file or folder"),
    }


@pytest.mark.parametrize(
    "case", ["size", "past-the-end", "bad-time", "grey-reference", "no-encoder", "missing"]
)
def test_bad_keyframes_exit_2_before_any_work(video, clip, tmp_path, capsys, monkeypatch, case):
    def no_model(args):
        raise AssertionError("a model was loaded before the keyframes were checked")

    monkeypatch.setattr(video_cli, "colorizer_from_args", no_model)
    arguments, words = bad_keyframes(tmp_path)[case]
    out = tmp_path / "out.mp4"
    assert video(clip, "-o", out, *arguments) == 2
    assert words in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.mp4.parts").exists()


def test_the_options_carry_the_keyframes_and_the_reference(clip, tmp_path, monkeypatch):
    """Absolute paths (Ray workers read them from another working folder)."""
    keyframe = write_frame(tmp_path / "f000000.png")
    monkeypatch.chdir(tmp_path)
    parser_args = ["video", str(clip), "--keyframes", "f000000.png", "--reference", "f000000.png"]
    from colorizer.cli import build_parser

    options = video_cli.video_options(build_parser().parse_args(parser_args))
    assert options.keyframes == options.reference == str(keyframe.resolve())


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_a_film_with_keyframes_takes_their_colours(video, clip, tmp_path):
    """The clip's true colour frames 0 and 12 as keyframes: those frames come out in about
    their own colours, which the constant model alone is far from."""
    keyframes = tmp_path / "keys"
    keyframes.mkdir()
    write_frame(keyframes / "f000000.png")
    write_frame(keyframes / "t1.0.png", 12)
    keyed, plain = tmp_path / "keyed.mp4", tmp_path / "plain.mp4"
    assert video(clip, "-o", keyed, "--keyframes", keyframes) == 0
    assert video(clip, "-o", plain) == 0
    frames, automatic = decoded(keyed), decoded(plain)
    assert len(frames) == clips.FRAMES and frames[0].shape == (clips.HEIGHT, clips.WIDTH, 3)
    for index in (0, 12):
        truth = clips.moving_shapes(index).astype(int)
        error = np.abs(frames[index].astype(int) - truth).mean()  # 2.7 when written
        without = np.abs(automatic[index].astype(int) - truth).mean()  # 27
        assert error < 6 and without > 20
    assert not keyed.with_name("keyed.mp4.parts").exists()
