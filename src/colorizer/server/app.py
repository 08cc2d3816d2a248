"""The web app: a REST API and a browser UI over one shared ``Colorizer`` per model.

``create_app(settings)`` builds a FastAPI application. Images are colorized on a small thread
pool (``image_workers``) with a bounded number of requests waiting (429 beyond it) and a per
request timeout (504); videos become jobs on a bounded queue (429 when full) whose results are
downloaded once and deleted, or expire. Uploads are written under a private temp area with
random names; a client's file name is never used for anything.

The parts: ``schemas`` (what the API exchanges, the options checked), ``uploads`` (files in
the temp area, read and encoded by ``colorizer.imageio``), ``images``, ``videos`` and
``provenance`` (the routes), ``middleware`` (allowed hosts, API key, body limits),
``connections`` (slow and surplus connections), ``errors`` (every error as JSON), ``state`` (what
the routes share), ``jobs`` and ``models`` (the work queues and the model pool).
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from colorizer.pipeline import Colorizer
from colorizer.server.errors import add_error_handlers
from colorizer.server.images import add_image_routes
from colorizer.server.jobs import ImageWorkers, Janitor, JobQueue, MemoryBudget, TempArea
from colorizer.server.middleware import AllowedHosts, ApiKey, BodyLimit
from colorizer.server.models import ModelPool
from colorizer.server.provenance import add_provenance_routes
from colorizer.server.schemas import ERRORS, Example, ExampleList, Health, ModelInfo, ModelList
from colorizer.server.settings import ServerSettings
from colorizer.server.state import ServerState
from colorizer.server.videos import add_video_routes, video_module
from colorizer.version import __version__

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


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
        memory=MemoryBudget(settings.memory_budget_bytes),
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
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(ApiKey, key=settings.api_key)
    app.add_middleware(AllowedHosts, settings=settings)  # added last: runs first
    add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _service_routes(app, state)
    _example_routes(app, state)
    add_image_routes(app, state)
    add_video_routes(app, state)
    add_provenance_routes(app, state)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, made true of the multipart forms (schemathesis ST202): an optional
    form field is absent or a value, never null (multipart has no null, so "null" was refused
    with a 422), and an uploaded file has at least one byte."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for name, body in schema["components"]["schemas"].items():
            if name.startswith("Body_"):
                body["properties"] = {
                    key: _form_field(field) for key, field in body["properties"].items()
                }
        app.openapi_schema = schema
    return app.openapi_schema


def _form_field(field: dict) -> dict:
    options = [o for o in field.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:  # "X or null" -> X
        field = {**{k: v for k, v in field.items() if k != "anyOf"}, **options[0]}
    if "contentMediaType" in field:  # an empty upload is refused (400): say so
        field = {**field, "minLength": 1}
    return field


def _preload(pool: ModelPool) -> None:
    try:
        pool.get()
    except Exception as exc:  # reported again, readably, to the first request that needs it
        log.warning("could not load the default model %s: %s", pool.default, exc)


def _service_routes(app: FastAPI, state: ServerState) -> None:
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
            hints=True,
            video=video_module() is not None,
        )


MAX_EXAMPLES = 12


def example_photos(folder: Path | None) -> dict[str, Path]:
    """The photos offered to try, by file name: only these names are ever served."""
    from colorizer.imageio import PHOTO_SUFFIXES

    if folder is None or not folder.is_dir():
        return {}
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    return {p.name: p for p in photos[:MAX_EXAMPLES] if p.is_file()}


def _example_routes(app: FastAPI, state: ServerState) -> None:
    examples = example_photos(state.settings.examples)

    @app.get("/v1/examples", response_model=ExampleList, tags=["service"])
    async def list_examples() -> ExampleList:
        """Photos this server offers to try (none unless started with --examples)."""
        return ExampleList(
            examples=[Example(name=n, url=f"/v1/examples/{quote(n)}") for n in examples]
        )

    @app.get(
        "/v1/examples/{name}",
        tags=["service"],
        responses={404: ERRORS[404], 422: ERRORS[422]},
        response_class=FileResponse,
    )
    async def example(name: str) -> FileResponse:
        """One of the example photos, by the name the list gives."""
        path = examples.get(name)
        if path is None:
            raise HTTPException(404, f"no example photo {name!r}")
        return FileResponse(path)


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
