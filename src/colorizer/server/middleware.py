"""ASGI middleware in front of every route: the API key and the request-body limits."""

from __future__ import annotations

import hmac

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from colorizer.server.settings import MB, ServerSettings

_MULTIPART_SLACK = 1 * MB  # form fields and part headers around the files


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
