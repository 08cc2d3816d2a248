"""colorizer.files: atomic writes (temp name, fsync, rename; nothing left behind on failure)."""

from __future__ import annotations

import os

import pytest

from colorizer import files


def _names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_replaces_and_fsyncs(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), fsync(fd)))
    path = tmp_path / "table.csv"
    path.write_text("old")
    with files.atomic_write(path, "w", newline="") as f:
        f.write("a,b\r\n")
        assert path.read_text() == "old"  # readers still see the old file
    assert path.read_bytes() == b"a,b\r\n"
    assert synced
    assert _names(tmp_path) == ["table.csv"]


def test_atomic_path_keeps_the_suffix_and_removes_the_temp_on_failure(tmp_path):
    path = tmp_path / "cache.npz"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), files.atomic_path(path) as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".cache.npz.") and temp.name.endswith(".tmp.npz")
        temp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert _names(tmp_path) == ["cache.npz"]


def test_tag_and_folder_name_the_temp_file(tmp_path):
    work = tmp_path / "film.mp4.parts"
    work.mkdir()
    destination = tmp_path / "film.mp4"
    with files.atomic_path(destination, tag="partial", folder=work) as temp:
        assert temp.parent == work
        assert temp.name.endswith(".partial.mp4")
        assert temp.suffix == ".mp4"  # writers pick the container from it
        temp.write_bytes(b"film")
    assert destination.read_bytes() == b"film"
    assert _names(work) == []
    with pytest.raises(OSError), files.atomic_write(work / "seg.json", "w", tag="partial") as f:
        f.write("{")
        raise OSError("disk full")
    assert _names(work) == []


@pytest.mark.parametrize("tag", ["", "a/b", ".hidden"])
def test_tag_must_be_a_plain_name_part(tmp_path, tag):
    with pytest.raises(ValueError, match="tag"):
        files.temp_path(tmp_path / "x.json", tag=tag)


def test_temp_names_are_fresh(tmp_path):
    names = {files.temp_path(tmp_path / "x.pt").name for _ in range(20)}
    assert len(names) == 20


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from colorizer.files import remove_leftovers, temp_path

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    killed = tmp_path / f".old.png.{dead_pid}-0123abcd.tmp.png"  # as a kill -9 leaves it
    killed.write_bytes(b"half")
    live = temp_path(tmp_path / "new.png")  # this process's own, still being written
    live.write_bytes(b"busy")
    other = tmp_path / ".hidden.txt"  # not a temp file of ours
    other.write_text("keep")
    assert remove_leftovers(tmp_path) == [killed]
    assert not killed.exists() and live.exists() and other.exists()


def test_a_rerun_of_colorize_image_removes_a_killed_runs_temp_file(tmp_path, constant_weights):
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from colorizer.cli import main

    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(tmp_path / "old.png")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    leftover = tmp_path / f".old_colorized.png.{int(dead.stdout)}-00ff00ff.tmp.png"
    leftover.write_bytes(b"half")
    args = ["image", str(tmp_path / "old.png"), "--model", "test-constant", "--weights",
            str(constant_weights), "--size", "32", "--device", "cpu", "-q"]  # fmt: skip
    assert main(args) == 0
    assert not leftover.exists() and (tmp_path / "old_colorized.png").is_file()
