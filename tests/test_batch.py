"""``colorizer.batch``: every output planned before the first write, collisions refused.

The property tests generate trees of photos whose names, folders and suffixes often coincide,
and check the one rule: each input gets one output of its own, distinct from every other
output and from every input, or the batch is refused before anything is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from colorizer import batch
from colorizer.batch import Job, PlanError, check_plan, find_inputs, plan_jobs
from colorizer.cli import main
from colorizer.pipeline import Colorizer

GREY = np.linspace(0, 255, 8 * 12).reshape(8, 12).astype(np.uint8)

# Few names, folders and suffixes, so that generated trees collide often.
names = st.sampled_from(["x", "p", "p_colorized", "A", "a"])
folders = st.sampled_from(["", "a", "b", "a/deep"])
suffixes = st.sampled_from([".jpg", ".png", ".tif", ".JPG"])
trees = st.lists(st.tuples(folders, names, suffixes), min_size=1, max_size=6, unique=True)


@st.composite
def batches(draw):
    """(files of the tree, the command's patterns, -o folder or None, --recursive)."""
    tree = draw(trees)
    files = [f"coll/{folder}/{name}{suffix}".replace("//", "/") for folder, name, suffix in tree]
    kind = draw(st.sampled_from(["folder", "glob", "listed"]))
    if kind == "folder":
        patterns = ["coll"]
    elif kind == "glob":
        patterns = [draw(st.sampled_from(["coll/**/*.jpg", "coll/**/*.*", "coll/*.png"]))]
    else:
        patterns = draw(st.lists(st.sampled_from(files), min_size=1, max_size=4))
    output = draw(st.sampled_from([None, "out", "coll", "coll/a"]))
    return files, patterns, output, draw(st.booleans())


def _make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(GREY).save(path, format="TIFF" if ".tif" in name else None)


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@settings(max_examples=150, deadline=None)
@given(batches())
def test_plan_gives_each_input_one_distinct_output_or_refuses(case):
    files, patterns, output, recursive = case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _make_tree(root, files)
        before = _snapshot(root)
        inputs, _ = find_inputs([str(root / p) for p in patterns], recursive)
        try:
            jobs = plan_jobs(inputs, root / output if output else None, ".png")
        except PlanError as exc:
            assert "output collision" in str(exc) and "Nothing was written" in str(exc)
        else:
            sources = [os.path.realpath(job.src) for job in jobs]
            outputs = [os.path.realpath(job.dst) for job in jobs]
            assert sorted(sources) == sorted({os.path.realpath(src) for src, _ in inputs})
            assert len(set(outputs)) == len(outputs)  # one input -> one distinct output
            assert not set(outputs) & set(sources)  # never an input overwritten
        assert _snapshot(root) == before  # planning writes nothing


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=batches())
def test_command_writes_each_output_once_or_refuses_before_any_write(case, constant_weights):
    files, patterns, output, recursive = case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _make_tree(root, files)
        before = _snapshot(root)
        args = [str(root / p) for p in patterns] + (["-o", str(root / output)] if output else [])
        args += ["-r"] if recursive else []
        written: list[str] = []
        original = Colorizer.colorize_file

        def counting(self, src, dst, guidance=None):
            written.append(os.path.realpath(dst))
            return original(self, src, dst, guidance)

        with mock.patch.object(Colorizer, "colorize_file", counting):
            code = main(
                ["image", *args, "--model", "test-constant", "--weights", str(constant_weights),
                 "--size", "32", "--device", "cpu", "-q"]
            )  # fmt: skip
        if code == 2:
            assert written == [] and _snapshot(root) == before  # refused: nothing written
        else:
            assert len(written) == len(set(written))  # no output written twice
            sources = {os.path.realpath(root / f) for f in files}
            assert not set(written) & sources


def test_issue_cases_are_refused_naming_inputs_and_output(tmp_path, capsys, constant_weights):
    for name in ["a/x.jpg", "b/x.jpg", "p.jpg", "p.tif"]:
        _make_tree(tmp_path / "coll", [name])
    common = ["--model", "test-constant", "--weights", str(constant_weights), "--size", "32"]
    coll, out = tmp_path / "coll", str(tmp_path / "out")
    cases = [
        ([str(coll / "**/*.jpg"), "-r", "-o", out], "out/x.png"),
        ([str(coll / "a/x.jpg"), str(coll / "b/x.jpg"), "-o", out], "out/x.png"),
        ([str(coll / "p.jpg"), str(coll / "p.tif")], "p_colorized.png"),
    ]
    for args, output in cases:
        before = _snapshot(tmp_path)
        assert main(["image", *args, *common, "-q"]) == 2
        err = capsys.readouterr().err
        assert "output collision" in err and output in err
        assert err.count("would be written by") == 1
        assert _snapshot(tmp_path) == before


def test_an_output_that_is_an_input_is_refused(tmp_path):
    _make_tree(tmp_path, ["p.png", "p.jpg"])
    inputs, _ = find_inputs([str(tmp_path)], recursive=False)
    with pytest.raises(PlanError, match="would overwrite the input"):
        plan_jobs(inputs, tmp_path, ".png")  # -o the inputs' own folder: p.jpg -> p.png


def test_one_file_named_twice_is_one_job(tmp_path):
    _make_tree(tmp_path, ["p.jpg"])
    jobs = check_plan([Job(tmp_path / "p.jpg", tmp_path / "o.png")] * 2)
    assert jobs == [Job(tmp_path / "p.jpg", tmp_path / "o.png")]


def test_run_jobs_checks_the_plan_again(tmp_path, constant):
    _make_tree(tmp_path, ["a.jpg", "b.jpg"])
    jobs = [
        Job(tmp_path / "a.jpg", tmp_path / "o.png"),
        Job(tmp_path / "b.jpg", tmp_path / "o.png"),
    ]
    with pytest.raises(PlanError):
        batch.run_jobs(constant, jobs, overwrite=False, progress=False)
    assert not (tmp_path / "o.png").exists()


def test_report_lists_outputs_and_failures(tmp_path):
    import io

    report = batch.BatchReport(done=[tmp_path / "a.png"], failed=[(tmp_path / "b.jpg", "bad")])
    out, err = io.StringIO(), io.StringIO()
    batch.print_report(report, ["nope.jpg"], out, err)
    assert out.getvalue() == f"{tmp_path / 'a.png'}\n"
    assert "nope.jpg: no such file or folder" in err.getvalue()
    assert "1 colorized, 1 failed:" in err.getvalue() and "b.jpg: bad" in err.getvalue()


def test_an_album_reports_which_photos_matched_the_reference(tmp_path, capsys):
    """``colorize image FOLDER --reference IMAGE``: the photo of the reference's scene matched
    it, an unrelated one (rings) fell back to the automatic colours, and a broken file failed
    without stopping the others."""
    from colorizer import planes
    from tests.guidance.scenes import grey_of, scene

    album = tmp_path / "album"
    album.mkdir()
    reference = scene()
    Image.fromarray(np.rint(grey_of(scene(seed=1)) * 255).astype(np.uint8)).save(
        album / "scene.png"
    )
    y, x = np.mgrid[0:96, 0:128]
    rings = (np.sin(np.hypot(x - 64, y - 48) / 3) * 127 + 128).astype(np.uint8)
    Image.fromarray(rings).save(album / "rings.png")
    (album / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(np.rint(reference * 255).astype(np.uint8)).save(tmp_path / "reference.png")
    out = tmp_path / "out"
    argv = ["image", str(album), "--reference", str(tmp_path / "reference.png"), "-o", str(out)]
    code = main([*argv, "--backend", "torch", "--device", "cpu", "--size", "128", "-q"])
    err = capsys.readouterr().err
    assert code == 1  # the broken photo
    assert "broken.jpg" in err and "2 colorized, 1 failed:" in err
    assert "reference: 1 of 2 photos matched it, 1 fell back to the automatic colours" in err
    assert f"{album / 'scene.png'}: matched the reference" in err
    assert f"{album / 'rings.png'}: fell back" in err
    matched = planes.rgb_to_lab_image(np.asarray(Image.open(out / "scene.png"), np.float32) / 255)
    truth = planes.rgb_to_lab_image(scene(seed=1))
    assert np.abs(matched[..., 1:] - truth[..., 1:]).mean() < 8


def test_an_album_reference_without_colour_fails_before_any_photo(tmp_path, capsys):
    Image.fromarray(GREY).save(tmp_path / "a.png")
    Image.fromarray(GREY).save(tmp_path / "grey_reference.png")
    argv = ["image", str(tmp_path / "a.png"), "--reference", str(tmp_path / "grey_reference.png")]
    code = main([*argv, "-o", str(tmp_path / "out"), "--backend", "torch", "--device", "cpu"])
    assert code != 0
    assert "grey_reference.png: the reference photo has no colour" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_album_lines_name_matched_and_fallen_back_photos(tmp_path):
    report = batch.BatchReport(matched={tmp_path / "b.jpg": 0.1, tmp_path / "a.jpg": 0.9})
    lines = batch.album_lines(report)
    assert lines[0] == "reference: 1 of 2 photos matched it, 1 fell back to the automatic colours"
    assert lines[1] == f"  {tmp_path / 'a.jpg'}: matched the reference (90% of the photo matched)"
    assert lines[2] == f"  {tmp_path / 'b.jpg'}: fell back (10% of the photo matched)"
    assert batch.album_lines(batch.BatchReport()) == []
