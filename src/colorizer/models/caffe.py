"""Load the original Caffe ECCV16 release (``colorization_release_v2.caffemodel``) into ``ECCV16``.

OpenCV 5 dropped its Caffe importer and protobuf is not a runtime dependency, so the file is read
with a small decoder of the protobuf wire format that knows just the Caffe fields needed here:

* ``NetParameter``: ``layer`` = 100 (``LayerParameter``: name = 1, blobs = 7) and the legacy
  ``layers`` = 2 (``V1LayerParameter``: name = 4, blobs = 6);
* ``BlobProto``: data = 5 (float, packed or not), double_data = 8, shape = 7 (``BlobShape``:
  dim = 1, int64) and the legacy num / channels / height / width = 1..4.

The conversion reproduces the Caffe net (``colorization_deploy_v2.prototxt``) with the blobs that
its clients inject, in ECCV16's PyTorch conventions (see ``eccv16_state_dict_from_caffemodel``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from colorizer.errors import WeightsError
from colorizer.registry import ModelSpec, register_models, register_weights_reader

# The deploy prototxt's conv8_313_rh Scale filler: logits x 2.606 (temperature 1 / 2.606 = 0.384).
CAFFE_LOGIT_SCALE = 2.606

# Caffe layer -> ECCV16 module, as in official_state_dicts.json (eccv16_caffe_to_pytorch_mapping).
# Deconvolution weights (C_in x C_out x kh x kw) have ConvTranspose2d's layout, so conv8_1 is here.
CONV_LAYERS = {
    "bw_conv1_1": "model1.0",
    "conv1_2": "model1.2",
    "conv2_1": "model2.0",
    "conv2_2": "model2.2",
    "conv3_1": "model3.0",
    "conv3_2": "model3.2",
    "conv3_3": "model3.4",
    "conv4_1": "model4.0",
    "conv4_2": "model4.2",
    "conv4_3": "model4.4",
    "conv5_1": "model5.0",
    "conv5_2": "model5.2",
    "conv5_3": "model5.4",
    "conv6_1": "model6.0",
    "conv6_2": "model6.2",
    "conv6_3": "model6.4",
    "conv7_1": "model7.0",
    "conv7_2": "model7.2",
    "conv7_3": "model7.4",
    "conv8_1": "model8.0",
    "conv8_2": "model8.2",
    "conv8_3": "model8.4",
    "conv8_313": "model8.6",
}
BATCHNORM_LAYERS = {
    "conv1_2norm": "model1.4",
    "conv2_2norm": "model2.4",
    "conv3_3norm": "model3.6",
    "conv4_3norm": "model4.6",
    "conv5_3norm": "model5.6",
    "conv6_3norm": "model6.6",
    "conv7_3norm": "model7.6",
}

# Protobuf wire types.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
# (field of the layer list in NetParameter, name field, blobs field) for V2 and V1 layers.
_LAYER_FIELDS = {100: (1, 7), 2: (4, 6)}


class _DecodeError(ValueError):
    """The bytes are not the protobuf message they should be."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 70:
        if pos >= end:
            raise _DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise _DecodeError("varint longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int):
    """Yield ``(field, wire type, value)`` of the message in ``buf[start:end]``.

    The value is the integer for varints, the offset for fixed-size values and the
    ``(start, end)`` span for length-delimited ones.
    """
    pos = start
    value: int | tuple[int, int]
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _DecodeError(f"field number 0 at byte {pos}")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire == _LENGTH:
            length, pos = _varint(buf, pos, end)
            value = (pos, pos + length)
            pos += length
        elif wire in (_FIXED64, _FIXED32):
            value = pos
            pos += 8 if wire == _FIXED64 else 4
        else:
            raise _DecodeError(f"unsupported wire type {wire} at byte {pos}")
        if pos > end:
            raise _DecodeError(f"truncated message: field {field} runs past byte {end}")
        yield field, wire, value


def _reals(buf: bytes, wire: int, value, dtype: str) -> np.ndarray:
    """A packed run or a single element of a repeated float / double field."""
    size = np.dtype(dtype).itemsize
    if wire == _LENGTH:
        start, end = value
        if (end - start) % size:
            raise _DecodeError(f"packed {dtype} data of {end - start} bytes")
        return np.frombuffer(buf, dtype, (end - start) // size, start)
    if wire != (_FIXED32 if size == 4 else _FIXED64):
        raise _DecodeError(f"{dtype} data with wire type {wire}")
    return np.frombuffer(buf, dtype, 1, value)


def _dims(buf: bytes, start: int, end: int) -> list[int]:
    """The ``dim`` values (field 1, packed or not) of a ``BlobShape``."""
    dims = []
    for field, wire, value in _fields(buf, start, end):
        if field != 1:
            continue
        if wire == _VARINT:
            dims.append(value)
        elif wire == _LENGTH:
            pos, stop = value
            while pos < stop:
                dim, pos = _varint(buf, pos, stop)
                dims.append(dim)
        else:
            raise _DecodeError(f"blob shape dim with wire type {wire}")
    return dims


def _blob(buf: bytes, start: int, end: int) -> np.ndarray:
    floats, doubles, legacy = [], [], {}
    shape = None
    for field, wire, value in _fields(buf, start, end):
        if field == 5:
            floats.append(_reals(buf, wire, value, "<f4"))
        elif field == 8:
            doubles.append(_reals(buf, wire, value, "<f8"))
        elif field == 7 and wire == _LENGTH:
            shape = _dims(buf, *value)
        elif field in (1, 2, 3, 4) and wire == _VARINT:
            legacy[field] = value
    # Caffe keeps float data when both are present; double_data only for double-precision nets.
    parts = floats or doubles or [np.zeros(0, np.float32)]
    data = np.concatenate(parts).astype(np.float32)
    if shape is None:
        # Legacy blobs are 4-D num x channels x height x width, unset dims being 0 as in Caffe.
        shape = [legacy.get(field, 0) for field in (1, 2, 3, 4)] if legacy else [data.size]
    if math.prod(shape) != data.size:
        raise _DecodeError(f"blob of shape {tuple(shape)} holds {data.size} values")
    return data.reshape(shape)


def _layer(buf: bytes, start: int, end: int, name_field: int, blobs_field: int):
    fields = list(_fields(buf, start, end))
    names = [value for field, wire, value in fields if field == name_field and wire == _LENGTH]
    if not names:
        raise _DecodeError(f"layer without a name at byte {start}")
    try:
        name = buf[slice(*names[-1])].decode()
    except UnicodeDecodeError as exc:
        raise _DecodeError(f"layer name at byte {start} is not text") from exc
    try:
        blobs = [
            _blob(buf, *value)
            for field, wire, value in fields
            if field == blobs_field and wire == _LENGTH
        ]
    except _DecodeError as exc:
        raise _DecodeError(f"layer {name!r}: {exc}") from None
    return name, blobs


def read_caffemodel_blobs(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> its blobs (float32 arrays in their Caffe shapes), in file order.

    Layers without parameters are listed with no blobs. Raises ``WeightsError`` naming the file
    when it cannot be read or is not a Caffe ``NetParameter``.
    """
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read Caffe model ({exc})") from exc
    layers = {}
    try:
        for field, wire, value in _fields(buf, 0, len(buf)):
            if field in _LAYER_FIELDS and wire == _LENGTH:
                start, end = value  # a length-delimited field's span
                name, blobs = _layer(buf, start, end, *_LAYER_FIELDS[field])
                layers[name] = blobs
    except _DecodeError as exc:
        raise WeightsError(f"{path}: not a valid Caffe model ({exc})") from None
    if not layers:
        raise WeightsError(f"{path}: not a Caffe model (no layers found)")
    return layers


def _layer_blobs(
    path: Path, layers: dict[str, list[np.ndarray]], name: str, shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """The blobs of layer ``name``, checked against the expected shapes."""
    if name not in layers:
        raise WeightsError(f"{path}: Caffe layer {name!r} is missing (not the ECCV16 release?)")
    blobs = layers[name]
    if len(blobs) != len(shapes):
        raise WeightsError(
            f"{path}: Caffe layer {name!r} has {len(blobs)} blobs, expected {len(shapes)}"
        )
    fitted = []
    for index, (blob, shape) in enumerate(zip(blobs, shapes, strict=True)):
        # Legacy 4-D blobs pad lower-rank shapes with leading 1s, e.g. a bias as 1 x 1 x 1 x C.
        padded = (1,) * (blob.ndim - len(shape)) + tuple(shape)
        if blob.shape != padded:
            raise WeightsError(
                f"{path}: Caffe layer {name!r} blob {index} has shape {blob.shape}, "
                f"expected {tuple(shape)}"
            )
        fitted.append(blob.reshape(shape))
    return fitted


def _batchnorm(mean_sum: np.ndarray, var_sum: np.ndarray, factor: np.ndarray):
    """Caffe stores moving sums and their weight; its BatchNorm divides, treating 0 as 0."""
    scale = np.float32(0.0) if factor[0] == 0 else np.float32(1.0) / factor[0]
    return mean_sum * scale, var_sum * scale


def eccv16_state_dict_from_caffemodel(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict for ``ECCV16`` (strict) that reproduces the Caffe release's output.

    Caffe net: L - 50 in, logits x 2.606, softmax, 1x1 conv with the bin centres, 56 x 56 ab out.
    ECCV16 feeds (L - 50) / 100 and multiplies by 110 after its x4 upsampling, so the conversion
    multiplies ``bw_conv1_1``'s weight by 100, folds 2.606 into ``conv8_313`` and stores the bins
    / 110 in ``model_out``. The release has no blobs for ``conv8_313_rh`` and ``class8_ab``:
    their clients set them (2.606 and ``pts_in_hull``), so they are constants here too.
    """
    from colorizer.color import ab_bins
    from colorizer.models.eccv16 import AB_NORM, ECCV16, L_NORM

    path = Path(path)
    with torch.device("meta"):
        reference = ECCV16().state_dict()
    shape = {key: tuple(value.shape) for key, value in reference.items()}
    layers = read_caffemodel_blobs(path)
    arrays: dict[str, np.ndarray] = {}
    for name, module in CONV_LAYERS.items():
        keys = [f"{module}.weight", f"{module}.bias"]
        blobs = _layer_blobs(path, layers, name, [shape[key] for key in keys])
        arrays.update(zip(keys, blobs, strict=True))
    for name, module in BATCHNORM_LAYERS.items():
        channels = shape[f"{module}.running_mean"]
        blobs = _layer_blobs(path, layers, name, [channels, channels, (1,)])
        mean, var = _batchnorm(*blobs)
        # Caffe's BatchNorm only normalises (no affine, eps 1e-5 = PyTorch's default).
        arrays[f"{module}.running_mean"], arrays[f"{module}.running_var"] = mean, var
        arrays[f"{module}.weight"] = np.ones(channels, np.float32)
        arrays[f"{module}.bias"] = np.zeros(channels, np.float32)
    arrays["model1.0.weight"] = arrays["model1.0.weight"] * np.float32(L_NORM)
    arrays["model8.6.weight"] = arrays["model8.6.weight"] * np.float32(CAFFE_LOGIT_SCALE)
    arrays["model8.6.bias"] = arrays["model8.6.bias"] * np.float32(CAFFE_LOGIT_SCALE)
    state = {key: torch.from_numpy(value) for key, value in arrays.items()}
    bins = (ab_bins().T / AB_NORM).contiguous()  # contiguous: safetensors refuses strided views
    state["model_out.weight"] = bins.reshape(shape["model_out.weight"])
    for key in shape:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
    return {key: state[key] for key in shape}


# ECCV16's Caffe release: its file format, and its catalogue entry (after the other models:
# ``colorizer.models`` imports this module last).
register_weights_reader(".caffemodel", ("eccv16",), eccv16_state_dict_from_caffemodel)
MODEL_SPECS = register_models(
    ModelSpec(
        name="eccv16-caffe",
        arch="eccv16",
        description="Original ECCV 2016 Caffe release, converted to PyTorch at load time",
        input_size=224,
        filename="colorization_release_v2.caffemodel",
        url="http://eecs.berkeley.edu/~rich.zhang/projects/2016_colorization/files/demo_v2/"
        "colorization_release_v2.caffemodel",
        size_bytes=128_946_764,
        sha256="f5af1e602646328c792e1094f9876fe9cd4c09ac46fa886e5708a1abc89137b1",
        license="BSD-2-Clause (code) / UC Regents licence (Caffe-era tree)",
        source="richzhang/colorization @a1642d6, models/fetch_release_models.sh",
        notes="The Berkeley host has been reported dead since 2024: place the file by hand.",
    ),
)
