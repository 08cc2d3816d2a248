"""Training data, loop, checkpoints and export: the loader on awkward files, a kill/resume round
trip that must match an uninterrupted run exactly, and the trained model in the inference path."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from colorizer.errors import ColorizerError
from colorizer.train import data, families
from colorizer.train.__main__ import main
from colorizer.train.config import TrainConfig, make_config
from colorizer.train.export import export, load_exported, read_metadata
from colorizer.train.loop import before_and_after, read_checkpoint, train
from colorizer.weights import create_model


def colour_blocks(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 RGB made of random colour blocks: unmistakably a colour photo."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((8, 8, 1), np.uint8))


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Colour JPEGs in two sub-folders plus a corrupt file, a grey image, a CMYK JPEG and a
    16-bit PNG; and a separate validation folder."""
    root = tmp_path_factory.mktemp("photos")
    for index in range(4):
        folder = root / ("a" if index % 2 else "b")
        folder.mkdir(exist_ok=True)
        Image.fromarray(colour_blocks(index)).save(folder / f"photo{index}.jpg", quality=95)
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    Image.fromarray(grey).convert("RGB").save(root / "grey.png")
    Image.fromarray(colour_blocks(10)).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    deep = colour_blocks(11).astype(np.uint16) * 257
    cv2.imwrite(str(root / "deep.png"), deep[..., ::-1])  # OpenCV writes BGR
    (root / "notes.txt").write_text("not a photo")
    val = tmp_path_factory.mktemp("val")
    for index in range(2):
        Image.fromarray(colour_blocks(20 + index)).save(val / f"val{index}.png")
    return root, val


def config(photo_folder, out, **changes):
    train_dir, val_dir = photo_folder
    settings = dict(
        family="classification",
        train=str(train_dir),
        val=str(val_dir),
        out=str(out),
        steps=4,
        batch_size=2,
        crop=32,
        model_kwargs={"width": 8},
        warmup=2,
        ckpt_every=2,
        val_every=2,
        log_every=1,
        workers=0,
    )
    return make_config(**(settings | changes))


# -- data ----------------------------------------------------------------------------------------


def test_loader_skips_grey_and_corrupt_and_reads_cmyk_and_16_bit(photo_folder):
    files = data.find_images(photo_folder[0])
    assert len(files) == 8  # notes.txt is not an image
    photos = data.load_photos(files, crop=32)
    names = {name.rsplit("/", 1)[-1] for name in photos.names}
    assert names == {"photo0.jpg", "photo1.jpg", "photo2.jpg", "photo3.jpg", "cmyk.jpg", "deep.png"}
    assert [g.rsplit("/", 1)[-1] for g in photos.grey] == ["grey.png"]
    assert len(photos.corrupt) == 1 and photos.corrupt[0][0].endswith("corrupt.jpg")
    assert "corrupt" in photos.corrupt[0][1] or "damaged" in photos.corrupt[0][1]
    assert photos.summary().startswith("6 colour photos, 1 grey")
    for photo in photos.photos:
        assert photo.dtype == np.uint8 and 32 <= min(photo.shape[:2]) <= 40
    deep = photos.photos[[n.endswith("deep.png") for n in photos.names].index(True)]
    # 16-bit colours survive: the photo is the 8-bit blocks, shrunk from 48 x 64 to 32 x 43
    assert deep.std(axis=(0, 1)).min() > 30


def test_cache_gives_back_the_same_photos(photo_folder, tmp_path, monkeypatch):
    files = data.find_images(photo_folder[0])
    first = data.load_photos(files, crop=32, cache=tmp_path)
    assert len(list(tmp_path.glob("photos-*.npz"))) == 1

    def no_decoding(*args):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(data, "_decode_job", no_decoding)
    second = data.load_photos(files, crop=32, cache=tmp_path)
    assert second.names == first.names and second.grey == first.grey
    assert second.corrupt == first.corrupt
    for a, b in zip(first.photos, second.photos, strict=True):
        np.testing.assert_array_equal(a, b)


def test_validation_files_are_never_trained_on(photo_folder, tmp_path):
    train_dir, _ = photo_folder
    files = data.find_images(train_dir)
    kept, held = data.split_files(files, train_dir, 0.5)
    assert set(kept).isdisjoint(held) and len(kept) + len(held) == len(files)
    assert data.split_files(files, train_dir, 0.5) == (kept, held)  # deterministic
    # A validation folder inside the training folder is taken out of training.
    train, val = data.training_and_validation_files(str(train_dir), str(train_dir / "a"), 0)
    assert val and not {p.resolve() for p in train} & {p.resolve() for p in val}


def test_a_small_set_always_holds_out_its_fraction(tmp_path):
    # Eight names that the hash alone would all keep for training.
    names = (f"p{index}.jpg" for index in range(1000))
    files = [tmp_path / n for n in names if data._hash_fraction(n) >= 0.25][:8]
    assert not [p for p in files if data._hash_fraction(p.name) < 0.25]
    kept, held = data.split_files(files, tmp_path, 0.25)
    assert len(held) == 2 and set(kept).isdisjoint(held) and len(kept) == 6
    assert data.split_files(files, tmp_path, 0.25) == (kept, held)
    assert data.split_files(files, tmp_path, 0.0) == (files, [])


def test_near_neutral_photos_are_kept_and_toned_ones_skipped(tmp_path):
    """Fog (little chroma, looks grey) is colour truth worth training on; a sepia print (one
    strong tint) and a B&W photo stored as RGB are not."""
    rng = np.random.default_rng(0)
    base = np.clip(rng.normal(0.55, 0.15, (64, 64, 1)), 0, 1).repeat(3, axis=2)
    fog = base + np.array([0.0, 0.01, 0.02])  # a faint blue-grey haze
    sepia = base * np.array([1.0, 0.8, 0.55])
    for name, rgb in {"fog": fog, "sepia": sepia, "grey": base}.items():
        Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255)).save(tmp_path / f"{name}.png")
    decoded = {p.stem: data.decode(p, 32)[0] for p in sorted(tmp_path.glob("*.png"))}
    assert decoded == {"fog": "ok", "sepia": "grey", "grey": "grey"}
    assert data.GREY_CHROMA <= data.mean_chroma(np.clip(fog, 0, 1)) < data.NEUTRAL_CHROMA


def test_random_crops_are_reproducible_and_in_range():
    photos = [colour_blocks(1, 40, 52), colour_blocks(2, 44, 40)]
    first = data.random_crops(photos, 5, 32, data.batch_generator(3, 7), "cpu")
    again = data.random_crops(photos, 5, 32, data.batch_generator(3, 7), "cpu")
    other = data.random_crops(photos, 5, 32, data.batch_generator(3, 8), "cpu")
    assert first.shape == (5, 3, 32, 32)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)


def red_third_photo(height: int = 48, width: int = 144) -> np.ndarray:
    """uint8 H x W x 3: the left third red, the rest blue."""
    photo = np.zeros((height, width, 3), np.uint8)
    photo[:, : width // 3, 0] = 255
    photo[:, width // 3 :, 2] = 255
    return photo


def test_a_whole_view_is_the_whole_photo_squashed_as_inference_sees_it():
    photo = red_third_photo()
    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
    # No zoom, centred, not mirrored: the photo resized to the square, as cv2's area resize does.
    view = data._whole_view(image, 32, [0.0, 1.0, 0.5, 0.5, 0.9])
    reference = cv2.resize(photo, (32, 32), interpolation=cv2.INTER_AREA) / 255
    difference = np.abs(view.permute(1, 2, 0).numpy() - reference)
    assert difference.mean() < 0.02 and difference.max() < 0.35  # only the red/blue seam
    crops = data.random_crops([photo], 16, 32, data.batch_generator(0, 0), "cpu", None, 1.0)
    red = (crops[:, 0] > 0.5).float().mean(dim=(1, 2))
    assert ((red > 0.2) & (red < 0.45)).all()  # a third of every view, zoomed at most 15%
    left = (crops[:, 0, :, :10] > 0.5).float().mean(dim=(1, 2)) > 0.5
    assert left.any() and not left.all()  # mirrored about half the time


def test_whole_fraction_mixes_whole_views_with_crops_and_zero_keeps_the_old_batches():
    photo = red_third_photo()
    generator = data.batch_generator(1, 2)
    crops = data.random_crops([photo], 64, 32, generator, "cpu", None, 0.5)
    red = (crops[:, 0] > 0.5).float().mean(dim=(1, 2))
    whole = (red > 0.2) & (red < 0.45)
    assert 16 < int(whole.sum()) < 48  # a 32 px crop of a 48 px high photo is mostly one colour
    before = data.random_crops([photo], 8, 32, data.batch_generator(1, 2), "cpu")
    after = data.random_crops([photo], 8, 32, data.batch_generator(1, 2), "cpu", None, 0.0)
    assert torch.equal(before, after)


def test_validation_on_whole_photos_sees_what_centre_crops_miss():
    photo = red_third_photo()
    whole = data.whole_photos([photo], 32)
    centre = data.centre_crops([photo], 32)
    assert whole.shape == centre.shape == (1, 3, 32, 32)
    assert abs(float((whole[0, 0] > 0.5).float().mean()) - 1 / 3) < 0.05
    assert float((centre[0, 0] > 0.5).float().mean()) == 0.0  # the centre is all blue
    with pytest.raises(ColorizerError, match="whole_fraction"):
        TrainConfig(family="guided", train="x", out="y", whole_fraction=1.5)


# -- loop, checkpoints, resume ----------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_run(photo_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train(config(photo_folder, out), progress=False)
    return out


def test_killed_and_resumed_run_matches_the_straight_one(photo_folder, straight_run, tmp_path):
    calls = 0
    step = families.Classification.step

    def killed_during_step_4(self, batch):
        nonlocal calls
        calls += 1
        if calls == 4:  # after step 3 was logged, with the last checkpoint at step 2
            raise KeyboardInterrupt
        return step(self, batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(families.Classification, "step", killed_during_step_4)
        with pytest.raises(KeyboardInterrupt):
            train(config(photo_folder, tmp_path), progress=False)
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    train(config(photo_folder, tmp_path), resume=True, progress=False)

    straight = read_checkpoint(straight_run / "checkpoint.pt")
    resumed = read_checkpoint(tmp_path / "checkpoint.pt")
    assert resumed["step"] == straight["step"] == 4
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert torch.equal(straight["extra"]["prior"], resumed["extra"]["prior"])
    exp_avg = [s["exp_avg"] for s in straight["optimizers"]["net"]["state"].values()]
    resumed_avg = [s["exp_avg"] for s in resumed["optimizers"]["net"]["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(exp_avg, resumed_avg, strict=True))
    with (tmp_path / "train.csv").open() as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["1", "2", "3", "4"]


def test_run_writes_logs_samples_and_a_complete_checkpoint(straight_run):
    state = read_checkpoint(straight_run / "checkpoint.pt")
    assert state["version"] == 1 and state["arch"] == "colornet"
    assert state["family"] == "classification" and state["config"]["model_kwargs"] == {"width": 8}
    assert set(state["modules"]) == {"net"} and set(state["optimizers"]) == {"net"}
    assert state["info"]["photos"] == 6 and state["info"]["grey_skipped"] == 1
    assert state["info"]["val"]["step"] == 4
    with (straight_run / "val.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["step"] for row in rows] == ["0", "2", "4"]  # step 0: the starting point
    assert 0 < float(rows[-1]["auc"]) <= 1 and float(rows[-1]["psnr"]) > 5
    assert state["info"]["val_start"]["step"] == 0
    report = before_and_after(straight_run / "val.csv").splitlines()
    assert report[0].split() == ["validation", "step", "0", "step", "4"]
    psnr = next(line.split() for line in report if line.split()[0] == "psnr")
    assert float(psnr[1]) == pytest.approx(float(rows[0]["psnr"]), abs=1e-4)
    assert float(psnr[2]) == pytest.approx(float(rows[-1]["psnr"]), abs=1e-4)
    grid = Image.open(straight_run / "samples" / "step-0000004.png")
    assert grid.size == (3 * 32, 2 * 32)  # grey | prediction | truth, one row per val photo
    assert set(json.loads((straight_run / "prepare.json").read_text())) == {"prior_top10_mass"}


def test_resume_refuses_another_architecture(photo_folder, straight_run, tmp_path):
    import shutil

    shutil.copy(straight_run / "checkpoint.pt", tmp_path / "checkpoint.pt")
    with pytest.raises(ColorizerError, match="cannot resume"):
        train(config(photo_folder, tmp_path, model_kwargs={"width": 16}), resume=True)


# -- the trained model in the inference path, export, command line ------------------------------


def test_create_model_and_colorizer_accept_the_checkpoint(photo_folder, tmp_path):
    from colorizer import Colorizer

    out = tmp_path / "run"
    argv = [
        "train",
        "regression",
        "--train",
        str(photo_folder[0]),
        "--out",
        str(out),
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--crop",
        "32",
        "--workers",
        "0",
        "-q",
    ]
    assert main(argv) == 0
    checkpoint = out / "checkpoint.pt"
    model = create_model("regression", weights=checkpoint)
    assert not model.training
    colorizer = Colorizer("regression", weights=checkpoint, device="cpu", size=32)
    rgb = colorizer.colorize(np.full((20, 30), 128, np.uint8))
    assert rgb.shape == (20, 30, 3)
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "reg.safetensors")]) == 0
    create_model("regression", weights=tmp_path / "reg.safetensors")


def test_export_round_trip(straight_run, tmp_path):
    metrics = {"auc": 0.9}
    written = export(straight_run / "checkpoint.pt", tmp_path / "net.safetensors", metrics=metrics)
    assert [p.name for p in written] == ["net.safetensors", "net.md"]
    metadata = read_metadata(written[0])
    assert metadata["arch"] == "colornet" and json.loads(metadata["kwargs"]) == {"width": 8}
    exported = load_exported(written[0])
    from_checkpoint = create_model("colornet", weights=straight_run / "checkpoint.pt", width=8)
    from_file = create_model("colornet", weights=written[0], width=8)
    light = torch.rand(1, 1, 48, 64) * 100
    with torch.no_grad():
        expected = from_checkpoint(light)
        assert torch.equal(exported(light), expected)
        assert torch.equal(from_file(light), expected)
    card = written[1].read_text()
    assert "`colornet`" in card and "6 colour photos" in card and '"auc": 0.9' in card


def test_export_averages_several_runs_weights(straight_run, tmp_path):
    from safetensors.torch import load_file, save_file

    from colorizer.errors import ColorizerError

    single = export(straight_run / "checkpoint.pt", tmp_path / "one.safetensors")[0]
    shifted = tmp_path / "shifted.safetensors"  # another "run": every weight 1.0 higher
    tensors = load_file(str(single))
    moved = {k: v + 1.0 if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(moved, str(shifted), read_metadata(single))
    written = export([straight_run / "checkpoint.pt", shifted], tmp_path / "soup.safetensors")
    averaged = load_file(str(written[0]))
    for key, value in tensors.items():
        expected = value + 0.5 if value.is_floating_point() else value
        torch.testing.assert_close(averaged[key], expected, rtol=0, atol=1e-6)
    sources = json.loads(read_metadata(written[0])["average_of"])
    assert sources == [f"{straight_run.name}/checkpoint.pt", f"{tmp_path.name}/shifted.safetensors"]
    card = written[1].read_text()
    assert "## Weight average" in card and str(tmp_path) not in card
    # Weights of another architecture or other arguments are refused, naming the file.
    other = tmp_path / "other.safetensors"
    save_file(moved, str(other), {**read_metadata(single), "kwargs": json.dumps({"width": 16})})
    with pytest.raises(ColorizerError, match=r"other\.safetensors: a colornet with arguments"):
        export([straight_run / "checkpoint.pt", other], tmp_path / "bad.safetensors")


def test_weights_files_bring_their_constructor_arguments(straight_run, tmp_path):
    # A network trained with model_kwargs (here width 8; colornet-v2's variant alike) loads with
    # --weights alone: checkpoints and exported files record the arguments.
    from colorizer.errors import WeightsError
    from colorizer.pipeline import Colorizer

    checkpoint = straight_run / "checkpoint.pt"
    exported = export(checkpoint, tmp_path / "net.safetensors")[0]
    light = torch.rand(1, 1, 48, 64) * 100
    with torch.no_grad():
        expected = create_model("colornet", weights=checkpoint, width=8)(light)
        for weights in (checkpoint, exported):
            assert torch.equal(create_model("colornet", weights=weights)(light), expected)
    colorizer = Colorizer("colornet-v1", weights=exported, device="cpu", backend="torch")
    assert colorizer.colorize(np.zeros((40, 40), np.uint8)).shape == (40, 40, 3)
    # Arguments given win over the recorded ones; a mismatch is named briefly, not key by key.
    with pytest.raises(WeightsError, match=r"net\.safetensors: weights do not fit") as caught:
        create_model("colornet", weights=exported, width=16)
    assert "more)" in str(caught.value) and len(str(caught.value)) < 1200


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'family = "gan"\ntrain = "photos"\nout = "runs"\nsteps = 7\n[model_kwargs]\nwidth = 16\n'
    )
    settings = make_config(path, steps=9, lr=None)
    assert (settings.family, settings.steps, settings.model_kwargs) == ("gan", 9, {"width": 16})
    path.write_text('family = "gan"\nsteps_typo = 3\n')
    with pytest.raises(ColorizerError, match="steps_typo"):
        make_config(path)


def test_torchrun_trains_with_ddp_on_two_processes(photo_folder, tmp_path):
    """Two CPU processes (gloo) under torchrun: DDP joins them, rank 0 alone writes the logs and
    the checkpoint."""
    import os
    import subprocess
    import sys

    train_dir, val_dir = photo_folder
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--standalone", "-m", "colorizer.train", "train", "regression"]
    command += ["--train", str(train_dir), "--val", str(val_dir), "--out", str(out)]
    command += ["--steps", "2", "--batch-size", "2", "--crop", "32", "--val-every", "2", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = read_checkpoint(out / "checkpoint.pt")
    assert checkpoint["step"] == 2 and checkpoint["info"]["processes"] == 2
    rows = list(csv.DictReader((out / "train.csv").open()))
    assert [row["step"] for row in rows] == ["2"]  # one writer, not two


def test_resuming_with_an_empty_log_starts_it_afresh(tmp_path):
    from colorizer.train.loop import CsvLog

    log_path = tmp_path / "log.csv"
    log_path.write_text("")  # killed before the first row reached the disk
    log = CsvLog(log_path, start=100)
    log.write({"step": 101, "loss": 0.5})
    with log_path.open(newline="") as f:
        assert list(csv.DictReader(f)) == [{"step": "101", "loss": "0.5"}]
