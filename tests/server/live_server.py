"""Run the app with uvicorn in a thread on 127.0.0.1 (a free port) for the server tests."""

from __future__ import annotations

import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn", reason="the app extra is not installed")

START_LIMIT_S = 30.0


class LiveServer:
    """``with LiveServer(app) as server: httpx.get(server.url + "/healthz")``."""

    def __init__(self, app) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # As `colorize serve` runs it: with the settings' connection limits and deadlines.
        from colorizer.server.connections import uvicorn_config

        settings = app.state.server.settings
        config = uvicorn_config(app, settings, log_level="warning", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def state(self):
        return self.app.state.server

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + START_LIMIT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def wait_for(predicate, what: str, limit_s: float = 60.0, step_s: float = 0.05):
    """Poll until ``predicate()`` is truthy (a guard against hangs, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(step_s)
