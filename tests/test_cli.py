"""`colorize` end to end, in-process: naming, folders, globs, resume, errors."""

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
    assert run(photos / "old.jpg", "-o", out) == 1  # exists: not replaced without --overwrite
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
