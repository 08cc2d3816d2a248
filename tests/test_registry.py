"""Weight cache and downloads (against a local HTTP server only), model table, weight loading."""

from __future__ import annotations

import hashlib
import http.server
import logging
import re
import socket
import threading
from pathlib import Path

import platformdirs
import pytest
import torch

from colorizer import registry, weights
from colorizer.errors import DownloadError, WeightsError
from colorizer.registry import ModelSpec

PAYLOAD = bytes(range(256)) * 1200 + b"tail"  # ~300 KiB: several read chunks for tqdm


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalServer:
    """HTTP server on 127.0.0.1 with an ephemeral port; ``routes[path] = (behaviour, body)``.

    Behaviours: "ok" serves body; "truncate" declares a longer Content-Length and closes early;
    "stall" sends half of the body, then goes silent. Unknown paths answer 404.
    """

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                behaviour, body = server.routes.get(self.path, ("missing", b""))
                if behaviour == "missing":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                declared = len(body) + (1000 if behaviour == "truncate" else 0)
                self.send_header("Content-Length", str(declared))
                self.end_headers()
                if behaviour == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(10)
                    return
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *args: None  # a client hanging up is expected here
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own empty cache: never the user's real one."""
    home = tmp_path / "home"
    monkeypatch.setenv("COLORIZER_HOME", str(home))
    return home


def register(monkeypatch, name="tiny", *, data=PAYLOAD, url=None, **overrides) -> ModelSpec:
    fields = dict(
        name=name,
        arch="eccv16",
        description=f"test model {name}",
        input_size=256,
        filename=f"{name}-weights.pth",
        url=url,
        size_bytes=len(data),
        sha256=sha(data),
        license="MIT",
        source="tests",
    )
    fields.update(overrides)
    spec = ModelSpec(**fields)
    monkeypatch.setitem(registry.MODELS, name, spec)
    return spec


def served(monkeypatch, server, name="tiny", *, behaviour="ok", body=PAYLOAD, **overrides):
    """Register a model whose URL is on the local server, serving ``body``."""
    path = f"/files/{name}.pth"
    server.routes[path] = (behaviour, body)
    return register(monkeypatch, name, url=server.url(path), **overrides)


def cache_entries(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def assert_hand_placement_hint(message: str, spec: ModelSpec):
    for needle in (
        spec.name,
        spec.filename,
        spec.url,
        spec.sha256,
        str(spec.size_bytes),
        str(weights.cached_path(spec)),
        f"colorize models pull {spec.name}",
        "--weights PATH",
    ):
        assert needle in message, f"{needle!r} missing from:\n{message}"


# ----------------------------------------------------------------------------- cache location


def test_colorizer_home_is_honoured(monkeypatch, tmp_path, server):
    custom = tmp_path / "elsewhere"
    monkeypatch.setenv("COLORIZER_HOME", str(custom))
    spec = served(monkeypatch, server)
    assert weights.cache_dir() == custom
    assert weights.cached_path(spec) == custom / "models" / spec.filename
    assert weights.pull("tiny", progress=False) == custom / "models" / spec.filename
    assert (custom / "models" / spec.filename).read_bytes() == PAYLOAD


def test_cache_dir_defaults_to_platform_cache(monkeypatch):
    monkeypatch.delenv("COLORIZER_HOME")
    assert weights.cache_dir() == Path(platformdirs.user_cache_dir("colorizer"))


# ----------------------------------------------------------------------------- pull


def test_pull_downloads_verifies_and_is_quiet_without_progress(monkeypatch, server, home, capsys):
    spec = served(monkeypatch, server)
    path = weights.pull("tiny", progress=False)
    assert path == home / "models" / spec.filename
    assert path.read_bytes() == PAYLOAD
    weights.verify_file(path, spec)
    assert cache_entries(home) == [spec.filename]  # no temp file left over
    assert server.requests == ["/files/tiny.pth"]
    assert capsys.readouterr().err == ""


def test_pull_shows_progress_on_stderr(monkeypatch, server, capsys):
    spec = served(monkeypatch, server)
    weights.pull("tiny", progress=True)
    captured = capsys.readouterr()
    assert spec.filename in captured.err
    assert captured.out == ""


def test_cache_hit_makes_no_request(monkeypatch, server, home):
    served(monkeypatch, server)
    first = weights.pull("tiny", progress=False)
    second = weights.pull("tiny", progress=False)
    assert first == second == weights.ensure_weights("tiny")
    assert len(server.requests) == 1


def test_force_downloads_again(monkeypatch, server):
    served(monkeypatch, server)
    weights.pull("tiny", progress=False)
    weights.pull("tiny", progress=False, force=True)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-10], id="truncated"),
        pytest.param(lambda b: b"X" + b[1:], id="same-size-flipped-byte"),
    ],
)
def test_corrupt_cached_file_is_detected_and_replaced(monkeypatch, server, home, caplog, damage):
    spec = served(monkeypatch, server)
    path = weights.cached_path(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(damage(PAYLOAD))
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        weights.ensure_weights("tiny")
    with caplog.at_level(logging.WARNING, logger="colorizer.weights"):
        assert weights.pull("tiny", progress=False) == path
    assert "downloading it again" in caplog.text and str(path) in caplog.text
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert cache_entries(home) == [spec.filename]


def test_wrong_sha256_on_server_leaves_nothing(monkeypatch, server, home):
    bad = b"Y" * len(PAYLOAD)  # right size, wrong content
    spec = served(monkeypatch, server, body=bad)
    with pytest.raises(DownloadError) as info:
        weights.pull("tiny", progress=False)
    message = str(info.value)
    assert "sha256 mismatch" in message
    assert spec.sha256 in message and sha(bad) in message
    assert cache_entries(home) == []


def test_wrong_size_on_server_leaves_nothing(monkeypatch, server, home):
    spec = served(monkeypatch, server, body=PAYLOAD + b"extra")
    with pytest.raises(DownloadError, match="wrong size") as info:
        weights.pull("tiny", progress=False)
    assert spec.sha256 in str(info.value)
    assert cache_entries(home) == []


def test_connection_dropped_mid_body_leaves_nothing(monkeypatch, server, home):
    served(monkeypatch, server, behaviour="truncate")
    with pytest.raises(DownloadError, match="connection closed after"):
        weights.pull("tiny", progress=False)
    assert cache_entries(home) == []


def test_stalled_server_times_out_and_leaves_nothing(monkeypatch, server, home):
    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT", 0.3)
    served(monkeypatch, server, behaviour="stall")
    with pytest.raises(DownloadError, match="timed out"):
        weights.pull("tiny", progress=False)
    assert cache_entries(home) == []


def test_keyboard_interrupt_mid_download_leaves_nothing(monkeypatch, server, home):
    served(monkeypatch, server)

    class InterruptingBar:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(weights, "_progress_bar", lambda *args: InterruptingBar())
    with pytest.raises(KeyboardInterrupt):
        weights.pull("tiny", progress=False)
    assert cache_entries(home) == []


def test_interrupted_forced_download_keeps_good_cached_file(monkeypatch, server, home):
    spec = served(monkeypatch, server)
    path = weights.pull("tiny", progress=False)
    server.routes["/files/tiny.pth"] = ("truncate", PAYLOAD)
    with pytest.raises(DownloadError):
        weights.pull("tiny", progress=False, force=True)
    assert path.read_bytes() == PAYLOAD
    assert cache_entries(home) == [spec.filename]


def test_404_explains_how_to_place_the_file_by_hand(monkeypatch, server, home):
    spec = register(monkeypatch, url=server.url("/gone.pth"))
    with pytest.raises(DownloadError) as info:
        weights.pull("tiny", progress=False)
    message = str(info.value)
    assert "HTTP 404" in message
    assert_hand_placement_hint(message, spec)
    assert cache_entries(home) == []


def test_unreachable_host_is_a_download_error(monkeypatch, home):
    with socket.socket() as s:  # grab a free port, then close it: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = register(monkeypatch, url=f"http://127.0.0.1:{port}/w.pth")
    with pytest.raises(DownloadError) as info:
        weights.pull("tiny", progress=False)
    assert_hand_placement_hint(str(info.value), spec)
    assert cache_entries(home) == []


def test_model_without_url_must_be_placed_by_hand(monkeypatch):
    spec = register(monkeypatch, url=None)
    with pytest.raises(DownloadError, match="no download URL") as info:
        weights.pull("tiny", progress=False)
    assert str(weights.cached_path(spec)) in str(info.value)


def test_packaged_model_is_never_downloaded(monkeypatch, server, tmp_path):
    data_dir = tmp_path / "pkgdata"
    data_dir.mkdir()
    monkeypatch.setattr(weights, "_package_data_dir", lambda: data_dir)
    spec = served(monkeypatch, server, packaged=True)
    (data_dir / spec.filename).write_bytes(PAYLOAD)
    assert weights.pull("tiny", progress=False, force=True) == data_dir / spec.filename
    assert weights.ensure_weights("tiny") == data_dir / spec.filename
    assert server.requests == []


# ----------------------------------------------------------------------------- ensure_weights


def test_ensure_weights_missing_gives_hand_placement_instructions(monkeypatch, server):
    spec = served(monkeypatch, server)
    with pytest.raises(WeightsError) as info:
        weights.ensure_weights("tiny")
    assert not isinstance(info.value, DownloadError)
    assert_hand_placement_hint(str(info.value), spec)
    assert server.requests == []


def test_ensure_weights_missing_for_a_published_model():
    spec = registry.model_spec("eccv16")
    with pytest.raises(WeightsError) as info:
        weights.ensure_weights("eccv16")
    assert_hand_placement_hint(str(info.value), spec)


def test_ensure_weights_reverifies_each_time(monkeypatch, server):
    spec = served(monkeypatch, server)
    path = weights.pull("tiny", progress=False)
    assert weights.ensure_weights("tiny") == path
    path.write_bytes(b"Z" + PAYLOAD[1:])
    with pytest.raises(WeightsError) as info:
        weights.ensure_weights("tiny")
    message = str(info.value)
    assert str(path) in message and spec.sha256 in message and sha(path.read_bytes()) in message


def test_verify_file_reports_expected_and_actual(tmp_path, monkeypatch):
    spec = register(monkeypatch, data=b"abc")
    f = tmp_path / "w.bin"
    f.write_bytes(b"abcd")
    with pytest.raises(WeightsError, match=rf"{re.escape(str(f))}.*expected 3 bytes, actual 4"):
        weights.verify_file(f, spec)
    f.write_bytes(b"abd")
    with pytest.raises(WeightsError) as info:
        weights.verify_file(f, spec)
    assert str(f) in str(info.value)
    assert sha(b"abc") in str(info.value) and sha(b"abd") in str(info.value)
    f.write_bytes(b"abc")
    weights.verify_file(f, spec)


# ----------------------------------------------------------------------------- names, table


@pytest.mark.parametrize("call", [weights.pull, weights.ensure_weights, registry.model_spec])
def test_unknown_model_lists_known_names(call):
    with pytest.raises(WeightsError, match="unknown model 'nope'") as info:
        call("nope")
    for known in ("eccv16", "siggraph17", "eccv16-caffe"):
        assert known in str(info.value)


def test_model_table_statuses(monkeypatch, tmp_path):
    data_dir = tmp_path / "pkgdata"
    monkeypatch.setattr(weights, "_package_data_dir", lambda: data_dir)
    monkeypatch.setattr(registry, "MODELS", {})
    register(monkeypatch, "shipped", packaged=True)
    cached = register(monkeypatch, "cached")
    register(monkeypatch, "absent")
    corrupt = register(monkeypatch, "corrupt")
    for spec, data in ((cached, PAYLOAD), (corrupt, PAYLOAD[:100])):
        weights.cached_path(spec).parent.mkdir(parents=True, exist_ok=True)
        weights.cached_path(spec).write_bytes(data)
    rows = {row["name"]: row for row in weights.model_table()}
    assert {name: row["status"] for name, row in rows.items()} == {
        "shipped": "packaged",
        "cached": "cached",
        "absent": "not downloaded",
        "corrupt": "corrupt",
    }
    assert rows["cached"]["path"] == str(weights.cached_path(cached))
    assert set(rows["cached"]) >= {"name", "description", "arch", "size", "license", "status"}


def test_model_table_for_the_real_registry():
    rows = {row["name"]: row for row in weights.model_table()}
    assert set(rows) == set(registry.MODELS)
    assert rows["eccv16"]["size"] == "123.0 MiB"
    assert rows["eccv16"]["license"] == "BSD-2-Clause"
    assert rows["eccv16"]["arch"] == "eccv16"
    shipped = {"colornet-v1", "colornet-v2", "colornet-v3"}
    assert all(rows[name]["status"] == "packaged" for name in shipped)
    published = [row for name, row in rows.items() if name not in shipped]
    assert all(row["status"] == "not downloaded" for row in published)


def test_published_specs_are_complete():
    for spec in registry.MODELS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec.name
        assert spec.size_bytes and spec.size_bytes > 0, spec.name
        if spec.url:
            assert spec.url.rsplit("/", 1)[-1] == spec.filename, spec.name


@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (128_976_165, "123.0 MiB")],
)
def test_human_size(n, text):
    assert weights.human_size(n) == text


# ----------------------------------------------------------------------------- weight loading


def small_state() -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.arange(12.0).reshape(2, 1, 2, 3), "conv.bias": torch.ones(2)}


def assert_same_state(a: dict, b: dict):
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_load_pth(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(small_state(), path)
    assert_same_state(weights.load_state_dict_file(path, "eccv16"), small_state())


def test_load_training_checkpoint_unwraps_model(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": small_state(), "epoch": 3}, path)
    assert_same_state(weights.load_state_dict_file(path, "eccv16"), small_state())


def test_load_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file(small_state(), str(path))
    assert_same_state(weights.load_state_dict_file(path, "eccv16"), small_state())


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_load_garbage_names_the_file(tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"this is not a weights file" * 10)
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        weights.load_state_dict_file(path, "eccv16")


def test_load_non_state_dict_is_rejected(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match="does not contain a state dict"):
        weights.load_state_dict_file(path, "eccv16")


def test_load_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        weights.load_state_dict_file(tmp_path / "nope.pth", "eccv16")
