"""The one core API: ``Colorizer`` owns a model and the pre- and post-processing around it.

A photo goes through: read (any kind, EXIF upright) -> L* at full resolution -> L* resized to
the network's square input -> ab from the network -> ab resized back to full resolution ->
full-resolution L* + ab -> sRGB. The network never touches L*, so the output keeps the input's
luminance and resolution; alpha is carried through untouched.

``Colorizer.predict_planes`` is the one seam to the network: L* planes of any size in, ab on
the network's square grid out, the size chosen per call. Everything that runs a model (this
module, ``colorizer.video``, the server) goes through it. Guidance (``colorizer.guidance``, a
layer above) never runs the network: ``guided_ab`` asks it what the network should be given,
runs the network, and hands it the answer (``colorizer.prediction``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorizer import imageio, planes, runtime
from colorizer.errors import ColorizerError
from colorizer.planes import compose, resize_plane
from colorizer.prediction import Guide, NetworkRequest, Prediction, decode_distribution

if TYPE_CHECKING:
    import torch

    from colorizer.provenance import Provenance
    from colorizer.provenance.making import Making

__all__ = ["DEFAULT_MODEL", "Colorizer", "compose", "resize_plane", "resolve_device"]

log = logging.getLogger(__name__)

# The model we train and ship inside the package: colorizing works offline out of the box.
DEFAULT_MODEL = "colornet-v2"

# Photos over imageio.LARGE_PHOTO_PIXELS go one at a time (each needs ~7 bytes a pixel while it
# is colorized), whatever the number of threads handing them in.
_ONE_LARGE_PHOTO = threading.Lock()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    import torch

    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ColorizerError("device 'cuda' requested but PyTorch sees no CUDA GPU")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ColorizerError("device 'mps' requested but Apple's MPS backend is not available")
    return device


def picture_lightness(picture: imageio.Picture) -> np.ndarray:
    """Full-resolution L* of a decoded picture (a grey one by its one-channel fast path)."""
    grey = picture.grey or planes.is_grey(picture.rgb)
    return planes.lightness_image(picture.rgb, grey=grey)


class Colorizer:
    """Colorize grey photos with one model.

    ``model`` is a registered model name (``colorize models``; default: the shipped
    ``colornet-v2``) or, with ``weights``, an architecture name. ``size`` is the side of the
    square the network sees (default: the model's). Instances are safe to share between
    threads: inference reads the model only.

    ``backend``: where the network runs (``colorizer.runtime``). 'auto' (the default, or
    ``$COLORIZER_BACKEND``) runs it on OpenVINO when that is installed and the device is the
    CPU, else on PyTorch; 'torch' or 'openvino' ask for one. On OpenVINO the network is
    exported to ONNX once, into the cache, and later colorizers start without PyTorch; the
    PyTorch module is still built, on first use, for what OpenVINO does not run (the
    distribution over the bins: guidance and suggested colours).

    ``provenance``: what each output says about its making beyond its XMP, which is always
    written (``colorizer.provenance``): a C2PA signing identity, a JSON sidecar. Default: the
    signing identity of ``$COLORIZER_SIGN_KEY`` and ``$COLORIZER_SIGN_CERT``, if set.

    ``mirror_average``: whether each photo's colours are averaged with those of its mirror image
    (``predict_planes``). Default: the model's catalogue entry (on for colornet-v3).
    """

    network: runtime.TorchNetwork | runtime.OpenVinoNetwork

    def __init__(
        self,
        model: str | None = None,
        *,
        weights: str | Path | None = None,
        size: int | None = None,
        device: str | torch.device = "auto",
        max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS,
        backend: str | None = None,
        provenance: Provenance | None = None,
        mirror_average: bool | None = None,
    ) -> None:
        self.name = model or DEFAULT_MODEL
        self.max_pixels = max_pixels
        self.weights_given = weights
        self._net: torch.nn.Module | None = None
        self._device: torch.device | None = None
        self._encoder_network: runtime.OpenVinoNetwork | None = None
        backend = backend or os.environ.get("COLORIZER_BACKEND") or "auto"
        if runtime.wants_openvino(backend, str(device)):
            self._device_name = "cpu"
            record = self._start_openvino(weights, size)
        else:
            self._device_name = str(device)
            record = self._load(weights, size)
            self.network = runtime.TorchNetwork(self.net, self.device)
        self.record = record
        self.provenance = provenance or _provenance_from_env()
        self.input_multiple = record.input_multiple
        self.size = self.check_size(size or record.input_size)
        self.mirror_average = record.mirror_average if mirror_average is None else mirror_average

    def _load(self, weights: str | Path | None, size: int | None) -> runtime.ExportRecord:
        """Build the PyTorch module (``self.net``); what the pipeline needs to know of it."""
        from colorizer.weights import MODELS, architecture, ensure_weights, model_spec

        spec = MODELS.get(self.name)
        if spec is None and weights is None:
            model_spec(self.name)  # raises with the list of known models
        self.arch = spec.arch if spec else self.name
        architecture(self.arch)  # fail early on an unknown architecture name
        self.weights = Path(weights) if weights is not None else ensure_weights(self.name)
        size = size or (spec.input_size if spec else 256)
        mirror = spec is not None and spec.mirror_average
        return runtime.record_for(self.name, self.arch, self.weights, size, self.net, mirror)

    def _start_openvino(self, weights: str | Path | None, size: int | None) -> runtime.ExportRecord:
        """Run on the cached ONNX export of this model, made now if missing or stale."""
        key = self._export_key = runtime.cache_key(self.name, weights, size)
        cached = runtime.cached_export(key)
        given = Path(weights) if weights is not None else None
        if cached is not None and cached[1].matches(given or Path(cached[1].weights)):
            graph, record = cached
            self.arch, self.weights = record.arch, Path(record.weights)
        else:
            record = self._load(weights, size)
            self.check_size(record.input_size, record.input_multiple)  # before exporting
            graph = runtime.save_export(key, self.net, record)
        self.network = runtime.OpenVinoNetwork(graph)
        return record

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = resolve_device(self._device_name)
        return self._device

    @property
    def net(self) -> torch.nn.Module:
        """The PyTorch module (built on first use when the network runs on OpenVINO)."""
        if self._net is None:
            from colorizer.weights import create_model

            self._net = create_model(self.arch, self.weights).to(self.device)
        return self._net

    def for_hints(self) -> Colorizer:
        """The colorizer that runs when the user gives point hints: this one if its model takes
        hints, else the model's catalogue ``hint_model`` (loaded once, same device, backend and
        size), else this one (hints then correct the automatic colours)."""
        if self.accepts_hints:
            return self
        if not hasattr(self, "_for_hints"):
            from colorizer.weights import MODELS

            spec = MODELS.get(self.name)
            name = spec.hint_model if spec is not None and self.weights_given is None else None
            self._for_hints = (
                Colorizer(name, size=self.size, device=self._device_name, backend=self.backend)
                if name
                else self
            )
        return self._for_hints

    @property
    def backend(self) -> str:
        """Where ``predict_planes`` runs the network: 'torch' or 'openvino'."""
        return self.network.name

    def check_size(self, size: int, multiple: int | None = None) -> int:
        """``size`` if the network can run at that side, else a ``ColorizerError``."""
        multiple = multiple or self.input_multiple
        if size < multiple or size % multiple:
            raise ColorizerError(
                f"network size {size} is not a positive multiple of {multiple}, "
                f"which the {self.arch} architecture needs"
            )
        return size

    def with_size(self, size: int) -> Colorizer:
        """This colorizer at another network side: a shallow copy sharing the loaded network
        (for callers that hand a colorizer on, such as a video job; one call can instead pass
        ``size=`` to ``colorize``)."""
        variant = copy.copy(self)
        variant.size = self.check_size(size)
        return variant

    def __repr__(self) -> str:
        return (
            f"Colorizer({self.name!r}, size={self.size}, device='{self._device_name}', "
            f"backend='{self.backend}')"
        )

    # -- public API ---------------------------------------------------------------------------

    def colorize(
        self, image: Any, guidance: Guide | None = None, *, size: int | None = None
    ) -> Any:
        """Colorize one image: a path, PIL image or numpy array; returns the same kind.

        Arrays keep their dtype (uint8, uint16, float) and alpha; a path gives a PIL image.
        ``guidance`` (``colorizer.guidance.Guidance``): point hints, global hints, scribbles,
        a reference photo or propagation, see ``docs/guidance.md``. ``size``: the network's
        side for this call (default ``self.size``).
        """
        return self.colorize_batch([image], guidance=guidance, size=size)[0]

    def colorize_batch(
        self,
        images: Sequence[Any],
        batch_size: int = 8,
        guidance: Guide | None = None,
        *,
        size: int | None = None,
    ) -> list[Any]:
        """Colorize several images; the result equals calling ``colorize`` on each. They go
        through the network one by one (see ``colorize_pictures``); ``batch_size`` is kept for
        callers of earlier versions and changes nothing."""
        del batch_size
        return [self._colorize_any(image, guidance, size) for image in images]

    def _colorize_any(self, image: Any, guidance: Guide | None, size: int | None) -> Any:
        unguided = guidance is None or guidance.empty
        if unguided and isinstance(image, np.ndarray):
            pixels = imageio.pixels_of_array(image, max_pixels=self.max_pixels)
            if pixels is not None:  # uint8: in bytes, as colorize_file keeps 8-bit files
                self._warn_if_colour(image, pixels.looks_colour)
                return imageio.to_like(self.colorize_pixels(pixels, size), pixels.alpha, image)
        picture = self.read(image)
        (rgb,) = self.colorize_pictures([picture], guidance, size=size)
        return imageio.to_like(rgb, picture.alpha, image)

    def colorize_pixels(self, pixels: imageio.Pixels8, size: int | None = None) -> np.ndarray:
        """An 8-bit photo's bytes (``imageio.read_pixels_u8``, ``pixels_of_array``) -> H x W x 3
        uint8 sRGB, never making a float image; alpha is the caller's to carry
        (``pixels.alpha``)."""
        return self._colorize_lightness(planes.lightness_of_bytes(pixels.data), size)

    def _colorize_lightness(self, lightness: np.ndarray, size: int | None = None) -> np.ndarray:
        """The exact L* of 8-bit pixels (``planes.lightness_of_bytes``) -> H x W x 3 uint8 sRGB:
        the network's ab composed straight into bytes, the float path's result quantised, byte
        for byte."""
        ab = self.predict_planes([lightness], size=size)[0]
        return compose(lightness, ab, out_dtype=np.uint8)

    def colorize_file(
        self, src: str | Path, dst: str | Path, guidance: Guide | None = None
    ) -> Path:
        """Read ``src``, colorize it, write ``dst`` atomically (format from its suffix)."""
        if guidance is None or guidance.empty:
            written = self._colorize_bytes(src, dst)
            if written is not None:
                return written
        picture = self.read(src)
        (rgb,) = self.colorize_pictures([picture], guidance)
        making = self.making(src, guidance)
        metadata = self.marked(picture, making)
        return making.recorded(
            imageio.write_image(
                dst, rgb, picture.alpha, bit_depth=picture.bit_depth, metadata=metadata
            )
        )

    def _colorize_bytes(self, src: str | Path, dst: str | Path) -> Path | None:
        """``colorize_file`` of an 8-bit L, LA, RGB or RGBA photo, kept in bytes: its pixels,
        the exact L* (``planes.lightness_of_bytes``), the network's ab, the 8-bit result
        composed strip by strip; never the float RGB images. The float path's output byte for
        byte, in about half its time beyond the network, and a 200 MP grey scan peaks under
        2 GB instead of 8 (benchmarks/RESULTS.md). None for other files (16-bit, palette,
        CMYK ...), which take the float path."""
        count = imageio.pixel_count(src)
        large = count is not None and count >= imageio.LARGE_PHOTO_PIXELS
        with _ONE_LARGE_PHOTO if large else contextlib.nullcontext():
            pixels = imageio.read_pixels_u8(src, max_pixels=self.max_pixels)
            if pixels is None:
                return None
            self._warn_if_colour(src, pixels.looks_colour)
            making = self.making(src)
            alpha, metadata = pixels.alpha, self.marked(pixels, making)
            lightness = planes.lightness_of_bytes(pixels.data)
            del pixels  # the source's bytes are not needed again
            rgb = self._colorize_lightness(lightness)
            del lightness
            return making.recorded(imageio.write_image(dst, rgb, alpha, metadata=metadata))

    def marked(
        self, picture: imageio.Picture | imageio.Pixels8, making: Making | None = None
    ) -> imageio.Metadata:
        """The input's metadata, marked as colorized by this model, for the output file: EXIF
        Software and ImageDescription, the XMP record of ``making`` (default: made by this
        colorizer from no file) and, with a signing identity, the C2PA signing step."""
        from colorizer.version import __version__

        marked = (picture.metadata or imageio.Metadata()).marked(
            f"colorizer {__version__}",
            f"Colorized by machine: colorizer {__version__}, model {self.name}",
        )
        return (making or self.making()).metadata(marked)

    def making(self, source: str | Path | None = None, guidance: Guide | None = None) -> Making:
        """How this colorizer makes an output from the file ``source`` (for its provenance)."""
        from colorizer.provenance.making import Making

        return Making.of(self, source, guidance)

    def read(self, image: Any) -> imageio.Picture:
        picture = imageio.read_image(image, max_pixels=self.max_pixels)
        self._warn_if_colour(image, picture.looks_colour)
        return picture

    @staticmethod
    def _warn_if_colour(image: Any, looks_colour: bool) -> None:
        if looks_colour:
            name = image if isinstance(image, str | Path) else "input image"
            log.warning("%s looks like a colour photo; colorizing it from its luminance", name)

    def suggest_colors(
        self, image: Any, x: float, y: float, k: int = 5, *, size: int | None = None
    ) -> list[dict]:
        """The model's ``k`` likeliest colours at image pixel (x, y), best first, as
        ``{"hex": "#rrggbb", "ab": [a, b], "probability": p}`` (hex at the photo's lightness
        there). Models without a distribution give their one predicted colour."""
        from colorizer import color
        from colorizer.prediction import distribution_modes

        picture = self.read(image)
        lightness = picture_lightness(picture)
        height, width = lightness.shape
        planes.check_point(x, y, width, height, "point 0")
        if k < 1:
            raise ColorizerError(f"k must be at least 1, got {k}")
        light = float(
            lightness[min(max(round(y), 0), height - 1), min(max(round(x), 0), width - 1)]
        )
        distribution = self.predict_bins([lightness], size=size)
        if distribution is None:
            ab = self.predict_planes([lightness], size=size)[0]
            a, b = (
                float(v) for v in ab[_cell(y, height, ab.shape[0]), _cell(x, width, ab.shape[1])]
            )
            return [{"hex": color.lab_to_hex(light, a, b), "ab": [a, b], "probability": 1.0}]
        grid_h, grid_w = distribution.shape[-2:]
        cell = distribution[0, :, _cell(y, height, grid_h), _cell(x, width, grid_w)]
        return [
            {"hex": color.lab_to_hex(light, a, b), "ab": [a, b], "probability": probability}
            for (a, b), probability in distribution_modes(cell.double().numpy(), k)
        ]

    def confidence(self, image: Any, *, size: int | None = None) -> np.ndarray:
        """The model's per-pixel confidence in its automatic colours: H x W float32 in [0, 1]
        at the photo's full resolution, the probability that each pixel's ab is within the
        model's tolerance of the truth (colornet-v3: 12 Lab units). ``image``: a path, PIL
        image or numpy array; ``size``: the network's side (default ``self.size``).

        Computed on the PyTorch module whatever the backend (built on first use on OpenVINO,
        which runs ``forward`` only), on the network's grid, resized back like the ab planes.
        Guidance is not taken into account. A model without one raises a ``ColorizerError``."""
        refusal = confidence_refusal(self.name, self.arch)
        if refusal is not None:
            raise ColorizerError(refusal)
        import torch

        if isinstance(image, str | Path):
            count = imageio.pixel_count(image)
            large = count is not None and count >= imageio.LARGE_PHOTO_PIXELS
            with _ONE_LARGE_PHOTO if large else contextlib.nullcontext():
                pixels = imageio.read_pixels_u8(image, max_pixels=self.max_pixels)
        elif isinstance(image, np.ndarray):
            pixels = imageio.pixels_of_array(image, max_pixels=self.max_pixels)
        else:
            pixels = None
        if pixels is not None:
            lightness = planes.lightness_of_bytes(pixels.data)
        else:
            lightness = picture_lightness(imageio.read_image(image, max_pixels=self.max_pixels))
        small = self.network_input([lightness], size).to(self.device)
        confidence = getattr(self.net, "confidence")  # noqa: B009 - a model's method
        with torch.inference_mode():
            probability = confidence(small)
        grid = np.ascontiguousarray(probability[0, 0].float().cpu().numpy())
        full = resize_plane(grid, *lightness.shape)
        return np.clip(full, 0.0, 1.0, out=full).astype(np.float32, copy=False)

    def encoder_features(self, lightness: np.ndarray, size: int | None = None) -> np.ndarray:
        """What the model's pretrained encoder sees in the photo of L* ``lightness`` (H x W,
        0..100, any size), for exemplar colour transfer (``colorizer.guidance.exemplar``):
        C x h x w float32, unit length at each position, on the grid of the network's square
        input of side ``size`` (default ``self.size``; 256 -> 32 x 32).

        On OpenVINO (at the exported side) the encoder runs as an exported graph of its own,
        made on first use; else on the PyTorch module. A model without an encoder raises a
        ``ColorizerError`` naming the models with one."""
        refusal = encoder_refusal(self.name, self.arch)
        if refusal is not None:
            raise ColorizerError(refusal)
        side = self.size if size is None else size
        if isinstance(self.network, runtime.OpenVinoNetwork) and side == self.record.input_size:
            features = self._openvino_encoder()(self._small([lightness], size))[0]
            return np.ascontiguousarray(features, dtype=np.float32)
        import torch

        from colorizer.models.colornet_v2 import EncoderFeatures

        small = self.network_input([lightness], size).to(self.device)
        with torch.inference_mode():
            features = EncoderFeatures(self.net)(small)[0].float()  # type: ignore[arg-type]
        return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)

    def _openvino_encoder(self) -> runtime.OpenVinoNetwork:
        """The encoder's own OpenVINO graph, from the export cache (exported on first use):
        a small fraction of the PyTorch pass's time on the CPU (benchmarks/RESULTS.md, "Guided
        films: keyframes")."""
        if self._encoder_network is None:
            from colorizer.models.colornet_v2 import EncoderFeatures

            key = f"{self._export_key}-encoder"
            cached = runtime.cached_export(key)
            if cached is not None and cached[1] == self.record:
                graph = cached[0]
            else:
                encoder = EncoderFeatures(self.net)  # type: ignore[arg-type]
                graph = runtime.save_export(key, encoder, self.record, output="features")
            self._encoder_network = runtime.OpenVinoNetwork(graph)
        return self._encoder_network

    @property
    def has_encoder(self) -> bool:
        """Whether the model has a pretrained encoder (``encoder_features``)."""
        return encoder_refusal(self.name, self.arch) is None

    @property
    def accepts_hints(self) -> bool:
        """Whether the user's point hints go into the network (``forward(l, hint_ab,
        hint_mask)``): it has a hint input and its catalogue entry says to use it."""
        from colorizer.weights import MODELS

        spec = MODELS.get(self.name)
        return self.record.accepts_hints and (spec is None or spec.native_hints)

    def colorize_pictures(
        self,
        pictures: Sequence[imageio.Picture],
        guidance: Guide | None = None,
        *,
        size: int | None = None,
    ) -> list[np.ndarray]:
        """Decoded pictures -> H x W x 3 float32 sRGB in [0, 1], one per picture."""
        lightness = [picture_lightness(p) for p in pictures]
        if guidance is not None and not guidance.empty:
            return [compose(light, self.guided_ab(light, guidance, size)) for light in lightness]
        # One photo per network call: a convolution's float result depends on the batch it is
        # in (PyTorch and OpenVINO pick kernels by shape), which moved a few pixels of a batch
        # by one level against single calls. On the CPU a batch is no faster per photo
        # (benchmarks/RESULTS.md, issue 11), so colorize_batch equals colorize exactly.
        return [compose(light, self.predict_planes([light], size=size)[0]) for light in lightness]

    def guided_ab(self, lightness: np.ndarray, guidance: Guide, size: int | None = None):
        """Full-resolution H x W x 2 ab of the photo of L* ``lightness`` under ``guidance``:
        the guidance plans what the network is given, the network runs (on the model's
        hint-aware sibling when there are point hints), the guidance finishes the ab."""
        colorizer = self.for_hints() if guidance.wants_hint_model else self
        plan = guidance.plan(
            lightness,
            accepts_hints=colorizer.accepts_hints,
            grid=size or colorizer.size,
            encoder=colorizer.has_encoder,
        )
        request = plan.request
        prediction = None if request is None else colorizer.predict(lightness, request, size)
        return plan.finish(prediction)

    def predict(
        self, lightness: np.ndarray, request: NetworkRequest, size: int | None = None
    ) -> Prediction:
        """The network's answer to a guided photo's ``request``, on its own grid (and the
        encoder features it asks for, on the grid of the same network side)."""
        hints = request.hint_planes
        features = tuple(self.encoder_features(plane, size) for plane in request.feature_planes)
        distribution = self.predict_bins([lightness], hints, size=size)
        if distribution is None:
            ab = self.predict_planes([lightness], hints, size=size)[0]
            return Prediction(ab, None, False, features)
        from colorizer import color  # torch: not needed before a guided photo

        temperature = getattr(self.net, "temperature", color.DEFAULT_TEMPERATURE)
        prediction = decode_distribution(distribution, request.bin_weights, temperature)
        return dataclasses.replace(prediction, features=features)

    # -- the one seam to the network ------------------------------------------------------------

    def network_input(self, lightness: Sequence[np.ndarray], size: int | None = None):
        """L* planes (each H x W, any size) -> N x 1 x S x S tensor at the network's side S."""
        import torch

        return torch.from_numpy(self._small(lightness, size))

    def _small(self, lightness: Sequence[np.ndarray], size: int | None) -> np.ndarray:
        """L* planes -> N x 1 x S x S float32 at the network's side S."""
        side = self.size if size is None else self.check_size(size)
        return np.stack([resize_plane(light, side, side) for light in lightness])[:, None]

    def predict_planes(
        self,
        lightness: Sequence[np.ndarray],
        hints: tuple[np.ndarray, ...] | None = None,
        size: int | None = None,
    ) -> np.ndarray:
        """L* planes (each H x W, 0..100, any size) -> N x S x S x 2 float32 ab on the network's
        square grid of side ``size`` (default ``self.size``). ``hints``: hint ab (N x 2 x S x S)
        and 0/1 mask (N x 1 x S x S), for models that take them. With ``mirror_average`` the
        mirror images go through the network in the same batch and their ab, mirrored back, is
        averaged in."""
        inputs = self._network_inputs(lightness, hints, size)
        planes_ab = self._fold_mirror_images(self._run_network(*inputs), len(lightness))
        return np.ascontiguousarray(planes_ab.transpose(0, 2, 3, 1))

    def _network_inputs(
        self,
        lightness: Sequence[np.ndarray],
        hints: tuple[np.ndarray, ...] | None,
        size: int | None,
    ) -> tuple[np.ndarray, ...]:
        """The N x 1 x S x S L* planes and any hint planes, and with ``mirror_average`` their
        mirror images after them in the same batch."""
        arrays = (self._small(lightness, size), *(hints or ()))
        if not self.mirror_average:
            return arrays
        return tuple(np.ascontiguousarray(np.concatenate([x, x[..., ::-1]])) for x in arrays)

    def _fold_mirror_images(self, outputs, count: int):
        """The network's answers to ``_network_inputs``: with ``mirror_average``, each
        photo's averaged with its mirror image's, mirrored back (numpy or torch, N x C x S x S)."""
        if not self.mirror_average:
            return outputs
        mirrored = outputs[count:]
        mirrored = mirrored[..., ::-1] if isinstance(mirrored, np.ndarray) else mirrored.flip(-1)
        return (outputs[:count] + mirrored) / 2

    def _run_network(self, small: np.ndarray, *hints: np.ndarray) -> np.ndarray:
        """N x 1 x S x S L* and hint planes -> N x 2 x S x S float32 ab."""
        side = small.shape[-1]
        if isinstance(self.network, runtime.TorchNetwork) or side != self.record.input_size:
            # An OpenVINO graph runs at the side it was exported at; others run on PyTorch.
            import torch

            tensors = (torch.from_numpy(np.ascontiguousarray(x)) for x in (small, *hints))
            return self.predict_ab(*tensors).float().cpu().numpy()
        return self.network(small, *hints)

    def predict_bins(
        self,
        lightness: Sequence[np.ndarray],
        hints: tuple[np.ndarray, ...] | None = None,
        size: int | None = None,
    ) -> torch.Tensor | None:
        """As ``predict_planes`` (the mirror average included), the model's probabilities over the
        313 ab bins (N x 313 x g x g float32 on the CPU), or None for models that predict ab
        directly."""
        if not self.record.has_distribution:
            return None
        import torch

        inputs = self._network_inputs(lightness, hints, size)
        distribution = self.predict_distribution(*(torch.from_numpy(x) for x in inputs))
        distribution = self._fold_mirror_images(distribution, len(lightness))
        return distribution.float().cpu()

    def predict_ab(self, lightness: torch.Tensor, *hints: torch.Tensor) -> torch.Tensor:
        """N x 1 x S x S L* (0..100) -> N x 2 x S x S ab from the PyTorch module. ``hints``:
        raw hint ab (N x 2 x S x S) and 0/1 mask (N x 1 x S x S), for models that take them."""
        import torch

        with torch.inference_mode():
            return self.net(lightness.to(self.device), *(h.to(self.device) for h in hints))

    def predict_distribution(self, lightness: torch.Tensor, *hints: torch.Tensor):
        """The model's probabilities over the 313 ab bins (N x 313 x g x g), or None for
        models that predict ab directly. ``hints`` as for ``predict_ab``."""
        import torch

        if not self.record.has_distribution:
            return None
        with torch.inference_mode():
            inputs = (lightness, *hints)
            distribution = getattr(self.net, "distribution")  # noqa: B009 - a model's method
            return distribution(*(x.to(self.device) for x in inputs))


def confidence_refusal(model: str | None, arch: str | None = None) -> str | None:
    """Why ``model`` (of architecture ``arch``, default: the catalogue's) gives no per-pixel
    confidence, in one line naming the models that do; None when it gives one, or when the
    name is unknown (loading it says so)."""
    return _capability_refusal(model, arch, "confidence", "gives no per-pixel confidence")


def encoder_refusal(model: str | None, arch: str | None = None) -> str | None:
    """Why ``model`` (of architecture ``arch``) has no encoder features for exemplar transfer,
    in one line naming the models that have; None when it has, or when the name is unknown."""
    return _capability_refusal(model, arch, "encoder_features", "has no pretrained encoder")


def _capability_refusal(model: str | None, arch: str | None, method: str, lacks: str):
    import colorizer.weights  # noqa: F401  (imports the model files: the registry's tables)
    from colorizer.registry import ARCHITECTURES, MODELS

    name = model or DEFAULT_MODEL
    spec = MODELS.get(name)
    cls = ARCHITECTURES.get(arch or (spec.arch if spec else name))
    if cls is None or callable(getattr(cls, method, None)):
        return None
    archs = sorted(a for a, c in ARCHITECTURES.items() if callable(getattr(c, method, None)))
    models = [s.name for s in MODELS.values() if s.arch in archs]
    offered = ", ".join(models + [f"{a} (an architecture, with its --weights)" for a in archs])
    return f"model {name} {lacks}; models with one: {offered or 'none'}"


def _cell(coordinate: float, extent: int, cells: int) -> int:
    """The grid cell (of ``cells`` along an ``extent``-pixel side) holding pixel ``coordinate``."""
    return min(int((coordinate + 0.5) * cells / extent), cells - 1)


def _provenance_from_env() -> Provenance:
    from colorizer.provenance import Provenance

    return Provenance.from_env()
