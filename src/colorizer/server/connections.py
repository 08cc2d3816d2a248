"""Connections that hold the server without asking anything of it: uvicorn's HTTP protocol with
a deadline for a request's headers, one for each stretch of silence in its body, and a cap on
open connections.

Uvicorn waits forever for headers that never end (its keep-alive timeout starts only after a
first response) and counts ``limit_concurrency`` only once a request has arrived, so a client
could hold every file descriptor with connections that send a few bytes and stop. Here a
connection over ``max_connections`` is answered 429 at once and closed, and one that sends no
complete headers within ``header_timeout_s``, or no body bytes for ``body_timeout_s`` while
the app waits for them, is answered 408 and closed.
"""

from __future__ import annotations

import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from colorizer.server.settings import ServerSettings

_CHECK_EVERY_S = 0.25  # how often a connection checks its deadlines (at most; never a busy loop)


def uvicorn_config(app, settings: ServerSettings, **options) -> uvicorn.Config:
    """A ``uvicorn.Config`` for ``app`` with the connection limits of ``settings``."""
    protocol = type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "body_timeout_s": settings.body_timeout_s,
            "max_connections": settings.max_connections,
        },
    )
    return uvicorn.Config(app, http=protocol, **options)


def _raw_response(status: int, reason: str, detail: str, extra: str = "") -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


class GuardedH11Protocol(H11Protocol):
    """Uvicorn's h11 protocol with header and body read deadlines and a connection cap."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0
    max_connections = 256

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._cycle_started = self._last_read = self.loop.time()
        self._watch = None
        if len(self.connections) > self.max_connections:
            detail = (
                f"the server has too many open connections (limit {self.max_connections}); "
                "try again shortly"
            )
            transport.write(_raw_response(429, "Too Many Requests", detail, "retry-after: 5\r\n"))
            transport.close()
            return
        self._watch = self.loop.call_later(_CHECK_EVERY_S, self._check_deadlines)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._cycle_started = self.loop.time()  # the next request's headers are due from now
        super().on_response_complete()

    def _check_deadlines(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        now, state = self.loop.time(), self.conn.their_state
        if state is h11.IDLE and now - self._cycle_started > self.header_timeout_s:
            self._drop(f"the request headers did not arrive within {self.header_timeout_s:g} s")
            return
        waiting_for_body = state is h11.SEND_BODY and not self.flow.read_paused
        if waiting_for_body and now - self._last_read > self.body_timeout_s:
            self._drop(f"the request body stalled for {self.body_timeout_s:g} s")
            return
        self._watch = self.loop.call_later(_CHECK_EVERY_S, self._check_deadlines)

    def _drop(self, detail: str) -> None:
        """Answer 408 unless a response has begun, and close; the app sees a disconnect."""
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_raw_response(408, "Request Timeout", detail))
        self.transport.close()
