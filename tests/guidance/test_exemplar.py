"""Exemplar colour transfer (issue 25): the matching maths on synthetic features, then the
shipped model's encoder on a small synthetic scene, the reference's errors, and albums."""

from __future__ import annotations

import numpy as np
import pytest

from colorizer import Colorizer, planes
from colorizer.errors import ColorizerError
from colorizer.guidance import Guidance
from colorizer.guidance import exemplar as ex
from colorizer.guidance.exemplar import Exemplar, full_resolution_ab, make_exemplar, transfer
from tests.guidance.scenes import grey_of, scene


def ab_of(rgb: np.ndarray) -> np.ndarray:
    return planes.rgb_to_lab_image(rgb)[..., 1:]


def random_features(channels: int, height: int, width: int, seed: int) -> np.ndarray:
    return ex.unit_features(np.random.default_rng(seed).normal(size=(channels, height, width)))


# -- the maths, on synthetic features ------------------------------------------------------------


def test_a_photo_from_itself_gets_its_own_colours_with_full_confidence():
    rgb = scene(64, 64)
    features = random_features(64, 8, 8, seed=1)
    reference = make_exemplar(features, rgb)
    ab, confidence = transfer(reference, features, reference.lightness)
    np.testing.assert_allclose(ab, reference.ab, atol=0.5)
    np.testing.assert_array_equal(confidence, 1.0)


def test_a_shifted_copy_matches_where_the_content_moved():
    rgb = scene(64, 64)
    features = random_features(64, 8, 8, seed=2)
    reference = make_exemplar(features, rgb)
    shifted = np.roll(features, 3, axis=2)  # the target: the scene moved 3 cells right
    ab, confidence = transfer(reference, shifted, np.roll(reference.lightness, 3, axis=1))
    np.testing.assert_allclose(ab, np.roll(reference.ab, 3, axis=1), atol=0.5)
    assert confidence.min() > 0.99


def test_unrelated_features_fall_back_to_the_automatic_colours_exactly():
    rgb = scene(64, 64)
    # Features in disjoint channels: nothing in the reference looks like any target cell.
    reference_features, target = random_features(64, 8, 8, seed=3), random_features(64, 8, 8, 4)
    reference_features[32:] = 0
    target[:32] = 0
    reference = make_exemplar(reference_features, rgb)
    ab, confidence = transfer(reference, target, reference.lightness)
    np.testing.assert_array_equal(confidence, 0.0)
    lightness = planes.lightness_image(rgb)
    automatic = np.full((16, 16, 2), (12.0, -30.0), np.float32)
    full = full_resolution_ab(lightness, ab, confidence, automatic)
    np.testing.assert_allclose(full, np.broadcast_to(automatic[0, 0], full.shape), atol=1e-4)


def test_features_from_two_models_are_refused():
    reference = make_exemplar(random_features(8, 4, 4, seed=4), scene(32, 32))
    with pytest.raises(ColorizerError, match="same model"):
        transfer(reference, random_features(16, 4, 4, seed=5), reference.lightness)
    with pytest.raises(ColorizerError, match="H x W x 3"):
        make_exemplar(random_features(8, 4, 4, seed=4), np.zeros((32, 32), np.float32))


def test_the_guided_filter_keeps_a_constant_and_an_edge_of_the_guide():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    constant = np.full((40, 40, 2), 7.0, np.float32)
    np.testing.assert_allclose(ex.guided_filter(guide, constant, 4, 0.01), constant, atol=1e-4)
    step = np.where(guide[..., None] > 0.5, 30.0, -30.0).astype(np.float32) * np.ones(2)
    blurred_step = np.clip(step + np.random.default_rng(6).normal(0, 1, step.shape), -40, 40)
    filtered = ex.guided_filter(guide, blurred_step.astype(np.float32), 4, 0.001)
    assert abs(filtered[:, 17:20].mean() + 30) < 1 and abs(filtered[:, 20:23].mean() - 30) < 1


# -- the shipped encoder -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colornet() -> Colorizer:
    return Colorizer(device="cpu", backend="torch", size=128)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return scene()


def test_encoder_features_are_unit_length_on_the_stride_8_grid(colornet, photo):
    features = colornet.encoder_features(planes.lightness_image(photo))
    assert features.shape[1:] == (16, 16) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=0), 1.0, atol=1e-5)
    assert colornet.encoder_features(planes.lightness_image(photo), size=64).shape[1:] == (8, 8)


def test_a_model_without_an_encoder_says_which_have_one(constant):
    with pytest.raises(ColorizerError, match=r"no pretrained encoder.*colornet-v2"):
        constant.encoder_features(np.zeros((32, 32), np.float32))


def test_the_photo_as_its_own_reference_gets_its_colours_back(colornet, photo):
    grey = grey_of(photo)
    automatic = ab_of(colornet.colorize(grey))
    matched = ab_of(colornet.colorize(grey, Guidance(reference=photo)))
    truth = ab_of(photo)
    assert np.abs(matched - truth).mean() < 8 < np.abs(automatic - truth).mean()


def test_a_cropped_copy_matches_with_high_confidence(colornet, photo):
    lightness = planes.lightness_image(photo)
    crop = photo[8:, 12:]
    reference = make_exemplar(colornet.encoder_features(planes.lightness_image(crop)), crop)
    _, confidence = transfer(reference, colornet.encoder_features(lightness), lightness)
    assert confidence.mean() > 0.9
    matched = ab_of(colornet.colorize(grey_of(photo), Guidance(reference=crop)))
    assert np.abs(matched - ab_of(photo)).mean() < 8


def test_a_noise_reference_leaves_the_automatic_colours_nearly_alone(colornet, photo):
    noise = np.random.default_rng(3).random((96, 128, 3)).astype(np.float32)
    lightness = planes.lightness_image(photo)
    reference = make_exemplar(colornet.encoder_features(planes.lightness_image(noise)), noise)
    _, confidence = transfer(reference, colornet.encoder_features(lightness), lightness)
    assert confidence.mean() < 0.5
    grey = grey_of(photo)
    automatic = ab_of(colornet.colorize(grey))
    guided = ab_of(colornet.colorize(grey, Guidance(reference=noise)))
    assert np.abs(guided - automatic).mean() < 4


def test_a_prepared_exemplar_gives_what_the_photo_gives(colornet, photo):
    """An album prepares the reference once: the same colours as giving the photo each time."""
    crop = photo[8:, 12:]
    prepared = make_exemplar(colornet.encoder_features(planes.lightness_image(crop)), crop)
    grey = grey_of(photo)
    once = colornet.colorize(grey, Guidance(reference=prepared))
    np.testing.assert_allclose(once, colornet.colorize(grey, Guidance(reference=crop)), atol=1e-5)


def test_a_prepared_exemplar_needs_a_model_with_an_encoder(constant, photo):
    prepared = Exemplar(
        random_features(8, 4, 4, seed=7), np.zeros((4, 4), np.float32), np.zeros((4, 4, 2))
    )
    with pytest.raises(ColorizerError, match="encoder"):
        constant.colorize(grey_of(photo), Guidance(reference=prepared))


def test_hints_still_correct_the_matched_colours(colornet, photo):
    from colorizer.guidance import PointHint

    grey = grey_of(photo)
    hinted = colornet.colorize(
        grey, Guidance(reference=photo, points=[PointHint(20, 20, (60.0, 60.0))])
    )
    assert np.abs(ab_of(hinted)[20, 20] - (60.0, 60.0)).max() < 10


# -- the reference's errors ----------------------------------------------------------------------


def test_reference_errors_name_the_file(colornet, photo, tmp_path):
    grey = grey_of(photo)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ColorizerError, match=r"broken\.jpg"):
        colornet.colorize(grey, Guidance(reference=str(broken)))
    with pytest.raises(ColorizerError, match=r"missing\.png"):
        colornet.colorize(grey, Guidance(reference=str(tmp_path / "missing.png")))
    with pytest.raises(ColorizerError, match="no colour"):
        colornet.colorize(grey, Guidance(reference=grey))
