"""Colour maths against scikit-image 0.26 reference values, pasted so the test needs no skimage."""

from pathlib import Path

import numpy as np
import pytest
import torch

from colorizer import color, planes

SHARED = Path(__file__).resolve().parents[2] / "shared"

RGB = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
    [1, 1, 1],
    [0.5, 0.5, 0.5],
    [0.2, 0.4, 0.6],
    [0.02, 0.01, 0],
]
# skimage.color.rgb2lab(RGB)
LAB = [
    [53.240588, 80.092308, 67.202751],
    [87.735099, -86.18303, 83.179703],
    [32.295673, 79.185591, -107.8573],
    [100.0, -0.002455, 0.004653],
    [53.388965, -0.001468, 0.002784],
    [42.008001, -0.154041, -32.842897],
    [0.797373, 0.312217, 1.200017],
]
# skimage.color.rgb2luv(RGB)
LUV = [
    [53.240588, 175.014474, 37.756174],
    [87.735099, -83.077908, 107.399053],
    [32.295673, -9.404919, -130.337046],
    [100.0, -0.00055, 0.007667],
    [53.388965, -0.000293, 0.004093],
    [42.008001, -20.248933, -47.549698],
    [0.79738, 0.562259, 0.815882],
]
# skimage.color.lab2rgb: the first two are out of gamut and get clipped.
LAB_IN = [[50, 60, -40], [75, -30, 80], [20, 10, 10], [90, 0, 0]]
RGB_OUT = [
    [0.720214, 0.282404, 0.737444],
    [0.663865, 0.772306, 0.0],
    [0.261276, 0.166704, 0.133951],
    [0.88757, 0.887563, 0.887599],
]


def as_image(rows, dtype=torch.float64):
    """A list of colours -> 1 x 3 x 1 x N tensor (channels at dim -3)."""
    return torch.tensor(rows, dtype=dtype).T.reshape(1, 3, 1, -1)


def rows(image):
    return image.reshape(3, -1).T.numpy()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rgb_to_lab_matches_skimage(dtype):
    got = rows(color.rgb_to_lab(as_image(RGB, dtype)))
    np.testing.assert_allclose(got, LAB, atol=1e-3 if dtype == torch.float32 else 1e-5)


def test_rgb_to_lightness_equals_lab_l():
    image = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(color.rgb_to_lightness(image), color.rgb_to_lab(image)[:, :1])


def test_lab_to_rgb_matches_skimage_with_clipping():
    np.testing.assert_allclose(rows(color.lab_to_rgb(as_image(LAB_IN))), RGB_OUT, atol=1e-5)


def test_rgb_to_luv_matches_skimage():
    np.testing.assert_allclose(rows(color.rgb_to_luv(as_image(RGB))), LUV, atol=1e-4)


@pytest.mark.parametrize(
    ("forward", "backward"),
    [(color.rgb_to_lab, color.lab_to_rgb), (color.rgb_to_luv, color.luv_to_rgb)],
)
def test_round_trip_is_identity(forward, backward):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(4, 3, 16, 16, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(backward(forward(image)), image, atol=1e-6, rtol=0)


def test_grey_has_zero_chroma():
    grey = torch.linspace(0, 1, 11, dtype=torch.float64).expand(3, 1, 11)
    ab = color.rgb_to_lab(grey)[1:]
    assert ab.abs().max() < 0.01  # skimage's rounded matrix leaves a few thousandths


def test_gradients_are_finite_everywhere():
    image = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64).expand(3, 1, 3).clone()
    image.requires_grad_(True)
    color.lab_to_rgb(color.rgb_to_lab(image)).sum().backward()
    assert torch.isfinite(image.grad).all()


def test_ab_bins_are_the_published_313():
    bins = color.ab_bins()
    assert bins.shape == (313, 2)
    path = SHARED / "data" / "eccv16" / "pts_in_hull.npy"
    if not path.exists():
        pytest.skip(f"{path} absent: ../shared is not beside the checkout")
    np.testing.assert_array_equal(bins.numpy(), np.load(path))


def test_ab_bins_cover_the_srgb_gamut():
    steps = torch.linspace(0, 1, 18, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij")).reshape(1, 3, 1, -1)
    ab = color.rgb_to_lab(cube)[:, 1:]
    nearest = color.ab_bins(torch.float64)[color.nearest_bin(ab, color.ab_bins(torch.float64))]
    distance = (nearest.reshape(-1, 2) - ab.reshape(2, -1).T).abs().amax(dim=1)
    assert distance.max() <= color.AB_GRID / 2 + 1e-9


def test_soft_encode_weights_nearest_bins():
    ab = torch.tensor([0.0, 0.0]).view(1, 2, 1, 1)  # exactly on the bin (0, 0)
    encoded = color.soft_encode(ab)
    assert encoded.shape == (1, 313, 1, 1)
    assert torch.isclose(encoded.sum(), torch.tensor(1.0))
    weights = encoded.flatten()
    assert (weights > 0).sum() == 5
    centre = color.ab_bins().tolist().index([0.0, 0.0])
    # Bin itself: exp(0); its four neighbours at distance 10: exp(-100 / 50) each.
    expected = 1 / (1 + 4 * np.exp(-2.0))
    assert weights[centre].item() == pytest.approx(expected, rel=1e-5)


def test_annealed_mean_limits():
    bins = color.ab_bins()
    logits = torch.zeros(1, 313, 1, 1)
    logits[0, 10] = 2.0
    logits[0, 20] = 1.0
    mode = color.annealed_mean(logits, temperature=1e-3).flatten()
    torch.testing.assert_close(mode, bins[10])
    probabilities = torch.softmax(logits.flatten(), 0)
    mean = color.annealed_mean(logits, temperature=1.0).flatten()
    torch.testing.assert_close(mean, probabilities @ bins)


def test_rebalance_weights_uniform_prior_gives_ones():
    # Smoothing a uniform prior is not uniform at the gamut edge, so use lam = 1 for the exact case.
    prior = torch.full((313,), 1 / 313, dtype=torch.float64)
    torch.testing.assert_close(color.rebalance_weights(prior, lam=1.0), torch.ones(313).double())


def test_rebalance_weights_favour_rare_colours():
    prior = torch.full((313,), 1.0, dtype=torch.float64)
    grey = color.ab_bins().tolist().index([0.0, 0.0])
    prior[grey] = 1000.0
    prior /= prior.sum()
    weights = color.rebalance_weights(prior)
    smoothed = color.smooth_prior(prior)
    assert weights[grey] < weights.median() / 5
    assert (smoothed * weights).sum().item() == pytest.approx(1.0)


def test_empirical_prior_counts_pixels():
    ab = torch.tensor([[0.0, 0.0], [1.0, -2.0], [40.0, 30.0]]).T.reshape(1, 2, 1, 3)
    prior = color.empirical_prior(ab)
    bins = color.ab_bins().tolist()
    assert prior[bins.index([0.0, 0.0])].item() == pytest.approx(2 / 3)
    assert prior[bins.index([40.0, 30.0])].item() == pytest.approx(1 / 3)


def test_lab_to_rgb_image_matches_reference_in_gamut():
    rng = np.random.default_rng(1)
    rgb = rng.random((64, 64, 3))
    lab = color.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    fast = planes.lab_to_rgb_image(lab.astype(np.float32))
    assert fast.dtype == np.float32
    assert np.abs(fast - rgb).max() < 5e-4  # a quarter of an 8-bit step


def test_lab_to_rgb_image_clips_out_of_gamut():
    lab = np.array([[[50, 120, -120], [5, -100, 100], [100, 0, 0]]], dtype=np.float32)
    rgb = planes.lab_to_rgb_image(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0, 2], [1, 1, 1], atol=1e-3)


@pytest.mark.parametrize("grey", [False, True])
def test_lightness_image_matches_reference(grey):
    rng = np.random.default_rng(2)
    rgb = rng.random((32, 48, 3)).astype(np.float32)
    if grey:
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]
    expected = color.rgb_to_lightness(torch.from_numpy(rgb).double().permute(2, 0, 1))[0]
    got = planes.lightness_image(rgb, grey=grey)
    assert got.dtype == np.float32 and got.shape == (32, 48)
    assert np.abs(got - expected.numpy()).max() < 1e-3


def test_lightness_image_is_exact_for_8_bit_levels():
    levels = (np.arange(256, dtype=np.float32) / 255).reshape(16, 16, 1).repeat(3, axis=2)
    expected = color.rgb_to_lightness(torch.from_numpy(levels).double().permute(2, 0, 1))[0]
    assert np.abs(planes.lightness_image(levels, grey=True) - expected.numpy()).max() < 1e-4


def test_nearest_bin_table_equals_brute_force():
    rng = np.random.default_rng(3)
    ab = torch.from_numpy(rng.uniform(-130, 130, size=(2, 2, 40, 40)))
    ab[0, :, 0, :5] = torch.tensor([5.0, -5.0]).view(2, 1)  # exact ties between four bins
    brute = color.nearest_bin(ab, color.ab_bins(torch.float64))
    torch.testing.assert_close(color.nearest_bin(ab), brute)
