"""ECCV16 stand-ins: seeded random weights of the published shapes, as our ``.pth`` and as the
published Caffe release (speed does not depend on the values).

The real caffemodel cannot be downloaded here, so a full-size one is written from the deploy
prototxt with the ``protobuf`` package, using message classes built at run time (no Caffe, and
none of colorizer's decoder); ``opencv_eccv16`` loads it the way the seed documents run it.
One home for the benchmarks and the tests (tests/models/test_caffe.py imports it; the
benchmarks never import the tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from colorizer.color import ab_bins
from colorizer.models.caffe import CAFFE_LOGIT_SCALE

# Clients inject these two; the release has no blobs for them (docs/OFFICIAL_MODELS.md section 7).
INJECTED = ("conv8_313_rh", "class8_ab")
BN_FACTOR = np.float32(0.999)  # a moving-average weight != 1, as a real release has
# Layers written in legacy 4-D num/channels/height/width form, as older Caffe saved them.
LEGACY_LAYERS = ("conv2_2norm", "conv4_1")
LEGACY_DIMS = ("num", "channels", "height", "width")


def random_eccv16_weights(directory: Path) -> Path:
    """ECCV16 with seeded random weights, saved as ``directory/eccv16-random.pth``."""
    import torch

    from colorizer.weights import create_model

    torch.manual_seed(0)
    path = directory / "eccv16-random.pth"
    torch.save(create_model("eccv16").state_dict(), path)
    return path


def caffe_messages(packed: bool = True) -> dict[str, type]:
    """The subset of caffe.proto used here, as protobuf message classes built at run time."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    Field = descriptor_pb2.FieldDescriptorProto
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


def deploy_layers(messages, prototxt: Path) -> list:
    """The deploy prototxt's layers (name, type, bottom, top, convolution_param)."""
    from google.protobuf import text_format

    net = messages["NetParameter"]()
    text = prototxt.read_text()
    text_format.Parse(text, net, allow_unknown_field=True)
    return list(net.layer)


def random_blobs(layers, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """He-initialised weights and plausible BatchNorm statistics, shaped from the prototxt."""
    rng = np.random.default_rng(seed)
    channels: dict[str, int] = {}
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


def write_random_release(prototxt: Path, path: Path, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Write a seeded random full-size (~129 MB) caffemodel for ``prototxt``; return its blobs."""
    messages = caffe_messages()
    layers = deploy_layers(messages, prototxt)
    blobs = random_blobs(layers, seed)
    write_net(path, messages, layers, blobs)
    return blobs


def opencv_eccv16(prototxt: Path, caffemodel: Path):
    """The release loaded into OpenCV-DNN as the seed documents and OpenCV tutorials do it:
    the client injects the bin centres (class8_ab) and the annealing scale (conv8_313_rh).
    """
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    centres = ab_bins().numpy().T.reshape(2, 313, 1, 1).astype(np.float32)
    net.getLayer(net.getLayerId("class8_ab")).blobs = [centres]
    scale = np.full((1, 313), CAFFE_LOGIT_SCALE, np.float32)
    net.getLayer(net.getLayerId("conv8_313_rh")).blobs = [scale]
    return net
