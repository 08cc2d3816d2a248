"""The four model families: architecture contracts, one optimisation step each, the training
prior against the published one, and the SOM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorizer import color
from colorizer.models.colornet import ColorNet
from colorizer.models.pix2pix import PatchGAN, Pix2Pix
from colorizer.models.som_mlp import SomMLP
from colorizer.train import data
from colorizer.train.config import TrainConfig
from colorizer.train.families import (
    FAMILIES,
    compare_priors,
    lr_factor,
    make_family,
    training_prior,
)
from colorizer.train.som import fit_som, quantisation_error
from colorizer.weights import architecture
from tests.support import shared_path

# family -> (model kwargs, crop): small enough for a quick CPU step.
SMALL = {
    "regression": ({}, 32),
    "classification": ({"width": 8}, 32),
    "gan": ({"width": 8, "depth": 5}, 32),
    "som-mlp": ({"grid": 3, "hidden": [8]}, 32),
    # Full width: it starts from the shipped colornet-v1's weights.
    "hints": ({}, 32),
    # colornet-v3 starts from the shipped colornet-v2's weights.
    "guided": ({}, 64),
}


def colourful_photos(count: int = 3, seed: int = 0) -> list[np.ndarray]:
    """uint8 photos made of random colour blocks, 40 x 48."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(count, 5, 6, 3), dtype=np.uint8)
    return [np.kron(block, np.ones((8, 8, 1), np.uint8)) for block in blocks]


@pytest.mark.parametrize("arch", ["regression", "colornet", "pix2pix", "som-mlp"])
def test_forward_contract(arch):
    model = architecture(arch)().eval()
    light = torch.rand(2, 1, 64, 128) * 100
    with torch.no_grad():
        ab = model(light)
    assert ab.shape == (2, 2, 64, 128)
    assert torch.isfinite(ab).all()
    assert 128 % getattr(model, "input_multiple", 1) == 0


def test_colornet_decodes_its_logits_by_annealed_mean():
    torch.manual_seed(0)
    model = ColorNet(width=8, temperature=0.5).eval()
    light = torch.rand(1, 1, 32, 48) * 100
    with torch.no_grad():
        logits = model.logits(light)
        expected = F.interpolate(
            color.annealed_mean(logits, temperature=0.5),
            size=(32, 48),
            mode="bilinear",
            align_corners=False,
        )
        assert logits.shape == (1, 313, 8, 12)
        torch.testing.assert_close(model.distribution(light).sum(1), torch.ones(1, 8, 12))
        torch.testing.assert_close(model(light), expected)


def test_colornet_default_fits_the_budget():
    params = sum(p.numel() for p in ColorNet().parameters())
    assert 1_500_000 < params < 6_500_000  # 25 MB of float32 would be 6.5 M parameters
    assert ColorNet.input_multiple == 16


def test_pix2pix_matches_the_published_sizes():
    """width 64, depth 8 is the published unet_256; PatchGAN(64, 3) the 70 x 70 discriminator."""
    generator = Pix2Pix(width=64, depth=8)
    discriminator = PatchGAN()
    assert sum(p.numel() for p in generator.parameters()) == 54_410_434
    assert sum(p.numel() for p in discriminator.parameters()) == 2_765_633
    assert generator.input_multiple == 256
    judged = discriminator(torch.rand(1, 1, 256, 256) * 100, torch.zeros(1, 2, 256, 256))
    assert judged.shape == (1, 1, 30, 30)


def test_som_mlp_is_a_per_pixel_mlp_on_the_patch():
    torch.manual_seed(0)
    model = SomMLP(grid=2, patch=3, hidden=[6, 5]).eval()
    light = torch.rand(1, 1, 9, 11) * 100
    with torch.no_grad():
        dense = model.mlp(model.normalize(light))
        patches = F.unfold(F.pad(model.normalize(light), (1, 1, 1, 1), mode="replicate"), 3)
        x = patches[0].T  # one row of 9 L values per pixel
        convs = [m for m in model.mlp if isinstance(m, torch.nn.Conv2d)]
        for index, conv in enumerate(convs):
            x = x @ conv.weight.flatten(1).T + conv.bias
            x = x.relu() if index < len(convs) - 1 else x
    torch.testing.assert_close(dense[0].flatten(1).T, x)


def test_som_mlp_colours_come_from_the_codebook():
    model = SomMLP(grid=2, patch=3, hidden=[4]).eval()
    model.codebook.copy_(torch.tensor([[0.0, 0.0], [40.0, 20.0], [-30.0, 10.0], [5.0, -40.0]]))
    with torch.no_grad():
        model.mlp[-1].weight.zero_()
        model.mlp[-1].bias.copy_(torch.tensor([0.0, 0.0, 1.0, 0.0]))  # class 2 always wins
        light = torch.full((1, 1, 4, 4), 60.0)
        ab = model(light)
    luv = torch.cat([light, torch.tensor([-30.0, 10.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)], 1)
    expected = color.rgb_to_lab(color.luv_to_rgb(luv))[:, 1:]
    torch.testing.assert_close(ab, expected)


# The refiner needs frame sequences: its step is tested in tests/video/test_consistency.py.
@pytest.mark.parametrize("family_name", sorted(set(FAMILIES) - {"refiner"}))
def test_one_optimisation_step(family_name):
    kwargs, crop = SMALL[family_name]
    config = TrainConfig(
        family=family_name,
        train="-",
        out="-",
        crop=crop,
        batch_size=2,
        model_kwargs=kwargs,
        som_steps=20,
    )
    torch.manual_seed(0)
    family = make_family(config, torch.device("cpu"))
    photos = colourful_photos()
    family.prepare(photos)
    before = {
        name: [p.detach().clone() for p in m.parameters()] for name, m in family.modules.items()
    }
    rgb = data.random_crops(photos, 2, crop, data.batch_generator(0, 0), "cpu")
    losses = family.step(data.make_batch(rgb))
    assert losses and all(math.isfinite(value) for value in losses.values())
    for name, module in family.modules.items():
        after = list(module.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before[name], after, strict=True)), name
    inference = family.inference_module().eval()
    with torch.no_grad():
        assert inference(torch.rand(1, 1, crop, crop) * 100).shape == (1, 2, crop, crop)


def test_classification_trains_eccv16_with_its_fixed_decoder():
    pytest.importorskip("colorizer.models.eccv16")
    config = TrainConfig(
        family="classification", train="-", out="-", arch="eccv16", crop=32, batch_size=1
    )
    family = make_family(config, torch.device("cpu"))
    family.prepare(colourful_photos(1))
    decoder = family.net.model_out.weight.detach().clone()
    torch.testing.assert_close(decoder.reshape(2, 313).T * 110, color.ab_bins())
    rgb = data.random_crops(colourful_photos(1), 1, 32, data.batch_generator(0, 0), "cpu")
    assert math.isfinite(family.step(data.make_batch(rgb))["ce"])
    assert torch.equal(family.net.model_out.weight, decoder)


def test_eccv16_takes_the_l1_term_decoded_as_its_forward_decodes():
    # ECCV16 has no temperature attribute: this step raised AttributeError before.
    config = TrainConfig(
        family="classification",
        train="-",
        out="-",
        arch="eccv16",
        crop=32,
        batch_size=1,
        ab_l1_weight=0.5,
    )
    family = make_family(config, torch.device("cpu"))
    family.prepare(colourful_photos(1))
    batch = data.make_batch(
        data.random_crops(colourful_photos(1), 1, 32, data.batch_generator(0, 0), "cpu")
    )
    with torch.no_grad():
        logits = family.net.logits(batch.l)
        decoded = color.annealed_mean(logits, family.bins, 1.0)
        expected = (decoded - batch.ab[..., ::4, ::4]).abs().mean() / 110
        # Temperature 1 is the forward's own decoding (at the logits' grid, before upsampling).
        forward_ab = family.net.model_out(family.net.distribution(batch.l)) * 110
        torch.testing.assert_close(decoded, forward_ab, atol=1e-3, rtol=0)
    losses = family.step(batch)
    assert losses["l1"] == pytest.approx(expected.item(), rel=1e-4)


def test_init_starts_from_given_weights_and_refuses_ones_that_do_not_fit(tmp_path):
    from safetensors.torch import save_file

    from colorizer.errors import ColorizerError

    def config(init, width=8):
        return TrainConfig(
            family="classification",
            train="-",
            out="-",
            crop=32,
            model_kwargs={"width": width},
            init=init,
        )

    torch.manual_seed(1)
    source = ColorNet(width=8)
    saved = tmp_path / "start.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(saved))
    family = make_family(config(str(saved)), torch.device("cpu"))
    for key, value in source.state_dict().items():
        assert torch.equal(family.net.state_dict()[key], value), key
    # Without --init the weights are a fresh draw, not the file's.
    fresh = make_family(config(None), torch.device("cpu")).net.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in source.state_dict().items())
    with pytest.raises(ColorizerError, match=r"start\.safetensors: does not fit colornet"):
        make_family(config(str(saved), width=16), torch.device("cpu"))


def test_crop_must_suit_the_architecture():
    from colorizer.errors import ColorizerError

    config = TrainConfig(family="gan", train="-", out="-", crop=48)
    with pytest.raises(ColorizerError, match="multiple of 64"):
        make_family(config, torch.device("cpu"))


# -- the class prior ---------------------------------------------------------------------------


def test_training_prior_of_a_single_colour():
    photo = np.zeros((20, 30, 3), np.uint8)
    photo[:] = (200, 40, 40)
    prior = training_prior([photo], seed=0)
    lab = color.rgb_to_lab(torch.tensor([200 / 255, 40 / 255, 40 / 255]).view(3, 1, 1))
    expected = int(color.nearest_bin(lab[1:].unsqueeze(0)))
    assert prior[expected] == 1.0
    assert prior.dtype == torch.float64


def test_compare_priors_extremes():
    p = torch.zeros(313, dtype=torch.float64)
    q = torch.zeros(313, dtype=torch.float64)
    p[:10], q[10:20] = 0.1, 0.1
    same = compare_priors(p, p)
    assert same["prior_tv"] == 0 and same["prior_js"] == 0
    apart = compare_priors(p, q)
    assert apart["prior_tv"] == pytest.approx(1)
    assert apart["prior_js"] == pytest.approx(math.log(2))
    assert apart["prior_top10_mass"] == apart["published_top10_mass"] == pytest.approx(1)


def test_training_prior_is_near_the_published_one():
    """On real photos our prior resembles ImageNet's: greys and browns dominate both."""
    published = torch.from_numpy(np.load(shared_path("data", "eccv16", "prior_probs.npy")))
    files = data.spread(data.find_images(shared_path("data", "train")), 24)
    photos = data.load_photos(files, crop=64).photos
    prior = training_prior(photos, seed=0)
    facts = compare_priors(prior, published)
    assert facts["published_top10_mass"] == pytest.approx(0.657, abs=0.01)
    assert 0.4 < facts["prior_top10_mass"] < 0.95
    assert facts["prior_tv"] < 0.5
    weights = color.rebalance_weights(prior)
    assert torch.isfinite(weights).all()
    assert float((color.smooth_prior(prior) * weights).sum()) == pytest.approx(1)


# -- the SOM and the schedule ----------------------------------------------------------------------


def test_som_finds_separated_clusters():
    generator = torch.Generator().manual_seed(1)
    centres = torch.tensor([[-60.0, -40.0], [50.0, -30.0], [-20.0, 60.0], [70.0, 50.0]])
    samples = centres.repeat_interleave(500, 0) + torch.randn(2000, 2, generator=generator)
    codebook = fit_som(samples, grid=2, steps=300, seed=0)
    assert codebook.shape == (4, 2)
    assert torch.cdist(centres, codebook).min(dim=1).values.max() < 3
    assert quantisation_error(samples, codebook) < 3
    assert torch.equal(codebook, fit_som(samples, grid=2, steps=300, seed=0))


def test_learning_rate_schedule():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1)
    assert lr_factor(10, 100, 10) == pytest.approx(1)
    assert lr_factor(99, 100, 10) == pytest.approx(0.01, abs=1e-3)


def test_guided_freezes_the_early_encoder_and_trains_hints_faster_and_confidence():
    """colornet-v3's recipe: the stem and first blocks stay fixed (and run without gradients),
    the zero-initialised hint convolutions learn at hint_lr_scale x the rate, the confidence
    head learns, and step 0 is exactly colornet-v2."""
    from colorizer.pipeline import Colorizer

    config = TrainConfig(
        family="guided",
        train="-",
        out="-",
        crop=64,
        batch_size=2,
        freeze_early=True,
        hint_lr_scale=10.0,
        encoder_lr_scale=0.2,
        channels_last=True,
        hint_l1_weight=1.0,
    )
    torch.manual_seed(0)
    family = make_family(config, torch.device("cpu"))
    net = family.net.eval()
    light = torch.rand(1, 1, 64, 64) * 100
    v2 = Colorizer("colornet-v2", backend="torch", device="cpu").net.eval()
    with torch.no_grad():  # the same sums; channels-last kernels round differently (1e-5 ab)
        torch.testing.assert_close(net(light), v2(light), atol=1e-4, rtol=1e-5)
    scales = {g["lr_scale"]: g["params"] for g in family.optimizers["net"].param_groups}
    hint_params = {id(p) for n, p in net.named_parameters() if n.startswith("hint_")}
    assert {id(p) for p in scales[10.0]} == hint_params
    early = [p.detach().clone() for p in net.early_parameters()]
    assert not any(p.requires_grad for p in net.early_parameters())
    photos = colourful_photos()
    family.prepare(photos)
    net.train()
    rgb = data.random_crops(photos, 2, 64, data.batch_generator(0, 0), "cpu")
    losses = family.step(data.make_batch(rgb))
    assert set(losses) == {"ce", "l1", "conf_bce"}
    assert all(torch.equal(a, b) for a, b in zip(early, net.early_parameters(), strict=True))
    assert net.confidence_head.weight.abs().sum() > 0  # it learned from its zero start
    assert any(p.abs().sum() > 0 for n, p in net.named_parameters() if n.startswith("hint_"))


def test_calibration_error_is_zero_when_confidence_matches_the_hit_rate():
    from colorizer.train.families import calibration

    probability = torch.tensor([0.25] * 4 + [0.75] * 4)
    right = torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 0])
    figures = calibration(probability, right)
    assert figures["calibration_error"] == pytest.approx(0.0)
    assert figures["right"] == pytest.approx(0.5) and figures["confidence"] == pytest.approx(0.5)
    overconfident = calibration(torch.full((4,), 0.95), torch.tensor([1.0, 0, 0, 0]))
    assert overconfident["calibration_error"] == pytest.approx(0.7)


def test_guided_validation_scores_hints_as_the_catalogue_uses_them():
    """The training's "PSNR 10 hints" is what `colorize eval --hints 10` measures of the same
    weights: colornet-v3's colours corrected by the hints (its hint input unused), the
    mirror average aside (validation scores single passes)."""
    from colorizer import metrics, planes
    from colorizer.guidance.core import Guidance
    from colorizer.guidance.protocol import ground_truth_hints
    from colorizer.pipeline import Colorizer

    config = TrainConfig(family="guided", train="-", out="-", crop=64, init="colornet-v3")
    family = make_family(config, torch.device("cpu"))
    photos = colourful_photos()
    rgb = data.random_crops(photos, 2, 64, data.batch_generator(0, 0), "cpu")
    figures = family.extra_validation(rgb)
    shipped = Colorizer("colornet-v3", size=64, device="cpu", backend="torch", mirror_average=False)
    expected, unhinted = [], []
    for truth in rgb.permute(0, 2, 3, 1).numpy():
        light = planes.lightness_image(truth)
        hints = Guidance(points=ground_truth_hints(truth, 10, 64))
        expected.append(metrics.psnr(planes.compose(light, shipped.guided_ab(light, hints)), truth))
        unhinted.append(
            metrics.psnr(planes.compose(light, shipped.guided_ab(light, Guidance())), truth)
        )
    assert figures["psnr_10_hints"] == pytest.approx(np.mean(expected), abs=0.05)
    assert np.mean(expected) > np.mean(unhinted) + 1  # the hints do change the colours
