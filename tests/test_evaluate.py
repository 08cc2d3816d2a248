"""`colorize eval`: grey baseline, per-image CSV, contact sheets, bad files."""

import csv

import numpy as np
import pytest
from PIL import Image

from colorizer import evaluate, imageio, planes
from colorizer.cli import main


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "val"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        blocks = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((48, 32), Image.NEAREST).save(folder / f"p{index}.png")
    return folder


def test_grey_baseline_keeps_lightness_and_has_no_colour(photos):
    truth = imageio.read_image(photos / "p0.png")
    grey = evaluate.grey_method(truth)
    assert np.ptp(grey, axis=2).max() < 2e-3

    np.testing.assert_allclose(
        planes.lightness_image(grey), planes.lightness_image(truth.rgb), atol=0.05
    )


def test_dataset_prior_is_a_distribution(photos):
    pictures = [imageio.read_image(p) for p in sorted(photos.iterdir())]
    prior = evaluate.dataset_prior(pictures)
    assert prior.shape == (313,) and prior.sum() == pytest.approx(1.0)
    assert (prior > 0).sum() <= 3 * 24  # at most one bin per block of colour


def test_perfect_method_scores_perfectly(photos):
    result = evaluate.evaluate(
        {"oracle": lambda picture: picture.rgb}, evaluate.find_photos(photos), progress=False
    )
    means = result.means()
    assert means["oracle"]["auc"] == pytest.approx(1.0)
    assert means["oracle"]["auc_rebal"] == pytest.approx(1.0)
    assert means["oracle"]["auc_rebal_pooled"] == pytest.approx(1.0)
    assert means["grey"]["auc_rebal_pooled"] < 1.0
    assert means["oracle"]["delta_cf"] == pytest.approx(0.0)
    assert means["grey"]["cf"] == pytest.approx(0.0, abs=0.5)
    assert means["grey"]["auc"] < 1.0


def test_cli_table_csv_sheet_and_bad_file(photos, tmp_path, constant_weights, capsys):
    (photos / "broken.jpg").write_bytes(b"not a photo")
    code = main([
        "eval", str(photos), "--model", "test-constant", "--weights", str(constant_weights),
        "--size", "32", "--device", "cpu", "--csv", str(tmp_path / "m.csv"),
        "--sheet", str(tmp_path / "sheets"), "-q",
    ])  # fmt: skip
    assert code == 1  # the broken file is reported
    captured = capsys.readouterr()
    assert "| grey |" in captured.out and "| test-constant (constant.safetensors) |" in captured.out
    assert "broken.jpg" in captured.err
    with open(tmp_path / "m.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 3 and {r["method"] for r in rows} == {
        "grey",
        "test-constant (constant.safetensors)",
    }
    sheet = Image.open(tmp_path / "sheets" / "p0.jpg")
    assert sheet.size == (3 * 48 + 2 * 4, 32)  # grey | model | truth


def test_eval_removes_the_temp_files_of_a_killed_run(photos, tmp_path, constant_weights):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    leftovers = [
        tmp_path / f".m.csv.{int(dead.stdout)}-0123abcd.tmp.csv",
        sheets / f".a.jpg.{int(dead.stdout)}-0123abcd.tmp.jpg",
    ]
    for path in leftovers:
        path.write_text("half")
    code = main([
        "eval", str(photos), "--model", "test-constant", "--weights", str(constant_weights),
        "--size", "32", "--device", "cpu", "--csv", str(tmp_path / "m.csv"),
        "--sheet", str(sheets), "-q",
    ])  # fmt: skip
    assert code == 0
    assert not any(path.exists() for path in leftovers)
    assert (tmp_path / "m.csv").is_file()


def test_grey_ground_truth_is_warned_about(photos, constant_weights, caplog):
    ramp = np.linspace(0, 255, 32 * 48).reshape(32, 48).astype(np.uint8)
    Image.fromarray(ramp).save(photos / "grey.png")
    with caplog.at_level("WARNING", logger="colorizer.evaluate"):
        code = main([
            "eval", str(photos), "--model", "test-constant", "--weights", str(constant_weights),
            "--size", "32", "--device", "cpu", "-q",
        ])  # fmt: skip
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "colorizer.evaluate"]
    assert len(warnings) == 1
    assert "1 of 4 photos have no colour" in warnings[0] and "grey.png" in warnings[0]
    assert "grey photos make no colour truth" in warnings[0]


def test_colour_ground_truth_gives_no_warning(photos, caplog):
    with caplog.at_level("WARNING", logger="colorizer.evaluate"):
        evaluate.evaluate({}, evaluate.find_photos(photos), progress=False)
    assert not [r for r in caplog.records if r.name == "colorizer.evaluate"]


def test_a_bad_prior_is_refused_before_any_work(photos, tmp_path, capsys):
    (tmp_path / "prior.npy").write_text("not an array")
    np.save(tmp_path / "short.npy", np.ones(10))
    for name in ["prior.npy", "short.npy", "missing.npy"]:
        assert main(["eval", str(photos), "--prior", str(tmp_path / name), "-q"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path / name}:") and "Traceback" not in err


def test_mirror_average_option_switches_the_catalogue_setting(photos, tmp_path):
    """``--mirror-average off`` scores colornet-v3 exactly as ``Colorizer(mirror_average=False)``
    does; ``on`` is the catalogue's default; the two differ."""
    from colorizer.pipeline import Colorizer

    def psnrs(*extra):
        out = tmp_path / f"m{len(extra) and extra[-1]}.csv"
        common = ["eval", str(photos), "--model", "colornet-v3", "--size", "64", "--device"]
        assert main([*common, "cpu", "--backend", "torch", "--csv", str(out), "-q", *extra]) == 0
        with open(out) as handle:
            return [float(r["psnr"]) for r in csv.DictReader(handle) if r["method"] != "grey"]

    plain = Colorizer("colornet-v3", size=64, device="cpu", backend="torch", mirror_average=False)
    method = evaluate.colorizer_method(plain)
    reference = evaluate.evaluate({"plain": method}, evaluate.find_photos(photos), progress=False)
    expected = [row["psnr"] for row in reference.rows["plain"]]
    assert psnrs("--mirror-average", "off") == pytest.approx(expected, abs=1e-6)
    default, on = psnrs(), psnrs("--mirror-average", "on")
    assert default == on
    assert np.abs(np.subtract(on, expected)).max() > 0.01
