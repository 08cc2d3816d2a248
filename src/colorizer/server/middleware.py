"""ASGI middleware in front of every route: the Host header, the API key and the request-body
limits."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from colorizer.server.settings import LOOPBACK_NAMES, MB, ServerSettings, is_loopback

_MULTIPART_SLACK = 1 * MB  # form fields and part headers around the files


class AllowedHosts:
    """Refuse (400) a request whose ``Host`` names anything but this machine or a configured name.

    A keyless server trusts whoever reaches it, so a web page that re-points its own name at
    127.0.0.1 (DNS rebinding) must not pass: the browser still sends the page's name in Host.
    Enforced on a keyless server, and on a keyed one when ``allowed_hosts`` is set; ``"*"`` in
    ``allowed_hosts`` allows any.
    """

    def __init__(self, app, settings: ServerSettings) -> None:
        self.app = app
        configured = {_host_name(h) for h in settings.allowed_hosts if h.strip()}
        self.active = "*" not in configured and (not settings.api_key or bool(configured))
        bound = _host_name(settings.host)
        wildcard = bound in ("0.0.0.0", "::")
        self.allowed = configured | LOOPBACK_NAMES | ({bound} if not wildcard else set())

    async def __call__(self, scope, receive, send) -> None:
        if self.active and scope["type"] in ("http", "websocket"):
            raw = dict(scope["headers"]).get(b"host")
            if raw is not None and not self._allows(raw):
                shown = raw.decode("latin-1")[:100]
                message = (
                    f"the Host header {shown!r} is not a name of this server; to reach it under "
                    "that name, add it with --allowed-host (or COLORIZER_ALLOWED_HOSTS)"
                )
                if scope["type"] == "http":
                    await _send_error(scope, receive, send, 400, message)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)

    def _allows(self, raw: bytes) -> bool:
        try:
            name = _host_name(raw.decode("ascii"))
        except UnicodeDecodeError:
            return False
        return name in self.allowed or _is_loopback_address(name)


def _host_name(host: str) -> str:
    """``host`` as compared: lower case, without the port, brackets or a final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_loopback_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False  # a name: only the listed ones (a DNS name could point anywhere)
    return is_loopback(name)


class ApiKey:
    """With a key set, /v1/* answers 401 unless the request carries it."""

    def __init__(self, app, key: str | None) -> None:
        self.app = app
        self.key = key.encode("utf-8") if key else None

    async def __call__(self, scope, receive, send) -> None:
        if self.key and scope["type"] == "http" and scope["path"].startswith("/v1/"):
            # Compared as bytes: a key with letters beyond ASCII arrives as its UTF-8 bytes.
            headers = {k.lower(): v for k, v in scope["headers"]}
            given = headers.get(b"x-api-key", b"").strip()
            auth = headers.get(b"authorization", b"")
            if auth.lower().startswith(b"bearer "):
                given = given or auth[7:].strip()
            if not hmac.compare_digest(given, self.key):
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
        # A film may be uploaded to be colorized or to be inspected: both take the video limit
        # (the inspect route itself refuses a photo over the photo limit).
        video = scope["path"].rstrip("/").endswith(("/video", "/inspect"))
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


async def _send_error(scope, receive, send, status: int, message: str) -> None:
    await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)
