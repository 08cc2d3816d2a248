"""The model we train and ship: in the package, verified, offline, and better than grey."""

import socket

import numpy as np
import pytest
from skimage import color as skcolor

from colorizer import Colorizer, evaluate, weights
from colorizer.cli import main
from colorizer.pipeline import DEFAULT_MODEL
from colorizer.train.export import read_metadata
from tests.support import shared_path


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No cache and no network: any connection attempt fails the test."""
    patch = pytest.MonkeyPatch()
    patch.setenv("COLORIZER_HOME", str(tmp_path_factory.mktemp("empty-cache")))

    def refuse(*args, **kwargs):
        raise AssertionError("the shipped model must not touch the network")

    patch.setattr(socket.socket, "connect", refuse)
    yield
    patch.undo()


@pytest.fixture(scope="module")
def shipped(offline):
    return Colorizer(device="cpu")


def street_scene(height: int = 96, width: int = 128) -> np.ndarray:
    """A made-up grey scene: bright sky, textured ground, a dark block in front."""
    rng = np.random.default_rng(0)
    rows = np.linspace(0, 1, height)[:, None]
    grey = np.where(rows < 0.45, 200 - 40 * rows, 90 + 30 * rng.random((height, width)))
    grey[50:80, 40:70] = 40
    return np.broadcast_to(grey, (height, width)).astype(np.uint8)


def test_default_is_the_packaged_model(shipped):
    spec = weights.model_spec(DEFAULT_MODEL)
    assert spec.packaged and spec.size_bytes <= 25 * 2**20
    path = weights.ensure_weights(DEFAULT_MODEL)  # verifies size and full sha256
    assert path.parent.name == "data" and path.stat().st_size == spec.size_bytes
    assert read_metadata(path)["arch"] == spec.arch == shipped.arch
    card = path.with_suffix(".md").read_text()
    assert "colorize train classification" in card and "Training time" in card


def test_colorizes_a_fixture_offline_keeping_lightness(shipped):
    grey = street_scene()
    out = shipped.colorize(grey)
    assert out.shape == (*grey.shape, 3) and out.dtype == np.uint8
    lab_out = skcolor.rgb2lab(out)
    lab_in = skcolor.rgb2lab(np.repeat(grey[..., None], 3, axis=2))
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 0.5
    chroma = np.hypot(lab_out[..., 1], lab_out[..., 2])
    assert chroma.mean() > 3, "the shipped model gave (almost) grey output"


def test_cli_uses_the_shipped_model_without_arguments(offline, tmp_path):
    src = tmp_path / "old.png"
    from PIL import Image

    Image.fromarray(street_scene()).save(src)
    assert main(["image", str(src), "--device", "cpu", "-q"]) == 0
    out = np.asarray(Image.open(tmp_path / "old_colorized.png"))
    assert out.shape == (96, 128, 3) and np.ptp(out.astype(int), axis=2).max() > 5


def test_better_than_grey_on_held_out_photos(shipped):
    folder = shared_path("data", "val", "bsds500-test")
    photos = evaluate.find_photos(folder)[::8]  # 25 photos spread over the set, not its first few
    means = evaluate.evaluate(
        {"shipped": evaluate.colorizer_method(shipped)}, photos, progress=False
    ).means()
    ours, grey = means["shipped"], means[evaluate.GREY]
    # Measured on these 25 (colornet-v2): pooled rebalanced AuC 75.4% vs grey 69.2%, PSNR 23.27
    # vs 21.78 dB, colour cast 11.2 vs 16.8, CF 0.76 of the truth's; all 200: RESULTS.md.
    assert ours["auc_rebal_pooled"] > grey["auc_rebal_pooled"] + 0.03
    assert ours["psnr"] > grey["psnr"]
    assert ours["cast"] < grey["cast"]
    assert ours["cf"] > 0.6 * ours["cf_truth"]


def test_colornet_v3_ships_with_hints_and_confidence(offline):
    """colornet-v3 (the campaign's shipped weights, not the default) is in the package, has a
    hint input that its catalogue entry leaves unused (hints correct its automatic colours,
    which measured better), follows hints, and gives a per-pixel confidence."""
    from colorizer.guidance import Guidance, PointHint

    spec = weights.model_spec("colornet-v3")
    assert spec.packaged and spec.size_bytes <= 25 * 2**20
    assert read_metadata(weights.ensure_weights("colornet-v3"))["family"] == "guided"
    v3 = Colorizer("colornet-v3", device="cpu", backend="torch")
    assert v3.record.accepts_hints and not v3.accepts_hints and v3.for_hints() is v3
    grey = street_scene()
    plain = v3.colorize(grey).astype(int)
    blue = Guidance(points=[PointHint(55, 65, "#2050c0", 9)])
    hinted = v3.colorize(grey, guidance=blue).astype(int)
    # The hinted block turns bluer (B - R up) than without the hint.
    block = (slice(55, 75), slice(45, 65))
    before = (plain[block][..., 2] - plain[block][..., 0]).mean()
    after = (hinted[block][..., 2] - hinted[block][..., 0]).mean()
    assert after > before + 5
    confidence = v3.confidence(grey)
    assert confidence.shape == grey.shape and 0 <= confidence.min() <= confidence.max() <= 1
