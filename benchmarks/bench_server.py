"""Load run of the REST API: N concurrent clients for M seconds against `colorize serve`.

Run:  python -m benchmarks server [--clients 4] [--seconds 15] [--width 640 --height 480]

Starts ``colorize serve`` on 127.0.0.1 (a free port) in a subprocess with the shipped model,
warms it up with one request, then lets N client threads post the same grey photo to
``POST /v1/colorize`` back to back for M seconds and prints requests/s and the p50/p95
latency of the successful requests, plus how many were refused (429) or failed. The server
is stopped at the end. Both limits are bounded (at most 64 clients, 900 seconds).

Soak (issue 12, item 8): ``--mixed`` makes each client cycle through three photo sizes (320x240,
the --width x --height, 1600x1200), every third request with two colour hints; ``--rss-every S``
samples the server's resident memory every S seconds during the run and for 20 s of idle after
it, and prints the samples per tenth of the run and whether the second half stayed within 10% of
the first half's peak (a plateau, not a leak):

    python -m benchmarks server --clients 4 --seconds 600 --mixed --rss-every 5
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.harness import MIGRANT_MOTHER, Results, Stopwatch, benchmark, option
from benchmarks.harness.commands import colorize

PHOTO = MIGRANT_MOTHER
MAX_CLIENTS, MAX_SECONDS, START_LIMIT_S = 64, 900, 120
IDLE_AFTER_S = 20
HINTS = '[{"x": 10, "y": 10, "color": "#c0392b"}, {"x": 40, "y": 30, "color": "#2e86c1"}]'


def photo_bytes(width: int, height: int) -> bytes:
    """A real B&W photo resized when ../shared has one, else a synthetic grey picture (JPEG)."""
    if PHOTO.exists():
        with Image.open(PHOTO) as image:
            grey = image.convert("L").resize((width, height))
    else:
        y, x = np.mgrid[0:height, 0:width]
        grey = Image.fromarray((128 + 60 * np.sin(x / 23) * np.cos(y / 31)).astype(np.uint8))
    buffer = io.BytesIO()
    grey.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, workers: int, extra: list[str]) -> subprocess.Popen:
    command = colorize(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *extra
    )
    quiet = subprocess.DEVNULL
    server = subprocess.Popen(command, stdout=quiet, stderr=quiet, start_new_session=True)
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    stop_server(server)
    raise SystemExit("the server did not start")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def client(
    url: str, photos: list[bytes], until: float, results: list, lock: threading.Lock
) -> None:
    with httpx.Client(timeout=300) as http:
        count = 0
        while time.monotonic() < until:
            photo = photos[count % len(photos)]
            data = {"hints": HINTS} if len(photos) > 1 and count % 3 == 2 else None
            count += 1
            watch = Stopwatch()
            outcome: int | str
            try:
                files = {"image": ("photo.jpg", photo, "image/jpeg")}
                response = http.post(url, files=files, data=data)
                outcome = response.status_code
            except httpx.HTTPError:
                outcome = "error"
            with lock:
                results.append((outcome, watch.elapsed()))


@benchmark(
    "server",
    option("--clients", type=int, default=4),
    option("--seconds", type=float, default=15),
    option("--width", type=int, default=640),
    option("--height", type=int, default=480),
    option("--workers", type=int, default=2, help="server image workers"),
    option("--mixed", action="store_true", help="three photo sizes, some hints"),
    option("--rss-every", type=float, help="sample the server's RSS every S s"),
    pass_unknown=True,  # the rest goes to `colorize serve`
)
def server(args: argparse.Namespace, results: Results) -> None:
    extra = args.unknown
    clients = max(1, min(args.clients, MAX_CLIENTS))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))

    photo = photo_bytes(args.width, args.height)
    photos = [photo]
    if args.mixed:
        photos = [photo_bytes(320, 240), photo, photo_bytes(1600, 1200)]
    port = free_port()
    server = start_server(port, args.workers, extra)
    url = f"http://127.0.0.1:{port}/v1/colorize"
    try:
        warm = httpx.post(url, files={"image": ("photo.jpg", photo, "image/jpeg")}, timeout=300)
        warm.raise_for_status()
        outcomes: list = []
        lock = threading.Lock()
        until = time.monotonic() + seconds
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        sampler = None
        if args.rss_every:
            stop_at = until + IDLE_AFTER_S
            sampler = threading.Thread(
                target=sample_rss, args=(server.pid, args.rss_every, stop_at, samples)
            )
            sampler.start()
        threads = [
            threading.Thread(target=client, args=(url, photos, until, outcomes, lock))
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        if sampler is not None:
            sampler.join()
    finally:
        stop_server(server)

    ok = np.array([t for status, t in outcomes if status == 200])
    refused = sum(1 for status, _ in outcomes if status == 429)
    failed = len(outcomes) - len(ok) - refused
    print(
        f"{clients} clients x {seconds:g} s, {args.width}x{args.height} JPEG, "
        f"server workers {args.workers}, {elapsed:.1f} s wall"
    )
    print(f"requests: {len(outcomes)}  ok: {len(ok)}  429: {refused}  failed: {failed}")
    row: dict[str, float | str] = {
        "requests": len(outcomes),
        "ok": len(ok),
        "refused": refused,
        "failed": failed,
    }
    row["wall_s"] = elapsed
    if len(ok):
        p50, p95 = np.percentile(ok, [50, 95])
        print(f"throughput: {len(ok) / elapsed:.2f} requests/s")
        worst = ok.max()
        print(f"latency: p50 {p50 * 1e3:.0f} ms  p95 {p95 * 1e3:.0f} ms  max {worst * 1e3:.0f} ms")
        row |= {"requests_per_s": len(ok) / elapsed, "p50_s": p50, "p95_s": p95, "max_s": worst}
    if samples:
        row |= report_rss(samples, seconds)
    results.add({"clients": clients, "seconds": seconds, "serve_options": extra}, **row)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the server's worker processes), in MB."""
    total = 0.0
    for proc in [pid, *child_pids(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def child_pids(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children]


def sample_rss(pid: int, every: float, stop_at: float, samples: list) -> None:
    start = time.monotonic()
    while time.monotonic() < stop_at:
        samples.append((time.monotonic() - start, rss_mb(pid)))
        time.sleep(every)


def report_rss(samples: list[tuple[float, float]], seconds: float) -> dict[str, float | str]:
    print("server RSS, MB (max per tenth of the run; then idle):")
    step = seconds / 10
    for tenth in range(10):
        window = [mb for t, mb in samples if tenth * step <= t < (tenth + 1) * step]
        if window:
            print(f"  {tenth * step:6.0f}-{(tenth + 1) * step:4.0f} s: {max(window):7.1f}")
    idle = [mb for t, mb in samples if t >= seconds]
    if idle:
        print(f"  idle after: {idle[-1]:7.1f}")
    first = max((mb for t, mb in samples if t < seconds / 2), default=0.0)
    second = max((mb for t, mb in samples if seconds / 2 <= t < seconds), default=0.0)
    verdict = "plateau" if second <= 1.10 * first else "GROWING"
    print(f"  peak first half {first:.1f}, second half {second:.1f}: {verdict}")
    return {"rss_peak_first_half_mb": first, "rss_peak_second_half_mb": second, "rss": verdict}
