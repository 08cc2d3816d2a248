"""Image-quality metrics for ``colorize eval``: a colorized image against its ground truth.

Every image argument is an ``H x W x 3`` numpy float array (float32 or float64) of sRGB values in
[0, 1], channels last; the functions take one image pair at a time unless said otherwise. All colour
conversions go through :mod:`colorizer.color` (sRGB, D65, 2-degree observer, as scikit-image), so
Lab here is the same Lab the models are trained in. The arithmetic is float64, except SSIM's
filtering (float32, accurate to ~1e-9 on photos; see :func:`ssim`). One 480 x 320 pair takes a few
tens of milliseconds on a CPU (:func:`evaluate_pair` shares the Lab conversion between metrics).

Metrics (units in brackets):

* :func:`psnr` - peak signal-to-noise ratio over RGB, data range 1 [dB].
* :func:`ssim` - Wang et al. (2004) structural similarity, per RGB channel and averaged [unitless].
* :func:`ciede2000` - mean CIEDE2000 colour difference, Sharma et al. (2005) [Delta E00].
* :func:`colourfulness`, :func:`delta_colourfulness` - Hasler & Suesstrunk (2003) [0-255 scale].
* :func:`auc`, :func:`auc_curve` - Zhang et al. (2016) AuC of the ab-error CMF, raw or
  class-rebalanced [fraction in 0..1].
* :func:`fid`, :func:`fid_from_images`, :func:`load_feature_extractor` - Frechet distance between
  feature sets; needs scipy (imported only when FID is used) and a user-supplied TorchScript
  feature extractor.
* :func:`evaluate_pair` - all per-pair metrics in one dict, sharing the Lab conversion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from colorizer import color

# SSIM constants (Wang et al. 2004; skimage's gaussian_weights=True settings).
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # scipy.ndimage.gaussian_filter's truncate, as skimage passes it: 11-tap window
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# AuC (Zhang et al. 2016, Sec. 3.1): thresholds on the ab L2 error, 0..150 in steps of 1.
AUC_THRESHOLDS = range(0, 151)
# Errors up to t + AB_TOLERANCE count as within t. Neutral greys are not exactly ab = 0 in the
# sRGB/D65 constants (white is ab = (-0.0025, 0.0047)), so without it two greys of different
# lightness would miss the t = 0 threshold. 0.01 ab units is far below a visible difference (~2.3).
AB_TOLERANCE = 1e-2
# Class-rebalanced AuC: bins whose prior is (nearly) zero are floored to this probability.
PRIOR_FLOOR = 1e-8

# Hasler & Suesstrunk colourfulness works on the 0-255 scale.
_CF_SCALE = 255.0


# --------------------------------------------------------------------------- validation helpers


def _as_image(image, name: str = "image") -> np.ndarray:
    """Validate one ``H x W x 3`` float image in [0, 1] and return it as float64."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{name} must be an H x W x 3 RGB array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be a float array with values in [0, 1], got {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    array = array.astype(np.float64, copy=False)
    low, high = float(array.min()), float(array.max())
    if not (low >= -1e-6 and high <= 1 + 1e-6):  # also catches NaN
        raise ValueError(f"{name} values must lie in [0, 1], got range [{low:g}, {high:g}]")
    return array


def _as_pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred_shape, truth_shape = np.shape(pred), np.shape(truth)
    if pred_shape != truth_shape:
        raise ValueError(f"shape mismatch: pred has shape {pred_shape}, truth {truth_shape}")
    return _as_image(pred, "pred"), _as_image(truth, "truth")


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """``H x W x 3`` sRGB -> ``H x W x 3`` Lab via :func:`colorizer.color.rgb_to_lab`."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float64)).permute(2, 0, 1)
    return color.rgb_to_lab(tensor).permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- PSNR and SSIM


def _psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    mse = float(np.mean((pred - truth) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def psnr(pred, truth) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and RGB channels, data range 1.

    ``PSNR = 10 log10(1 / MSE)`` with ``MSE = mean((pred - truth)^2)`` over H x W x 3 values in
    [0, 1]. Identical images give ``math.inf``.
    """
    return _psnr(*_as_pair(pred, truth))


def _gaussian_window() -> np.ndarray:
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    window = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return window / window.sum()


def _filter_valid(maps: torch.Tensor, window: list[float], dim: int) -> torch.Tensor:
    """Correlate ``maps`` with a 1-D ``window`` along ``dim``, keeping only full overlaps."""
    length = maps.shape[dim] - len(window) + 1
    out = maps.narrow(dim, 0, length) * window[0]
    for k in range(1, len(window)):
        out.add_(maps.narrow(dim, k, length), alpha=window[k])  # fused multiply-add
    return out


def _ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    window = _gaussian_window().tolist()
    size = len(window)
    height, width = pred.shape[:2]
    if height < size or width < size:
        raise ValueError(f"ssim needs images of at least {size} x {size}, got {height} x {width}")
    # 5 statistics x 3 channels, filtered by the separable window over the valid region only:
    # the same values as skimage's full-image filter followed by cropping (size - 1) / 2.
    # For speed the arithmetic is float32 (torch). Each channel is first centred on its own mean
    # (variances and covariance do not depend on it; it is added back to the local means), so the
    # differences E[x^2] - E[x]^2 lose only ~1e-8 to rounding, far below C2 = 9e-4: the result
    # agrees with skimage's float64 one to ~1e-9 on photos, 4e-5 at worst (piecewise-flat images).
    x = torch.from_numpy(pred).permute(2, 0, 1).float()
    y = torch.from_numpy(truth).permute(2, 0, 1).float()
    offset_x, offset_y = x.mean(dim=(1, 2), keepdim=True), y.mean(dim=(1, 2), keepdim=True)
    x, y = x - offset_x, y - offset_y
    maps = torch.cat([x, y, x * x, y * y, x * y])
    maps = _filter_valid(_filter_valid(maps, window, dim=1), window, dim=2)
    mu_x, mu_y, xx, yy, xy = maps.split(3)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    mu_x, mu_y = mu_x + offset_x, mu_y + offset_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # data range 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    # Equal-sized channels: the mean over everything is the mean of the channel means.
    return float(ssim_map.mean(dtype=torch.float64))


def ssim(pred, truth) -> float:
    """Mean structural similarity (Wang et al. 2004), per RGB channel then averaged; unitless.

    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))`` with
    local means, variances and covariance weighted by an 11 x 11 Gaussian window (sigma 1.5,
    population normalisation), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = 1``, averaged over
    the positions where the window fits inside the image. Matches ``skimage.metrics.
    structural_similarity(pred, truth, channel_axis=-1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)`` to ~1e-9 on natural images (4e-5 at worst, on
    piecewise-flat ones: the filtering is float32). Images must be at least 11 x 11.
    """
    return _ssim(*_as_pair(pred, truth))


# --------------------------------------------------------------------------- CIEDE2000


def _pow7(x: torch.Tensor) -> torch.Tensor:
    """x ** 7 by multiplication (a float power is several times slower)."""
    x2 = x * x
    return x2 * x2 * x2 * x


def delta_e_ciede2000(lab1, lab2) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference between Lab arrays (Lab on the last axis).

    Sharma, Wu & Dalal (2005), with kL = kC = kH = 1::

        G = 0.5 (1 - sqrt(Cbar^7 / (Cbar^7 + 25^7))),  a' = (1 + G) a,  C' = |(a', b)|,
        h' = atan2(b, a') in [0, 360)
        dE00 = sqrt((dL'/SL)^2 + (dC'/SC)^2 + (dH'/SH)^2 + RT (dC'/SC)(dH'/SH))

    including the paper's special cases for achromatic colours (C'1 C'2 = 0) and hue wrap-round.
    Computed in float64 with torch (its vectorised trigonometry is several times faster than
    numpy's). Returns a numpy array of the input shape without the last axis, in Delta E00 units.
    """
    lab1, lab2 = np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64)
    if lab1.shape[-1:] != (3,) or lab2.shape[-1:] != (3,):
        raise ValueError(
            f"Lab arrays need 3 values on the last axis, got shapes {lab1.shape} and {lab2.shape}"
        )
    if lab1.shape != lab2.shape:
        raise ValueError(f"shape mismatch: lab1 has shape {lab1.shape}, lab2 {lab2.shape}")
    l1, a1, b1 = torch.from_numpy(lab1).unbind(-1)
    l2, a2, b2 = torch.from_numpy(lab2).unbind(-1)
    pi = math.pi

    c_bar7 = _pow7(((a1 * a1 + b1 * b1).sqrt() + (a2 * a2 + b2 * b2).sqrt()) / 2)
    g = 0.5 * (1 - (c_bar7 / (c_bar7 + 25.0**7)).sqrt())
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = (a1p * a1p + b1 * b1).sqrt(), (a2p * a2p + b2 * b2).sqrt()
    # h' in [0, 2 pi); atan2(0, 0) = 0 as the paper asks.
    h1p = torch.remainder(torch.atan2(b1, a1p), 2 * pi)
    h2p = torch.remainder(torch.atan2(b2, a2p), 2 * pi)

    chroma_product = c1p * c2p
    achromatic = chroma_product == 0
    h_diff = h2p - h1p
    wraps = h_diff.abs() > pi
    # (torch.where on two Python floats would give float32: keep the tensors in the branches.)
    dhp = torch.where(
        h_diff > pi, h_diff - 2 * pi, torch.where(h_diff < -pi, h_diff + 2 * pi, h_diff)
    )
    dhp = dhp.masked_fill(achromatic, 0.0)
    dl = l2 - l1
    dc = c2p - c1p
    dh = 2 * chroma_product.sqrt() * torch.sin(dhp / 2)

    l_bar, c_bar = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    # Mean hue: half the sum, moved by pi when the hues are more than pi apart; the plain sum
    # when either colour is achromatic.
    h_bar = torch.where(h_sum < 2 * pi, h_sum + 2 * pi, h_sum - 2 * pi)
    h_bar = torch.where(wraps, h_bar, h_sum) / 2
    h_bar = torch.where(achromatic, h_sum, h_bar)

    t = (
        1
        - 0.17 * torch.cos(h_bar - math.radians(30))
        + 0.24 * torch.cos(2 * h_bar)
        + 0.32 * torch.cos(3 * h_bar + math.radians(6))
        - 0.20 * torch.cos(4 * h_bar - math.radians(63))
    )
    d_theta = math.radians(30) * torch.exp(-(((torch.rad2deg(h_bar) - 275) / 25) ** 2))
    c_bar7p = _pow7(c_bar)
    r_c = 2 * (c_bar7p / (c_bar7p + 25.0**7)).sqrt()
    l50 = (l_bar - 50) ** 2
    dl = dl / (1 + 0.015 * l50 / (20 + l50).sqrt())  # / SL
    dc = dc / (1 + 0.045 * c_bar)  # / SC
    dh = dh / (1 + 0.015 * c_bar * t)  # / SH
    r_t = -torch.sin(2 * d_theta) * r_c
    return (dl * dl + dc * dc + dh * dh + r_t * dc * dh).clamp_min(0).sqrt().numpy()


def ciede2000(pred, truth) -> float:
    """Mean over pixels of the CIEDE2000 colour difference (Delta E00 units) between the images.

    Both images are converted with :func:`colorizer.color.rgb_to_lab`; see
    :func:`delta_e_ciede2000` for the per-pixel formula (Sharma et al. 2005, kL = kC = kH = 1).
    About 1 is a just-noticeable difference; identical images give 0.
    """
    pred, truth = _as_pair(pred, truth)
    return float(delta_e_ciede2000(_to_lab(pred), _to_lab(truth)).mean())


# --------------------------------------------------------------------------- colourfulness


def _colourfulness(rgb: np.ndarray) -> float:
    red, green, blue = np.moveaxis(rgb * _CF_SCALE, -1, 0)
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = math.hypot(float(rg.std()), float(yb.std()))
    offset = math.hypot(float(rg.mean()), float(yb.mean()))
    return spread + 0.3 * offset


def colourfulness(rgb) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of one image, on the 0-255 RGB scale.

    With R, G, B scaled to 0..255: ``rg = R - G``, ``yb = (R + G) / 2 - B`` per pixel, and
    ``CF = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with population
    (ddof = 0) standard deviations over all pixels. A grey image gives 0; the authors rate about
    33 "moderately", 59 "quite" and 82+ "highly" colourful.
    """
    return _colourfulness(_as_image(rgb, "rgb"))


def delta_colourfulness(pred, truth) -> float:
    """``colourfulness(pred) - colourfulness(truth)`` (0-255 scale), signed.

    Positive: the prediction is more colourful than the ground truth; negative: it is duller (the
    usual failure of regression colorizers, which desaturate).
    """
    pred, truth = _as_pair(pred, truth)
    return _colourfulness(pred) - _colourfulness(truth)


# --------------------------------------------------------------------------- AuC (ECCV16)


def ab_bin_index(ab) -> np.ndarray:
    """Index of the nearest of the 313 ab bins for each ab pair (ab on the last axis)."""
    ab = np.asarray(ab, dtype=np.float64)
    if ab.shape[-1:] != (2,):
        raise ValueError(f"ab needs 2 values on the last axis, got shape {ab.shape}")
    planar = torch.from_numpy(ab.reshape(-1, 2).T.reshape(1, 2, -1, 1))
    return color.nearest_bin(planar).numpy().reshape(ab.shape[:-1])


def _prior_weights(prior, truth_ab: np.ndarray) -> np.ndarray:
    """1 / prior of each pixel's true ab bin, unnormalised (``cmf`` normalises)."""
    prior = (
        prior.detach().cpu().numpy() if isinstance(prior, torch.Tensor) else np.asarray(prior)
    ).astype(np.float64)
    n_bins = color.ab_bins().shape[0]
    if prior.shape != (n_bins,):
        raise ValueError(f"prior must have shape ({n_bins},), got {prior.shape}")
    if not np.all(np.isfinite(prior)) or prior.min() < 0 or prior.sum() <= 0:
        raise ValueError("prior must be finite, non-negative and not all zero")
    prior = np.maximum(prior / prior.sum(), PRIOR_FLOOR)
    return 1.0 / prior[ab_bin_index(truth_ab)]


def cmf(errors, thresholds: Iterable[float] = AUC_THRESHOLDS, weights=None) -> np.ndarray:
    """Cumulative mass function of ``errors``: for each threshold t, the (weighted) fraction of
    errors ``<= t + AB_TOLERANCE``. ``weights`` (same shape as ``errors``) are normalised to sum 1;
    None gives every error weight 1. Returns a float64 array, one value per threshold.
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    thresholds = np.asarray(list(thresholds), dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError("thresholds must be a non-empty 1-D sequence")
    if errors.size == 0:
        raise ValueError("errors is empty")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64).ravel()
        if weights.shape != errors.shape:
            raise ValueError(f"weights shape {weights.shape} differs from errors {errors.shape}")
        if not (np.all(weights >= 0) and weights.sum() > 0):
            raise ValueError("weights must be non-negative and not all zero")
    # Each error lands on the first (sorted) threshold t with error <= t + tolerance; beyond the
    # last one it lands in an overflow slot. The CMF is then a cumulative sum over thresholds.
    order = np.argsort(thresholds, kind="stable")
    first, step = thresholds[order[0]], np.arange(thresholds.size)
    if np.array_equal(thresholds, first + step):  # unit steps (the default): direct slot index
        slot = np.clip(np.ceil(errors - AB_TOLERANCE - first), 0, thresholds.size).astype(np.int64)
    else:
        slot = np.searchsorted(thresholds[order] + AB_TOLERANCE, errors, side="left")
    mass = np.cumsum(np.bincount(slot, weights, minlength=thresholds.size + 1))
    curve = np.empty(thresholds.size)
    curve[order] = mass[:-1] / mass[-1]  # exactly 1 once every error is within a threshold
    return curve


def _ab_errors_and_weights(pred_lab: np.ndarray, truth_lab: np.ndarray, prior):
    truth_ab = truth_lab[..., 1:]
    errors = np.linalg.norm(pred_lab[..., 1:] - truth_ab, axis=-1)
    weights = None if prior is None else _prior_weights(prior, truth_ab)
    return errors, weights


def auc_curve(pred, truth, *, prior=None, thresholds: Iterable[float] = AUC_THRESHOLDS):
    """The CMF behind :func:`auc`: per threshold t, the fraction of pixels with ab error <= t.

    The ab error of a pixel is the Euclidean (L2) distance between predicted and true (a, b) in
    CIE Lab (ab units). With ``prior`` (length 313, the ab-bin probabilities, e.g. the published
    ``prior_probs.npy`` or :func:`colorizer.color.empirical_prior` of a training set), pixel i has
    weight ``1 / max(prior[bin(truth_ab_i)], PRIOR_FLOOR)`` (prior normalised to sum 1; weights
    normalised to sum 1); without it every pixel counts 1. Returns a float64 array in [0, 1].
    """
    pred, truth = _as_pair(pred, truth)
    errors, weights = _ab_errors_and_weights(_to_lab(pred), _to_lab(truth), prior)
    return cmf(errors, thresholds, weights)


def auc(pred, truth, *, prior=None, thresholds: Iterable[float] = AUC_THRESHOLDS) -> float:
    """ECCV16 AuC (Zhang et al. 2016, Sec. 3.1 / Table 1), a fraction in [0, 1].

    The area under the CMF of per-pixel ab errors (:func:`auc_curve`) for thresholds
    t = 0, 1, ..., 150, normalised so a perfect prediction scores 1: ``AuC = mean_t CMF(t)``, i.e.
    the sum over the unit-spaced thresholds divided by their count (151). ``prior=None`` gives the
    raw AuC; a length-313 prior gives the class-rebalanced AuC, each pixel weighted by the inverse
    prior probability of its ground-truth ab bin so that rare colours count as much as common ones.
    Errors up to ``t + AB_TOLERANCE`` (0.01 ab units) count as within t, so that neutral greys of
    different lightness (ab ~ 0.003, not 0, in these constants) score 1. Multiply by 100 for the
    paper's percentages.
    """
    return float(auc_curve(pred, truth, prior=prior, thresholds=thresholds).mean())


class PooledAuC:
    """Class-rebalanced AuC of a whole image set as one figure: the CMF of every pixel of every
    image, each weighted ``1 / prior(bin of its true ab)``, pooled before the area is taken.

    The per-image mean of :func:`auc` with a prior lets a handful of rare-colour pixels decide an
    image's score (the published prior spans 6e-9 .. 0.2, so weights span eight decades);
    pooling weighs each pixel the same wherever it is, as the paper's single figure over a test
    set does. Feed it through ``evaluate_pair(..., pooled=...)``; read ``value``.
    """

    def __init__(self, prior, thresholds: Iterable[float] = AUC_THRESHOLDS) -> None:
        self.prior = prior
        self.thresholds = list(thresholds)
        self.mass = np.zeros(len(self.thresholds))
        self.weight = 0.0

    def add(self, errors: np.ndarray, truth_ab: np.ndarray) -> None:
        weights = _prior_weights(self.prior, truth_ab)
        self.mass += cmf(errors, self.thresholds, weights) * weights.sum()
        self.weight += float(weights.sum())

    @property
    def value(self) -> float:
        if self.weight == 0:
            raise ValueError("no pixels added")
        return float((self.mass / self.weight).mean())


# --------------------------------------------------------------------------- all per-pair metrics


def colour_cast(pred_lab: np.ndarray, truth_lab: np.ndarray) -> float:
    """|mean predicted ab - mean true ab| over the image: a tint of the whole photo (Lab units)."""
    mean_ab = [lab[..., 1:].reshape(-1, 2).mean(axis=0) for lab in (pred_lab, truth_lab)]
    difference = mean_ab[0] - mean_ab[1]
    return float(np.linalg.norm(difference))


def evaluate_pair(pred, truth, *, prior=None, pooled: PooledAuC | None = None) -> dict[str, float]:
    """All per-pair metrics of a colorized image ``pred`` against its ground truth ``truth``.

    Keys: ``psnr`` (dB), ``ssim``, ``ciede2000`` (mean Delta E00), ``cf`` (colourfulness of pred),
    ``cf_truth``, ``delta_cf`` (= cf - cf_truth), ``cast`` (the colour cast: length of mean
    predicted ab minus mean true ab, Lab units), ``auc`` (raw, 0..1) and, only when ``prior`` is
    given, ``auc_rebal`` (class-rebalanced, 0..1). The Lab conversion is shared between metrics.
    """
    pred, truth = _as_pair(pred, truth)
    pred_lab, truth_lab = _to_lab(pred), _to_lab(truth)
    cf, cf_truth = _colourfulness(pred), _colourfulness(truth)
    errors = np.linalg.norm(pred_lab[..., 1:] - truth_lab[..., 1:], axis=-1)
    result = {
        "psnr": _psnr(pred, truth),
        "ssim": _ssim(pred, truth),
        "ciede2000": float(delta_e_ciede2000(pred_lab, truth_lab).mean()),
        "cf": cf,
        "cf_truth": cf_truth,
        "delta_cf": cf - cf_truth,
        "cast": colour_cast(pred_lab, truth_lab),
        "auc": float(cmf(errors).mean()),
    }
    if prior is not None:
        weights = _prior_weights(prior, truth_lab[..., 1:])
        result["auc_rebal"] = float(cmf(errors, weights=weights).mean())
    if pooled is not None:
        pooled.add(errors, truth_lab[..., 1:])
    return result


# --------------------------------------------------------------------------- FID (optional)


def fid(features_a, features_b) -> float:
    """Frechet distance between two sets of feature vectors (``N x D`` arrays, N >= 2 each).

    Fitting a Gaussian to each set (mean mu, covariance S with ddof = 1):
    ``FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, in squared feature units. With
    Inception-v3 pool3 features this is the FID of Heusel et al. (2017). Needs scipy
    (``scipy.linalg.sqrtm``), imported here only. Follows pytorch-fid's numerics: a tiny diagonal
    offset when the product is singular, and the real part of the square root.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"features must be N x D arrays with the same D, got shapes {a.shape} and {b.shape}"
        )
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"need at least 2 feature vectors per set, got shapes {a.shape}, {b.shape}"
        )
    try:
        from scipy import linalg
    except ImportError as error:  # pragma: no cover - scipy is present in the dev environment
        raise ImportError("fid needs scipy: pip install scipy") from error

    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(root)):
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def load_feature_extractor(weights_path: str | Path) -> torch.nn.Module:
    """Load an image -> features model for FID from a TorchScript file (``torch.jit.load``).

    Inception weights cannot be downloaded by this package: users supply their own, e.g.
    pytorch-fid's ``pt_inception-2015-12-05`` InceptionV3 (pool3, 2048-D) scripted or traced with
    ``torch.jit.trace`` and saved with ``.save(path)``. The module must take an ``N x 3 x H x W``
    float32 batch of sRGB in [0, 1] - doing any resizing (299 x 299) and normalisation itself - and
    return ``N x D`` features (trailing singleton dims are flattened). Loaded on the CPU, in eval
    mode. (torch 2.13 marks ``torch.jit.load`` deprecated and warns; it still loads.)
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"feature extractor {path} does not exist")
    module = torch.jit.load(str(path), map_location="cpu")
    module.eval()
    return module


def _features(images, extractor, batch_size: int) -> np.ndarray:
    """Features of an iterable of images, batching runs of equal-sized neighbours (streamed)."""
    features: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        stacked = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            out = extractor(stacked)
        features.append(out.reshape(out.shape[0], -1).double().cpu().numpy())
        batch.clear()

    for i, image in enumerate(images):
        image = _as_image(image, f"images[{i}]")
        if batch and (len(batch) >= batch_size or image.shape != batch[0].shape):
            flush()
        batch.append(image)
    if batch:
        flush()
    if not features:
        raise ValueError("no images given")
    return np.concatenate(features)


def fid_from_images(
    images_a: Iterable | np.ndarray,
    images_b: Iterable | np.ndarray,
    extractor: torch.nn.Module,
    *,
    batch_size: int = 32,
) -> float:
    """FID between two image sets using ``extractor`` (see :func:`load_feature_extractor`).

    ``images_a`` / ``images_b``: iterables (lists, generators) of ``H x W x 3`` float sRGB images
    in [0, 1] (sizes may differ; runs of equal-sized neighbours are batched, up to ``batch_size``)
    or ``N x H x W x 3`` arrays; at least 2 images each.
    Returns :func:`fid` of the two feature sets.
    """
    return fid(
        _features(images_a, extractor, batch_size), _features(images_b, extractor, batch_size)
    )
