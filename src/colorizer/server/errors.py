"""Errors a client can cause, and how each becomes a JSON ``{"detail": "..."}`` answer: one
sentence, a 4xx status for anything the request did, never a stack trace or a server path."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from colorizer.errors import WeightsError
from colorizer.server.jobs import QueueFull, scrub_paths

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def add_error_handlers(app: FastAPI) -> None:
    """Every error a JSON object with one sentence; 429 with ``Retry-After``; 405 (and
    ``OPTIONS``) with ``Allow``."""
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(QueueFull, _queue_full)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def weights_message(exc: WeightsError, model: str) -> str:
    """A model whose weights this server lacks: the model's name and what to do, no paths."""
    first = scrub_paths(str(exc).splitlines()[0] if str(exc) else "")
    return (
        f"model {model!r} is not installed on this server: {first.rstrip('.')}; the server's "
        f"administrator can fetch its weights with `colorize models pull {model}`, or use "
        "another model from GET /v1/models"
    )


def _detail(request: Request, message: str, status: int, **headers: str) -> JSONResponse:
    root = getattr(getattr(request.app.state, "server", None), "temp", None)
    if root is not None:
        message = message.replace(str(root.root), "the server's temp folder")
    return JSONResponse({"detail": scrub_paths(message)}, status_code=status, headers=headers)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=exc)
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
        status_code=500,
    )


async def _queue_full(request: Request, exc: Exception) -> JSONResponse:
    return _detail(request, str(exc), 429, **{"Retry-After": "5"})


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _detail(request, exc.message, exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        message = f"{request.method} is not allowed here; this path answers {', '.join(allowed)}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return _detail(request, message, exc.status_code, **headers)


def _allowed_methods(request: Request) -> list[str]:
    methods = {"OPTIONS"}
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        field = field or "the request"
        if error.get("type") == "missing":
            problems.append(f"{field} is required")
            continue
        value = error.get("input")
        got = ""
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = repr(value)
            got = f" (got {text if len(text) <= 40 else text[:37] + '...'})"
        problems.append(f"{field}: {error.get('msg', 'invalid value')}{got}")
    return _detail(request, "; ".join(problems) or "the request is not valid", 422)
