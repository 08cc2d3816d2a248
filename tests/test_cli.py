"""`colorize` end to end, in-process: naming, folders, globs, resume, errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer.cli import main


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "album"
    (folder / "1920s").mkdir(parents=True)
    ramp = np.linspace(0, 255, 24 * 32).reshape(24, 32).astype(np.uint8)
    for path in [folder / "old.jpg", folder / "1920s" / "wedding.png"]:
        Image.fromarray(ramp).save(path)
    return folder


@pytest.fixture
def run(constant_weights):
    def run_cli(*args):
        return main(
            [
                "image",
                *map(str, args),
                "--model",
                "test-constant",
                "--weights",
                str(constant_weights),
                "--size",
                "32",
                "--device",
                "cpu",
                "-q",
            ]
        )

    return run_cli


def test_single_file_written_beside_it(run, photos):
    assert run(photos / "old.jpg") == 0
    out = photos / "old_colorized.png"
    assert Image.open(out).size == (32, 24)
    assert Image.open(out).mode == "RGB"


def test_output_dir_mirrors_the_tree(run, photos, tmp_path):
    assert run(photos, "--recursive", "-o", tmp_path / "out") == 0
    assert (tmp_path / "out" / "old.png").is_file()
    assert (tmp_path / "out" / "1920s" / "wedding.png").is_file()


def test_folder_without_recursive_stays_at_top(run, photos, tmp_path):
    assert run(photos, "-o", tmp_path / "out") == 0
    assert (tmp_path / "out" / "old.png").is_file()
    assert not (tmp_path / "out" / "1920s").exists()


def test_glob_and_format(run, photos, tmp_path):
    assert (
        run(str(photos / "**" / "*.png"), "--recursive", "-o", tmp_path / "o", "--format", "jpg")
        == 0
    )
    assert (tmp_path / "o" / "wedding.jpg").is_file()


def test_rerun_skips_finished_and_ignores_own_outputs(run, photos, capsys):
    assert run(photos) == 0
    before = (photos / "old_colorized.png").stat().st_mtime_ns
    capsys.readouterr()
    assert run(photos) == 0
    assert "1 skipped" in capsys.readouterr().err  # old_colorized.png is not an input
    assert (photos / "old_colorized.png").stat().st_mtime_ns == before
    assert not (photos / "old_colorized_colorized.png").exists()


def test_bad_file_is_reported_and_the_batch_carries_on(run, photos, capsys):
    (photos / "broken.jpg").write_bytes(b"garbage")
    assert run(photos, "--overwrite") == 1
    err = capsys.readouterr().err
    assert "1 failed" in err and "broken.jpg" in err
    assert (photos / "old_colorized.png").is_file()


def test_missing_input_is_reported(run, photos, capsys):
    assert run(photos / "old.jpg", photos / "nope.jpg") == 1
    assert "not found" in capsys.readouterr().err
    assert (photos / "old_colorized.png").is_file()


def test_models_lists_the_registry(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLORIZER_HOME", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ["eccv16", "siggraph17", "eccv16-caffe"]:
        assert name in out
    assert "BSD-2-Clause" in out and "not downloaded" in out


def test_pull_without_network_explains(capsys, monkeypatch, tmp_path):
    from colorizer import registry, weights  # noqa: F401  (weights fills the registry)

    monkeypatch.setenv("COLORIZER_HOME", str(tmp_path))
    spec = registry.MODELS["eccv16"]
    # A closed local port stands in for being offline.
    monkeypatch.setitem(
        registry.MODELS,
        "eccv16",
        registry.ModelSpec(**{**spec.__dict__, "url": "http://127.0.0.1:9/x.pth"}),
    )
    assert main(["models", "pull", "eccv16", "-q"]) == 1
    err = capsys.readouterr().err
    assert "127.0.0.1:9" in err and spec.sha256 in err


def test_one_input_and_an_image_file_name_writes_that_file(run, photos, tmp_path):
    out = tmp_path / "result.png"
    assert run(photos / "old.jpg", "-o", out) == 0
    assert out.is_file() and Image.open(out).size == (32, 24)
    jpeg = tmp_path / "sub" / "result.JPG"
    assert run(photos / "old.jpg", "-o", jpeg) == 0
    assert Image.open(jpeg).format == "JPEG"
    before = out.stat().st_mtime_ns
    # Exists: skipped, exit 0, as in a batch (a rerun resumes); --overwrite redoes it.
    assert run(photos / "old.jpg", "-o", out) == 0
    assert out.stat().st_mtime_ns == before
    assert run(photos / "old.jpg", "-o", out, "--overwrite") == 0


def test_two_inputs_and_o_still_mean_a_folder(run, photos, tmp_path):
    out = tmp_path / "results"
    assert run(photos / "old.jpg", photos / "1920s" / "wedding.png", "-o", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["old.png", "wedding.png"]


def test_dash_reads_stdin_and_writes_png_to_stdout(run, photos, monkeypatch, capsysbinary):
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO((photos / "old.jpg").read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert run("-", "-o", "-") == 0
    data = capsysbinary.readouterr().out
    assert data.startswith(b"\x89PNG")
    picture = Image.open(io.BytesIO(data))
    assert picture.size == (32, 24) and picture.mode == "RGB"


def test_empty_stdin_is_a_clear_error(run, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert run("-", "-o", "-") != 0
    assert "standard input is empty" in capsys.readouterr().err


def test_nothing_to_colorize_says_why_for_each_input(tmp_path, capsys):
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    inputs = ["nosuch.jpg", "clip.mp4", "empty", "x*.png"]
    assert main(["image", *(str(tmp_path / name) for name in inputs)]) == 1
    err = capsys.readouterr().err
    assert "nosuch.jpg: no such file or folder" in err
    assert f"is a video; colorize films with `colorize video {tmp_path / 'clip.mp4'}`" in err
    assert "empty: no photos in this folder" in err
    assert "x*.png: no file matches" in err


def test_a_video_in_a_batch_is_pointed_elsewhere_and_the_rest_finish(run, photos, capsys):
    (photos / "clip.mov").write_bytes(b"")
    assert run(photos / "old.jpg", photos / "clip.mov") == 1
    assert (photos / "old_colorized.png").is_file()
    assert "clip.mov: is a video; colorize films with `colorize video" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "expected"),
    [("image", "colorize image old.jpg -o result.png"), ("models", "download a published one")],
)
def test_subcommand_help_describes_and_shows_examples(command, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


# Every value is checked before any work (issue 22, items 12 to 14).


def _refused(capsys, argv, expected):
    """``argv`` exits with 2 (argparse's usage error) and ``expected`` in the message."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--size", "0", "out of range"),
        ("--size", "100000", "out of range"),
        ("--size", "4096", "32 to 2048"),
        ("--size", "big", "not a whole number"),
        ("--max-pixels", "-1", "-1 is negative"),
        ("--format", "../x", "not an output format"),
        ("--format", "xyz", "not an output format"),
    ],
)
def test_bad_values_are_refused_before_any_work(option, value, expected, photos, capsys):
    _refused(capsys, ["image", str(photos / "old.jpg"), option, value], expected)
    assert not (photos / "old_colorized.png").exists()


def test_eval_size_and_limit_are_checked(photos, capsys):
    _refused(capsys, ["eval", str(photos), "--size", "100000"], "out of range")
    _refused(capsys, ["eval", str(photos), "--limit", "0"], "must be 1 or more")


def test_a_binary_hints_file_is_a_one_line_error(run, photos, capsys):
    (photos / "hints.json").write_bytes(bytes(range(256)))
    assert run(photos / "old.jpg", "--hints", photos / "hints.json") == 1
    err = capsys.readouterr().err
    assert "hints.json: not a text file" in err and "Traceback" not in err
    assert not (photos / "old_colorized.png").exists()


def test_a_fifo_is_refused_not_waited_on(run, photos, capsys, constant):
    import os

    from colorizer.errors import ImageReadError

    fifo = photos / "fifo.png"
    os.mkfifo(fifo)
    assert run(fifo) == 1
    assert "fifo.png: not a regular file" in capsys.readouterr().err
    assert run(fifo, "-o", photos / "out.png") == 1
    with pytest.raises(ImageReadError, match="not a regular file"):
        constant.colorize_file(fifo, photos / "out.png")  # the library refuses it too


def test_a_video_named_as_a_photo_points_to_colorize_video(run, photos, capsys):
    (photos / "film.jpg").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    assert run(photos / "film.jpg", "-o", photos / "out.png") == 1
    assert "it is a video, not an image; colorize films with `colorize video" in (
        capsys.readouterr().err
    )


def test_an_unwritable_output_folder_is_one_error_before_any_work(
    run, photos, tmp_path, capsys, monkeypatch
):
    import os

    (tmp_path / "file").write_text("not a folder")
    assert run(photos, "-r", "-o", tmp_path / "file" / "out") == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "file is not a folder" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access  # as root every folder is writable: the check is made to say no
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != locked and access(path, mode)
    )
    assert run(photos, "-r", "-o", locked) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "cannot write there: permission denied" in err
    assert f"{locked}/1920s" in err or f"({locked} is not writable)" in err
    assert "Errno" not in err and not any(locked.iterdir())


def test_o_file_with_several_inputs_is_refused(run, photos, tmp_path, capsys):
    two = tmp_path / "two.png"
    assert run(photos / "old.jpg", photos / "1920s" / "wedding.png", "-o", two) == 2
    assert "-o" in capsys.readouterr().err and not two.exists()
    assert run(photos, "-r", "-o", two) == 2  # a folder of two photos: the same
    assert not two.exists()


def test_a_glob_with_o_file_is_expanded(run, photos, tmp_path, capsys):
    out = tmp_path / "result.png"
    assert run(str(photos / "*.jpg"), "-o", out) == 0  # one photo matches
    assert out.is_file()
    Image.open(photos / "old.jpg").save(photos / "new.jpg")
    assert run(str(photos / "*.jpg"), "-o", tmp_path / "two.png") == 2
    assert "2 photos" in capsys.readouterr().err


def test_format_contradicting_o_file_is_refused(run, photos, tmp_path, capsys):
    assert run(photos / "old.jpg", "-o", tmp_path / "x.png", "--format", "jpg") == 2
    assert "contradicts" in capsys.readouterr().err


def test_stdout_honours_format_and_carries_metadata(run, photos, capsysbinary):
    import io

    assert run(photos / "old.jpg", "-o", "-", "--format", "jpg") == 0
    data = capsysbinary.readouterr().out
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "JPEG"
    assert "colorizer" in picture.getexif()[0x0131]  # EXIF Software: made by a machine
    assert run(photos / "old.jpg", "-o", photos / "file.jpg") == 0
    assert (photos / "file.jpg").read_bytes() == data  # the very bytes a file output gets


def _checkpoint(path, constant_weights, arch):
    import torch
    from safetensors.torch import load_file

    record = {"model": load_file(str(constant_weights))}
    torch.save(record | ({"arch": arch} if arch else {}), path)
    return path


def test_weights_of_a_checkpoint_bring_their_architecture(photos, tmp_path, constant_weights):
    checkpoint = _checkpoint(tmp_path / "checkpoint.pt", constant_weights, "test-constant")
    argv = ["image", str(photos / "old.jpg"), "--weights", str(checkpoint), "--size", "32", "-q"]
    assert main(argv) == 0
    assert (photos / "old_colorized.png").is_file()


def test_weights_without_architecture_is_one_line(photos, tmp_path, constant_weights, capsys):
    bare = _checkpoint(tmp_path / "bare.pt", constant_weights, None)
    assert main(["image", str(photos / "old.jpg"), "--weights", str(bare), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "name it with --model" in err


def test_models_name_one_default_and_show_architectures(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLORIZER_HOME", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.count("the default") == 1 and "ARCH" in out
    assert " colornet " in out  # the architecture a colornet-v1 checkpoint records


def test_bare_colorize_prints_the_help(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: colorize" in err and "image" in err and "models" in err


def test_format_choices_are_the_writable_suffixes():
    from colorizer.imageio import WRITE_SUFFIXES
    from colorizer.options import OUTPUT_FORMATS

    assert {f".{name}" for name in OUTPUT_FORMATS} == set(WRITE_SUFFIXES)
