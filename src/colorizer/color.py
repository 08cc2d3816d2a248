"""Colour maths shared by inference and training: sRGB <-> CIE Lab / Luv and the ab bins.

Everything works on torch tensors with the colour channels at dim -3 (``3 x H x W`` or
``N x 3 x H x W``), in float32 or float64, and is differentiable. The constants are those of
scikit-image (sRGB primaries, D65 white, 2-degree observer) so results match ``skimage.color``,
the reference the published Zhang et al. models were trained and run with.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

# sRGB (linear) -> XYZ, as in skimage.color.colorconv.xyz_from_rgb.
XYZ_FROM_RGB = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
RGB_FROM_XYZ = torch.linalg.inv(XYZ_FROM_RGB)
WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)

_LAB_EPS = 0.008856  # (6/29)^3, CIE's linear-segment threshold
_LAB_KAPPA = 7.787  # slope of the linear segment, as skimage rounds it

# Zhang et al. quantise ab with a grid of 10 and keep the Q = 313 bins that are in gamut.
AB_GRID = 10
# The published in-gamut set (pts_in_hull.npy) per a-column: a -> (lowest b, highest b). Each
# column is contiguous on the grid. It is wider than the sRGB gamut alone (which reaches 261 bins):
# the authors gathered it from ImageNet's colours, so it is tabulated here, not re-derived.
AB_BIN_COLUMNS = {
    -90: (50, 90),
    -80: (20, 90),
    -70: (0, 90),
    -60: (-20, 90),
    -50: (-30, 100),
    -40: (-40, 100),
    -30: (-50, 100),
    -20: (-50, 100),
    -10: (-60, 100),
    0: (-70, 100),
    10: (-80, 90),
    20: (-80, 90),
    30: (-90, 90),
    40: (-100, 90),
    50: (-100, 80),
    60: (-110, 80),
    70: (-110, 80),
    80: (-110, 70),
    90: (-110, 70),
    100: (-90, 0),
}
# |ab| of sRGB colours stays below ~110: networks and hint planes carry ab / AB_SCALE.
AB_SCALE = 110.0
# ECCV16's annealed-mean temperature (the Caffe release scales logits by 2.606 = 1 / 0.38375).
DEFAULT_TEMPERATURE = 0.38


def _matmul_channels(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix to the channel dimension (-3)."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(x), x)


def _channel_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like).view(3, 1, 1)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(
        rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92
    )


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    return torch.where(
        linear > 0.0031308,
        1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055,
        linear * 12.92,
    )


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    return _matmul_channels(srgb_to_linear(rgb), XYZ_FROM_RGB)


def xyz_to_rgb(xyz: torch.Tensor, clip: bool = True) -> torch.Tensor:
    rgb = linear_to_srgb(_matmul_channels(xyz, RGB_FROM_XYZ))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _LAB_EPS, t.clamp_min(_LAB_EPS) ** (1 / 3), _LAB_KAPPA * t + 16 / 116)


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    threshold = 0.2068966  # f(_LAB_EPS)
    return torch.where(f > threshold, f.clamp_min(threshold) ** 3, (f - 16 / 116) / _LAB_KAPPA)


def lightness_from_y(y: torch.Tensor) -> torch.Tensor:
    """CIE L* from relative luminance Y (white = 1)."""
    return 116 * _lab_f(y) - 16


def rgb_to_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """L* of sRGB pixels; cheaper than ``rgb_to_lab(rgb)[..., :1, :, :]``. Keeps dim -3 (size 1)."""
    y = _matmul_channels(srgb_to_linear(rgb), XYZ_FROM_RGB)[..., 1:2, :, :]
    return lightness_from_y(y)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE Lab (L in [0, 100], a and b roughly in [-128, 127])."""
    f = _lab_f(rgb_to_xyz(rgb) / _channel_view(WHITE_D65, rgb))
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_xyz(lab: torch.Tensor) -> torch.Tensor:
    light, a, b = lab.unbind(-3)
    fy = (light + 16) / 116
    # skimage clips negative z (colours beyond the blue end of the spectrum) to zero.
    f = torch.stack([fy + a / 500, fy, (fy - b / 200).clamp_min(0)], dim=-3)
    return _lab_f_inverse(f) * _channel_view(WHITE_D65, lab)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE Lab -> sRGB; out-of-gamut colours are clipped to [0, 1] unless ``clip=False``."""
    return xyz_to_rgb(lab_to_xyz(lab), clip=clip)


def _uv_prime(xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, z = xyz.unbind(-3)
    denominator = (x + 15 * y + 3 * z).clamp_min(torch.finfo(xyz.dtype).eps)
    return 4 * x / denominator, 9 * y / denominator


def rgb_to_luv(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE Luv (D65), as skimage.color.rgb2luv."""
    xyz = rgb_to_xyz(rgb)
    light = lightness_from_y(xyz[..., 1, :, :])
    u_prime, v_prime = _uv_prime(xyz)
    un, vn = _uv_prime(WHITE_D65.to(xyz).view(3, 1, 1))
    return torch.stack([light, 13 * light * (u_prime - un), 13 * light * (v_prime - vn)], dim=-3)


def luv_to_rgb(luv: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE Luv (D65) -> sRGB, as skimage.color.luv2rgb."""
    light, u, v = luv.unbind(-3)
    y = _lab_f_inverse((light + 16) / 116)
    un, vn = _uv_prime(WHITE_D65.to(luv).view(3, 1, 1))
    scale = (13 * light).clamp_min(torch.finfo(luv.dtype).eps)
    u_prime = u / scale + un
    v_prime = (v / scale + vn).clamp_min(torch.finfo(luv.dtype).eps)
    x = y * 9 * u_prime / (4 * v_prime)
    z = y * (12 - 3 * u_prime - 20 * v_prime) / (4 * v_prime)
    return xyz_to_rgb(torch.stack([x, y, z], dim=-3), clip=clip)


def ab_bins(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The Q = 313 in-gamut ab bin centres (Q x 2), ordered by a then b as in pts_in_hull.npy."""
    centres = [
        (a, b)
        for a, (b_low, b_high) in AB_BIN_COLUMNS.items()
        for b in range(b_low, b_high + 1, AB_GRID)
    ]
    return torch.tensor(centres, dtype=dtype)


def _squared_distances_to_bins(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """N x 2 x H x W ab -> N x Q x H x W squared distances to each bin centre."""
    centres = bins.to(ab).view(1, -1, 2, 1, 1)
    return ((ab.unsqueeze(1) - centres) ** 2).sum(dim=2)


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest bin for each pixel of N x 2 x H x W ab (hard encoding): N x H x W."""
    if bins is not None:
        return _squared_distances_to_bins(ab, bins).argmin(dim=1)
    # The 313 bins lie on the 10-grid: a pixel's nearest grid point (ties to the lower
    # coordinate, as argmin picks the first bin) is its nearest bin whenever that point is a bin.
    table, offset = _bin_table()
    cells = (torch.ceil(ab / AB_GRID - 0.5) + offset).clamp(0, table.shape[0] - 1).long()
    index = table[cells[:, 0], cells[:, 1]]
    outside = index < 0
    if outside.any():
        rest = ab.permute(0, 2, 3, 1)[outside].T.reshape(1, 2, -1, 1)
        index[outside] = _squared_distances_to_bins(rest, ab_bins().to(ab)).argmin(dim=1).flatten()
    return index


@functools.cache
def _bin_table() -> tuple[torch.Tensor, int]:
    """Grid cell -> bin index (-1 where the cell is no bin), with an empty ring round the bins."""
    cells = torch.round(ab_bins(torch.float64) / AB_GRID).long()
    offset = int(cells.abs().max()) + 1
    table = torch.full((2 * offset + 1, 2 * offset + 1), -1, dtype=torch.long)
    table[cells[:, 0] + offset, cells[:, 1] + offset] = torch.arange(len(cells))
    return table, offset


def soft_encode(
    ab: torch.Tensor, bins: torch.Tensor | None = None, neighbours: int = 5, sigma: float = 5.0
) -> torch.Tensor:
    """ECCV16 soft-encoding: each pixel's ab spread over its nearest bins with Gaussian weights.

    ``ab``: N x 2 x H x W. Returns N x Q x H x W, summing to one over Q.
    """
    bins = ab_bins() if bins is None else bins
    squared = _squared_distances_to_bins(ab, bins)
    nearest_sq, index = squared.topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-nearest_sq / (2 * sigma**2), dim=1)
    return torch.zeros_like(squared).scatter_(1, index, weights)


def smooth_prior(prior: torch.Tensor, bins: torch.Tensor | None = None, sigma: float = 5.0):
    """The bin prior blurred by a Gaussian over ab (sigma in ab units), renormalised."""
    bins = ab_bins(torch.float64) if bins is None else bins.double()
    squared = torch.cdist(bins, bins) ** 2
    smoothed = torch.exp(-squared / (2 * sigma**2)) @ prior.double()
    return smoothed / smoothed.sum()


def rebalance_weights(
    prior: torch.Tensor, bins: torch.Tensor | None = None, lam: float = 0.5, sigma: float = 5.0
) -> torch.Tensor:
    """Class-rebalancing weights w ~ ((1 - lam) * smoothed prior + lam / Q)^-1, E_prior[w] = 1."""
    smoothed = smooth_prior(prior, bins, sigma)
    weights = 1.0 / ((1 - lam) * smoothed + lam / smoothed.numel())
    return (weights / (smoothed * weights).sum()).to(prior.dtype)


def annealed_mean(
    logits: torch.Tensor, bins: torch.Tensor | None = None, temperature: float = DEFAULT_TEMPERATURE
) -> torch.Tensor:
    """Decode N x Q x H x W class logits to N x 2 x H x W ab: the mean of softmax(logits / T).

    T = 1 gives the mean of the distribution, T -> 0 its mode; ECCV16 uses T = 0.38.
    """
    bins = ab_bins() if bins is None else bins
    probabilities = F.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", probabilities, bins.to(probabilities))


def empirical_prior(ab: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Fraction of pixels whose nearest bin is each bin (length Q), from N x 2 x H x W ab."""
    bins = ab_bins() if bins is None else bins
    counts = torch.bincount(nearest_bin(ab, bins).flatten(), minlength=bins.shape[0])
    return counts.double() / counts.sum()


# -- Single colours: "#RRGGBB" <-> Lab, for user hints and suggestions -------------------------


def parse_hex(text: str) -> tuple[float, float, float]:
    """``"#RRGGBB"`` (or ``"RRGGBB"``, ``"#RGB"``) -> sRGB in [0, 1]; ValueError if malformed."""
    digits = text.strip().removeprefix("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"colour {text!r} is not '#RRGGBB'")
    red, green, blue = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return red, green, blue


def hex_to_lab(text: str) -> tuple[float, float, float]:
    rgb = torch.tensor(parse_hex(text), dtype=torch.float64).view(3, 1, 1)
    lightness, a, b = (float(v) for v in rgb_to_lab(rgb).flatten())
    return lightness, a, b


def hex_to_ab(text: str) -> tuple[float, float]:
    """The Lab (a, b) of an sRGB colour ``"#RRGGBB"``."""
    return hex_to_lab(text)[1:]


def lab_to_hex(lightness: float, a: float, b: float) -> str:
    """One Lab colour -> ``"#rrggbb"`` (clipped to the sRGB gamut)."""
    lab = torch.tensor([lightness, a, b], dtype=torch.float64).view(3, 1, 1)
    rgb = lab_to_rgb(lab).flatten().tolist()
    return "#" + "".join(f"{round(255 * v):02x}" for v in rgb)


def distribution_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) over dim 1 of an N x Q x H x W distribution: N x H x W; 0 = certain."""
    p = probabilities.clamp_min(1e-12)
    return -(p * p.log()).sum(dim=1)
