"""Where the network runs: PyTorch, or OpenVINO on the network exported as ONNX.

Both runtimes take and give numpy arrays: N x 1 x S x S L* (0..100), plus hint ab
(N x 2 x S x S) and 0/1 mask (N x 1 x S x S) for models that take hints, and return
N x 2 x S x S float32 ab. ``Colorizer.predict_planes`` calls one of them.

OpenVINO (the ``fast`` extra) was measured faster than PyTorch eager and ONNX Runtime on CPUs
(``benchmarks/bench_runtime.py``): it fuses the convolutions and picks kernels for the exact
input shape, so each shape is compiled once and kept (and OpenVINO's own cache makes the next
process's compile cheap). It runs in float32 everywhere (``INFERENCE_PRECISION_HINT``): on CPUs
with bf16 units OpenVINO would otherwise switch to bf16 on its own.

The exported graph of a model lives in the cache (``<cache>/onnx/<name>.onnx``) beside a JSON
record of what it was exported from (the weights file's path, size and modification time) and
what the pipeline needs to know without PyTorch (input size, hints). While that record matches
the weights file, a ``Colorizer`` starts without importing PyTorch at all.

This module imports neither PyTorch nor OpenVINO at load time: each is imported by the code
that needs it. OpenVINO is imported by ``import_openvino`` only, with its usage telemetry off.

The compiled networks (exports and OpenVINO's blobs) are bounded: ``colorizer.cache.trim``
evicts the least recently used after each export or compile.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorizer import cache
from colorizer.errors import ColorizerError
from colorizer.files import atomic_path, atomic_write, cache_dir
from colorizer.version import __version__

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "openvino")
ONNX_OPSET = 17
EXPORT_VERSION = "2"  # bump when the exported graph or its record changes for the same weights
INPUT_NAMES = ("lightness", "hint_ab", "hint_mask")


@dataclass(frozen=True)
class ExportRecord:
    """What an exported graph came from, and what running it needs to know."""

    name: str
    arch: str
    weights: str  # the weights file it was exported from
    weights_size: int
    weights_mtime_ns: int
    input_size: int
    input_multiple: int
    accepts_hints: bool
    has_distribution: bool
    temperature: float | None
    # The catalogue entry's ``mirror_average``, kept here so that a warm start needs no catalogue
    # (whose model files import PyTorch).
    mirror_average: bool = False
    export_version: str = EXPORT_VERSION
    colorizer_version: str = __version__

    def matches(self, weights: Path) -> bool:
        """Whether ``weights`` is still the file this graph was exported from."""
        try:
            facts = weights.stat()
        except OSError:
            return False
        return (
            self.export_version == EXPORT_VERSION
            and self.colorizer_version == __version__
            and str(weights.resolve()) == self.weights
            and facts.st_size == self.weights_size
            and facts.st_mtime_ns == self.weights_mtime_ns
        )


def import_openvino() -> Any:
    """``openvino``, imported with its usage telemetry off.

    Importing OpenVINO imports its model converter, which sends a usage event with a persistent
    client id (``~/intel/openvino_ga_cid``) from a forked process unless ``openvino_telemetry``
    finds an opt-out. The converter falls back to a silent stub when that package cannot be
    imported, so it is hidden for the duration of the import: no file, no process, no packet,
    and nothing changed in the environment that subprocesses or other tools would inherit.
    """
    import sys

    with _IMPORT_LOCK:  # another thread must not see a half-imported openvino
        # (Imported before colorizer: too late to hide its telemetry from it.)
        openvino = sys.modules.get("openvino") or _import_without_telemetry()
        global _NUMPY_BRIDGE_READY
        if not _NUMPY_BRIDGE_READY:
            # OpenVINO's bindings set up their NumPy bridge on first use, inside a C++ static
            # initialiser that waits for the GIL while another thread, holding the GIL, waits
            # for that initialiser: two threads making their first inference at once can hang
            # for good (seen once: `colorize image a.png b.png` beside a training run). Crossing
            # the bridge here, once and under this lock, takes the race away.
            np.asarray(openvino.Tensor(np.zeros(1, np.float32)).data)
            _NUMPY_BRIDGE_READY = True
        return openvino


def _import_without_telemetry() -> Any:
    import sys

    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if _telemetry(name)}
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # -> ImportError
    try:
        import openvino
    finally:
        del sys.modules["openvino_telemetry"]
        sys.modules.update(hidden)
    return openvino


_IMPORT_LOCK = threading.Lock()
_NUMPY_BRIDGE_READY = False


def _telemetry(module: str) -> bool:
    return module == "openvino_telemetry" or module.startswith("openvino_telemetry.")


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def gpu_present() -> bool:
    """A cheap guess, without importing PyTorch, at whether PyTorch would find a GPU here:
    an NVIDIA driver, or an Apple-silicon Mac (MPS)."""
    import platform

    if os.path.exists("/proc/driver/nvidia") or os.environ.get("CUDA_VISIBLE_DEVICES"):
        return os.environ.get("CUDA_VISIBLE_DEVICES", "0") not in ("", "-1")
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def wants_openvino(backend: str, device: str) -> bool:
    """``backend`` resolved: 'auto' takes OpenVINO when it is installed, the device is the CPU
    (or 'auto' on a machine without a GPU), and PyTorch otherwise."""
    if backend not in BACKENDS:
        raise ColorizerError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "torch":
        return False
    on_cpu = device == "cpu" or (device == "auto" and not gpu_present())
    if backend == "openvino":
        if not openvino_available():
            raise ColorizerError(
                "backend 'openvino' needs OpenVINO: pip install openvino "
                "(or pip install 'colorizer[fast]')"
            )
        if not on_cpu:
            raise ColorizerError(f"backend 'openvino' runs on the CPU, not on device {device!r}")
        return True
    return on_cpu and openvino_available()


# -- exported graphs in the cache ------------------------------------------------------------


def export_dir() -> Path:
    return cache_dir() / "onnx"


def cache_key(name: str, weights: str | Path | None, size: int | None) -> str:
    """One cached graph per registered model (or local weights file) and network side
    (None: the model's own)."""
    size_tag = size or "default"
    if weights is None:
        return f"{name}-{size_tag}"
    import hashlib

    digest = hashlib.sha256(str(Path(weights).resolve()).encode()).hexdigest()[:12]
    return f"{name}-{digest}-{size_tag}"


def cached_export(key: str) -> tuple[Path, ExportRecord] | None:
    """The cached graph ``key`` and its record, if both are there and readable."""
    graph, record_path = export_dir() / f"{key}.onnx", export_dir() / f"{key}.json"
    try:
        record = ExportRecord(**json.loads(record_path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not graph.is_file():
        return None
    cache.touch(record_path)  # used now: the last to be evicted
    return graph, record


def record_for(
    name: str, arch: str, weights: Path, size: int, net: nn.Module, mirror_average: bool = False
) -> ExportRecord:
    facts = weights.stat()
    return ExportRecord(
        name=name,
        arch=arch,
        weights=str(weights.resolve()),
        weights_size=facts.st_size,
        weights_mtime_ns=facts.st_mtime_ns,
        input_size=size,
        input_multiple=getattr(net, "input_multiple", 1),
        accepts_hints=bool(getattr(net, "accepts_hints", False)),
        has_distribution=hasattr(net, "distribution"),
        temperature=getattr(net, "temperature", None),
        mirror_average=mirror_average,
    )


def save_export(key: str, net: nn.Module, record: ExportRecord, output: str = "ab") -> Path:
    """Export ``net`` into the cache under ``key``, with its record; returns the graph."""
    graph = export_dir() / f"{key}.onnx"
    export_onnx(net, graph, size=record.input_size, output=output)
    with atomic_write(export_dir() / f"{key}.json", "w") as f:
        json.dump(asdict(record), f, indent=1)
    cache.trim(keep=[graph])
    return graph


# -- export ------------------------------------------------------------------------------------


def export_onnx(net: nn.Module, path: str | Path, *, size: int = 256, output: str = "ab") -> Path:
    """Write ``net`` (eval mode) as an ONNX graph to ``path``, atomically.

    Inputs ``lightness`` (and ``hint_ab``, ``hint_mask`` for models that take hints), output
    ``output`` (``ab``; an encoder's ``features``), all ``size`` x ``size``; the batch is
    dynamic. The sides are not: the tracer records the shape arithmetic of TF 'SAME' padding
    and of the decoder's upsampling as constants, so a graph traced at one side computes wrong
    maps at another.
    """
    import torch

    path = Path(path)
    hints = bool(getattr(net, "accepts_hints", False))
    names = list(INPUT_NAMES if hints else INPUT_NAMES[:1])
    example = [
        torch.full((1, 1, size, size), 50.0),
        torch.zeros(1, 2, size, size),
        torch.zeros(1, 1, size, size),
    ][: len(names)]
    axes = {name: {0: "batch"} for name in [*names, output]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp, warnings.catch_warnings(), torch.inference_mode():
        # The tracer warns that shape arithmetic becomes constants: true, and why the sides
        # are fixed (above).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            tuple(example),
            str(temp),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path


def export_error(net: nn.Module, graph: str | Path, *, size: int = 256, seed: int = 0) -> float:
    """Mean |delta ab| between ``net`` on PyTorch and ``graph`` on OpenVINO, on a smooth
    random L* (and, for models that take them, a few random hints)."""
    import torch

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 100, (1, 1, size // 16, size // 16)).astype(np.float32)
    lightness = np.kron(coarse, np.ones((16, 16), np.float32))
    inputs = [lightness]
    if getattr(net, "accepts_hints", False):
        mask = (rng.random((1, 1, size, size)) < 0.002).astype(np.float32)
        inputs += [rng.uniform(-60, 60, (1, 2, size, size)).astype(np.float32) * mask, mask]
    with torch.inference_mode():
        expected = net.eval()(*(torch.from_numpy(x) for x in inputs)).float().numpy()
    return float(np.abs(OpenVinoNetwork(graph)(*inputs) - expected).mean())


# -- the runtimes --------------------------------------------------------------------------------


class TorchNetwork:
    """The PyTorch module itself, on its device, without autograd."""

    name = "torch"

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        self.net = net
        self.device = device

    def __call__(self, lightness: np.ndarray, *hints: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            inputs = [torch.from_numpy(x).to(self.device) for x in (lightness, *hints)]
            return self.net(*inputs).float().cpu().numpy()


class OpenVinoNetwork:
    """An exported ONNX graph compiled by OpenVINO for the CPU, once per input shape.

    Safe to share between threads: each call gets its own inference request.
    """

    name = "openvino"

    def __init__(self, graph: str | Path, threads: int | None = None) -> None:
        openvino = import_openvino()

        self.graph = Path(graph)
        self.core = openvino.Core()
        self.core.set_property({"CACHE_DIR": str(cache.blob_dir())})
        self.config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        try:  # read once; each shape reshapes a clone
            self.model = self.core.read_model(str(graph))
        except RuntimeError as exc:  # e.g. removed by `colorize cache clear` a moment ago
            raise ColorizerError(f"{graph}: cannot read the exported network; run again") from exc
        inputs = self.model.inputs
        self.input_names = [i.get_any_name() for i in inputs]
        self.side = inputs[0].get_partial_shape()[2].get_length()  # the sides are fixed
        self.compiled: dict[tuple, Any] = {}
        self.lock = threading.Lock()

    def compiled_for(self, shapes: dict[str, tuple[int, ...]]):
        key = tuple(sorted(shapes.items()))
        with self.lock:
            if key not in self.compiled:
                model = self.model.clone()
                model.reshape({name: list(shape) for name, shape in shapes.items()})
                self.compiled[key] = self.core.compile_model(model, "CPU", self.config)
                cache.trim(keep=[self.graph])  # the blob just written is the newest: kept
            return self.compiled[key]

    def __call__(self, lightness: np.ndarray, *hints: np.ndarray) -> np.ndarray:
        n, _, height, width = lightness.shape
        arrays = {  # no hints given to a hint model: no hint anywhere, as PyTorch's forward
            "hint_ab": np.zeros((n, 2, height, width), np.float32),
            "hint_mask": np.zeros((n, 1, height, width), np.float32),
        }
        arrays.update(zip(INPUT_NAMES, (lightness, *hints), strict=False))
        # The exporter drops inputs a model never reads (a model that ignores L*, say).
        arrays = {name: arrays[name] for name in self.input_names}
        inputs = {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in arrays.items()}
        if lightness.shape[-2:] != (self.side, self.side):
            raise ValueError(
                f"{self.graph.name} was exported for {self.side} x {self.side} inputs, "
                f"not {lightness.shape[-2]} x {lightness.shape[-1]}"
            )
        compiled = self.compiled_for({name: x.shape for name, x in inputs.items()})
        request = compiled.create_infer_request()
        return np.array(request.infer(inputs)[0], dtype=np.float32)
