"""The web app: a REST API and a browser UI over one shared ``Colorizer`` per model.

``create_app(settings)`` builds a FastAPI application. Images are colorized on a small thread
pool (``image_workers``) with a bounded number of requests waiting (429 beyond it) and a per
request timeout (504); videos become jobs on a bounded queue (429 when full) whose results are
downloaded once and deleted, or expire. Uploads are written under a private temp area with
random names; a client's file name is never used for anything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import inspect
import io
import json
import logging
import math
import shutil
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field

from colorizer.errors import ColorizerError, WeightsError
from colorizer.pipeline import Colorizer
from colorizer.server.jobs import (
    ImageWorkers,
    Janitor,
    Job,
    JobQueue,
    QueueFull,
    TempArea,
    public_message,
)
from colorizer.server.models import ModelPool, UnknownModel
from colorizer.server.settings import MB, ServerSettings
from colorizer.version import __version__

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_COPY_CHUNK = 1 << 20
_MULTIPART_SLACK = 1 * MB  # form fields and part headers around the files
_MIN_SIZE, _PNG_LEVEL, _JPEG_QUALITY = 8, 3, 92
_ORIENTATION = 0x0112  # the EXIF tag


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, in words")


class ModelInfo(BaseModel):
    name: str
    description: str
    arch: str
    input_size: int | None
    status: str = Field(description="packaged, cached, not downloaded, corrupt or loaded")
    available: bool = Field(description="can be used now without a download")
    loaded: bool
    default: bool


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]
    hints: bool = Field(description="point hints, scribbles and reference photos are available")
    video: bool = Field(description="video jobs are available")


class JobStatus(BaseModel):
    id: str
    status: str = Field(
        description="queued, running, done, failed, cancelled, downloaded or expired"
    )
    done: int = Field(description="frames colorized so far")
    total: int | None = Field(description="frames in all, when known")
    fraction: float | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None = Field(description="when a finished result is deleted")
    result_url: str | None = Field(description="download link once done (one download)")


class Suggestion(BaseModel):
    hex: str
    ab: list[float]
    probability: float


class Suggestions(BaseModel):
    x: float
    y: float
    suggestions: list[Suggestion]


class Health(BaseModel):
    status: str
    version: str
    models_loaded: list[str]
    images_pending: int
    jobs_queued: int
    jobs_running: int


@dataclass
class ServerState:
    settings: ServerSettings
    pool: ModelPool
    temp: TempArea
    images: ImageWorkers
    jobs: JobQueue
    janitor: Janitor

    def close(self) -> None:
        self.janitor.stop()
        self.jobs.close()
        self.images.shutdown()
        self.temp.remove()


ERRORS = {
    400: {"model": ErrorBody, "description": "the upload or an option cannot be used"},
    401: {"model": ErrorBody, "description": "an API key is required and was wrong or missing"},
    413: {"model": ErrorBody, "description": "over an upload, pixel or duration limit"},
    429: {"model": ErrorBody, "description": "the server's queue is full; retry later"},
}


def create_app(
    settings: ServerSettings | None = None,
    *,
    colorizers: dict[str, Colorizer] | None = None,
) -> FastAPI:
    """The application; ``colorizers`` adds already loaded models (by name) to the registry's."""
    settings = settings or ServerSettings()
    settings.check()
    temp = TempArea(settings.temp_dir)
    jobs = JobQueue(settings.video_workers, settings.max_queued_jobs, settings.result_ttl_s)
    state = ServerState(
        settings=settings,
        pool=ModelPool(
            settings.model,
            device=settings.device,
            max_pixels=settings.max_pixels,
            preloaded=colorizers,
        ),
        temp=temp,
        images=ImageWorkers(settings.image_workers, settings.max_pending_images),
        jobs=jobs,
        janitor=Janitor(
            jobs, temp, settings.janitor_interval_s, upload_age_s=4 * settings.request_timeout_s
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state.janitor.start()
        if settings.preload:  # the first photo need not wait for the model
            threading.Thread(target=_preload, args=(state.pool,), daemon=True).start()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="colorizer",
        version=__version__,
        description="Colorize black-and-white photos and films. Errors are JSON "
        '`{"detail": "..."}`; with an API key set, send it as `X-API-Key` or '
        "`Authorization: Bearer KEY`.",
        lifespan=lifespan,
    )
    app.state.server = state
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(ApiKey, key=settings.api_key)
    app.add_exception_handler(Exception, _internal_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _routes(app, state)
    return app


def _preload(pool: ModelPool) -> None:
    try:
        pool.get()
    except Exception as exc:  # reported again, readably, to the first request that needs it
        log.warning("could not load the default model %s: %s", pool.default, exc)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=exc)
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
        status_code=500,
    )


# --- middleware ----------------------------------------------------------------------------


class ApiKey:
    """With a key set, /v1/* answers 401 unless the request carries it."""

    def __init__(self, app, key: str | None) -> None:
        self.app, self.key = app, key

    async def __call__(self, scope, receive, send) -> None:
        if self.key and scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = _headers(scope)
            given = headers.get("x-api-key", "")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = given or auth[7:].strip()
            if not hmac.compare_digest(given.encode(), self.key.encode()):
                response = JSONResponse(
                    {"detail": "this server needs an API key: send it as X-API-Key"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over the upload limits: by Content-Length, else while reading."""

    def __init__(self, app, settings: ServerSettings) -> None:
        self.app = app
        # An image request may carry three files: the photo, a reference and scribbles.
        self.image_limit = 3 * settings.max_upload_bytes + _MULTIPART_SLACK
        self.video_limit = settings.max_video_bytes + _MULTIPART_SLACK
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        video = scope["path"].rstrip("/").endswith("/video")
        limit = self.video_limit if video else self.image_limit
        what = "video" if video else "upload"
        nominal = self.settings.max_video_bytes if video else self.settings.max_upload_bytes
        message = f"the {what} is too large: the limit is {nominal / MB:g} MB"
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _send_error(scope, receive, send, 413, message)
            return
        received = 0

        async def counted():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    raise HTTPException(413, message)
            return event

        await self.app(scope, counted, send)


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _send_error(scope, receive, send, status: int, message: str) -> None:
    await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)


# --- routes --------------------------------------------------------------------------------


def _routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> Health:
        """Liveness and load: always answers, needs no API key."""
        counts = state.jobs.counts()
        return Health(
            status="ok",
            version=__version__,
            models_loaded=[n for n in state.pool.names() if state.pool.is_loaded(n)],
            images_pending=state.images.pending,
            jobs_queued=counts["queued"],
            jobs_running=counts["running"],
        )

    @app.get("/v1/models", response_model=ModelList, tags=["models"], responses={401: ERRORS[401]})
    async def models() -> ModelList:
        """The models this server can run, which one is the default, and what is on offer."""
        return ModelList(
            default=state.pool.default,
            models=_model_infos(state.pool),
            hints=_guidance_module() is not None,
            video=_video_module() is not None,
        )

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
        fmt = _choose_format(request.headers.get("accept"))
        merged = _merge_options(options, model=model, size=size, hints=hints, saturation=saturation)
        files = {"image": image, "reference": reference, "scribbles": scribbles}
        if "_reference" in merged:
            files["reference"] = files["reference"] or merged["_reference"]
        merged.pop("_reference", None)
        work = _ImageWork(state, files, merged, fmt)
        body = await _run_image(state, work.colorize)
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
        work = _ImageWork(state, {"image": image}, {"model": model, "size": size}, "png")
        found = await _run_image(state, work.suggest, x, y, k)
        return Suggestions(x=x, y=y, suggestions=[Suggestion(**s) for s in found])

    @app.post(
        "/v1/colorize/video",
        tags=["video"],
        status_code=202,
        response_model=JobStatus,
        responses={**ERRORS, 501: {"model": ErrorBody, "description": "no video support"}},
    )
    async def colorize_video(
        video: Annotated[UploadFile, File(description="the film: MP4, MKV, MOV, AVI, WebM ...")],
        model: Annotated[str | None, Form()] = None,
        size: Annotated[int | None, Form()] = None,
        consistency: Annotated[
            float | None, Form(ge=0, le=1, description="temporal consistency strength, 0 = off")
        ] = None,
    ) -> JSONResponse:
        """Queue a film; follow it at GET /v1/jobs/{id} and download it from its result_url."""
        if _video_module() is None:
            raise HTTPException(501, "this installation cannot colorize videos (PyAV missing)")
        state.jobs.check_room()
        job = await asyncio.to_thread(_prepare_video_job, state, video, model, size, consistency)
        try:
            state.jobs.submit(job)
        except QueueFull:
            job.remove_files()
            raise
        return JSONResponse(
            _job_status(job, state.jobs.result_ttl_s).model_dump(),
            status_code=202,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @app.get(
        "/v1/jobs/{job_id}",
        tags=["video"],
        response_model=JobStatus,
        responses={401: ERRORS[401], 404: {"model": ErrorBody}},
    )
    async def job_status(job_id: str) -> JobStatus:
        """A video job's state and progress."""
        return _job_status(_find_job(state, job_id), state.jobs.result_ttl_s)

    @app.get(
        "/v1/jobs/{job_id}/result",
        tags=["video"],
        response_class=FileResponse,
        responses={
            200: {"content": {"video/mp4": {}}, "description": "the colorized film"},
            401: ERRORS[401],
            404: {"model": ErrorBody},
            409: {"model": ErrorBody, "description": "not finished, or failed"},
            410: {"model": ErrorBody, "description": "already downloaded, cancelled or expired"},
        },
    )
    async def job_result(job_id: str) -> Response:
        """Download the result once; its files are deleted after a complete download."""
        job = _find_job(state, job_id)
        if job.status in ("queued", "running"):
            raise HTTPException(409, f"job {job.id} is {job.status}; the result is not ready")
        if job.status == "failed":
            raise HTTPException(409, f"job {job.id} failed: {job.error}")
        if job.status != "done":
            raise HTTPException(410, f"job {job.id} is {job.status}; its result is gone")
        job.downloading += 1
        return _OneTimeFile(
            job.output,
            media_type="video/mp4",
            filename="colorized.mp4",
            on_sent=lambda: state.jobs.downloaded(job),
            on_abort=lambda: setattr(job, "downloading", job.downloading - 1),
        )

    @app.delete(
        "/v1/jobs/{job_id}",
        tags=["video"],
        response_model=JobStatus,
        responses={401: ERRORS[401], 404: {"model": ErrorBody}},
    )
    async def cancel_job(job_id: str) -> JobStatus:
        """Cancel a job (queued or running) or delete its result now."""
        job = _find_job(state, job_id)
        state.jobs.cancel(job)
        return _job_status(job, state.jobs.result_ttl_s)

    @app.exception_handler(QueueFull)
    async def queue_full(_request: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "5"})

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)


# --- images --------------------------------------------------------------------------------


async def _run_image(state: ServerState, fn, *args):
    """Run ``fn`` on the image pool: 429 when the pool is full, 504 past the time limit."""
    future = state.images.submit(fn, *args)
    timeout = state.settings.request_timeout_s
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise ApiError(
            504, f"colorizing took longer than this server's limit of {timeout:g} s"
        ) from None


class _ImageWork:
    """One image request's work, run on a pool thread: save, check, colorize, encode."""

    def __init__(self, state: ServerState, files: dict, options: dict, fmt: str) -> None:
        self.state, self.settings = state, state.settings
        self.files = {name: f for name, f in files.items() if f is not None}
        self.options, self.fmt = options, fmt
        self.paths: dict[str, Path] = {}
        self.sizes: dict[str, tuple[int, int] | None] = {}  # upright width x height

    def colorize(self) -> bytes:
        try:
            photo = self._save("image")
            guidance = self._guidance()
            colorizer = self._colorizer()
            if guidance is None:
                result = colorizer.colorize(photo)
            else:
                result = colorizer.colorize(photo, guidance=guidance)
            return _encode(result, self.fmt)
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self._cleanup()

    def suggest(self, x: float, y: float, k: int) -> list[dict]:
        try:
            photo = self._save("image")
            colorizer = self._colorizer()
            if not hasattr(colorizer, "suggest_colors"):
                raise ApiError(501, "this installation offers no colour suggestions")
            return colorizer.suggest_colors(photo, x, y, k=k)
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self._cleanup()

    def _colorizer(self) -> Colorizer:
        size = self.options.get("size")
        if size is not None and not _MIN_SIZE <= size <= self.settings.max_network_size:
            raise ApiError(
                400, f"size {size} is out of range: {_MIN_SIZE}..{self.settings.max_network_size}"
            )
        return self.state.pool.get(self.options.get("model"), size)

    def _save(self, name: str) -> Path:
        """Copy an uploaded part into the temp area under a random name; check its limits."""
        upload = self.files[name]
        limit = self.settings.max_upload_bytes
        path = self.state.temp.upload_path()
        self.paths[name] = path
        if isinstance(upload, bytes):
            if len(upload) > limit:
                raise ApiError(413, f"the {name} is too large: the limit is {limit / MB:g} MB")
            path.write_bytes(upload)
        else:
            _copy_limited(upload.file, path, limit, name)
        if path.stat().st_size == 0:
            raise ApiError(400, f"the {name} upload is empty (0 bytes)")
        self.sizes[name] = _check_pixels(path, self.settings.max_pixels, name)
        return path

    def _guidance(self):
        hints = self.options.get("hints")
        saturation = self.options.get("saturation")
        reference = "reference" in self.files
        scribbles = "scribbles" in self.files
        if not (hints or reference or scribbles or saturation is not None):
            return None
        guidance = _guidance_module()
        if guidance is None:
            raise ApiError(400, "this installation has no colour hints, scribbles or references")
        points = guidance.parse_hints(hints) if hints else []
        return guidance.Guidance(
            points=tuple(points),
            saturation=saturation,
            scribbles=self._scribbles() if scribbles else None,
            reference=self._save("reference") if reference else None,
        )

    def _scribbles(self) -> Image.Image:
        """The painted strokes (RGBA), scaled to the photo's size: the UI paints on a canvas
        of at most 2048 pixels a side."""
        path = self._save("scribbles")
        try:
            with Image.open(path) as im:
                strokes = im.convert("RGBA")
        except Exception as exc:
            raise ApiError(400, f"the scribbles are not a readable image ({exc})") from None
        size = self.sizes.get("image")
        if size is not None and strokes.size != size:
            strokes = strokes.resize(size, Image.Resampling.NEAREST)
        return strokes

    def _public(self, exc: Exception) -> Exception:
        if isinstance(exc, ApiError | QueueFull):
            return exc
        message = _describe_paths(public_message(exc), self.paths)
        if isinstance(exc, UnknownModel):
            return ApiError(400, message)
        if isinstance(exc, WeightsError):
            return ApiError(503, message)
        if isinstance(exc, ColorizerError):
            return ApiError(400, message)
        log.error("colorizing failed", exc_info=exc)
        return ApiError(500, message)

    def _cleanup(self) -> None:
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.unlink()


def _describe_paths(message: str, paths: dict[str, Path]) -> str:
    for name, path in paths.items():
        message = message.replace(f"image file '{path}'", f"the uploaded {name}")
        message = message.replace(str(path), f"the uploaded {name}")
    return message


def _copy_limited(source, path: Path, limit: int, name: str) -> None:
    source.seek(0)
    copied = 0
    with path.open("wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise ApiError(413, f"the {name} is too large: the limit is {limit / MB:g} MB")
            out.write(chunk)


def _check_pixels(path: Path, limit: int, name: str) -> tuple[int, int] | None:
    """Refuse huge images from their header, before anything decodes them; the upright size."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            turned = im.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
    except Image.DecompressionBombError:
        raise ApiError(413, f"the {name} has far too many pixels (limit {limit:,})") from None
    except Exception:
        return None  # not something Pillow knows: the reader gives the precise message
    if width * height > limit:
        raise ApiError(
            413,
            f"the {name} has {width * height:,} pixels ({width} x {height}), over this "
            f"server's limit of {limit:,}",
        )
    return (height, width) if turned else (width, height)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=_JPEG_QUALITY)
    else:
        image.save(buffer, "PNG", compress_level=_PNG_LEVEL)
    return buffer.getvalue()


def _choose_format(accept: str | None) -> str:
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


def _merge_options(options: str | None, **fields) -> dict[str, Any]:
    """Form fields win over the same keys in the ``options`` JSON object."""
    merged: dict[str, Any] = {}
    if options:
        try:
            parsed = json.loads(options)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"options is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "options must be a JSON object")
        unknown = set(parsed) - {"model", "size", "hints", "saturation", "reference"}
        if unknown:
            raise ApiError(400, f"options: unknown keys {sorted(unknown)}")
        merged.update(parsed)
    merged.update({k: v for k, v in fields.items() if v is not None})
    if isinstance(merged.get("hints"), list | dict):
        merged["hints"] = json.dumps(merged["hints"])
    if merged.get("size") is not None and not isinstance(merged["size"], int):
        raise ApiError(400, f"size must be a whole number, got {merged['size']!r}")
    reference = merged.pop("reference", None)
    if reference is not None:
        merged["_reference"] = _data_url(reference)
    return merged


def _data_url(value) -> bytes:
    if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
        raise ApiError(400, "options.reference must be a data: URL of an image (base64)")
    header, _, payload = value.partition(",")
    if not header.endswith(";base64"):
        raise ApiError(400, "options.reference must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "options.reference is not valid base64") from None


def _guidance_module():
    try:
        import colorizer.guidance as guidance

        guidance.Guidance  # noqa: B018 - present only once issue 4 has landed
        guidance.parse_hints  # noqa: B018
    except (ImportError, AttributeError):
        return None
    return guidance


def _video_module():
    try:
        import colorizer.video as video
    except ImportError:
        return None
    return video


def _model_infos(pool: ModelPool) -> list[ModelInfo]:
    from colorizer.weights import model_spec, model_table

    rows = {row["name"]: row for row in model_table()}
    infos = []
    for name in pool.names():
        loaded = pool.is_loaded(name)
        row = rows.get(name)
        if row is None:
            colorizer = pool.get(name)
            infos.append(
                ModelInfo(
                    name=name,
                    description=f"{colorizer.arch} loaded by the server",
                    arch=colorizer.arch,
                    input_size=colorizer.size,
                    status="loaded",
                    available=True,
                    loaded=True,
                    default=name == pool.default,
                )
            )
            continue
        infos.append(
            ModelInfo(
                name=name,
                description=row["description"],
                arch=row["arch"],
                input_size=model_spec(name).input_size,
                status=row["status"],
                available=loaded or row["status"] in ("packaged", "cached"),
                loaded=loaded,
                default=name == pool.default,
            )
        )
    return infos


# --- video ---------------------------------------------------------------------------------


def _prepare_video_job(
    state: ServerState, upload: UploadFile, model: str | None, size: int | None, consistency
) -> Job:
    """Save the upload into a new job folder, check it is a video within the limits."""
    settings = state.settings
    job_id = state.jobs.new_id()
    folder = state.temp.job_dir(job_id)
    source, output = folder / "input", folder / "colorized.mp4"
    try:
        _copy_limited(upload.file, source, settings.max_video_bytes, "video")
        if source.stat().st_size == 0:
            raise ApiError(400, "the video upload is empty (0 bytes)")
        from colorizer.video.source import probe

        try:
            info = probe(source)
        except ColorizerError as exc:
            message = public_message(exc, source).replace("<upload>", "the video")
            raise ApiError(400, message) from None
        seconds = info.duration_s
        if not math.isfinite(seconds) and info.frame_rate:
            seconds = info.frame_count / float(info.frame_rate)
        if math.isfinite(seconds) and seconds > settings.max_video_seconds:
            raise ApiError(
                413,
                f"the video lasts {seconds:.0f} s, over this server's limit of "
                f"{settings.max_video_seconds:g} s",
            )
        if info.width * info.height > settings.max_pixels:
            raise ApiError(413, f"the video frames ({info.width} x {info.height}) are too large")
        colorizer = _ImageWork(state, {}, {"model": model, "size": size}, "png")._colorizer()
    except ApiError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except ColorizerError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        status = 503 if isinstance(exc, WeightsError) else 400
        raise ApiError(status, public_message(exc, source, folder)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def run(job: Job) -> None:
        from colorizer.video import VideoOptions, colorize_video

        options = VideoOptions() if consistency is None else VideoOptions(consistency=consistency)
        kwargs = _progress_argument(colorize_video, job)
        job.total = info.frame_count or None
        colorize_video(colorizer, job.input, job.output, options, **kwargs)

    return Job(id=job_id, folder=folder, input=source, output=output, run=run)


def _progress_argument(colorize_video, job: Job) -> dict:
    """Pass the job's progress callback under whatever name colorize_video takes it."""
    parameters = inspect.signature(colorize_video).parameters
    for name in ("on_progress", "progress_callback", "callback"):
        if name in parameters:
            return {name: job.progress}
    return {}


def _find_job(state: ServerState, job_id: str) -> Job:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (unknown, or expired long ago)")
    return job


def _job_status(job: Job, ttl_s: float) -> JobStatus:
    fraction = None
    if job.status in ("done", "downloaded"):
        fraction = 1.0
    elif job.total:
        fraction = min(1.0, job.done / job.total)
    expires = None
    if job.status == "done" and job.finished_at is not None:
        expires = job.finished_at + ttl_s
    return JobStatus(
        id=job.id,
        status=job.status,
        done=job.done,
        total=job.total,
        fraction=fraction,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=expires,
        result_url=f"/v1/jobs/{job.id}/result" if job.status == "done" else None,
    )


class _OneTimeFile(FileResponse):
    """A file response that reports whether it went out in full."""

    def __init__(self, path: Path, *, on_sent, on_abort, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self._on_sent, self._on_abort = on_sent, on_abort

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except BaseException:
            self._on_abort()
            raise
        self._on_sent()
