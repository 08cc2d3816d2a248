"""Metrics for ``colorize eval``: analytic cases, published CIEDE2000 data, skimage references."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from colorizer import color, metrics

RNG_SEED = 1234

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: (L1, a1, b1, L2, a2, b2, dE00).
# Pairs 1, 4, 7-17, 19, 20, 25-27, 29, 32-34: hue wrap-round, achromatic and rounding edge cases.
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]
# skimage.color.rgb2lab of pure red and of grey 0.5 (as in test_color.py).
LAB_RED = (53.240588, 80.092308, 67.202751)
LAB_GREY = (53.388965, -0.001468, 0.002784)


@pytest.fixture(scope="module")
def pair():
    """A smooth, photo-like 48 x 64 image and a noisy, tinted version of it (float64)."""
    rng = np.random.default_rng(RNG_SEED)
    y, x = np.mgrid[0:48, 0:64] / 64.0
    truth = np.stack([0.5 + 0.4 * np.sin(3 * x + y), 0.4 + 0.3 * np.cos(5 * y), 0.3 + 0.5 * x * y])
    truth = np.clip(truth.transpose(1, 2, 0) + 0.05 * rng.standard_normal((48, 64, 3)), 0, 1)
    pred = np.clip(truth * [1.1, 0.9, 1.0] + 0.08 * rng.standard_normal(truth.shape), 0, 1)
    return pred, truth


def grey(value: float, shape=(16, 16)) -> np.ndarray:
    return np.full((*shape, 3), value)


def half_and_half(left, right, shape=(16, 16)) -> np.ndarray:
    image = np.empty((*shape, 3))
    image[:, : shape[1] // 2] = left
    image[:, shape[1] // 2 :] = right
    return image


# --------------------------------------------------------------------------- identical and grey


def test_identical_images_are_perfect(pair):
    _, truth = pair
    result = metrics.evaluate_pair(truth, truth.copy(), prior=np.full(313, 1 / 313))
    assert result["psnr"] == math.inf
    assert result["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert result["ciede2000"] == 0.0
    assert result["delta_cf"] == 0.0
    assert result["cf"] == result["cf_truth"] == pytest.approx(metrics.colourfulness(truth))
    assert result["auc"] == 1.0
    assert result["auc_rebal"] == 1.0


def test_grey_images():
    dark, light = grey(0.3), grey(0.6)
    assert metrics.colourfulness(dark) == 0.0
    assert metrics.delta_colourfulness(dark, light) == 0.0
    # Greys of different lightness have ab ~ 1e-3, not exactly 0: still within every threshold.
    assert metrics.auc(dark, light) == 1.0
    assert metrics.auc(dark, light, prior=np.full(313, 1 / 313)) == 1.0
    assert metrics.psnr(dark, light) == pytest.approx(10 * math.log10(1 / 0.3**2))
    # Only the lightness differs: dE00 = dL / SL with SL from the mean lightness.
    l1, l2 = (metrics._to_lab(image)[0, 0, 0] for image in (dark, light))
    l50 = ((l1 + l2) / 2 - 50) ** 2
    expected = abs(l2 - l1) / (1 + 0.015 * l50 / math.sqrt(20 + l50))
    assert metrics.ciede2000(dark, light) == pytest.approx(expected, abs=0.01)


# --------------------------------------------------------------------------- PSNR and SSIM


def test_psnr_known_value():
    truth = grey(0.5)
    pred = truth.copy()
    pred[:, :8] += 0.1  # half the pixels off by 0.1 in every channel: MSE = 0.005
    assert metrics.psnr(pred, truth) == pytest.approx(10 * math.log10(1 / 0.005))
    assert metrics.psnr(pred.astype(np.float32), truth.astype(np.float32)) == pytest.approx(
        10 * math.log10(1 / 0.005), rel=1e-5
    )


def test_psnr_and_ssim_match_skimage(pair):
    skm = pytest.importorskip("skimage.metrics")
    pred, truth = pair
    assert metrics.psnr(pred, truth) == pytest.approx(
        skm.peak_signal_noise_ratio(truth, pred, data_range=1), rel=1e-9
    )
    expected = skm.structural_similarity(
        pred,
        truth,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
    )
    assert metrics.ssim(pred, truth) == pytest.approx(expected, abs=1e-6)
    assert metrics.ssim(pred.astype(np.float32), truth.astype(np.float32)) == pytest.approx(
        expected, abs=1e-4
    )
    # Piecewise-flat images, the hardest case for the float32 arithmetic: still within 1e-4.
    halves = half_and_half((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), shape=(40, 40))
    blocked = halves.copy()
    blocked[:20] = (0.3, 0.6, 0.1)
    expected = skm.structural_similarity(
        blocked,
        halves,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
    )
    assert metrics.ssim(blocked, halves) == pytest.approx(expected, abs=1e-4)


def test_ssim_of_uniform_images():
    # Flat images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    c1 = 0.01**2
    assert metrics.ssim(grey(0.2), grey(0.6)) == pytest.approx(
        (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), abs=1e-4
    )


def test_ssim_needs_the_window_to_fit():
    with pytest.raises(ValueError, match="11 x 11"):
        metrics.ssim(grey(0.5, (10, 40)), grey(0.5, (10, 40)))


# --------------------------------------------------------------------------- CIEDE2000


def test_ciede2000_sharma_test_data():
    data = np.array(SHARMA)
    got = metrics.delta_e_ciede2000(data[:, 0:3], data[:, 3:6])
    np.testing.assert_allclose(got, data[:, 6], atol=5e-5)
    # Symmetric in its arguments.
    np.testing.assert_allclose(metrics.delta_e_ciede2000(data[:, 3:6], data[:, 0:3]), got)


def test_ciede2000_matches_skimage(pair):
    skcolor = pytest.importorskip("skimage.color")
    pred, truth = pair
    expected = skcolor.deltaE_ciede2000(skcolor.rgb2lab(truth), skcolor.rgb2lab(pred)).mean()
    assert metrics.ciede2000(pred, truth) == pytest.approx(expected, rel=1e-9)
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.random((20, 30, 3)), rng.random((20, 30, 3))
    expected = skcolor.deltaE_ciede2000(skcolor.rgb2lab(a), skcolor.rgb2lab(b)).mean()
    assert metrics.ciede2000(a, b) == pytest.approx(expected, rel=1e-9)
    # Per pixel on raw Lab, with achromatic colours and hues on both sides of the wrap-round.
    lab1 = np.stack([rng.uniform(0, 100, 4000), *rng.uniform(-120, 120, (2, 4000))], axis=-1)
    lab2 = lab1 + rng.standard_normal(lab1.shape) * rng.choice([1e-3, 1.0, 30.0], lab1.shape)
    lab1[::11, 1:] = 0
    lab2[::7, 1:] = 0
    lab2[::5, 1] *= -1
    np.testing.assert_allclose(
        metrics.delta_e_ciede2000(lab1, lab2), skcolor.deltaE_ciede2000(lab1, lab2), atol=1e-9
    )


# --------------------------------------------------------------------------- colourfulness


def test_colourfulness_hand_computed():
    red, blue = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    # Uniform red: rg = 255, yb = 127.5, no spread -> 0.3 sqrt(255^2 + 127.5^2).
    assert metrics.colourfulness(grey(0) + red) == pytest.approx(0.3 * 127.5 * math.sqrt(5))
    # Half red, half blue: rg in {255, 0}, yb in {127.5, -255}: std 127.5 / 191.25, mean
    # 127.5 / -63.75.
    two = half_and_half(red, blue)
    expected = 127.5 * math.sqrt(3.25) + 0.3 * 127.5 * math.sqrt(1.25)
    assert metrics.colourfulness(two) == pytest.approx(expected)
    # Signed: positive when the prediction is the more colourful one.
    assert metrics.delta_colourfulness(two, grey(0.5)) == pytest.approx(expected)
    assert metrics.delta_colourfulness(grey(0.5), two) == pytest.approx(-expected)


# --------------------------------------------------------------------------- AuC


def test_cmf_and_auc_hand_computed():
    errors = np.array([0.0] * 50 + [10.0] * 50)
    curve = metrics.cmf(errors)
    assert curve.shape == (151,)
    np.testing.assert_array_equal(curve[:10], 0.5)
    np.testing.assert_array_equal(curve[10:], 1.0)
    assert curve.mean() == pytest.approx((10 * 0.5 + 141 * 1.0) / 151)
    # Weighted: the errors of 10 carry 3/4 of the mass.
    weights = np.array([1.0] * 50 + [3.0] * 50)
    np.testing.assert_allclose(metrics.cmf(errors, [0, 9, 10, 150], weights), [0.25, 0.25, 1, 1])
    assert metrics.cmf([200.0]).max() == 0.0


def test_auc_of_half_red_prediction_on_grey_truth():
    truth = grey(0.5)
    pred = half_and_half((1.0, 0.0, 0.0), (0.5, 0.5, 0.5))
    error = math.dist(LAB_RED[1:], LAB_GREY[1:])  # ~104.5 ab units
    below = math.floor(error) + 1  # thresholds 0..floor(error) see only the exact half
    curve = metrics.auc_curve(pred, truth)
    np.testing.assert_allclose(curve[:below], 0.5)
    np.testing.assert_allclose(curve[below:], 1.0)
    assert metrics.auc(pred, truth) == pytest.approx((0.5 * below + (151 - below)) / 151)
    assert metrics.auc(pred, truth, thresholds=[0, 200]) == pytest.approx(0.75)


def test_auc_rebalanced_weights_rare_colours_up():
    # Truth: 3/4 grey, 1/4 red; the prediction is all grey, so only the red pixels are wrong.
    truth = grey(0.5)
    truth[:, 12:] = (1.0, 0.0, 0.0)
    pred = grey(0.5)
    truth_ab = torch.from_numpy(metrics._to_lab(truth)).permute(2, 0, 1)[1:].unsqueeze(0)
    prior = color.empirical_prior(truth_ab)  # 0.75 on the grey bin, 0.25 on the red one
    assert sorted(prior[prior > 0].tolist()) == [0.25, 0.75]
    below = math.floor(math.dist(LAB_RED[1:], LAB_GREY[1:])) + 1
    raw = (0.75 * below + (151 - below)) / 151
    rebalanced = (0.5 * below + (151 - below)) / 151  # each class gets half the weight
    assert metrics.auc(pred, truth) == pytest.approx(raw)
    assert metrics.auc(pred, truth, prior=prior) == pytest.approx(rebalanced)
    assert metrics.auc(pred, truth, prior=prior.numpy() * 7) == pytest.approx(rebalanced)
    # A uniform prior weights every pixel equally: the raw AuC.
    assert metrics.auc(pred, truth, prior=np.ones(313)) == pytest.approx(raw)
    result = metrics.evaluate_pair(pred, truth, prior=prior)
    assert result["auc"] == pytest.approx(raw)
    assert result["auc_rebal"] == pytest.approx(rebalanced)


def test_pooled_rebalanced_auc_weighs_pixels_not_images():
    # Image 1: all grey, predicted exactly (AuC 1). Image 2: 1/4 red, predicted grey.
    perfect = grey(0.5)
    truth = grey(0.5)
    truth[:, 12:] = (1.0, 0.0, 0.0)
    truth_ab = torch.from_numpy(metrics._to_lab(truth)).permute(2, 0, 1)[1:].unsqueeze(0)
    prior = color.empirical_prior(truth_ab).numpy()  # 0.75 grey bin, 0.25 red bin
    below = math.floor(math.dist(LAB_RED[1:], LAB_GREY[1:])) + 1
    pooled = metrics.PooledAuC(prior)
    metrics.evaluate_pair(perfect, perfect, prior=prior, pooled=pooled)
    second = metrics.evaluate_pair(grey(0.5), truth, prior=prior, pooled=pooled)
    assert second["auc_rebal"] == pytest.approx((0.5 * below + (151 - below)) / 151)
    # Weights 1/0.75 per grey pixel and 1/0.25 per red one; n pixels per image, 1/4 red in the
    # second: red mass = (n/4)*4 = n, grey mass = n/0.75 + (3n/4)/0.75 = 7n/3.
    red_share = 1 / (1 + 7 / 3)
    expected = ((1 - red_share) * below + (151 - below)) / 151
    assert pooled.value == pytest.approx(expected)
    with pytest.raises(ValueError, match="no pixels"):
        _ = metrics.PooledAuC(prior).value


def test_auc_rejects_bad_priors():
    image = grey(0.5)
    for prior in (np.ones(312), np.zeros(313), -np.ones(313)):
        with pytest.raises(ValueError, match="prior"):
            metrics.auc(image, image, prior=prior)


def test_ab_bin_index_matches_nearest_bin():
    rng = np.random.default_rng(RNG_SEED)
    ab = np.concatenate(
        [
            rng.uniform(-140, 140, (3000, 2)),  # includes out-of-gamut ab
            color.ab_bins(torch.float64).numpy(),  # exactly on bin centres
        ]
    )
    expected = (
        color.nearest_bin(torch.from_numpy(ab).T.reshape(1, 2, -1, 1), color.ab_bins(torch.float64))
        .flatten()
        .numpy()
    )
    np.testing.assert_array_equal(metrics.ab_bin_index(ab), expected)


# --------------------------------------------------------------------------- evaluate_pair


def test_evaluate_pair_matches_the_individual_metrics(pair):
    pred, truth = pair
    result = metrics.evaluate_pair(pred, truth)
    assert set(result) == {"psnr", "ssim", "ciede2000", "cf", "cf_truth", "delta_cf", "cast", "auc"}
    assert all(isinstance(value, float) for value in result.values())
    assert result["psnr"] == metrics.psnr(pred, truth)
    assert result["ssim"] == metrics.ssim(pred, truth)
    assert result["ciede2000"] == metrics.ciede2000(pred, truth)
    assert result["cf"] == metrics.colourfulness(pred)
    assert result["cf_truth"] == metrics.colourfulness(truth)
    assert result["delta_cf"] == metrics.delta_colourfulness(pred, truth)
    assert result["auc"] == metrics.auc(pred, truth)
    assert 0 < result["auc"] < 1


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "metric",
    [
        metrics.psnr,
        metrics.ssim,
        metrics.ciede2000,
        metrics.delta_colourfulness,
        metrics.auc,
        metrics.auc_curve,
        metrics.evaluate_pair,
    ],
)
def test_mismatched_shapes_name_both(metric):
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(16, 20, 3\)"):
        metric(grey(0.5), grey(0.5, (16, 20)))


def test_rejects_non_images():
    with pytest.raises(ValueError, match="H x W x 3"):
        metrics.colourfulness(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="H x W x 3"):
        metrics.psnr(np.zeros((16, 16, 4)), np.zeros((16, 16, 4)))
    with pytest.raises(ValueError, match="float"):
        metrics.psnr(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.psnr(grey(0.5) * 255, grey(0.5))
    with pytest.raises(ValueError, match="shape"):
        metrics.delta_e_ciede2000(np.zeros((4, 3)), np.zeros((5, 3)))


# --------------------------------------------------------------------------- FID


def test_fid_analytic_cases():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(RNG_SEED)
    features = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    assert metrics.fid(features, features.copy()) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.5])
    # Same covariance, means apart by `shift`: FID = |shift|^2.
    assert metrics.fid(features, features + shift) == pytest.approx(shift @ shift, rel=1e-6)
    # Scaled by 2: covariance x4, sqrt(S 4S) = 2S, so FID = |mu|^2 + tr(S) (1 + 4 - 4).
    mu = features.mean(axis=0)
    expected = mu @ mu + np.trace(np.cov(features, rowvar=False))
    assert metrics.fid(features, 2 * features) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"\(200, 6\).*\(200, 5\)"):
        metrics.fid(features, features[:, :5])
    with pytest.raises(ValueError, match="at least 2"):
        metrics.fid(features[:1], features)


class TinyFeatures(nn.Module):
    """A random image -> 5-D feature model standing in for Inception (N x 5 x 1 x 1 output)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.tanh(self.conv(images * 2 - 1)))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_fid_from_images_with_a_torchscript_extractor(tmp_path):
    pytest.importorskip("scipy")
    torch.manual_seed(0)
    path = tmp_path / "features.pt"
    torch.jit.script(TinyFeatures().eval()).save(str(path))
    extractor = metrics.load_feature_extractor(path)

    rng = np.random.default_rng(RNG_SEED)
    images_a = rng.random((12, 20, 24, 3)).astype(np.float32)
    images_b = [rng.random((20, 24, 3)) ** 2 for _ in range(8)] + [rng.random((16, 16, 3))] * 4
    with torch.no_grad():
        features_a = extractor(torch.from_numpy(images_a).permute(0, 3, 1, 2)).flatten(1)
        features_b = torch.cat(
            [extractor(torch.from_numpy(i).permute(2, 0, 1)[None].float()) for i in images_b]
        ).flatten(1)
    expected = metrics.fid(features_a.numpy(), features_b.numpy())
    got = metrics.fid_from_images(images_a, images_b, extractor, batch_size=5)
    assert got == pytest.approx(expected, rel=1e-5)
    assert got > 0
    assert metrics.fid_from_images(images_a, iter(images_a), extractor) == pytest.approx(
        0.0, abs=1e-6
    )
    with pytest.raises(ValueError, match="no images"):
        metrics.fid_from_images([], images_a, extractor)
    with pytest.raises(FileNotFoundError):
        metrics.load_feature_extractor(tmp_path / "missing.pt")


def test_colour_cast_is_the_length_of_the_mean_ab_difference():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-40, 40, (8, 8, 3))
    shifted = truth + np.array([0.0, 3.0, -4.0])  # every pixel pushed by (3, -4) in ab
    assert metrics.colour_cast(shifted, truth) == pytest.approx(5.0)
    # Errors that cancel over the photo are not a cast.
    noisy = truth.copy()
    noisy[::2, :, 1] += 10
    noisy[1::2, :, 1] -= 10
    assert metrics.colour_cast(noisy, truth) == pytest.approx(0.0, abs=1e-12)
