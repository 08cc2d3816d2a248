"""Server settings: where it listens, which model it serves, the limits that protect it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from colorizer.errors import ColorizerError

MB = 1 << 20
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
MIN_PUBLIC_KEY_LENGTH = 16  # characters; a key that other machines can guess at must be long


@dataclass
class ServerSettings:
    """Everything ``create_app`` needs; the defaults suit one person on their own machine."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | None = None  # default model (None: the shipped colornet-v2)
    device: str = "auto"
    # Requests to /v1/* must carry this key (X-API-Key or Authorization: Bearer) when set.
    api_key: str | None = None
    # Host names (beyond localhost and the bound address) that requests may carry in Host:
    # a keyless server refuses the rest, so a web page cannot reach it by DNS rebinding.
    allowed_hosts: tuple[str, ...] = ()
    max_upload_bytes: int = 25 * MB  # one image upload (the reference and scribbles as well)
    max_video_bytes: int = 500 * MB
    max_pixels: int = 50_000_000  # decoded pixels of an uploaded image
    max_video_seconds: float = 600.0
    max_network_size: int = 1024  # the largest --size a request may ask for
    max_hints: int = 256  # point hints per photo request (each costs time); beyond it: 400
    image_workers: int = 2  # images colorized at once (threads sharing the loaded models)
    max_pending_images: int = 16  # images running or waiting; beyond it: 429
    video_workers: int = 1
    max_queued_jobs: int = 4  # video jobs waiting (not counting running ones); beyond it: 429
    request_timeout_s: float = 120.0  # an image request answers 504 after this
    # Working memory of the image requests running at once (decoded pixels, the float planes):
    # a request waits until its estimate fits, and one that alone is over it answers 413.
    memory_budget_bytes: int = 1024 * MB
    header_timeout_s: float = 10.0  # a connection must send a request's headers within this
    body_timeout_s: float = 30.0  # a request body that sends nothing for this long is dropped
    max_connections: int = 256  # open connections; more are answered 429 and closed
    result_ttl_s: float = 3600.0  # job files kept this long after the job ends
    janitor_interval_s: float = 30.0
    temp_dir: Path | None = None  # the temp area's parent (None: the system temp directory)
    preload: bool = True  # load the default model when the server starts, in the background
    examples: Path | None = None  # a folder of photos the app offers to try (first 12 by name)

    def check(self) -> None:
        """Refuse settings that cannot work or that would expose the server without a key."""
        positive = {
            "max_upload_bytes": self.max_upload_bytes,
            "max_video_bytes": self.max_video_bytes,
            "max_pixels": self.max_pixels,
            "image_workers": self.image_workers,
            "max_pending_images": self.max_pending_images,
            "video_workers": self.video_workers,
            "request_timeout_s": self.request_timeout_s,
            "max_network_size": self.max_network_size,
            "max_hints": self.max_hints,
            "memory_budget_bytes": self.memory_budget_bytes,
            "header_timeout_s": self.header_timeout_s,
            "body_timeout_s": self.body_timeout_s,
            "max_connections": self.max_connections,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ColorizerError(f"server setting {name} must be positive, got {value!r}")
        if self.max_queued_jobs < 0:
            raise ColorizerError("server setting max_queued_jobs must be 0 or more")
        if self.api_key is not None and not self.api_key.strip():
            raise ColorizerError("the API key is blank: give a key of letters and digits")
        if self.api_key is not None and self.api_key != self.api_key.strip():
            raise ColorizerError("the API key starts or ends with whitespace: remove it")
        if not is_loopback(self.host) and not self.api_key:
            raise ColorizerError(
                f"refusing to listen on {self.host}, which other machines can reach, without an "
                "API key: set COLORIZER_API_KEY (or pass --api-key), or listen on 127.0.0.1"
            )
        if not is_loopback(self.host) and len(self.api_key or "") < MIN_PUBLIC_KEY_LENGTH:
            length = len(self.api_key or "")
            raise ColorizerError(
                f"the API key is too short to listen on {self.host}: it has {length} characters, "
                f"at least {MIN_PUBLIC_KEY_LENGTH} are needed (make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
