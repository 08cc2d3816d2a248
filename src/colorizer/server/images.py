"""The photo routes: ``POST /v1/colorize`` and ``POST /v1/suggest``.

Each request's work (save, check, colorize, encode) runs on the image pool (``image_workers``
threads, at most ``max_pending_images`` running or waiting, 429 beyond), within the
per-request time limit (504 past it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import Response

from colorizer.errors import ColorizerError, WeightsError
from colorizer.guidance import Guidance, parse_hints
from colorizer.imageio import Pixels8
from colorizer.pipeline import Colorizer
from colorizer.server.errors import ApiError, weights_message
from colorizer.server.jobs import QueueFull, public_message, scrub_paths
from colorizer.server.models import UnknownModel
from colorizer.server.schemas import ERRORS, ErrorBody, ImageOptions, Suggestion, Suggestions
from colorizer.server.schemas import read_options as _read_options
from colorizer.server.state import ServerState
from colorizer.server.uploads import Uploads, as_array, encode

log = logging.getLogger(__name__)


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
            },
            **ERRORS,
            406: {"model": ErrorBody, "description": "`Accept` allows neither PNG nor JPEG"},
            503: {"model": ErrorBody, "description": "the model's weights are not on the server"},
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
        body = await run_image(state, work.colorize)
        media = "image/jpeg" if fmt == "jpeg" else "image/png"
        return Response(body, media_type=media, headers={"Cache-Control": "no-store"})

    @app.post(
        "/v1/suggest",
        tags=["images"],
        response_model=Suggestions,
        responses={**ERRORS, 501: {"model": ErrorBody, "description": "model offers none"}},
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
        found = await run_image(state, work.suggest, x, y, k)
        return Suggestions(x=x, y=y, suggestions=[Suggestion(**s) for s in found])


async def run_image(state: ServerState, fn, *args):
    """Run ``fn`` on the image pool: 429 when the pool is full, 504 past the time limit."""
    future = state.images.submit(fn, *args)
    timeout = state.settings.request_timeout_s
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise ApiError(
            504, f"colorizing took longer than this server's limit of {timeout:g} s"
        ) from None


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

    def colorize(self) -> bytes:
        try:
            # Unguided 8-bit photos stay in bytes (Colorizer.colorize_pixels: the same result
            # in a quarter of the memory); the rest are decoded to a float Picture.
            uploads = self.uploads
            photo = uploads.read("image") if self._guided else uploads.read_pixels("image")
            colorizer = self._colorizer()
            if isinstance(photo, Pixels8):
                rgb = colorizer.colorize_pixels(photo)
            else:
                guidance = self._guidance(photo.rgb.shape[1::-1])
                (rgb,) = colorizer.colorize_pictures([photo], guidance)
            return encode(self.state.temp, rgb, photo.alpha, self.fmt, colorizer.marked(photo))
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self.uploads.cleanup()

    def suggest(self, x: float, y: float, k: int) -> list[dict]:
        try:
            photo = self.uploads.read("image")
            colorizer = self._colorizer()
            if not hasattr(colorizer, "suggest_colors"):
                raise ApiError(501, "this installation offers no colour suggestions")
            return colorizer.suggest_colors(as_array(photo), x, y, k=k)
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self.uploads.cleanup()

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
        if isinstance(exc, ApiError | QueueFull):
            return exc
        if isinstance(exc, ColorizerError | OSError | ValueError):
            message = scrub_paths(self.uploads.describe(str(exc) or type(exc).__name__))
        else:
            message = public_message(exc)
        if isinstance(exc, UnknownModel):
            return ApiError(400, message)
        if isinstance(exc, WeightsError):
            return ApiError(
                503, weights_message(exc, self.options.model or self.state.pool.default)
            )
        if isinstance(exc, ColorizerError):
            return ApiError(400, message)
        log.error("colorizing failed", exc_info=exc)
        return ApiError(500, message)


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
