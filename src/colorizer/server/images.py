"""The photo routes: ``POST /v1/colorize`` and ``POST /v1/suggest``.

Each request's work (save, check, colorize, encode) runs on the image pool (``image_workers``
at once, at most ``max_pending_images`` running or waiting, 429 beyond), within the
per-request time limit (504 past it; the work stops at its next stage and its slot goes to the
next request), and within the memory budget: it waits until its estimated working memory fits
beside the running requests', and one that alone is over the budget answers 413.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import Response
from PIL import Image

from colorizer import batch
from colorizer.errors import ColorizerError, WeightsError
from colorizer.guidance import Guidance, parse_hints
from colorizer.imageio import Pixels8
from colorizer.pipeline import Colorizer, picture_lightness
from colorizer.server.errors import ApiError, weights_message
from colorizer.server.jobs import Cancelled, OverBudget, QueueFull, public_message, scrub_paths
from colorizer.server.models import UnknownModel
from colorizer.server.schemas import (
    ERRORS,
    WEIGHTS_MISSING,
    ErrorBody,
    ImageOptions,
    Suggestion,
    Suggestions,
)
from colorizer.server.schemas import read_options as _read_options
from colorizer.server.state import ServerState
from colorizer.server.uploads import Uploads, as_array, encode, image_header

log = logging.getLogger(__name__)

# Working memory per decoded pixel, measured on a 7000 x 7000 grey PNG (benchmarks: issue 22):
# the 8-bit path of colorize (bytes, L*, ab, the 8-bit result) peaks near 9 bytes a pixel; the
# float path (guidance, 16-bit, palette and CMYK photos) near 50.
BYTES_PER_PIXEL_8BIT = 10
BYTES_PER_PIXEL_FLOAT = 64
BYTES_PER_PIXEL_SCRIBBLES = 16
# /v1/suggest reads one point's colours off the network's view of the photo, a square of at
# most max_network_size: a larger 8-bit photo is shrunk in bytes to about this many pixels
# before it becomes float (7000 x 7000: 50 MB of bytes, not 2.8 GB of float planes).
SUGGEST_PIXELS = 2_000_000
# With a reference matched by meaning, the answer says how well the photo matched it (an album's
# report, per photo: colorizer.batch.reference_match).
MATCH_SHARE_HEADER = "X-Reference-Match-Share"
MATCH_HEADER = "X-Reference-Match"


def add_image_routes(app: FastAPI, state: ServerState) -> None:
    @app.post(
        "/v1/colorize",
        tags=["images"],
        response_class=Response,
        responses={
            200: {
                "content": {"image/png": {}, "image/jpeg": {}},
                "description": "the colorized image at full resolution; PNG unless `Accept` "
                "prefers image/jpeg",
                "headers": {
                    MATCH_SHARE_HEADER: {
                        "description": "with a reference and a model with an encoder: the "
                        "share of the photo matched to the reference, 0..1",
                        "schema": {"type": "string"},
                    },
                    MATCH_HEADER: {
                        "description": "with a reference and a model with an encoder: "
                        "'matched the reference' or 'fell back' (to the automatic colours)",
                        "schema": {"type": "string"},
                    },
                },
            },
            **ERRORS,
            406: {"model": ErrorBody, "description": "`Accept` allows neither PNG nor JPEG"},
            409: WEIGHTS_MISSING,
            504: {"model": ErrorBody, "description": "over the per-request time limit"},
        },
    )
    async def colorize(
        request: Request,
        image: Annotated[
            UploadFile, File(description="the photo: PNG, JPEG, TIFF, WebP, BMP, GIF")
        ],
        model: Annotated[str | None, Form(description="model name (GET /v1/models)")] = None,
        size: Annotated[int | None, Form(description="side of the square the network sees")] = None,
        hints: Annotated[
            str | None,
            Form(
                description='point hints as JSON: [{"x": 10, "y": 20, "color": "#c03020"}] '
                "in image pixel coordinates",
            ),
        ] = None,
        saturation: Annotated[
            float | None, Form(description="target mean saturation of the result, 0..1")
        ] = None,
        reference: Annotated[
            UploadFile | None, File(description="a colour photo to take colours from")
        ] = None,
        scribbles: Annotated[
            UploadFile | None,
            File(description="an RGBA PNG of painted colour strokes, transparent elsewhere"),
        ] = None,
        options: Annotated[
            str | None,
            Form(
                description="the options as one JSON object instead of fields: model, size, hints, "
                "saturation, reference (a data: URL)",
            ),
        ] = None,
    ) -> Response:
        """Colorize one photo; the answer is the image itself."""
        fmt = choose_format(request.headers.get("accept"))
        merged = _read_options(
            options,
            max_hints=state.settings.max_hints,
            model=model,
            size=size,
            hints=hints,
            saturation=saturation,
        )
        files = {"image": image, "reference": reference or merged.reference, "scribbles": scribbles}
        work = ImageWork(state, files, merged, fmt)
        body = await run_image(state, work, work.colorize)
        media = "image/jpeg" if fmt == "jpeg" else "image/png"
        return Response(body, media_type=media, headers=work.headers())

    @app.post(
        "/v1/suggest",
        tags=["images"],
        response_model=Suggestions,
        responses={
            **ERRORS,
            409: WEIGHTS_MISSING,
            501: {"model": ErrorBody, "description": "model offers none"},
        },
    )
    async def suggest(
        image: Annotated[UploadFile, File(description="the photo")],
        x: Annotated[float, Form(description="image pixel column")],
        y: Annotated[float, Form(description="image pixel row")],
        k: Annotated[int, Form(ge=1, le=16, description="how many colours")] = 5,
        model: Annotated[str | None, Form()] = None,
        size: Annotated[int | None, Form()] = None,
    ) -> Suggestions:
        """The model's likeliest colours at one point of the photo, for a colour hint."""
        work = ImageWork(state, {"image": image}, ImageOptions(model=model, size=size), "png")
        found = await run_image(state, work, work.suggest, x, y, k)
        return Suggestions(x=x, y=y, suggestions=[Suggestion(**s) for s in found])


async def run_image(state: ServerState, work: Any, fn, *args, doing: str = "colorizing"):
    """Run ``fn`` on the image pool: 429 when the pool is full, 504 past the time limit. A
    request that times out or goes away abandons its work (``work.cancelled`` is set): it stops
    at its next stage, and its slot goes to the next request at once. ``doing``: what the 504
    says took too long."""
    future = state.images.submit(fn, *args, cancelled=work.cancelled)
    timeout = state.settings.request_timeout_s
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        state.images.abandon(future, work.cancelled)
        raise ApiError(
            504, f"{doing} took longer than this server's limit of {timeout:g} s"
        ) from None
    except asyncio.CancelledError:  # the client went away
        state.images.abandon(future, work.cancelled)
        raise


class ImageWork:
    """One image request's work, run on a pool thread: save, check, colorize, encode."""

    def __init__(self, state: ServerState, files: dict, options: ImageOptions, fmt: str) -> None:
        self.state, self.settings = state, state.settings
        self.uploads = Uploads(
            state.temp,
            files,
            max_bytes=self.settings.max_upload_bytes,
            max_pixels=self.settings.max_pixels,
        )
        self.options, self.fmt = options, fmt
        self.cancelled = threading.Event()  # set when the request gives up (504, disconnect)
        self.reference_match: float | None = None  # share of the photo matched to a reference

    def colorize(self) -> bytes:
        try:
            # Unguided 8-bit photos stay in bytes (Colorizer.colorize_pixels: the same result
            # in a quarter of the memory); the rest are decoded to a float Picture.
            uploads = self.uploads
            needed = self._colorize_memory()
            with self.state.memory.reserve(needed, self.cancelled):
                self._go_on()
                photo = uploads.read("image") if self._guided else uploads.read_pixels("image")
                colorizer = self._colorizer()
                self._go_on()
                if isinstance(photo, Pixels8):
                    rgb = colorizer.colorize_pixels(photo)
                else:
                    guidance = self._guidance(photo.rgb.shape[1::-1])
                    album = batch.prepare_album(colorizer, guidance)
                    if album is not None:  # a reference matched by meaning: say how well
                        guidance = album.guidance
                    (rgb,) = colorizer.colorize_pictures([photo], guidance)
                    if album is not None:
                        self._measure_match(colorizer, photo, album)
                self._go_on()
                marked = colorizer.marked(photo)
                return encode(self.state.temp, rgb, photo.alpha, self.fmt, marked)
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self.uploads.cleanup()

    def _measure_match(self, colorizer: Colorizer, photo: Any, album: batch.Album) -> None:
        """How much of the photo matched its reference, as an album's report says it."""
        runner = colorizer.for_hints() if album.guidance.wants_hint_model else colorizer
        lightness = picture_lightness(photo)
        self.reference_match = batch.reference_match(runner, lightness, album.exemplar)

    def headers(self) -> dict[str, str]:
        """The answer's headers: no caching; with a reference matched by meaning, the share
        of the photo that matched it and the album report's verdict."""
        headers = {"Cache-Control": "no-store"}
        if self.reference_match is not None:
            headers[MATCH_SHARE_HEADER] = f"{self.reference_match:.3f}"
            headers[MATCH_HEADER] = batch.match_verdict(self.reference_match)
        return headers

    def suggest(self, x: float, y: float, k: int) -> list[dict]:
        try:
            header = image_header(self.uploads.save("image"))
            pixels = header[0] if header else 0
            shrink = header is not None and header[1] in _BYTE_MODES and pixels > SUGGEST_PIXELS
            if shrink:
                needed = pixels * 2 + SUGGEST_PIXELS * BYTES_PER_PIXEL_FLOAT
            else:
                needed = pixels * BYTES_PER_PIXEL_FLOAT
            with self.state.memory.reserve(needed, self.cancelled):
                self._go_on()
                uploads = self.uploads
                photo = uploads.read_pixels("image") if shrink else uploads.read("image")
                colorizer = self._colorizer()
                if not hasattr(colorizer, "suggest_colors"):
                    raise ApiError(501, "this installation offers no colour suggestions")
                self._go_on()
                if isinstance(photo, Pixels8):
                    return suggest_in_bytes(colorizer, photo, x, y, k)
                return colorizer.suggest_colors(as_array(photo), x, y, k=k)
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self.uploads.cleanup()

    def _go_on(self) -> None:
        """Between stages: stop here if the request was abandoned (it already answered 504)."""
        if self.cancelled.is_set():
            raise Cancelled

    def _colorize_memory(self) -> int:
        """Bytes this request's photo, reference and scribbles need while colorized, estimated
        from the files' headers (saved first; a file whose header says nothing counts 0: its
        decoding fails at once)."""
        header = image_header(self.uploads.save("image"))
        pixels = header[0] if header else 0
        eight_bit = header is not None and header[1] in _BYTE_MODES and not self._guided
        needed = pixels * (BYTES_PER_PIXEL_8BIT if eight_bit else BYTES_PER_PIXEL_FLOAT)
        for name, per_pixel in (
            ("reference", BYTES_PER_PIXEL_FLOAT),
            ("scribbles", BYTES_PER_PIXEL_SCRIBBLES),
        ):
            if name in self.uploads:
                extra = image_header(self.uploads.save(name))
                needed += (extra[0] if extra else 0) * per_pixel
        if "scribbles" in self.uploads:
            needed += pixels * BYTES_PER_PIXEL_SCRIBBLES  # scaled to the photo's size
        return needed

    def _colorizer(self) -> Colorizer:
        return self.state.colorizer(self.options.model, self.options.size)

    @property
    def _guided(self) -> bool:
        """Whether the request asks for any guidance (hints, saturation, reference, scribbles)."""
        options = self.options
        wanted = options.hints or options.saturation is not None
        return bool(wanted or "reference" in self.uploads or "scribbles" in self.uploads)

    def _guidance(self, size: tuple[int, int]):
        """The request's guidance for a photo of ``size`` (width, height), or None."""
        hints, saturation = self.options.hints, self.options.saturation
        reference = "reference" in self.uploads
        scribbles = "scribbles" in self.uploads
        if not self._guided:
            return None
        points = parse_hints(hints) if hints else []
        return Guidance(
            points=tuple(points),
            saturation=saturation,
            scribbles=self.uploads.scribbles(size) if scribbles else None,
            reference=as_array(self.uploads.read("reference")) if reference else None,
        )

    def _public(self, exc: Exception) -> Exception:
        if isinstance(exc, ApiError | QueueFull | Cancelled):
            return exc
        if isinstance(exc, OverBudget):
            return ApiError(413, exc.explain("the photo", advice="; send a smaller photo"))
        if isinstance(exc, ColorizerError | OSError | ValueError):
            message = scrub_paths(self.uploads.describe(str(exc) or type(exc).__name__))
        else:
            message = public_message(exc)
        if isinstance(exc, UnknownModel):
            return ApiError(400, message)
        if isinstance(exc, WeightsError):
            return ApiError(
                409, weights_message(exc, self.options.model or self.state.pool.default)
            )
        if isinstance(exc, ColorizerError):
            return ApiError(400, message)
        log.error("colorizing failed", exc_info=exc)
        return ApiError(500, message)


_BYTE_MODES = ("L", "LA", "RGB", "RGBA")  # what imageio.read_pixels_u8 keeps as bytes


def suggest_in_bytes(colorizer: Colorizer, photo: Pixels8, x: float, y: float, k: int):
    """``suggest_colors`` of a large 8-bit photo, shrunk in bytes to about ``SUGGEST_PIXELS``
    first (the network sees at most max_network_size pixels a side anyway); each colour's hex
    takes the lightness of the photo itself at (x, y)."""
    from colorizer import color, planes
    from colorizer.guidance.hints import PointHint, check_inside

    data = photo.data
    height, width = data.shape[:2]
    check_inside([PointHint(x, y, (0.0, 0.0))], width, height, source="point")
    factor = max(1, math.ceil(math.sqrt(height * width / SUGGEST_PIXELS)))
    small = np.asarray(Image.fromarray(data).reduce(factor)) if factor > 1 else data
    small_h, small_w = small.shape[:2]
    sx = min(max((x + 0.5) * small_w / width - 0.5, 0.0), small_w - 1.0)
    sy = min(max((y + 0.5) * small_h / height - 0.5, 0.0), small_h - 1.0)
    found = colorizer.suggest_colors(small, sx, sy, k=k)
    row = min(max(round(y), 0), height - 1)
    col = min(max(round(x), 0), width - 1)
    point = np.ascontiguousarray(data[row : row + 1, col : col + 1])
    light = float(planes.lightness_of_bytes(point)[0, 0])
    return [{**s, "hex": color.lab_to_hex(light, *s["ab"])} for s in found]


def choose_format(accept: str | None) -> str:
    """PNG unless ``Accept`` prefers JPEG; 406 when it allows neither."""
    if not accept:
        return "png"
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                with contextlib.suppress(ValueError):
                    quality = float(param[2:])
        weights[media.lower()] = quality

    def weight(media: str) -> float:
        for key in (media, "image/*", "*/*"):
            if key in weights:
                return weights[key]
        return 0.0

    png, jpeg = weight("image/png"), max(weight("image/jpeg"), weights.get("image/jpg", 0.0))
    if max(png, jpeg) <= 0:
        raise ApiError(406, "this endpoint answers image/png or image/jpeg; Accept allows neither")
    return "jpeg" if jpeg > png else "png"
