"""``colorize app`` (the web UI, opens the browser) and ``colorize serve`` (the same, headless)."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import socket
import sys
import threading
import time
from pathlib import Path

from colorizer.errors import ColorizerError
from colorizer.options import add_device_option, add_model_options
from colorizer.server.settings import MB, ServerSettings, is_loopback

APP_PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"}
INSTALL_HINT = 'pip install "colorizer[app]"   (fastapi, uvicorn and python-multipart)'


def add_server_parsers(commands) -> None:
    """Register ``app`` and ``serve`` on the ``colorize`` sub-command parser."""
    app = commands.add_parser(
        "app",
        help="open the web app in your browser",
        description="Start the local web app (UI and REST API) and open it in the browser.",
    )
    _add_options(app)
    app.add_argument("--no-browser", action="store_true", help="do not open a browser")
    app.set_defaults(run=cmd_app, browser=True)

    serve = commands.add_parser(
        "serve",
        help="serve the REST API (and UI) headless",
        description="Serve the REST API and the web UI without opening a browser. Listening on "
        "anything but localhost needs an API key (COLORIZER_API_KEY or --api-key).",
    )
    _add_options(serve)
    serve.set_defaults(run=cmd_serve, browser=False)


def _add_options(parser: argparse.ArgumentParser) -> None:
    defaults = ServerSettings()
    parser.add_argument("--host", default=defaults.host, help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (%(default)s)")
    add_model_options(parser, model="default model (default: colornet-v2)", weights=None, size=None)
    add_device_option(parser)
    parser.add_argument(
        "--api-key",
        help="require this key on /v1/* (default: $COLORIZER_API_KEY); needed off localhost",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=defaults.max_upload_bytes / MB, help="%(default)s"
    )
    parser.add_argument(
        "--max-video-mb", type=float, default=defaults.max_video_bytes / MB, help="%(default)s"
    )
    parser.add_argument(
        "--max-pixels", type=int, default=defaults.max_pixels, help="per image (%(default)s)"
    )
    parser.add_argument(
        "--max-video-seconds", type=float, default=defaults.max_video_seconds, help="%(default)s"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.image_workers,
        help="images colorized at once (%(default)s)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=defaults.max_queued_jobs,
        help="video jobs that may wait (%(default)s); more answer 429",
    )
    parser.add_argument(
        "--examples", help="a folder of photos the app offers to try (e.g. ../shared/data/bw)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=defaults.request_timeout_s,
        help="seconds per image request (%(default)s)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may use besides localhost and the bound address (repeatable; "
        "also $COLORIZER_ALLOWED_HOSTS, comma-separated; '*' allows any)",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=float,
        default=defaults.memory_budget_bytes / MB,
        help="working memory of the image requests running at once (%(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="open connections; more are answered 429 (%(default)s)",
    )


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    from_env = os.environ.get("COLORIZER_ALLOWED_HOSTS", "").split(",")
    key = args.api_key if args.api_key is not None else os.environ.get("COLORIZER_API_KEY")
    return ServerSettings(
        host=args.host,
        port=args.port,
        model=args.model,
        device=args.device,
        api_key=key if key else None,  # a blank key is refused by check(), not dropped
        allowed_hosts=tuple(h.strip() for h in [*args.allowed_host, *from_env] if h.strip()),
        memory_budget_bytes=int(args.memory_budget_mb * MB),
        max_connections=args.max_connections,
        max_upload_bytes=int(args.max_upload_mb * MB),
        max_video_bytes=int(args.max_video_mb * MB),
        max_pixels=args.max_pixels,
        max_video_seconds=args.max_video_seconds,
        image_workers=args.workers,
        max_queued_jobs=args.queue,
        request_timeout_s=args.timeout,
        examples=Path(args.examples) if args.examples else None,
    )


def missing_packages() -> list[str]:
    return [pip for module, pip in APP_PACKAGES.items() if importlib.util.find_spec(module) is None]


def cmd_app(args: argparse.Namespace) -> int:
    return _run(args, browser=not args.no_browser)


def cmd_serve(args: argparse.Namespace) -> int:
    return _run(args, browser=False)


def _run(args: argparse.Namespace, browser: bool) -> int:
    missing = missing_packages()
    if missing:
        print(
            f"colorize {args.command} needs {', '.join(missing)}, which is not installed.\n"
            f"Install the app extra:  {INSTALL_HINT}\n"
            'or, in a checkout:       pip install -e ".[app]"',
            file=sys.stderr,
        )
        return 2
    settings = settings_from_args(args)
    settings.check()  # before anything loads: refuses a public address without a key
    sock = _bind(settings.host, settings.port, fallback=args.command == "app")
    if settings.port and sock.getsockname()[1] != settings.port:
        print(f"port {settings.port} is taken; using {sock.getsockname()[1]}", file=sys.stderr)
    settings.port = sock.getsockname()[1]
    return serve(settings, sock, browser=browser)


def _bind(host: str, port: int, fallback: bool) -> socket.socket:
    """Listen on host:port; the desktop app takes a free port when that one is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            if not fallback:
                raise
            sock.bind((host.strip("[]"), 0))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ColorizerError(f"port {port} on {host} is in use") from None
        reason = exc.strerror or str(exc)
        raise ColorizerError(f"cannot listen on {host} port {port}: {reason}") from None
    return sock


def serve(settings: ServerSettings, sock: socket.socket, *, browser: bool = False) -> int:
    import uvicorn

    from colorizer.server.app import create_app
    from colorizer.server.connections import uvicorn_config

    app = create_app(settings)
    config = uvicorn_config(app, settings, log_level="info", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    shown = "localhost" if is_loopback(settings.host) else settings.host
    url = f"http://{shown}:{settings.port}/"
    print(f"colorizer app on {url}  (REST API: {url}docs; Ctrl+C stops)", file=sys.stderr)
    if browser:
        threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
    server.run(sockets=[sock])
    return 0


def _open_when_ready(server, url: str) -> None:
    import webbrowser

    for _ in range(600):
        if server.started:
            webbrowser.open(url)
            return
        if server.should_exit:
            return
        time.sleep(0.1)
