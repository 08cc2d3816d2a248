"""Per-pixel confidence (issues 24 and 26): ``Colorizer.confidence`` and ``--confidence``.

colornet-v3 is not in the catalogue yet: its weights here are colornet-v2's encoder and decoder
with a confidence head given random, non-zero weights (a trained head is zero-initialised to
0.5 everywhere), so the map varies across the photo.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from colorizer import runtime
from colorizer.batch import CONFIDENCE_MARK, Job, PlanError, check_plan, confidence_path
from colorizer.cli import main
from colorizer.errors import ColorizerError
from colorizer.models.colornet_v3 import ColorNetV3
from colorizer.pipeline import Colorizer
from colorizer.planes import resize_plane
from colorizer.provenance import xmp
from colorizer.provenance.making import read_xmp
from colorizer.weights import ensure_weights, load_state_dict_file

SIZE = 64


@pytest.fixture(scope="module")
def v3_weights(tmp_path_factory) -> Path:
    model = ColorNetV3()
    state = load_state_dict_file(ensure_weights("colornet-v2"), "colornet-v3")
    missing = model.load_state_dict(state, strict=False).missing_keys
    assert all(key.startswith(("hint_", "confidence_head")) for key in missing)
    generator = torch.Generator().manual_seed(0)
    weight = model.confidence_head.weight
    weight.data = torch.randn(weight.shape, generator=generator) * 0.5
    path = tmp_path_factory.mktemp("v3") / "colornet-v3.safetensors"
    tensors = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"arch": "colornet-v3"})
    return path


@pytest.fixture(scope="module")
def v3(v3_weights) -> Colorizer:
    return Colorizer("colornet-v3", weights=v3_weights, size=SIZE, device="cpu", backend="torch")


def _photo(height: int = 72, width: int = 96) -> np.ndarray:
    """A grey photo with structure (a ramp, a disc, noise), so the map has something to vary on."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:height, :width]
    ramp = xx / width * 180 + 30
    disc = ((yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (height / 4) ** 2) * 60.0
    noise = rng.normal(0, 8, (height, width))
    return np.clip(ramp + disc + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "old.jpg"
    Image.fromarray(_photo()).save(path)
    return path


def _cli(weights: Path, *args) -> int:
    options = ["--model", "colornet-v3", "--weights", str(weights), "--size", str(SIZE)]
    return main(["image", *map(str, args), *options, "--device", "cpu", "--backend", "torch", "-q"])


# -- the array API --------------------------------------------------------------------------------


def test_confidence_is_a_full_resolution_probability_map(v3, photo_file):
    grey = _photo()
    conf = v3.confidence(grey)
    assert conf.shape == grey.shape  # 72 x 96, from the network's 64 x 64 grid
    assert conf.dtype == np.float32
    assert conf.min() >= 0.0 and conf.max() <= 1.0
    assert conf.std() > 0.01  # not the constant 0.5 of an untrained head
    np.testing.assert_allclose(v3.confidence(photo_file), v3.confidence(Image.open(photo_file)))
    assert v3.confidence(grey, size=128).shape == grey.shape


def test_confidence_is_the_network_grid_resized_back(v3):
    grey = _photo()
    small = v3.network_input([_lightness(grey)])
    grid = v3.net.confidence(small)[0, 0].numpy()
    np.testing.assert_allclose(v3.confidence(grey), resize_plane(grid, 72, 96), atol=1e-6)


@pytest.mark.skipif(not runtime.openvino_available(), reason="OpenVINO is not installed")
def test_on_openvino_the_confidence_comes_from_the_pytorch_module(v3, v3_weights):
    """OpenVINO runs ``forward`` only: the module is built on first use, and gives the same map."""
    Colorizer("colornet-v3", weights=v3_weights, size=SIZE, backend="openvino")  # exports
    warm = Colorizer("colornet-v3", weights=v3_weights, size=SIZE, backend="openvino")
    assert warm.backend == "openvino" and warm._net is None
    np.testing.assert_array_equal(warm.confidence(_photo()), v3.confidence(_photo()))
    # Its colours, averaged with the mirror image's in one batch, as on PyTorch.
    assert warm.mirror_average and v3.mirror_average
    assert np.abs(warm.colorize(_photo()).astype(int) - v3.colorize(_photo())).mean() < 0.5


def _lightness(grey: np.ndarray) -> np.ndarray:
    from colorizer import imageio, planes

    pixels = imageio.pixels_of_array(grey)
    assert pixels is not None
    return planes.lightness_of_bytes(pixels.data)


def test_a_model_without_confidence_says_which_have_one():
    v2 = Colorizer("colornet-v2", size=SIZE, device="cpu", backend="torch")
    with pytest.raises(ColorizerError) as caught:
        v2.confidence(_photo())
    message = str(caught.value)
    assert "\n" not in message
    assert "colornet-v2" in message and "colornet-v3" in message


# -- the command line -----------------------------------------------------------------------------


def test_cli_writes_a_grey_map_beside_each_output_and_the_xmp_points_to_it(
    v3_weights, photo_file, tmp_path, capsys
):
    assert _cli(v3_weights, photo_file, "--confidence", "--record") == 0
    out = tmp_path / "old_colorized.png"
    conf = tmp_path / "old_colorized_confidence.png"
    with Image.open(out) as colour, Image.open(conf) as grey:
        assert grey.mode == "L" and grey.size == colour.size == (96, 72)
        values = np.asarray(grey)
    assert values.std() > 1  # a map, not a flat image
    assert xmp.parse(read_xmp(out) or b"")["confidence_map"] == conf.name
    sidecar = json.loads((tmp_path / "old_colorized.png.json").read_text())
    assert sidecar["confidence_map"] == conf.name
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["xmp"]["confidence_map"] == conf.name
    assert found["confidence_map_found"] is True
    assert main(["inspect", str(out)]) == 0
    assert f"confidence map: {conf.name} (beside it)" in capsys.readouterr().out


def test_without_the_flag_no_map_and_no_pointer(v3_weights, photo_file, tmp_path):
    assert _cli(v3_weights, photo_file) == 0
    assert not (tmp_path / "old_colorized_confidence.png").exists()
    assert "confidence_map" not in xmp.parse(read_xmp(tmp_path / "old_colorized.png") or b"")


def test_maps_follow_the_outputs_into_a_folder_and_are_skipped_with_them(
    v3_weights, photo_file, tmp_path, capsys
):
    out = tmp_path / "out"
    assert _cli(v3_weights, photo_file, "-o", out, "--format", "jpg", "--confidence") == 0
    conf = out / "old_confidence.png"
    assert (out / "old.jpg").is_file() and conf.is_file()
    assert xmp.parse(read_xmp(out / "old.jpg") or b"")["confidence_map"] == conf.name
    made = conf.stat().st_mtime_ns
    assert _cli(v3_weights, photo_file, "-o", out, "--format", "jpg", "--confidence") == 0
    assert "1 skipped" in capsys.readouterr().err
    assert conf.stat().st_mtime_ns == made
    (out / "old.jpg").unlink()  # the map alone: still not written over without --overwrite
    assert _cli(v3_weights, photo_file, "-o", out, "--format", "jpg", "--confidence") == 0
    assert not (out / "old.jpg").exists() and "1 skipped" in capsys.readouterr().err
    again = ("-o", out, "--format", "jpg", "--confidence", "--overwrite")
    assert _cli(v3_weights, photo_file, *again) == 0
    assert (out / "old.jpg").is_file() and conf.stat().st_mtime_ns != made


def test_a_folder_run_never_takes_earlier_maps_as_photos(v3_weights, photo_file, tmp_path):
    assert _cli(v3_weights, tmp_path, "--confidence") == 0
    assert _cli(v3_weights, tmp_path, "--confidence", "--overwrite") == 0
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".jpg", ".png"))
    assert names == ["old.jpg", "old_colorized.png", "old_colorized_confidence.png"]


def test_a_model_without_confidence_is_refused_before_any_photo_is_read(
    tmp_path, capsys, monkeypatch
):
    import colorizer.imageio as imageio

    def no_reading(*args, **kwargs):
        raise AssertionError("a photo was read")

    for name in ("read_image", "read_pixels_u8", "pixel_count"):
        monkeypatch.setattr(imageio, name, no_reading)
    photo = tmp_path / "old.png"
    Image.fromarray(_photo()).save(photo)
    assert main(["image", str(photo), "--model", "colornet-v2", "--confidence", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "colornet-v2 gives no per-pixel confidence" in err and "colornet-v3" in err
    assert list(tmp_path.iterdir()) == [photo]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["-o", "-"], "standard output"),
        (["--engine", "ray"], "--engine ray"),
        (["--saturation", "0.5"], "guidance"),
    ],
)
def test_confidence_is_refused_where_it_cannot_be_written(
    v3_weights, photo_file, tmp_path, capsys, extra, says
):
    assert _cli(v3_weights, photo_file, "--confidence", *extra) == 2
    err = capsys.readouterr().err
    assert "--confidence" in err and says in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jpg"]


def test_standard_input_to_a_file_gets_its_map(v3_weights, tmp_path, monkeypatch):
    import io
    import sys

    data = io.BytesIO()
    Image.fromarray(_photo()).save(data, format="PNG")
    monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": io.BytesIO(data.getvalue())}))
    out = tmp_path / "out.png"
    assert _cli(v3_weights, "-", "-o", out, "--confidence") == 0
    with Image.open(tmp_path / "out_confidence.png") as grey:
        assert grey.mode == "L" and grey.size == (96, 72)


# -- planning -------------------------------------------------------------------------------------


def test_a_map_colliding_with_another_output_is_refused_before_any_work(
    v3_weights, tmp_path, capsys
):
    album = tmp_path / "album"
    album.mkdir()
    for name in ("x.jpg", f"x{CONFIDENCE_MARK}.jpg"):
        Image.fromarray(_photo(64, 64)).save(album / name)
    out = tmp_path / "out"
    assert _cli(v3_weights, album, "-o", out, "--confidence") == 2
    err = capsys.readouterr().err
    assert "output collision" in err and "x_confidence.png" in err
    assert not out.exists()
    assert _cli(v3_weights, album, "-o", out) == 0  # without maps the outputs are distinct


def test_a_map_that_would_overwrite_an_input_is_refused(v3_weights, tmp_path, capsys):
    photo = tmp_path / "x.jpg"
    Image.fromarray(_photo(64, 64)).save(photo)
    victim = tmp_path / "x_colorized_confidence.png"  # given by name, so it is an input
    Image.fromarray(_photo(64, 64)).save(victim)
    before = victim.read_bytes()
    assert _cli(v3_weights, photo, victim, "--confidence") == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert victim.read_bytes() == before


def test_check_plan_counts_maps_among_the_files_written(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    jobs = [Job(a, tmp_path / "o" / "a.png", confidence_path(tmp_path / "o" / "a.png"))]
    jobs.append(Job(b, tmp_path / "o" / "a_confidence.png"))
    with pytest.raises(PlanError, match=r"a_confidence\.png would be written by"):
        check_plan(jobs)
    assert confidence_path(Path("o/a.tif")) == Path("o/a_confidence.png")
