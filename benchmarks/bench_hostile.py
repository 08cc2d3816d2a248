"""A hostile client against `colorize serve` (issue 22); kill -9 trials of `colorize image/video`.

Run:  python -m benchmarks hostile [--only battery|kill] [--kill-trials 5] [--race-trials 10]

Battery: starts ``colorize serve`` on 127.0.0.1 (a free port, its own TMPDIR) in a subprocess,
keyless, and attacks it: malformed multipart, missing and extra fields, huge declared
Content-Length, bodies over the limit, decompression bombs (small files declaring 30000 x 30000),
truncated and corrupt images, a 7000 x 7000 PNG to /v1/colorize and /v1/suggest (alone and four at
once), a foreign ``Host`` (DNS rebinding), path traversal in file names and job ids, UTF-8 and
control characters in names and values, unknown models, absurd sizes, 50 connections that never
finish their headers or bodies, a flood of connections over the cap, and fetch-while-delete races
on finished video jobs (a 12-frame 64 x 48 clip made with PyAV). A second server on 127.0.0.1
with an API key is then tried with wrong, missing and mangled keys. Every answer is checked as it
comes: no 5xx, no ``Traceback``, no server path (its temp folder, the checkout, the Python
prefix, the home folder) in any body. The server's RSS (VmRSS of it and its children) and VmHWM
are sampled from /proc all along; the peak is printed. Every loop is bounded; it all takes a few
minutes.

Kill trials: ``colorize image`` over a folder of 20 small photos is killed with SIGKILL (its
whole process group) at a random moment, N times, each time rerun to the end; every output must
then be byte-identical to an uninterrupted run's and no temp file may be left. The same for
``colorize video`` on a 5 s clip in 0.5 s segments (the resume path).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.bench_server import child_pids, free_port, photo_bytes, stop_server
from benchmarks.harness import ROOT, Results, Stopwatch, benchmark, option
from benchmarks.harness.commands import colorize

START_LIMIT_S = 120
MP = b"multipart/form-data; boundary=XbOuNdArY"
READ_GUARD_S = 45.0  # a raw socket read gives up after this (the body deadline is 30 s)
SLOW_CONNECTIONS = 50
FLOOD_CONNECTIONS = 300  # against the default cap of 256
RSS_LIMIT_MB = 1536
FILM_FRAMES = 240  # 10 s at 24 fps: 20 segments of 0.5 s
KEY = "hostile-bench-key-0123456789abcdef"
# key variants that carry the right key, so may pass: the scheme is case-insensitive (RFC 9110)
ACCEPTABLE = {"bearer lower-case scheme", "two X-API-Key, 2nd right"}


# --- the server -------------------------------------------------------------------------------


class Server:
    """``colorize serve`` in its own session with a private TMPDIR; stderr kept for reading."""

    def __init__(self, folder: Path, extra: list[str], key: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = folder / f"tmp-{self.port}"
        self.tmp.mkdir(parents=True)
        self.log = folder / f"serve-{self.port}.log"
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        env.pop("COLORIZER_API_KEY", None)
        if key:
            env["COLORIZER_API_KEY"] = key
        command = colorize("serve", "--host", "127.0.0.1", "--port", str(self.port), *extra)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            if self.process.poll() is not None:
                raise SystemExit(f"the server did not start:\n{self.log.read_text()[-2000:]}")
        else:
            stop_server(self.process)
            raise SystemExit("the server did not start in time")
        self.samples: list[tuple[float, float, float]] = []  # (t, rss MB, hwm MB)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            rss = hwm = 0.0
            for pid in [self.process.pid, *child_pids(self.process.pid)]:
                values = proc_status(pid)
                rss += values.get("VmRSS", 0.0)
                hwm = max(hwm, values.get("VmHWM", 0.0))
            self.samples.append((time.monotonic() - start, rss, hwm))
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()
        self._sampler.join()
        stop_server(self.process)

    @property
    def peak_rss_mb(self) -> float:
        return max((rss for _, rss, _ in self.samples), default=0.0)

    @property
    def hwm_mb(self) -> float:
        return max((hwm for _, _, hwm in self.samples), default=0.0)


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MB (empty when it is gone)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return values


# --- the battery: every answer counted and checked ----------------------------------------------


class Battery:
    def __init__(self, server: Server, key: str | None = None) -> None:
        self.server, self.key = server, key
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.problems: list[str] = []
        self.notes: list[str] = []  # answers worth a look that are not problems
        self.jumps: list[tuple[float, float, str, str]] = []  # (MB added, VmHWM, kind, what)
        self.lock = threading.Lock()
        home = str(Path.home())
        forbidden = {str(server.tmp), str(ROOT), sys.prefix, "site-packages", 'File "'}
        forbidden |= {home} if len(home) > 1 else set()
        self.forbidden = [text.encode() for text in forbidden]
        headers = {"X-API-Key": key} if key else {}
        self.http = httpx.Client(base_url=server.url, timeout=READ_GUARD_S, headers=headers)

    def check(
        self, kind: str, status: int | str, body: bytes, what: str, binary: bool = False
    ) -> None:
        """Count the answer; note a 5xx, a traceback or a server path (in a photo or a film,
        only the long paths: a short one may turn up in compressed bytes by chance)."""
        forbidden = [text for text in self.forbidden if not binary or len(text) > 12]
        with self.lock:
            self.counts[kind][status] += 1
            if kind == "foreign Host" and isinstance(status, int) and status < 300:
                self.notes.append(f"{kind}: {what}: {status}")
            if isinstance(status, int) and status >= 500:
                self.problems.append(f"{kind}: {what}: {status} {body[:300]!r}")
            if b"Traceback" in body:
                self.problems.append(f"{kind}: {what}: a traceback in the body {body[:300]!r}")
            for text in forbidden:
                if text in body:
                    self.problems.append(f"{kind}: {what}: server path {text!r} in the body")

    def request(self, kind: str, method: str, path: str, **kwargs) -> httpx.Response | None:
        what = f"{method} {path} {str(kwargs)[:160]}"
        before = self.hwm()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self.check(kind, type(error).__name__, b"", what)
            return None
        finally:
            after = self.hwm()
            if after - before > 200:  # the request that raised the server's peak memory
                with self.lock:
                    self.jumps.append((after - before, after, kind, what))
        media = response.headers.get("content-type", "")
        binary = media.startswith(("image/", "video/"))
        self.check(kind, response.status_code, response.content, what, binary)
        return response

    def post(self, kind: str, path: str, files=None, data=None, **kwargs):
        return self.request(kind, "POST", path, files=files, data=data, **kwargs)

    def raw(self, kind: str, payload: bytes, what: str, then_close: bool = False) -> None:
        status, body = raw_exchange(self.server.port, payload, then_close)
        self.check(kind, status, body, what)

    def raw_many(self, kind: str, payloads: list[tuple[str, bytes]]) -> None:
        """Raw requests at once (each may wait for a server deadline), each in a thread."""
        threads = [
            threading.Thread(target=self.raw, args=(kind, payload, what))
            for what, payload in payloads
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(READ_GUARD_S + 10)

    def hwm(self) -> float:
        """The server's VmHWM now (MB): its peak resident memory so far."""
        return proc_status(self.server.process.pid).get("VmHWM", 0.0)

    def post_parts(self, kind: str, path: str, parts: list[tuple[str, bytes, bytes | None]]):
        """A multipart POST built by hand: (field, content, file name or None), any bytes."""
        built = []
        for name, content, filename in parts:
            header = b'Content-Disposition: form-data; name="' + name.encode() + b'"'
            if filename is not None:
                header += b'; filename="' + filename + b'"'
            built.append((header, content))
        headers = {"Content-Type": MP.decode()}
        return self.request(kind, "POST", path, content=multipart(built), headers=headers)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.server.url}/healthz", timeout=30).status_code == 200
        except httpx.HTTPError:
            return False


def raw_exchange(port: int, payload: bytes, then_close: bool = False) -> tuple[int | str, bytes]:
    """Send ``payload`` on a fresh connection, read what comes back until it closes."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(payload)
            if then_close:
                sock.shutdown(socket.SHUT_WR)
            return parse_answer(read_all(sock, READ_GUARD_S))
    except OSError as error:
        return type(error).__name__, b""


def read_all(sock: socket.socket, limit_s: float) -> bytes:
    chunks, deadline = [], time.monotonic() + limit_s
    sock.setblocking(False)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        data = b"".join(chunks)
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():  # a complete answer: no need to wait
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                break
    return b"".join(chunks)


def parse_answer(data: bytes) -> tuple[int | str, bytes]:
    if not data:
        return "closed", b""
    line = data.split(b"\r\n", 1)[0].split()
    try:
        return int(line[1]), data
    except (IndexError, ValueError):
        return "garbled", data


# --- the files it sends -------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, rows: int = 4) -> bytes:
    """A grey PNG whose header says ``width`` x ``height``, with only a few rows of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" + b"\x80" * width * rows, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose SOF marker is patched to say ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (64, 48), 100), "JPEG"))
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            break
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("L", (8, 8), 100), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def tiny_clip(path: Path, frames: int = 12, width: int = 64, height: int = 48, fps: int = 12):
    """A grey test film made with PyAV (moving stripes)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        y, x = np.mgrid[0:height, 0:width]
        for index in range(frames):
            grey = (128 + 80 * np.sin((x + 3 * index) / 5) * np.cos(y / 7)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.dstack([grey] * 3), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"XbOuNdArY") -> bytes:
    """A multipart body from (part headers, content); no validation, on purpose."""
    body = b""
    for headers, content in parts:
        body += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


def http_request(
    port: int, path: str, body: bytes, content_type: bytes, extra: bytes = b""
) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n".encode()
        + b"Content-Type: "
        + content_type
        + b"\r\n"
        + extra
    )
    if b"content-length" not in extra.lower() and b"transfer-encoding" not in extra.lower():
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


# --- the attacks ------------------------------------------------------------------------------


def attack_malformed_multipart(b: Battery, photo: bytes) -> None:
    port = b.server.port
    image_part = (b'Content-Disposition: form-data; name="image"; filename="a.jpg"', photo)
    bodies: list[tuple[str, bytes, bytes]] = [
        ("no boundary", b"garbage", b"multipart/form-data"),
        ("other boundary", multipart([image_part], b"OTHER"), b"multipart/form-data; boundary=X"),
        ("no closing", multipart([image_part])[:-12], MP),
        ("cut in a part", multipart([image_part])[:200], MP),
        ("no disposition", multipart([(b"X-Foo: bar", photo)]), MP),
        ("empty body", b"", MP),
        ("boundary 2000 chars", multipart([image_part], b"b" * 2000),
         b"multipart/form-data; boundary=" + b"b" * 2000),
        ("LF only", multipart([image_part]).replace(b"\r\n", b"\n"),
         MP),
        ("header line 100 KB",
         multipart([(image_part[0] + b"\r\nX-Long: " + b"a" * 100_000, photo)]), MP),
        ("1500 fields", multipart([(b'Content-Disposition: form-data; name="f%d"' % i, b"v")
                                   for i in range(1500)]),
         MP),
        ("1200 files", multipart([(b'Content-Disposition: form-data; name="image"; '
                                   b'filename="%d.jpg"' % i, b"x") for i in range(1200)]),
         MP),
        ("json body", json.dumps({"image": "aGVsbG8="}).encode(), b"application/json"),
        ("urlencoded", b"image=abc&model=x", b"application/x-www-form-urlencoded"),
        ("text/plain", photo, b"text/plain"),
        ("no content type", photo, b""),
        ("nested multipart", multipart([(b'Content-Disposition: form-data; name="image"\r\n'
                                         b"Content-Type: multipart/mixed; boundary=IN",
                                         multipart([image_part], b"IN"))]),
         MP),
        ("quoted name with CRLF", multipart([(b'Content-Disposition: form-data; name="ima\r\nge"; '
                                              b'filename="a.jpg"', photo)]),
         MP),
    ]  # fmt: skip
    for path in ("/v1/colorize", "/v1/suggest", "/v1/colorize/video"):
        payloads = [
            (f"{path} {what}", http_request(port, path, body, kind)) for what, body, kind in bodies
        ]
        b.raw_many("malformed multipart", payloads)


def attack_fields(b: Battery, photo: bytes) -> None:
    image = {"image": ("a.jpg", photo, "image/jpeg")}
    kind = "missing/extra fields"
    b.post(kind, "/v1/colorize", files={"other": ("a.jpg", photo, "image/jpeg")})
    b.post(kind, "/v1/colorize", data={"image": "not a file"})
    b.post(kind, "/v1/colorize", files=[("image", ("a.jpg", photo)), ("image", ("b.jpg", photo))])
    b.post(kind, "/v1/colorize", files=image, data={"foo": "bar", "size": ["256", "320"]})
    for options in ("{", "[]", "null", '"x"', '{"size": "big"}', '{"hints": 5}', "1e999"):
        b.post(kind, "/v1/colorize", files=image, data={"options": options})
    b.post(kind, "/v1/colorize", files=image, data={"options": '{"size": 320}', "size": "256"})
    hints = [{"x": i % 60, "y": i % 40, "color": "#c03020"} for i in range(300)]
    nested: object = [{"x": 1, "y": 1, "color": "#ffffff"}]
    for _ in range(40):
        nested = [nested]
    for value in (
        "[",
        "{}",
        json.dumps(hints),
        json.dumps(nested),
        '[{"x": 1e300, "y": -5, "color": "#zzzzzz"}]',
        '[{"x": 1, "y": 1}]',
        '[{"x": 1, "y": 1, "ab": [1e308, "nan"]}]',
        '[{"x": 1, "y": 1, "color": "#fff", "ab": [1, 2]}]',
        "[" * 100_000 + "]" * 100_000,
    ):
        b.post(kind, "/v1/colorize", files=image, data={"hints": value})
    b.post(kind, "/v1/colorize", files={**image, "reference": ("r.jpg", b"nope", "image/jpeg")})
    b.post(kind, "/v1/colorize", files={**image, "scribbles": ("s.png", photo, "image/png")})
    b.post(kind, "/v1/suggest", files=image)
    b.post(kind, "/v1/suggest", files=image, data={"x": "1"})
    b.post(kind, "/v1/suggest", data={"x": "1", "y": "1"})
    b.post(kind, "/v1/colorize/video", data={"consistency": "0.5"})
    b.post(kind, "/v1/colorize/video", files={"image": ("a.jpg", photo)})
    for method in ("PUT", "PATCH", "TRACE", "OPTIONS", "DELETE"):
        b.request(kind, method, "/v1/colorize")
    b.request(kind, "GET", "/v1/nothing-here")
    b.request(kind, "GET", "/" + "a" * 60_000)


def attack_content_length(b: Battery) -> None:
    port = b.server.port
    kind_ct = b"multipart/form-data; boundary=XbOuNdArY"
    cases = {
        "10^12": b"Content-Length: 1000000000000\r\n",
        "2^63": b"Content-Length: 9223372036854775808\r\n",
        "10^40": b"Content-Length: " + b"1" + b"0" * 40 + b"\r\n",
        "-1": b"Content-Length: -1\r\n",
        "abc": b"Content-Length: abc\r\n",
        "two lengths": b"Content-Length: 10\r\nContent-Length: 99999999999\r\n",
        "length + chunked": b"Content-Length: 99999999999\r\nTransfer-Encoding: chunked\r\n",
        "chunk of 2^60": b"Transfer-Encoding: chunked\r\n",
    }
    payloads = []
    for path in ("/v1/colorize", "/v1/suggest", "/v1/colorize/video"):
        for what, headers in cases.items():
            body = b"1000000000000000\r\n" + b"x" * 100 if what == "chunk of 2^60" else b"--X"
            payloads.append((f"{path} {what}", http_request(port, path, body, kind_ct, headers)))
    b.raw_many("huge Content-Length", payloads)


def attack_over_limit(b: Battery, max_upload_mb: float, max_video_mb: float) -> None:
    kind = "bodies over the limit"
    big = os.urandom(int((max_upload_mb + 1) * 2**20))
    b.post(kind, "/v1/colorize", files={"image": ("big.jpg", big, "image/jpeg")})
    b.post(kind, "/v1/suggest", files={"image": ("big.jpg", big)}, data={"x": "1", "y": "1"})
    photo = photo_bytes(64, 48)
    b.post(kind, "/v1/colorize", files={"image": ("a.jpg", photo), "reference": ("r.jpg", big)})

    def chunks(total: int):
        for _ in range(total // 2**20):
            yield b"\0" * 2**20

    b.post(kind, "/v1/colorize", content=chunks(len(big)), headers={
        "Content-Type": "multipart/form-data; boundary=XbOuNdArY"})  # fmt: skip
    video = os.urandom(int((max_video_mb + 1) * 2**20))
    b.post(kind, "/v1/colorize/video", files={"video": ("big.mp4", video, "video/mp4")})
    b.post(kind, "/v1/colorize", data={"hints": "[" + "{}," * 3_000_000 + "{}]"})


def attack_bombs(b: Battery) -> None:
    kind = "decompression bombs"
    bombs = {
        "png 30000x30000": png_declaring(30000, 30000),
        "png 65535x65535": png_declaring(65535, 65535, rows=1),
        "png 8000x8000 (64 MP)": png_declaring(8000, 8000),
        "png 1x50000000": png_declaring(1, 50_000_000, rows=1),
        "jpeg 30000x30000": jpeg_declaring(30000, 30000),
        "jpeg 65500x65500": jpeg_declaring(65500, 65500),
        "gif 30000x30000": gif_declaring(30000, 30000),
        "gif 65535x65535": gif_declaring(65535, 65535),
    }
    small = photo_bytes(64, 48)
    for what, data in bombs.items():
        files = {"image": (f"{what}.img", data, "application/octet-stream")}
        b.post(kind, "/v1/colorize", files=files)
        b.post(kind, "/v1/suggest", files=files, data={"x": "10", "y": "10"})
        b.post(kind, "/v1/colorize", files={"image": ("a.jpg", small), "reference": files["image"]})
        b.post(kind, "/v1/colorize", files={"image": ("a.jpg", small), "scribbles": files["image"]})
        b.post(kind, "/v1/colorize/video", files={"video": (f"{what}.mp4", data)})


def attack_corrupt(b: Battery, clip: bytes) -> None:
    kind = "truncated/corrupt images"
    png = encode(Image.new("L", (300, 200), 90), "PNG")
    jpeg = photo_bytes(300, 200)
    bad_crc = bytearray(png)
    bad_crc[30] ^= 0xFF
    corrupt = {
        "png cut in half": png[: len(png) // 2],
        "png header only": png[:33],
        "jpeg cut in half": jpeg[: len(jpeg) // 2],
        "jpeg header only": jpeg[:20],
        "png bad crc": bytes(bad_crc),
        "random bytes": os.urandom(5000),
        "zero bytes": b"",
        "text": b"hello, I am a photo",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>',
        "mp4 as a photo": clip,
        "tiff cut": encode(Image.new("L", (300, 200), 90), "TIFF")[:400],
        "webp cut": encode(Image.new("L", (300, 200), 90), "WEBP")[:40],
        "jpeg flipped bytes": bytes(c ^ 0x55 if 100 < i < 400 else c for i, c in enumerate(jpeg)),
    }
    for what, data in corrupt.items():
        files = {"image": (f"{what}.png", data, "image/png")}
        b.post(kind, "/v1/colorize", files=files)
        b.post(kind, "/v1/suggest", files=files, data={"x": "5", "y": "5"})
    b.post(kind, "/v1/colorize/video", files={"video": ("photo.png", png)})
    for what, data in {"clip cut": clip[: len(clip) // 2], "random": os.urandom(4000)}.items():
        response = b.post(kind, "/v1/colorize/video", files={"video": (f"{what}.mp4", data)})
        if response is not None and response.status_code == 202:
            wait_job(b, kind, response.json()["id"])


def attack_7000(b: Battery) -> dict[str, float]:
    """A 7000 x 7000 PNG (about 60 KB) alone to each endpoint, then four at once."""
    kind = "7000x7000 PNG"
    photo = encode(Image.new("L", (7000, 7000), 128), "PNG")
    files = {"image": ("big.png", photo, "image/png")}
    watch = Stopwatch()
    b.post(kind, "/v1/suggest", files=files, data={"x": "3500", "y": "10"}, timeout=300)
    alone_suggest = b.server.peak_rss_mb
    b.post(kind, "/v1/colorize", files=files, timeout=300)
    alone = b.server.peak_rss_mb
    calls = [("/v1/suggest", {"x": "3500", "y": "10"}), ("/v1/colorize", None)] * 2
    threads = [
        threading.Thread(target=b.post, args=(kind, path, files, data), kwargs={"timeout": 300})
        for path, data in calls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(320)
    return {
        "rss_after_7000_suggest_mb": alone_suggest,
        "rss_after_7000_alone_mb": alone,
        "rss_after_7000_four_mb": b.server.peak_rss_mb,
        "seconds_7000": watch.elapsed(),
    }


def attack_host(b: Battery, kind: str = "foreign Host") -> None:
    hosts = [
        "evil.example",
        "evil.example:80",
        f"evil.example:{b.server.port}",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "localhost@evil.example",
        "0x7f000001",
        "2130706433",
        "127.1",
        "[::ffff:127.0.0.1]",
        "",
        " ",
        "LOCALHOST:1",
        "xn--80ak6aa92e.com",
    ]
    for host in hosts:
        for method, path in (("GET", "/v1/models"), ("GET", "/"), ("GET", "/healthz")):
            b.request(kind, method, path, headers={"Host": host})
        b.post(kind, "/v1/colorize", files={"image": ("a.jpg", photo_bytes(64, 48))},
               headers={"Host": host})  # fmt: skip
    b.request(kind, "GET", "/v1/models", headers={"Host": "фото.example".encode()})
    # HTTP/1.0 without a Host, and two Host headers
    port = b.server.port
    b.raw_many(kind, [
        ("no Host", b"GET /v1/models HTTP/1.0\r\n\r\n"),
        ("two Hosts", f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example"
                      "\r\nConnection: close\r\n\r\n".encode()),
        ("absolute URI", b"GET http://evil.example/v1/models HTTP/1.1\r\nHost: evil.example\r\n"
                         b"Connection: close\r\n\r\n"),
    ])  # fmt: skip


def attack_traversal(b: Battery, photo: bytes) -> None:
    kind = "path traversal"
    names = [
        "../../../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\win.ini",
        "....//....//etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "a/../../b.jpg",
        "/proc/self/environ",
        ".",
        "..",
        "~/.ssh/id_rsa",
        "x" * 5000 + ".jpg",
        "/dev/zero",
    ]
    for name in names:
        b.post(kind, "/v1/colorize", files={"image": (name, photo, "image/jpeg")})
        b.post(kind, "/v1/colorize", files={"image": ("a.jpg", photo), "reference": (name, photo)})
        b.post(kind, "/v1/colorize/video", files={"video": (name, photo)})
    ids = [
        "..",
        ".",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%252f..%252fetc",
        "%00",
        "a%00b",
        "0" * 10_000,
        "%2fetc%2fpasswd",
        "фото",
        "..;",
        "*",
    ]
    for job_id in ids:
        b.request(kind, "GET", f"/v1/jobs/{job_id}")
        b.request(kind, "GET", f"/v1/jobs/{job_id}/result")
        b.request(kind, "DELETE", f"/v1/jobs/{job_id}")
    for raw_path in (b"/v1/jobs/../../../etc/passwd", b"/v1/jobs/..%2F..%2Fetc/result",
                     b"/static/../../../../etc/passwd", b"/../../../etc/passwd",
                     b"/v1/jobs/\xff\xfe/result", b"//etc/passwd"):  # fmt: skip
        request = b"GET " + raw_path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        b.raw(kind, request, raw_path.decode("latin-1"))


def attack_utf8(b: Battery, photo: bytes) -> None:
    kind = "UTF-8/control characters"
    names = [
        "фото.jpg",
        "写真.jpg",
        "a\x00b.jpg",
        "a\r\nX-Injected: 1.jpg",
        "\x1b[31mred\x1b[0m.jpg",
        "\u202egpj.exe",
        "\ud800.jpg",
        "😀" * 300 + ".jpg",
        "\x7f\x01\x02.jpg",
        "",
    ]
    for name in names:
        encoded = name.encode("utf-8", "surrogatepass")
        part = (b'Content-Disposition: form-data; name="image"; filename="' + encoded + b'"', photo)
        body = multipart([part])
        headers = {"Content-Type": "multipart/form-data; boundary=XbOuNdArY"}
        b.post(kind, "/v1/colorize", content=body, headers=headers)
    values = ["фото", "\x00", "a\r\nb", "\x1b[2J", "\ud800", "١٢٨", "２５６", "256\x00", "\u202e"]
    image = {"image": ("a.jpg", photo, "image/jpeg")}
    for value in values:
        text = value.encode("utf-8", "surrogatepass")
        for field in ("model", "size", "saturation", "hints", "options"):
            part = (b'Content-Disposition: form-data; name="' + field.encode() + b'"', text)
            image_part = (b'Content-Disposition: form-data; name="image"; filename="a.jpg"', photo)
            body = multipart([image_part, part])
            headers = {"Content-Type": "multipart/form-data; boundary=XbOuNdArY"}
            b.post(kind, "/v1/colorize", content=body, headers=headers)
        parts = [("image", photo, b"a.jpg"), ("x", text, None), ("y", b"1", None)]
        b.post_parts(kind, "/v1/suggest", parts)
    b.post(kind, "/v1/colorize", files=image, data={"model": "фото"},
           headers={"X-Custom": "фото".encode()})  # fmt: skip


def attack_models(b: Battery, photo: bytes) -> None:
    kind = "unknown models"
    image = {"image": ("a.jpg", photo, "image/jpeg")}
    models = [
        "nope",
        "",
        " colornet-v2 ",
        "COLORNET-V2",
        "../../weights",
        "/etc/passwd",
        "colornet-v2\x00",
        "eccv16",
        "colornet",
        "a" * 10_000,
        "__init__",
        "colornet-v9",
    ]
    for model in models:
        b.post(kind, "/v1/colorize", files=image, data={"model": model})
        b.post(kind, "/v1/suggest", files=image, data={"model": model, "x": "1", "y": "1"})
        b.post(kind, "/v1/colorize", files=image, data={"options": json.dumps({"model": model})})
    b.post(kind, "/v1/colorize", files=image, data={"options": '{"model": ["a"]}'})
    b.post(kind, "/v1/colorize", files=image, data={"options": '{"model": {"x": 1}}'})


def attack_sizes(b: Battery, photo: bytes) -> None:
    kind = "absurd sizes"
    image = {"image": ("a.jpg", photo, "image/jpeg")}
    for size in ("0", "-1", "7", "100000", "1e309", "nan", "inf", "-inf", str(2**63), "2**10",
                 "0x100", "256.5", " 256", "9" * 5000):  # fmt: skip
        b.post(kind, "/v1/colorize", files=image, data={"size": size})
        b.post(kind, "/v1/colorize", files=image, data={"options": f'{{"size": {size!r}}}'})
    for saturation in ("nan", "inf", "-1", "1e308", "2", "-0"):
        b.post(kind, "/v1/colorize", files=image, data={"saturation": saturation})
    for x, y, k in (("-1", "0", "3"), ("100000", "5", "3"), ("1e309", "5", "3"), ("5", "5", "0"),
                    ("5", "5", "-3"), ("5", "5", "1000000000"), ("nan", "nan", "nan"),
                    (str(2**64), "1", "1")):  # fmt: skip
        b.post(kind, "/v1/suggest", files=image, data={"x": x, "y": y, "k": k})
    for consistency in ("nan", "-5", "1e309", "2"):
        b.post(kind, "/v1/colorize/video", files={"video": ("c.mp4", b"x" * 100)},
               data={"consistency": consistency})  # fmt: skip


def attack_slow(b: Battery, count: int) -> None:
    """``count`` connections that stall: half in their headers, half in a declared body."""
    kind = "slow connections"
    port = b.server.port
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if index % 2:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
        else:
            sock.sendall(
                f"POST /v1/colorize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                "multipart/form-data; boundary=XbOuNdArY\r\nContent-Length: 100000\r\n\r\n"
                "--XbOuNdArY\r\n".encode()
            )
        sockets.append(sock)
    watch = Stopwatch()
    meanwhile = b.healthy()  # the server still answers others while they stall
    b.check(kind, "healthz while stalled: ok" if meanwhile else "healthz while stalled: FAILED",
            b"", "healthz")  # fmt: skip
    answers: list[tuple[int | str, bytes]] = [("pending", b"")] * count

    def read(index: int) -> None:
        answers[index] = parse_answer(read_all(sockets[index], READ_GUARD_S))

    threads = [threading.Thread(target=read, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(READ_GUARD_S + 10)
    for index, (status, body) in enumerate(answers):
        b.check(kind, status, body, f"slow connection {index}")
        sockets[index].close()
    b.counts[kind][f"all answered in {watch.elapsed():.0f} s"] += 1


def attack_flood(b: Battery, count: int) -> None:
    """``count`` idle connections at once (over the cap): the surplus is answered 429 at once."""
    kind = "connection flood"
    port = b.server.port
    sockets = []
    for _ in range(count):
        try:
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError as error:
            b.check(kind, f"connect {type(error).__name__}", b"", "connect")
    time.sleep(1.0)
    answers: list[tuple[int | str, bytes]] = []
    for sock in sockets:  # the surplus ones were answered already; the rest wait for a deadline
        sock.setblocking(False)
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            answers.append(("held (open)", b""))
            continue
        except OSError:
            data = b""
        answers.append(parse_answer(data))
    for status, body in answers:
        b.check(kind, status, body, "flood connection")
    for sock in sockets:
        sock.close()
    time.sleep(1.0)
    ok = b.healthy()
    b.check(kind, "healthz after: ok" if ok else "healthz after: FAILED", b"", "healthz")


def wait_job(b: Battery, kind: str, job_id: str, limit_s: float = 120) -> str:
    deadline = time.monotonic() + limit_s
    status = "?"
    while time.monotonic() < deadline:
        try:
            response = b.http.get(f"/v1/jobs/{job_id}", timeout=30)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        status = response.json().get("status", "?") if response.status_code == 200 else "gone"
        if status not in ("queued", "running"):
            break
        time.sleep(0.1)
    with b.lock:
        b.counts[kind][f"job {status}"] += 1
    if status in ("queued", "running"):
        b.problems.append(f"{kind}: job {job_id} still {status} after {limit_s:.0f} s")
    return status


def attack_video_races(b: Battery, clip: bytes, trials: int) -> None:
    """A finished video job fetched and deleted at once; then a delete while it runs."""
    kind = "fetch-while-delete"
    short = 0
    for trial in range(trials):
        posted = b.post(kind, "/v1/colorize/video", files={"video": ("clip.mp4", clip)})
        if posted is None or posted.status_code != 202:
            continue
        job_id = posted.json()["id"]
        if wait_job(b, kind, job_id) != "done":
            continue
        start = threading.Barrier(2)
        answers: dict[str, httpx.Response | None] = {}

        def fetch(job_id=job_id, start=start, answers=answers):
            start.wait()
            answers["get"] = b.request(kind, "GET", f"/v1/jobs/{job_id}/result")

        thread = threading.Thread(target=fetch)
        thread.start()
        start.wait()
        if trial % 2:
            time.sleep(0.002)  # now and then let the download start first
        b.request(kind, "DELETE", f"/v1/jobs/{job_id}")
        thread.join(READ_GUARD_S + 10)
        got = answers.get("get")
        if got is not None and got.status_code == 200:
            declared = int(got.headers.get("content-length", -1))
            if len(got.content) != declared or not got.content:
                short += 1
                b.problems.append(f"{kind}: short body {len(got.content)} of {declared}")
        b.request(kind, "GET", f"/v1/jobs/{job_id}/result")  # after: 410
    for _ in range(2):  # cancel a running job, then fetch it
        posted = b.post(kind, "/v1/colorize/video", files={"video": ("clip.mp4", clip)})
        if posted is not None and posted.status_code == 202:
            job_id = posted.json()["id"]
            b.request(kind, "DELETE", f"/v1/jobs/{job_id}")
            b.request(kind, "GET", f"/v1/jobs/{job_id}/result")
            wait_job(b, kind, job_id)
    with b.lock:
        b.counts[kind][f"short bodies {short}"] += 1


def attack_keys(b: Battery, photo: bytes) -> None:
    kind = "API keys"
    variants: dict[str, Mapping[str, str] | Mapping[bytes, bytes] | list[tuple[str, str]]] = {
        "none": {},
        "empty X-API-Key": {"X-API-Key": ""},
        "wrong": {"X-API-Key": "wrong-key-0123456789abcdef0123"},
        "prefix": {"X-API-Key": KEY[:-1]},
        "longer": {"X-API-Key": KEY + "x"},
        "upper case": {"X-API-Key": KEY.upper()},
        "space after": {"X-API-Key": KEY + " "},
        "NUL inside": {"X-API-Key": KEY[:5] + "\x00" + KEY[5:]},
        "utf-8": {b"X-API-Key": "ключ".encode()},
        "bearer wrong": {"Authorization": "Bearer nope"},
        "bearer empty": {"Authorization": "Bearer "},
        "basic with key": {"Authorization": "Basic " + KEY},
        "bearer lower-case scheme": {"Authorization": "bearer " + KEY},
        "key as header name": {KEY: "1"},
        "two X-API-Key, 2nd right": [("X-API-Key", "nope"), ("X-API-Key", KEY)],
    }
    image = {"image": ("a.jpg", photo, "image/jpeg")}
    anonymous = httpx.Client(base_url=b.server.url, timeout=READ_GUARD_S)
    try:
        for what, headers in variants.items():
            for method, path, kwargs in (
                ("GET", "/v1/models", {}),
                ("POST", "/v1/colorize", {"files": image}),
                ("POST", "/v1/suggest", {"files": image, "data": {"x": "1", "y": "1"}}),
                ("GET", "/v1/jobs/abc", {}),
                ("DELETE", "/v1/jobs/abc", {}),
            ):
                try:
                    response = anonymous.request(method, path, headers=headers, **kwargs)
                except httpx.HTTPError as error:
                    b.check(kind, type(error).__name__, b"", what)
                    continue
                b.check(kind, response.status_code, response.content, f"{what} {path}")
                if response.status_code < 400 and what not in ACCEPTABLE:
                    b.problems.append(f"{kind}: {what} {method} {path}: {response.status_code}")
        for path in (f"/v1/models?api_key={KEY}", f"/v1/models?key={KEY}"):
            response = anonymous.get(path)
            b.check(kind, response.status_code, response.content, "key in the query")
    finally:
        anonymous.close()
    good = b.request(kind, "GET", "/v1/models")  # the right key, as X-API-Key
    bearer = httpx.get(f"{b.server.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    b.check(kind, bearer.status_code, bearer.content, "the right key as a bearer token")
    if good is None or good.status_code != 200 or bearer.status_code != 200:
        b.problems.append(f"{kind}: the right key was refused")
    attack_host(b, kind="foreign Host (keyed server)")


# --- running it -------------------------------------------------------------------------------


def run_battery(args: argparse.Namespace, results: Results, folder: Path) -> None:
    clip_path = folder / "clip.mp4"
    tiny_clip(clip_path)
    clip = clip_path.read_bytes()
    photo = photo_bytes(320, 240)
    max_upload_mb, max_video_mb = 25.0, 4.0
    extra = ["--max-video-mb", str(max_video_mb), "--workers", "2"]
    print(f"hostile battery against colorize serve on 127.0.0.1 (extra: {' '.join(extra)})")
    server = Server(folder, extra)
    battery = Battery(server)
    memory: dict[str, float] = {}
    timings: dict[str, float] = {}
    try:
        warm = battery.post("warm-up", "/v1/colorize", files={"image": ("a.jpg", photo)})
        if warm is None or warm.status_code != 200:
            raise SystemExit(f"warm-up failed: {warm and warm.text}")
        steps: list[tuple[str, Callable[[], object]]] = [
            # first, so that its memory is not hidden by an earlier peak
            ("7000x7000 PNG", lambda: memory.update(attack_7000(battery))),
            ("malformed multipart", lambda: attack_malformed_multipart(battery, photo)),
            ("missing/extra fields", lambda: attack_fields(battery, photo)),
            ("huge Content-Length", lambda: attack_content_length(battery)),
            ("bodies over the limit", lambda: attack_over_limit(battery, max_upload_mb,
                                                                max_video_mb)),
            ("decompression bombs", lambda: attack_bombs(battery)),
            ("truncated/corrupt images", lambda: attack_corrupt(battery, clip)),
            ("foreign Host", lambda: attack_host(battery)),
            ("path traversal", lambda: attack_traversal(battery, photo)),
            ("UTF-8/control characters", lambda: attack_utf8(battery, photo)),
            ("unknown models", lambda: attack_models(battery, photo)),
            ("absurd sizes", lambda: attack_sizes(battery, photo)),
            ("slow connections", lambda: attack_slow(battery, SLOW_CONNECTIONS)),
            ("connection flood", lambda: attack_flood(battery, FLOOD_CONNECTIONS)),
            ("fetch-while-delete", lambda: attack_video_races(battery, clip, args.race_trials)),
        ]  # fmt: skip
        for name, step in steps:
            watch = Stopwatch()
            step()
            timings[name] = watch.elapsed()
            alive = battery.healthy()
            state = "alive" if alive else "NOT ANSWERING"
            print(
                f"  {name:28s} {timings[name]:6.1f} s  "
                f"peak RSS {server.peak_rss_mb:6.0f} MB  {state}"
            )
            if not alive:
                battery.problems.append(f"after {name}: /healthz did not answer")
                break
    finally:
        battery.http.close()
        server.stop()
    log_tracebacks = server.log.read_text(errors="replace").count("Traceback")
    leftovers = [p.name for p in server.tmp.iterdir()] if server.tmp.exists() else []

    print(f"\napi-key server on 127.0.0.1 (COLORIZER_API_KEY of {len(KEY)} characters)")
    keyed = Server(folder, ["--workers", "1"], key=KEY)
    key_battery = Battery(keyed, key=KEY)
    try:
        attack_keys(key_battery, photo_bytes(64, 48))
    finally:
        key_battery.http.close()
        keyed.stop()
    log_tracebacks += keyed.log.read_text(errors="replace").count("Traceback")

    print(f"\n{'attack':30s} {'requests':>8s}  statuses")
    total = 0
    for current in (battery, key_battery):
        for kind, counter in current.counts.items():
            requests = sum(n for status, n in counter.items() if isinstance(status, int))
            requests += sum(n for s, n in counter.items() if s in ("closed", "garbled"))
            requests += sum(n for s, n in counter.items() if str(s).endswith("Error"))
            requests += counter.get("held (open)", 0)
            total += requests
            statuses = ", ".join(f"{status}: {n}" for status, n in sorted(
                counter.items(), key=lambda item: str(item[0])))  # fmt: skip
            print(f"{kind:30s} {requests:8d}  {statuses}")
            results.add({"attack": kind}, requests=requests,
                        statuses={str(s): n for s, n in counter.items()})  # fmt: skip
    problems = battery.problems + key_battery.problems
    print(f"{'total':30s} {total:8d}")
    print(f"\nserver RSS (it and its workers): peak {server.peak_rss_mb:.0f} MB, VmHWM "
          f"{server.hwm_mb:.0f} MB; api-key server peak {keyed.peak_rss_mb:.0f} MB")  # fmt: skip
    for name, value in memory.items():
        print(f"  {name}: {value:.0f}")
    jumps = sorted(battery.jumps + key_battery.jumps, reverse=True)
    print("requests that raised the server's peak memory (VmHWM) by over 200 MB:")
    for added, hwm, kind, what in jumps[:15]:
        print(f"  +{added:5.0f} MB to {hwm:5.0f} MB  [{kind}] {what}")
    for note in battery.notes:
        print(f"  note: {note}")
    print(f"tracebacks in the server logs: {log_tracebacks}; left in its temp folder: {leftovers}")
    verdict = "under" if server.hwm_mb < RSS_LIMIT_MB else "OVER"
    print(f"peak {verdict} {RSS_LIMIT_MB} MB")
    print(f"problems: {len(problems)}")
    for problem in problems[:50]:
        print(f"  {problem}")
    results.add(
        {"attack": "all"},
        requests=total,
        problems=len(problems),
        rss_peak_mb=server.peak_rss_mb,
        vmhwm_mb=server.hwm_mb,
        keyed_rss_peak_mb=keyed.peak_rss_mb,
        log_tracebacks=log_tracebacks,
        **memory,
    )


# --- kill -9 trials -------------------------------------------------------------------------


def run_killed(
    command: list[str], ready: Callable[[], bool] | None = None, delay: float = 0.0
) -> tuple[bool, float]:
    """Run ``command``; once ``ready()`` holds, wait ``delay`` s and SIGKILL its process group.
    Without ``ready``, run it to the end (bounded). Returns (killed, seconds)."""
    quiet = subprocess.DEVNULL
    watch = Stopwatch()
    process = subprocess.Popen(command, stdout=quiet, stderr=quiet, start_new_session=True)
    deadline = time.monotonic() + 600
    if ready is None:
        process.wait(600)
        return False, watch.elapsed()
    while process.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        process.wait(delay)
        return False, watch.elapsed()
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True, watch.elapsed()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def readable(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except Exception:  # any failure: not readable
        return False


def kill_trials(args: argparse.Namespace, results: Results, folder: Path) -> None:
    rng = random.Random(args.seed)
    photos = folder / "photos"
    photos.mkdir()
    for index in range(20):
        width, height = 480 + 16 * (index % 5), 360 + 16 * (index % 4)
        (photos / f"p{index:02d}.jpg").write_bytes(photo_bytes(width, height))
    image_command = [*colorize("image", str(photos)), "-q", "-o"]
    reference = folder / "reference"
    watch = Stopwatch()
    subprocess.run([*image_command, str(reference)], check=True, capture_output=True)
    full_s = watch.elapsed()
    expected = snapshot(reference)
    again = folder / "again"  # is an uninterrupted run itself repeatable?
    subprocess.run([*image_command, str(again)], check=True, capture_output=True)
    repeatable = snapshot(again) == expected
    print(f"\nkill -9 of colorize image: 20 photos, uninterrupted {full_s:.1f} s, "
          f"outputs {'repeatable' if repeatable else 'NOT repeatable'} byte for byte")  # fmt: skip
    for trial in range(args.kill_trials):
        out = folder / f"image-trial-{trial}"
        after_outputs = rng.randint(0, 19)  # killed once this many are written, plus a little
        delay = rng.uniform(0.3, 1.5) if after_outputs == 0 else rng.uniform(0.0, 0.1)

        def ready(out=out, after_outputs=after_outputs) -> bool:
            names = [p.name for p in out.iterdir()] if out.exists() else []
            return sum(1 for name in names if name in expected) >= after_outputs

        killed, kill_at = run_killed([*image_command, str(out)], ready, delay)
        at_kill = sorted(out.iterdir()) if out.exists() else []
        done = sum(1 for p in at_kill if p.name in expected)
        temps = [p.name for p in at_kill if p.name not in expected]
        broken = sum(
            1 for p in at_kill if p.name in expected and p.read_bytes() != expected[p.name]
        )
        run_killed([*image_command, str(out)])
        after = snapshot(out)
        identical = sum(1 for name, data in after.items() if expected.get(name) == data)
        good = sum(1 for name in after if name in expected and readable(out / name))
        left = sorted(set(after) - set(expected)) + [p.name for p in out.iterdir() if p.is_dir()]
        how = "killed" if killed else "finished before the kill"
        print(
            f"  trial {trial}: {how} at {kill_at:4.1f} s, {done} outputs + {len(temps)} temp "
            f"files then, {broken} differing; after rerun {identical}/20 identical, {good} "
            f"readable, left over: {left or 'nothing'}"
        )
        results.add(
            {"kill": "image", "trial": trial},
            killed=killed,
            kill_at_s=kill_at,
            outputs_at_kill=done,
            temp_files_at_kill=len(temps),
            differing_at_kill=broken,
            identical=identical,
            readable=good,
            left_over=left,
        )
    if not args.video_kill:
        return
    clip = folder / "film.mp4"
    tiny_clip(clip, frames=FILM_FRAMES, width=160, height=120, fps=24)
    video_command = colorize("video", str(clip), "-q", "--segment-seconds", "0.5", "-o")
    ref_video = folder / "video-ref" / "out.mp4"
    ref_video.parent.mkdir()
    work_at: list[float] = []
    watch = Stopwatch()

    def started(parent: Path = ref_video.parent) -> bool:  # its work folder is there
        if any(parent.iterdir()):
            work_at.append(watch.elapsed())
            return True
        return False

    run_killed([*video_command, str(ref_video)], started, delay=600)
    video_s = watch.elapsed()
    working_s = video_s - (work_at[0] if work_at else 0.0)
    again_video = folder / "video-again" / "out.mp4"
    again_video.parent.mkdir()
    subprocess.run([*video_command, str(again_video)], check=True, capture_output=True)
    same = "repeatable" if again_video.read_bytes() == ref_video.read_bytes() else "NOT repeatable"
    print(
        f"kill -9 of colorize video: {FILM_FRAMES} frames 160x120 in 0.5 s segments, "
        f"uninterrupted {video_s:.1f} s ({working_s:.1f} s after start-up), {same} byte for byte"
    )
    for trial in range(args.kill_trials):
        out = folder / f"video-trial-{trial}" / "out.mp4"
        out.parent.mkdir()
        delay = rng.uniform(0.05, 0.95) * working_s

        def begun(parent: Path = out.parent) -> bool:
            return any(parent.iterdir())

        killed, kill_at = run_killed([*video_command, str(out)], begun, delay)
        before = sorted(p for p in out.parent.rglob("*") if p.is_file())
        run_killed([*video_command, str(out)])
        identical = out.exists() and out.read_bytes() == ref_video.read_bytes()
        frames = count_frames(out) if out.exists() else 0
        left = sorted(str(p.relative_to(out.parent)) for p in out.parent.rglob("*") if p != out)
        how = "killed" if killed else "finished before the kill"
        print(
            f"  trial {trial}: {how} at {kill_at:4.1f} s ({len(before)} files in its work folder "
            f"then); after rerun identical: {identical}, frames {frames}/{FILM_FRAMES}, "
            f"left over: {left or 'nothing'}"
        )
        results.add(
            {"kill": "video", "trial": trial},
            killed=killed,
            kill_at_s=kill_at,
            work_files_at_kill=len(before),
            identical=identical,
            frames=frames,
            left_over=left,
        )


def count_frames(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except Exception:  # unreadable counts as 0
        return 0


@benchmark(
    "hostile",
    option("--only", choices=["battery", "kill"], help="one half (default: both)"),
    option("--race-trials", type=int, default=10, help="fetch-while-delete trials (<= 40)"),
    option("--kill-trials", type=int, default=5, help="kill -9 trials each (<= 20)"),
    option("--no-video-kill", dest="video_kill", action="store_false"),
    option("--seed", type=int, default=22),
)
def hostile(args: argparse.Namespace, results: Results) -> None:
    args.race_trials = max(0, min(args.race_trials, 40))
    args.kill_trials = max(0, min(args.kill_trials, 20))
    folder = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        if args.only in (None, "battery"):
            run_battery(args, results, folder)
        if args.only in (None, "kill"):
            kill_trials(args, results, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
