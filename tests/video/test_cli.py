"""``colorize video`` on the command line: an existing output, a film already in colour."""

from __future__ import annotations

import numpy as np
import pytest

from colorizer.cli import main
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
