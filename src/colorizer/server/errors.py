"""Errors a client can cause, and how each becomes a JSON ``{"detail": "..."}`` answer."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from colorizer.server.jobs import QueueFull

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def add_error_handlers(app: FastAPI) -> None:
    """Every error a JSON object with one sentence; 429 with ``Retry-After``."""
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(QueueFull, _queue_full)
    app.add_exception_handler(ApiError, _api_error)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=exc)
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
        status_code=500,
    )


async def _queue_full(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "5"})


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)
