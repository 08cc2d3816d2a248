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
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from colorizer.errors import WeightsError
from colorizer.models.caffe import (
    BATCHNORM_LAYERS,
    CAFFE_LOGIT_SCALE,
    CONV_LAYERS,
    eccv16_state_dict_from_caffemodel,
    read_caffemodel_blobs,
)
from colorizer.registry import create_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
ECCV16_DATA = SHARED / "data" / "eccv16"
JSON_PATH = SHARED / "docs" / "official_state_dicts.json"
# Clients inject these two; the release has no blobs for them (docs/OFFICIAL_MODELS.md section 7).
INJECTED = ("conv8_313_rh", "class8_ab")
BN_FACTOR = np.float32(0.999)  # a moving-average weight != 1 exercises the division
# Layers written in legacy 4-D num/channels/height/width form, as older Caffe saved them.
LEGACY_LAYERS = ("conv2_2norm", "conv4_1")
LEGACY_DIMS = ("num", "channels", "height", "width")

Field = descriptor_pb2.FieldDescriptorProto


def shared_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is not beside this checkout")
    return path


def caffe_messages(packed: bool = True) -> dict[str, type]:
    """The subset of caffe.proto used here, as protobuf message classes built at run time."""
    proto = descriptor_pb2.FileDescriptorProto(name="caffe.proto", package="caffe", syntax="proto2")

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        msg = proto.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            field = msg.field.add(name=field_name, number=number, type=kind)
            field.label = Field.LABEL_REPEATED if repeated else Field.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".caffe.{type_name}"
            if repeated and kind not in (Field.TYPE_STRING, Field.TYPE_MESSAGE):
                field.options.packed = packed

    message("BlobShape", ("dim", 1, Field.TYPE_INT64, None, True))
    message(
        "BlobProto",
        *[(dim, n, Field.TYPE_INT32, None, False) for n, dim in enumerate(LEGACY_DIMS, 1)],
        ("data", 5, Field.TYPE_FLOAT, None, True),
        ("shape", 7, Field.TYPE_MESSAGE, "BlobShape", False),
        ("double_data", 8, Field.TYPE_DOUBLE, None, True),
    )
    message(
        "ConvolutionParameter",
        ("num_output", 1, Field.TYPE_UINT32, None, False),
        ("kernel_size", 4, Field.TYPE_UINT32, None, True),
    )
    message(
        "LayerParameter",
        ("name", 1, Field.TYPE_STRING, None, False),
        ("type", 2, Field.TYPE_STRING, None, False),
        ("bottom", 3, Field.TYPE_STRING, None, True),
        ("top", 4, Field.TYPE_STRING, None, True),
        ("blobs", 7, Field.TYPE_MESSAGE, "BlobProto", True),
        ("convolution_param", 106, Field.TYPE_MESSAGE, "ConvolutionParameter", False),
    )
    message(
        "V1LayerParameter",
        ("name", 4, Field.TYPE_STRING, None, False),
        ("blobs", 6, Field.TYPE_MESSAGE, "BlobProto", True),
    )
    message(
        "NetParameter",
        ("name", 1, Field.TYPE_STRING, None, False),
        ("layers", 2, Field.TYPE_MESSAGE, "V1LayerParameter", True),
        ("layer", 100, Field.TYPE_MESSAGE, "LayerParameter", True),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        msg.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{msg.name}"))
        for msg in proto.message_type
    }


def fill_blob(blob, array: np.ndarray, legacy: bool = False) -> None:
    if legacy:
        padded = (1,) * (4 - array.ndim) + array.shape
        for dim, size in zip(LEGACY_DIMS, padded, strict=True):
            setattr(blob, dim, size)
    else:
        blob.shape.dim.extend(array.shape)
    blob.data.extend(array.ravel().tolist())


def deploy_layers(messages) -> list:
    """The deploy prototxt's layers (name, type, bottom, top, convolution_param)."""
    net = messages["NetParameter"]()
    text = shared_file(ECCV16_DATA / "colorization_deploy_v2.prototxt").read_text()
    text_format.Parse(text, net, allow_unknown_field=True)
    return list(net.layer)


def random_blobs(layers, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """He-initialised weights and plausible BatchNorm statistics, shaped from the prototxt."""
    rng = np.random.default_rng(seed)
    channels = {}
    blobs = {}
    for layer in layers:
        # The one layer without a bottom is the Input layer of the 1-channel L image.
        c_in = channels[layer.bottom[0]] if layer.bottom else 1
        c_out = c_in
        if layer.type in ("Convolution", "Deconvolution") and layer.name not in INJECTED:
            c_out = layer.convolution_param.num_output
            k = layer.convolution_param.kernel_size[0]
            # A stride-2 transposed conv sums a quarter of its kernel taps into each output.
            fan_in = c_in * k * k // (4 if layer.type == "Deconvolution" else 1)
            std = np.sqrt(2.0 / fan_in)
            if layer.name == "bw_conv1_1":
                std /= 30.0  # the input is L - 50, tens of units, not unit scale
            shape = (c_in, c_out, k, k) if layer.type == "Deconvolution" else (c_out, c_in, k, k)
            weight = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
            bias = rng.standard_normal(c_out, dtype=np.float32) * np.float32(0.05)
            blobs[layer.name] = [weight, bias]
        elif layer.type == "BatchNorm":
            mean = rng.uniform(0.0, 0.6, c_in).astype(np.float32)
            var = rng.uniform(0.3, 1.5, c_in).astype(np.float32)
            blobs[layer.name] = [mean * BN_FACTOR, var * BN_FACTOR, np.array([BN_FACTOR])]
        for top in layer.top:
            channels[top] = c_out
    return blobs


def write_net(path: Path, messages, layers, blobs: dict[str, list[np.ndarray]]) -> None:
    """A caffemodel as Caffe saves one: every layer by name and type, with its blobs.

    Like the release (trained without them), it has no ``INJECTED`` layers.
    """
    net = messages["NetParameter"](name="LtoAB")
    for layer in layers:
        if layer.name in INJECTED:
            continue
        entry = net.layer.add(name=layer.name, type=layer.type)
        for array in blobs.get(layer.name, []):
            fill_blob(entry.blobs.add(), array, legacy=layer.name in LEGACY_LAYERS)
    path.write_bytes(net.SerializeToString())


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(path, blobs) of a seeded random, full-size (~129 MB) stand-in for the Caffe release."""
    messages = caffe_messages()
    layers = deploy_layers(messages)
    blobs = random_blobs(layers)
    path = tmp_path_factory.mktemp("caffe") / "colorization_release_v2.caffemodel"
    write_net(path, messages, layers, blobs)
    return path, blobs


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
    prototxt = shared_file(ECCV16_DATA / "colorization_deploy_v2.prototxt")
    bins = np.load(shared_file(ECCV16_DATA / "pts_in_hull.npy"))
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(release_path))
    net.getLayer(net.getLayerId("class8_ab")).blobs = [
        bins.transpose().reshape(2, 313, 1, 1).astype(np.float32)
    ]
    net.getLayer(net.getLayerId("conv8_313_rh")).blobs = [
        np.full((1, 313), CAFFE_LOGIT_SCALE, np.float32)
    ]
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
