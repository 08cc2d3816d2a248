"""The network runtimes: ONNX export, OpenVINO against PyTorch, the cache, the fallback, and
the strip-wise full-resolution composition against the whole-image one."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from colorizer import color, planes, runtime
from colorizer.errors import ColorizerError
from colorizer.pipeline import Colorizer
from colorizer.registry import ARCHITECTURES
from colorizer.weights import architecture

# Every architecture of colorizer.models that colorizes (the video refiner refines), not the
# fixtures other test files register.
EXPORTABLE = sorted(
    name for name in ARCHITECTURES if name != "video-refiner" and not name.startswith("test-")
)
# Random-weight networks at their smallest practical side (a multiple of each input_multiple).
SIDE = 64

needs_openvino = pytest.mark.skipif(
    not runtime.openvino_available(), reason="OpenVINO is not installed (the `fast` extra)"
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private cache: exports never touch the user's."""
    monkeypatch.setenv("COLORIZER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COLORIZER_BACKEND")
    return tmp_path / "home"


def random_net(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    net = architecture(arch)().eval()
    with torch.no_grad():  # hint paths start at zero: give them weights, so hints matter
        for name, parameter in net.named_parameters():
            if name.startswith("hint_"):
                parameter.normal_(0, 0.1)
    return net


# -- export and OpenVINO against PyTorch ---------------------------------------------------------


@needs_openvino
@pytest.mark.parametrize("arch", EXPORTABLE)
def test_every_architecture_exports_and_runs_the_same_on_openvino(arch, tmp_path):
    net = random_net(arch)
    side = max(SIDE, getattr(net, "input_multiple", 1))
    graph = runtime.export_onnx(net, tmp_path / f"{arch}.onnx", size=side)
    assert runtime.export_error(net, graph, size=side) < 0.5
    # The batch is dynamic: two photos run without a new export; another side is refused
    # (a graph traced at one side computes wrong maps at another).
    network = runtime.OpenVinoNetwork(graph)
    lightness = np.random.default_rng(1).uniform(0, 100, (2, 1, side, side))
    hints = []
    if getattr(net, "accepts_hints", False):
        hints = [np.zeros((2, 2, side, side)), np.zeros((2, 1, side, side))]
    out = network(lightness, *hints)
    with torch.inference_mode():
        expected = net(*(torch.from_numpy(x).float() for x in (lightness, *hints))).numpy()
    assert out.shape == expected.shape == (2, 2, side, side)
    assert np.abs(out - expected).mean() < 0.5
    bigger = [np.repeat(np.repeat(x, 2, axis=2), 2, axis=3) for x in (lightness, *hints)]
    with pytest.raises(ValueError, match=f"exported for {side} x {side} inputs, not"):
        network(*bigger)


@needs_openvino
def test_hints_reach_the_exported_graph(tmp_path):
    net = random_net("colornet-v2-hints")
    graph = runtime.export_onnx(net, tmp_path / "hints.onnx", size=SIDE)
    network = runtime.OpenVinoNetwork(graph)
    lightness = np.full((1, 1, SIDE, SIDE), 50, np.float32)
    mask = np.zeros((1, 1, SIDE, SIDE), np.float32)
    mask[..., 20:26, 20:26] = 1
    hint_ab = np.zeros((1, 2, SIDE, SIDE), np.float32)
    hint_ab[:, 0] = 60 * mask[:, 0]
    moved = network(lightness, hint_ab, mask) - network(lightness, 0 * hint_ab, 0 * mask)
    with torch.inference_mode():
        inputs = [torch.from_numpy(x) for x in (lightness, hint_ab, mask)]
        expected = net(*inputs) - net(inputs[0], 0 * inputs[1], 0 * inputs[2])
    assert np.abs(moved[..., 18:28, 18:28]).mean() > 0.05  # the hint moved the colours there
    with torch.inference_mode():  # no hints given at all: as PyTorch's forward without them
        plain = net(torch.from_numpy(lightness)).numpy()
    np.testing.assert_allclose(network(lightness), plain, atol=1e-3)
    np.testing.assert_allclose(moved, expected.numpy(), atol=1e-3)


@needs_openvino
def test_threads_making_their_first_inference_at_once_all_finish(tmp_path):
    """`colorize image a b` runs one thread per photo on one compiled network; their first
    inferences once hung for good inside OpenVINO's NumPy bridge (`import_openvino` now sets it
    up first). A fresh interpreter, as the bridge is set up once per process."""
    graph = runtime.export_onnx(random_net("colornet"), tmp_path / "net.onnx", size=SIDE)
    script = f"""
import threading, numpy as np
from colorizer.runtime import OpenVinoNetwork
network = OpenVinoNetwork({str(graph)!r})
start = threading.Barrier(8)
def first_inference():
    start.wait()
    network(np.zeros((1, 1, {SIDE}, {SIDE}), np.float32))
threads = [threading.Thread(target=first_inference, daemon=True) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(60)
print(sum(thread.is_alive() for thread in threads), "hung")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "0 hung", done.stderr


@needs_openvino
def test_shipped_model_colours_match_pytorch_on_a_photo(home):
    rng = np.random.default_rng(0)
    grey = cv2.GaussianBlur(rng.uniform(0, 1, (96, 128)).astype(np.float32), (0, 0), 4)
    image = np.repeat(grey[..., None], 3, axis=2)
    on_torch = Colorizer(backend="torch").colorize(image)
    fast = Colorizer(backend="openvino")
    assert fast.backend == "openvino"
    assert np.abs(fast.colorize(image) - on_torch).mean() < 0.5 / 255


@needs_openvino
def test_the_encoder_runs_on_openvino_as_on_pytorch_and_its_export_is_cached(home):
    rng = np.random.default_rng(1)
    lightness = cv2.GaussianBlur(rng.uniform(0, 100, (72, 128)).astype(np.float32), (0, 0), 3)
    on_torch = Colorizer(backend="torch").encoder_features(lightness)
    fast = Colorizer(backend="openvino").encoder_features(lightness)  # exports the encoder
    np.testing.assert_allclose(fast, on_torch, atol=1e-4)
    again = Colorizer(backend="openvino")
    np.testing.assert_array_equal(again.encoder_features(lightness), fast)
    assert again._net is None  # the cached graph ran: PyTorch's module was never built
    assert (home / "onnx" / f"{runtime.cache_key(again.name, None, None)}-encoder.onnx").is_file()


@needs_openvino
def test_the_export_is_cached_and_redone_when_the_weights_change(home, constant_weights, tmp_path):
    weights = tmp_path / "constant.safetensors"
    weights.write_bytes(constant_weights.read_bytes())
    first = Colorizer("test-constant", weights=weights, size=64, backend="openvino")
    key = runtime.cache_key("test-constant", weights, 64)
    graph = home / "onnx" / f"{key}.onnx"
    made = graph.stat().st_mtime_ns
    again = Colorizer("test-constant", weights=weights, size=64, backend="openvino")
    assert graph.stat().st_mtime_ns == made  # reused, not exported again
    assert again._net is None  # and PyTorch's module was never built for it
    image = np.full((16, 16, 3), 0.5, np.float32)
    np.testing.assert_allclose(again.colorize(image), first.colorize(image), atol=1e-6)
    os.utime(weights, ns=(made + 10**9, made + 10**9))  # the weights file is replaced
    Colorizer("test-constant", weights=weights, size=64, backend="openvino")
    assert graph.stat().st_mtime_ns != made


@needs_openvino
def test_a_warm_start_does_not_import_pytorch(home, tmp_path):
    Colorizer(backend="openvino")  # exports the default model into the private cache
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    script = (
        "import sys; from colorizer.cli import main; "
        f"code = main(['image', {str(photo)!r}, '-o', {str(tmp_path / 'out.png')!r}, '-q']); "
        "print('torch' in sys.modules); sys.exit(code)"
    )
    env = {**os.environ, "COLORIZER_BACKEND": "auto"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"
    assert (tmp_path / "out.png").is_file()


def test_without_openvino_auto_falls_back_to_pytorch(home, monkeypatch, constant_weights):
    monkeypatch.setattr(runtime, "openvino_available", lambda: False)
    colorizer = Colorizer("test-constant", weights=constant_weights, size=64, device="cpu")
    assert colorizer.backend == "torch"
    assert not (home / "onnx").exists()
    with pytest.raises(ColorizerError, match=r"pip install 'colorizer\[fast\]'"):
        Colorizer("test-constant", weights=constant_weights, size=64, backend="openvino")


def test_unknown_backend_is_named():
    with pytest.raises(ColorizerError, match="unknown backend 'tpu'; known: auto, torch"):
        runtime.wants_openvino("tpu", "cpu")


def test_openvino_is_for_the_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "openvino_available", lambda: True)
    assert not runtime.wants_openvino("auto", "cuda")
    with pytest.raises(ColorizerError, match="runs on the CPU"):
        runtime.wants_openvino("openvino", "cuda")


# -- the strip-wise full-resolution path ---------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(1000, 700), (257, 300), (300, 257), (100, 80)])
def test_strips_give_the_whole_image_result(height, width):
    rng = np.random.default_rng(0)
    lightness = rng.uniform(0, 100, (height, width)).astype(np.float32)
    ab = rng.uniform(-60, 60, (256, 256, 2)).astype(np.float32)
    whole = planes.compose(lightness, ab, strip_rows=height)
    for rows in (1, 7, 256):
        np.testing.assert_array_equal(planes.compose(lightness, ab, strip_rows=rows), whole)
    # And it is OpenCV's bilinear resize of the whole ab plane, then Lab -> sRGB.
    reference = planes.lab_to_rgb_image(
        cv2.merge([lightness, planes.resize_plane(ab, height, width)])
    )
    assert np.abs(whole - reference).max() < 1e-3
    as_bytes = planes.compose(lightness, ab, out_dtype=np.uint8, strip_rows=100)
    # Rounded as imageio writes a float result: OpenCV's round half to even, saturated.
    np.testing.assert_array_equal(as_bytes, cv2.convertScaleAbs(whole, alpha=255))


def test_numpy_tables_match_the_torch_reference():
    assert tuple(color.XYZ_FROM_RGB[1].tolist()) == planes.SRGB_Y_WEIGHTS
    levels = np.linspace(0, 1, 1001)
    reference = color.lightness_from_y(color.srgb_to_linear(torch.from_numpy(levels))).numpy()
    np.testing.assert_allclose(planes.lightness_from_y(planes.srgb_to_linear(levels)), reference)


@pytest.mark.parametrize("rows", [1, 7, 256])
def test_lightness_of_bytes_is_the_float_paths_exactly(rows):
    rng = np.random.default_rng(0)
    rgb = (rng.random((300, 41, 3)) * 255).astype(np.uint8)
    as_float = rgb.astype(np.float32) / 255
    np.testing.assert_array_equal(
        planes.lightness_of_bytes(rgb, strip_rows=rows), planes.lightness_image(as_float)
    )
    grey = rgb[..., 0]
    expected = planes.lightness_image(np.dstack([as_float[..., 0]] * 3), grey=True)
    np.testing.assert_array_equal(planes.lightness_of_bytes(grey), expected)
    np.testing.assert_array_equal(planes.lightness_of_bytes(np.dstack([grey] * 3)), expected)


def test_lightness_of_8_bit_frames_equals_the_float_path():
    rng = np.random.default_rng(0)
    rgb = (rng.random((90, 160, 3)) * 255).astype(np.uint8)
    expected = planes.lightness_image(rgb / np.float32(255))
    np.testing.assert_allclose(planes.lightness_u8(rgb), expected, atol=1e-4)
    grey = np.repeat(rgb[..., :1], 3, axis=2)
    np.testing.assert_array_equal(
        planes.lightness_u8(grey), planes.lightness_image(grey / np.float32(255), grey=True)
    )
