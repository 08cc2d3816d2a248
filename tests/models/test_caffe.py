"""The Caffe ECCV16 reader against an independent writer (protobuf) and runner (OpenCV-DNN).

The real release cannot be downloaded here, so a full-size caffemodel with seeded random weights
is written from the deploy prototxt with the ``protobuf`` package, using message classes built
at run time (no Caffe, and none of colorizer's decoder).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks.harness.eccv16 import (
    INJECTED,
    LEGACY_LAYERS,
    caffe_messages,
    fill_blob,
    opencv_eccv16,
    write_random_release,
)
from colorizer.errors import WeightsError
from colorizer.models.caffe import (
    BATCHNORM_LAYERS,
    CAFFE_LOGIT_SCALE,
    CONV_LAYERS,
    eccv16_state_dict_from_caffemodel,
    read_caffemodel_blobs,
)
from colorizer.weights import create_model
from tests.support import SHARED

ECCV16_DATA = SHARED / "data" / "eccv16"
JSON_PATH = SHARED / "docs" / "official_state_dicts.json"


def shared_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is not beside this checkout")
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(path, blobs) of a seeded random, full-size (~129 MB) stand-in for the Caffe release."""
    prototxt = shared_file(ECCV16_DATA / "colorization_deploy_v2.prototxt")
    path = tmp_path_factory.mktemp("caffe") / "colorization_release_v2.caffemodel"
    return path, write_random_release(prototxt, path)


@pytest.fixture(scope="module")
def lightness() -> np.ndarray:
    """A smooth synthetic 224 x 224 L image (0..100) with structure at several scales."""
    y, x = np.mgrid[0:224, 0:224].astype(np.float32) / 224
    light = 50 + 30 * np.sin(7 * x + 2 * y) * np.cos(5 * y) + 15 * np.tanh(8 * (x - 0.6))
    return np.clip(light, 0, 100).astype(np.float32)


# --------------------------------------------------------------------------- decoder


def test_decoder_returns_the_written_arrays(release):
    path, blobs = release
    decoded = read_caffemodel_blobs(path)
    assert set(blobs) <= set(decoded)
    assert decoded["relu1_1"] == []  # parameter-free layers are listed without blobs
    for name, arrays in blobs.items():
        assert len(decoded[name]) == len(arrays), name
        for got, want in zip(decoded[name], arrays, strict=True):
            if name in LEGACY_LAYERS:
                want = want.reshape((1,) * (4 - want.ndim) + want.shape)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_decoder_reads_v1_layers_unpacked_and_double_data(tmp_path):
    messages = caffe_messages(packed=False)
    net = messages["NetParameter"]()
    legacy = net.layers.add(name="old_conv")
    fill_blob(legacy.blobs.add(), np.arange(6, dtype=np.float32).reshape(2, 3), legacy=True)
    doubles = net.layer.add(name="doubles").blobs.add()
    doubles.shape.dim.extend([3])
    doubles.double_data.extend([0.5, -1.25, 3.0])
    path = tmp_path / "old.caffemodel"
    path.write_bytes(net.SerializeToString())

    decoded = read_caffemodel_blobs(path)
    np.testing.assert_array_equal(
        decoded["old_conv"][0], np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    )
    np.testing.assert_array_equal(decoded["doubles"][0], np.float32([0.5, -1.25, 3.0]))


# --------------------------------------------------------------------------- conversion


def test_conversion_folds_caffe_conventions(release):
    path, blobs = release
    state = eccv16_state_dict_from_caffemodel(path)
    assert torch.equal(state["model1.0.weight"], torch.from_numpy(blobs["bw_conv1_1"][0]) * 100)
    assert torch.equal(
        state["model8.6.bias"], torch.from_numpy(blobs["conv8_313"][1]) * CAFFE_LOGIT_SCALE
    )
    mean_sum, var_sum, factor = blobs["conv3_3norm"]
    torch.testing.assert_close(state["model3.6.running_mean"], torch.from_numpy(mean_sum / factor))
    torch.testing.assert_close(state["model3.6.running_var"], torch.from_numpy(var_sum / factor))
    assert torch.equal(state["model3.6.weight"], torch.ones(256))
    assert torch.equal(state["model3.6.bias"], torch.zeros(256))
    bins = np.load(shared_file(ECCV16_DATA / "pts_in_hull.npy"))
    np.testing.assert_allclose(state["model_out.weight"].reshape(2, 313).numpy() * 110, bins.T)


def test_mapping_matches_the_documented_table():
    table = json.loads(shared_file(JSON_PATH).read_text())["eccv16_caffe_to_pytorch_mapping"]
    kinds = {
        "Convolution": CONV_LAYERS,
        "Deconvolution": CONV_LAYERS,
        "BatchNorm": BATCHNORM_LAYERS,
    }
    documented = {
        row["caffe_layer"]: (row["pytorch_module"], kinds[row["kind"]])
        for row in table
        if row["kind"] in kinds and row["caffe_layer"] not in INJECTED
    }
    assert documented == {
        **{name: (module, CONV_LAYERS) for name, module in CONV_LAYERS.items()},
        **{name: (module, BATCHNORM_LAYERS) for name, module in BATCHNORM_LAYERS.items()},
    }


def opencv_class8_ab(release_path: Path, light: np.ndarray) -> np.ndarray:
    """class8_ab (1 x 2 x 56 x 56) as the OpenCV colorization samples and tutorials compute it."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):
        pytest.skip(f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromCaffe (removed in 5.x)")
    net = opencv_eccv16(shared_file(ECCV16_DATA / "colorization_deploy_v2.prototxt"), release_path)
    net.setInput(cv2.dnn.blobFromImage(light - 50))
    return net.forward("class8_ab")


def test_caffe_path_equals_pytorch_path(release, lightness, record_property):
    path, _ = release
    caffe_ab = opencv_class8_ab(path, lightness)
    assert caffe_ab.shape == (1, 2, 56, 56)
    expected = F.interpolate(
        torch.from_numpy(caffe_ab), scale_factor=4, mode="bilinear", align_corners=False
    )

    model = create_model("eccv16", weights=path)
    light = torch.from_numpy(lightness)[None, None]
    with torch.no_grad():
        actual = model(light)
        probabilities = model.distribution(light)

    difference = (actual - expected).abs().max().item()
    record_property("max_abs_diff_ab", difference)
    print(f"Caffe (OpenCV) vs PyTorch: max |ab difference| = {difference:.2e}")
    assert actual.shape == (1, 2, 224, 224)
    assert difference < 0.03  # measured ~2e-3; a 0.1 % error in one BN statistic gives ~0.1
    # Random weights must not make the comparison trivial: a varied output, no saturated softmax.
    assert expected.std(dim=(2, 3)).min() > 2.0
    assert probabilities.max(dim=1).values.mean() < 0.9


# --------------------------------------------------------------------------- bad files


def test_truncated_release_names_the_file(release, tmp_path):
    path, _ = release
    truncated = tmp_path / "truncated.caffemodel"
    with path.open("rb") as source:
        truncated.write_bytes(source.read(5_000_000))
    with pytest.raises(WeightsError, match="truncated") as info:
        read_caffemodel_blobs(truncated)
    assert str(truncated) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x01garbage", b"PK\x03\x04 a zip, not a caffemodel", b"\x0a\xff"]
)
def test_non_caffemodel_names_the_file(tmp_path, content):
    path = tmp_path / "bogus.caffemodel"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as info:
        create_model("eccv16", weights=path)
    assert str(path) in str(info.value)


def small_net(tmp_path: Path, conv1_shape: tuple[int, ...]) -> Path:
    """A caffemodel holding only bw_conv1_1, with the given weight shape."""
    messages = caffe_messages()
    net = messages["NetParameter"]()
    layer = net.layer.add(name="bw_conv1_1", type="Convolution")
    fill_blob(layer.blobs.add(), np.zeros(conv1_shape, np.float32))
    fill_blob(layer.blobs.add(), np.zeros(64, np.float32))
    path = tmp_path / "partial.caffemodel"
    path.write_bytes(net.SerializeToString())
    return path


def test_missing_layer_names_file_and_layer(tmp_path):
    path = small_net(tmp_path, (64, 1, 3, 3))
    with pytest.raises(WeightsError, match="'conv1_2' is missing") as info:
        create_model("eccv16", weights=path)
    assert str(path) in str(info.value)


def test_wrong_blob_shape_names_file_and_layer(tmp_path):
    path = small_net(tmp_path, (64, 1, 5, 5))
    with pytest.raises(
        WeightsError, match=r"'bw_conv1_1' blob 0 has shape \(64, 1, 5, 5\)"
    ) as info:
        eccv16_state_dict_from_caffemodel(path)
    assert str(path) in str(info.value)


def test_caffe_release_runs_through_the_cli(release, tmp_path):
    from PIL import Image

    from colorizer.cli import main

    path, _ = release
    photo = tmp_path / "street.png"
    ramp = np.linspace(0, 255, 40 * 56, dtype=np.float32).reshape(40, 56)
    Image.fromarray(ramp.astype(np.uint8)).save(photo)
    args = ["image", str(photo), "--model", "eccv16-caffe", "--weights", str(path), "-q"]
    assert main([*args, "--device", "cpu"]) == 0
    out = np.asarray(Image.open(tmp_path / "street_colorized.png"))
    assert out.shape == (40, 56, 3)
    assert np.ptp(out.astype(int), axis=2).max() > 0  # the random release does add colour
