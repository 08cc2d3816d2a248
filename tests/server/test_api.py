"""The REST API against a real uvicorn server on 127.0.0.1, with a tiny constant model."""

from __future__ import annotations

import base64
import io
import json
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the app extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from colorizer.pipeline import Colorizer  # noqa: E402
from colorizer.server import ServerSettings, create_app  # noqa: E402
from colorizer.server import models as server_models  # noqa: E402
from tests.server.live_server import LiveServer, wait_for  # noqa: E402

MODEL = "test-constant"
RELEASE_LIMIT_S = 30.0  # a blocked worker gives up after this, so a failing test cannot hang


def png_bytes(width: int = 96, height: int = 64, mode: str = "L") -> bytes:
    ramp = np.linspace(0, 255, width * height, dtype=np.float32).reshape(height, width)
    image = Image.fromarray(ramp.astype(np.uint8), "L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class BlockingColorizer(Colorizer):
    """The constant model, but every network call waits until ``gate`` is set."""

    gate: threading.Event

    def predict_ab(self, lightness):
        self.gate.wait(RELEASE_LIMIT_S)
        return super().predict_ab(lightness)


def settings(tmp_path, **overrides) -> ServerSettings:
    values = {
        "model": MODEL,
        "device": "cpu",
        "max_upload_bytes": 200_000,
        "max_pixels": 1_000_000,
        "temp_dir": tmp_path / "temp",
        "janitor_interval_s": 3600,
    }
    values.update(overrides)
    return ServerSettings(**values)


@pytest.fixture(scope="module")
def server(constant, tmp_path_factory):
    app = create_app(settings(tmp_path_factory.mktemp("server")), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def blocking(constant_weights):
    colorizer = BlockingColorizer(MODEL, weights=constant_weights, size=64, device="cpu")
    colorizer.gate = threading.Event()
    yield colorizer
    colorizer.gate.set()


def post_image(url: str, image: bytes | None = None, **kwargs) -> httpx.Response:
    files = {"image": ("photo.png", png_bytes() if image is None else image, "image/png")}
    return httpx.post(f"{url}/v1/colorize", files=files, timeout=60, **kwargs)


def detail(response: httpx.Response) -> str:
    message = response.json()["detail"]
    assert isinstance(message, str)
    assert "Traceback" not in message
    assert "colorizer-server-" not in message  # no server paths
    return message


# --- endpoints -------------------------------------------------------------------------------


def test_healthz_and_models(server):
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok"
    assert MODEL in health["models_loaded"]
    listing = httpx.get(f"{server.url}/v1/models").json()
    assert listing["default"] == MODEL
    names = {m["name"]: m for m in listing["models"]}
    assert names[MODEL]["available"] and names[MODEL]["default"]
    assert names["colornet-v1"]["status"] == "packaged"


def test_colorize_returns_the_full_resolution_png(server, constant):
    response = post_image(server.url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    expected = np.asarray(constant.colorize(Image.open(io.BytesIO(png_bytes()))))
    assert result.shape == (64, 96, 3)
    np.testing.assert_array_equal(result, expected)


def test_accept_chooses_jpeg_or_png(server):
    jpeg = post_image(server.url, headers={"Accept": "image/jpeg"})
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert jpeg.content[:3] == b"\xff\xd8\xff"
    png = post_image(server.url, headers={"Accept": "image/jpeg;q=0.5, image/png"})
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    refused = post_image(server.url, headers={"Accept": "application/json"})
    assert refused.status_code == 406
    assert "image/png" in detail(refused)


def test_options_as_form_fields_or_one_json_object(server):
    fields = post_image(server.url, data={"size": "32"})
    assert fields.status_code == 200
    as_json = post_image(server.url, data={"options": json.dumps({"size": 32})})
    assert as_json.status_code == 200
    assert as_json.content == fields.content
    bad_size = post_image(server.url, data={"size": "12"})
    assert bad_size.status_code == 400
    assert "multiple of 8" in detail(bad_size)
    unknown = post_image(server.url, data={"model": "no-such-model"})
    assert unknown.status_code == 400
    assert "no-such-model" in detail(unknown) and MODEL in detail(unknown)
    for options, words in [("{not json", "not valid JSON"), ('{"colour": 1}', "unknown keys")]:
        response = post_image(server.url, data={"options": options})
        assert response.status_code == 400
        assert words in detail(response)


def _zip_named_png() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.png", png_bytes())
    return buffer.getvalue()


def _large_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (400, 400), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    return buffer.getvalue()  # about 160 KB of incompressible noise, then doubled below


def _many_pixels_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (1200, 1000)).save(buffer, "PNG")  # 1.2 MP, a few KB
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda: b"just some text, not a photo\n", 400, "not an image"),
        (lambda: png_bytes()[:200], 400, "cannot read the uploaded image"),
        (lambda: b"", 400, "empty"),
        (_zip_named_png, 400, "zip"),
        (lambda: _large_png() * 2, 413, "too large"),
        (_many_pixels_png, 413, "pixels"),
    ],
    ids=["not-an-image", "truncated", "zero-size", "png-that-is-a-zip", "too-large", "too-many-px"],
)
def test_bad_uploads_get_a_readable_error(server, make, status, words):
    response = post_image(server.url, make())
    assert response.status_code == status, response.text
    assert words in detail(response).lower() or words in detail(response)
    assert not any((server.state.temp.root / "uploads").iterdir())  # nothing left behind


def test_a_missing_image_field_is_named(server):
    response = httpx.post(f"{server.url}/v1/colorize", data={"size": "32"})
    assert response.status_code == 422
    assert "image" in json.dumps(response.json()["detail"])


def test_client_file_names_are_never_paths(server, tmp_path):
    files = {"image": ("../../../../evil.png", png_bytes(), "image/png")}
    response = httpx.post(f"{server.url}/v1/colorize", files=files)
    assert response.status_code == 200
    temp = server.state.temp.root
    assert not (temp.parent / "evil.png").exists()
    assert not any((temp / "uploads").iterdir())


def test_concurrent_requests_share_one_model_loaded_once(constant, tmp_path, monkeypatch):
    loads = []

    def load(name, **kwargs):
        loads.append(name)
        return constant

    monkeypatch.setattr(server_models, "Colorizer", load)
    app = create_app(settings(tmp_path, model="colornet-v1", image_workers=2))
    with LiveServer(app) as live, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post_image(live.url), range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        assert len({r.content for r in responses}) == 1
        assert loads == ["colornet-v1"]
        assert live.state.pool.loads == 1


def test_a_full_image_queue_answers_429_and_then_recovers(blocking, tmp_path):
    app = create_app(
        settings(tmp_path, image_workers=1, max_pending_images=2), colorizers={MODEL: blocking}
    )
    with LiveServer(app) as live, ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(post_image, live.url) for _ in range(2)]
        wait_for(lambda: live.state.images.pending == 2, "two requests in the pool")
        refused = post_image(live.url)
        assert refused.status_code == 429
        assert "busy" in detail(refused)
        assert refused.headers["retry-after"]
        blocking.gate.set()
        assert [f.result().status_code for f in waiting] == [200, 200]
        assert post_image(live.url).status_code == 200


def test_a_request_over_the_time_limit_answers_504(blocking, tmp_path):
    app = create_app(settings(tmp_path, request_timeout_s=0.2), colorizers={MODEL: blocking})
    with LiveServer(app) as live:
        response = post_image(live.url)
        assert response.status_code == 504
        assert "limit" in detail(response)
        blocking.gate.set()


def test_api_key_guards_the_api_but_not_healthz(constant, tmp_path):
    app = create_app(settings(tmp_path, api_key="s3cret"), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/healthz").status_code == 200
        refused = httpx.get(f"{live.url}/v1/models")
        assert refused.status_code == 401
        assert "API key" in detail(refused)
        assert post_image(live.url).status_code == 401
        wrong = httpx.get(f"{live.url}/v1/models", headers={"X-API-Key": "guess"})
        assert wrong.status_code == 401
        assert httpx.get(f"{live.url}/v1/models", headers={"X-API-Key": "s3cret"}).is_success
        bearer = {"Authorization": "Bearer s3cret"}
        assert post_image(live.url, headers=bearer).status_code == 200
    assert not live.state.temp.root.exists()  # the temp area goes with the server


def test_a_public_address_needs_an_api_key():
    with pytest.raises(Exception, match="API key"):
        create_app(ServerSettings(host="0.0.0.0"))
    ServerSettings(host="0.0.0.0", api_key="k" * 16).check()  # issue 22: keys of 16 or more
    ServerSettings(host="::1").check()
    ServerSettings(host="localhost").check()


def test_openapi_document_matches_the_routes(server):
    document = httpx.get(f"{server.url}/openapi.json").json()
    paths = document["paths"]
    expected = {
        "/healthz": {"get"},
        "/v1/models": {"get"},
        "/v1/colorize": {"post"},
        "/v1/suggest": {"post"},
        "/v1/colorize/video": {"post"},
        "/v1/jobs/{job_id}": {"get", "delete"},
        "/v1/jobs/{job_id}/result": {"get"},
        "/v1/examples": {"get"},
        "/v1/examples/{name}": {"get"},
        "/v1/inspect": {"post"},
    }
    assert {path: set(ops) for path, ops in paths.items()} == expected
    colorize = paths["/v1/colorize"]["post"]
    body = colorize["requestBody"]["content"]["multipart/form-data"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert schema["required"] == ["image"]
    assert {"image", "model", "size", "hints", "reference", "scribbles", "options"} <= set(
        schema["properties"]
    )
    assert set(colorize["responses"]["200"]["content"]) == {"image/png", "image/jpeg"}
    for status in ("400", "413", "429", "504"):
        assert status in colorize["responses"]
    assert "429" in paths["/v1/colorize/video"]["post"]["responses"]
    assert "410" in paths["/v1/jobs/{job_id}/result"]["get"]["responses"]


def test_janitor_removes_old_uploads(server):
    stale = server.state.temp.upload_path()
    stale.write_bytes(b"left by a killed request")
    assert server.state.temp.sweep_uploads(older_than_s=-1) == 1
    assert not stale.exists()


# --- command line ----------------------------------------------------------------------------


def test_cli_refuses_a_public_address_without_a_key(capsys, monkeypatch):
    from colorizer.cli import main

    monkeypatch.delenv("COLORIZER_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "API key" in capsys.readouterr().err


def test_cli_without_the_extra_says_what_to_install(capsys, monkeypatch):
    from colorizer.cli import main
    from colorizer.server import cli as server_cli

    monkeypatch.setattr(server_cli, "missing_packages", lambda: ["fastapi", "uvicorn"])
    assert main(["app", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "fastapi, uvicorn" in err and 'pip install "colorizer[app]"' in err


@pytest.mark.parametrize(("argv", "browser"), [(["app"], True), (["app", "--no-browser"], False)])
def test_cli_app_serves_on_localhost_and_opens_the_browser(monkeypatch, argv, browser):
    from colorizer.cli import main
    from colorizer.server import cli as server_cli

    calls = []

    def fake_serve(settings, sock, *, browser):
        calls.append((settings, sock.getsockname(), browser))
        sock.close()
        return 0

    monkeypatch.setattr(server_cli, "serve", fake_serve)
    monkeypatch.setenv("COLORIZER_API_KEY", "from-env")
    assert main([*argv, "--port", "0", "--workers", "3"]) == 0
    settings, (host, port), opened = calls[0]
    assert (host, opened) == ("127.0.0.1", browser)
    assert settings.port == port > 0 and settings.image_workers == 3
    assert settings.api_key == "from-env"


def test_the_browser_opens_once_the_server_has_started(monkeypatch):
    import webbrowser

    from colorizer.server import cli as server_cli

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)

    class Started:
        started, should_exit = True, False

    server_cli._open_when_ready(Started(), "http://localhost:8000/")
    assert opened == ["http://localhost:8000/"]


# --- guidance: hints, scribbles, reference, suggestions ----------------------------------------

GREEN_HINT = [{"x": 30, "y": 20, "color": "#20c020"}]


def pixel(response: httpx.Response, x: int, y: int) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))[y, x].astype(int)


def test_point_hints_colour_the_result_there(server):
    plain = pixel(post_image(server.url), 30, 20)
    hinted = post_image(server.url, data={"hints": json.dumps(GREEN_HINT)})
    red, green, blue = pixel(hinted, 30, 20)
    assert green > red + 20 and green > blue + 20, (plain, (red, green, blue))
    as_options = post_image(server.url, data={"options": json.dumps({"hints": GREEN_HINT})})
    assert as_options.content == hinted.content


def test_bad_hints_name_the_entry(server):
    response = post_image(server.url, data={"hints": '[{"x": 3, "y": 4, "color": "#20c020"}, 7]'})
    assert response.status_code == 400
    assert "1" in detail(response)
    outside = post_image(server.url, data={"hints": '[{"x": 500, "y": 4, "color": "#20c020"}]'})
    assert outside.status_code == 400, outside.text


def test_scribbles_at_another_size_are_scaled_to_the_photo(server):
    strokes = Image.new("RGBA", (48, 32), (0, 0, 0, 0))
    strokes.paste((30, 190, 30, 255), (10, 6, 20, 12))  # photo pixels (20..40, 12..24)
    buffer = io.BytesIO()
    strokes.save(buffer, "PNG")
    files = {
        "image": ("photo.png", png_bytes(), "image/png"),
        "scribbles": ("s.png", buffer.getvalue(), "image/png"),
    }
    response = httpx.post(f"{server.url}/v1/colorize", files=files)
    red, green, blue = pixel(response, 30, 18)
    assert green > red + 20 and green > blue + 20


def _blue_photo() -> bytes:
    y, x = np.mgrid[0:64, 0:96]
    rgb = np.stack([40 + x, 60 + y, 200 + 0 * x], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_reference_photo_as_a_file_or_a_data_url(server):
    plain = post_image(server.url)
    files = {
        "image": ("photo.png", png_bytes(), "image/png"),
        "reference": ("ref.png", _blue_photo(), "image/png"),
    }
    referenced = httpx.post(f"{server.url}/v1/colorize", files=files)
    assert referenced.status_code == 200, referenced.text
    assert referenced.content != plain.content
    url = "data:image/png;base64," + base64.b64encode(_blue_photo()).decode()
    as_options = post_image(server.url, data={"options": json.dumps({"reference": url})})
    assert as_options.content == referenced.content
    broken = post_image(server.url, data={"options": json.dumps({"reference": "blue"})})
    assert broken.status_code == 400
    assert "data: URL" in detail(broken)


def test_suggested_colours_at_a_point(server):
    files = {"image": ("photo.png", png_bytes(), "image/png")}
    response = httpx.post(f"{server.url}/v1/suggest", files=files, data={"x": "30", "y": "20"})
    assert response.status_code == 200, response.text
    found = response.json()
    assert (found["x"], found["y"]) == (30, 20)
    assert 1 <= len(found["suggestions"]) <= 5
    first = found["suggestions"][0]
    assert first["hex"].startswith("#") and len(first["hex"]) == 7
    assert 0 < first["probability"] <= 1


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    response = post_image(server.url, b"\0" * 3_000_000)
    assert response.status_code == 413
    assert "too large" in detail(response)


def test_another_network_size_shares_the_loaded_network(server):
    pool = server.state.pool
    base, other = pool.get(MODEL), pool.get(MODEL, 32)
    assert other.size == 32 and base.size == 64
    assert other.net is base.net
    assert pool.get(MODEL, 64) is base


# --- examples, queue position and ETA --------------------------------------------------------


def test_examples_are_listed_and_only_those_are_served(constant, tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "b photo.png").write_bytes(png_bytes())
    (folder / "a.jpg").write_bytes(png_bytes())
    (folder / "secret.txt").write_text("not offered")
    app = create_app(settings(tmp_path, examples=folder), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        listed = httpx.get(f"{live.url}/v1/examples").json()["examples"]
        assert [e["name"] for e in listed] == ["a.jpg", "b photo.png"]
        photo = httpx.get(live.url + listed[1]["url"])
        assert photo.status_code == 200 and photo.content == png_bytes()
        for name in ("secret.txt", "..%2Fsettings.py", "%2Fetc%2Fpasswd"):
            answer = httpx.get(f"{live.url}/v1/examples/{name}")
            assert answer.status_code == 404, name
            assert str(folder) not in answer.text
    assert create_app(settings(tmp_path / "none"), colorizers={MODEL: constant})  # no folder


def test_a_queued_job_knows_its_place_and_a_running_one_its_eta():
    import time

    from colorizer.server.jobs import Job, JobQueue
    from colorizer.server.videos import eta_seconds, status_of

    gate = threading.Event()
    queue = JobQueue(workers=1, max_queued=4, result_ttl_s=60)
    jobs = [
        Job(
            id=f"j{i}",
            folder=Path("unused"),
            input=Path("in"),
            output=Path("out"),
            run=lambda job: gate.wait(10),
        )
        for i in range(3)
    ]
    try:
        for job in jobs:
            queue.submit(job)
        wait_for(lambda: jobs[0].status == "running", "the first job to start")
        assert [status_of(job, queue).position for job in jobs] == [None, 0, 1]
        running = jobs[0]
        running.total, running.done, running.started_at = 100, 25, time.time() - 10
        assert eta_seconds(running, 0.25) == pytest.approx(30, abs=1)  # 10 s for a quarter
        assert eta_seconds(running, 0.01) is None  # too early to say
        assert status_of(running, queue).eta_s == pytest.approx(30, abs=1)
    finally:
        gate.set()
        queue.close()


def test_the_result_keeps_the_uploads_metadata_and_says_it_was_colorized(server):
    grey = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (48, 1)), "L")
    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"  # Artist
    buffer = io.BytesIO()
    grey.save(buffer, "JPEG", exif=exif, dpi=(300, 300))
    response = post_image(server.url, buffer.getvalue())
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as result:
        tags = result.getexif()
        assert tags[0x013B] == "A. Photographer"
        assert tags[0x0131].startswith("colorizer ")  # Software
        assert "Colorized by machine" in tags[0x010E]  # ImageDescription
        assert round(result.info["dpi"][0]) == 300


def test_an_8_bit_photo_stays_in_bytes_with_the_same_result(server, constant, monkeypatch):
    expected = np.asarray(constant.colorize(Image.open(io.BytesIO(png_bytes()))))
    monkeypatch.setattr(Colorizer, "colorize_pictures", None)  # the float path is not taken
    response = post_image(server.url)
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), expected)
    uploads = server.state.temp.upload_path().parent
    assert list(uploads.iterdir()) == []  # the upload is gone once answered


def test_a_16_bit_photo_takes_the_float_path(server, constant):
    import cv2

    deep = np.tile(np.linspace(0, 65535, 96).astype(np.uint16), (64, 1))
    _, png = cv2.imencode(".png", np.dstack([deep] * 3))
    response = post_image(server.url, png.tobytes())
    assert response.status_code == 200, response.text
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    expected = constant.colorize(np.dstack([deep] * 3)) / 257  # uint16 in, uint16 out
    assert result.dtype == np.uint8 and result.shape == (64, 96, 3)
    np.testing.assert_allclose(result, expected, atol=1)


def test_a_reference_answer_says_whether_the_photo_matched_it(tmp_path):
    """With a model that has an encoder, ``/v1/colorize`` with a reference says, as an album's
    report does, how much of the photo matched it: the reference's own scene matches, an
    unrelated pattern falls back; without a reference the headers are absent."""
    from colorizer.server.images import MATCH_HEADER, MATCH_SHARE_HEADER
    from tests.guidance.scenes import grey_of, scene

    def png(rgb: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
        return buffer.getvalue()

    y, x = np.mgrid[0:96, 0:128]
    rings = (np.sin(np.hypot(x - 64, y - 48) / 3) * 0.5 + 0.5).astype(np.float32)
    photos = {"scene": grey_of(scene(seed=1)), "rings": np.dstack([rings] * 3)}
    encoder = Colorizer("colornet-v2", size=128, device="cpu", backend="torch")
    app = create_app(settings(tmp_path, model="colornet-v2"), colorizers={"colornet-v2": encoder})
    with LiveServer(app) as live:
        answers = {
            name: httpx.post(
                f"{live.url}/v1/colorize",
                files={
                    "image": ("photo.png", png(photo), "image/png"),
                    "reference": ("reference.png", png(scene()), "image/png"),
                },
                timeout=120,
            )
            for name, photo in photos.items()
        }
        plain = post_image(live.url, png(photos["scene"]))
    assert all(a.status_code == 200 for a in answers.values()), answers
    assert answers["scene"].headers[MATCH_HEADER] == "matched the reference"
    assert answers["rings"].headers[MATCH_HEADER] == "fell back"
    shares = {name: float(a.headers[MATCH_SHARE_HEADER]) for name, a in answers.items()}
    assert shares["scene"] >= 0.4 > shares["rings"]
    assert plain.status_code == 200 and MATCH_HEADER not in plain.headers
