"""Issue 12's server items: every error a client can cause is a 4xx with one readable sentence
in ``{"detail": "..."}``; no 500, no traceback, no server path; one download per result."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the app extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from colorizer.server import create_app  # noqa: E402
from colorizer.weights import cache_dir  # noqa: E402
from tests.server.live_server import LiveServer, wait_for  # noqa: E402
from tests.server.test_api import MODEL, png_bytes, post_image, settings  # noqa: E402


@pytest.fixture(scope="module")
def server(constant, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hardening")
    app = create_app(settings(folder, max_hints=50), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        yield live


def clean_detail(response: httpx.Response, server) -> str:
    """The one-sentence error, checked for tracebacks and every server path."""
    body = response.json()
    assert set(body) == {"detail"}, body
    message = body["detail"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message and "\n" not in message
    for private in (str(server.state.temp.root), "colorizer-server-", "uploads/", str(cache_dir())):
        assert private not in message, message
    return message


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 48), 128).save(buffer, fmt)
    return buffer.getvalue()


# --- 1: a still image posted as a video ------------------------------------------------------


def multipart(url: str, field: str, name: str, data: bytes) -> tuple[str, bytes, dict]:
    request = httpx.Request("POST", url, files={field: (name, data, "application/octet-stream")})
    return request.url.raw_path.decode(), request.read(), dict(request.headers)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_still_image_posted_as_a_video_is_a_4xx_on_a_kept_connection(server, fmt):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    path, body, headers = multipart(
        f"{server.url}/v1/colorize/video", "video", f"photo.{fmt.lower()}", encoded(fmt)
    )
    connection.request("POST", path, body=body, headers=headers)
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    assert answer.status == 400, payload
    assert "still image" in payload["detail"] and "/v1/colorize" in payload["detail"]
    assert answer.getheader("connection") != "close"
    kept = connection.sock
    assert kept is not None  # the server did not close the keep-alive connection
    connection.request("GET", "/healthz")
    again = connection.getresponse()
    assert again.status == 200 and json.loads(again.read())["status"] == "ok"
    assert connection.sock is kept  # the same connection served the next request
    connection.close()
    assert not any((server.state.temp.root / "jobs").iterdir())


def test_a_file_pyav_cannot_use_is_a_400_not_a_500(server):
    response = httpx.post(
        f"{server.url}/v1/colorize/video",
        files={"video": ("film.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500, "video/mp4")},
    )
    assert response.status_code == 400, response.text
    assert "video" in clean_detail(response, server)


# --- 2: wrong types in the options JSON -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"model": ["a"]}, "model"),
        ({"model": {}}, "model"),
        ({"model": ""}, "model"),
        ({"saturation": "x"}, "saturation"),
        ({"saturation": [1]}, "saturation"),
        ({"saturation": True}, "saturation"),
        ({"size": "32"}, "size"),
        ({"size": True}, "size"),
        ({"size": 32.5}, "size"),
        ({"hints": 7}, "hints"),
        ({"hints": "null"}, "hints"),
    ],
)
def test_wrong_types_in_options_are_refused_naming_the_field(server, options, field):
    response = post_image(server.url, data={"options": json.dumps(options)})
    assert response.status_code == 422, response.text
    assert clean_detail(response, server).startswith(field)


@pytest.mark.parametrize("value", ["NaN", "1.5", "-0.1"])
def test_saturation_out_of_range_is_a_400(server, value):
    response = post_image(server.url, data={"options": '{"saturation": ' + value + "}"})
    assert response.status_code == 400, response.text
    assert "saturation" in clean_detail(response, server)


# --- 3: deep hints and too many hints ---------------------------------------------------------


@pytest.mark.parametrize("where", ["field", "options"])
def test_hints_nested_5000_deep_are_a_400(server, where):
    deep = "[" * 5000 + "]" * 5000
    data = {"hints": deep} if where == "field" else {"options": '{"hints": ' + deep + "}"}
    response = post_image(server.url, data=data)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in clean_detail(response, server)
    moderate = "[" * 20 + "]" * 20  # parses, but deeper than any hint list
    assert post_image(server.url, data={"hints": moderate}).status_code == 400


def test_the_number_of_hints_is_capped(server):
    hints = [{"x": 3, "y": 4, "color": "#20c020"}] * 51
    response = post_image(server.url, data={"hints": json.dumps(hints)})
    assert response.status_code == 400
    assert "at most 50" in clean_detail(response, server)
    assert post_image(server.url, data={"hints": json.dumps(hints[:50])}).status_code == 200
    wrapped = post_image(server.url, data={"options": json.dumps({"hints": {"points": hints}})})
    assert wrapped.status_code == 400


# --- 4: no server paths in error bodies -------------------------------------------------------


def test_a_bad_scribbles_upload_names_the_upload_not_its_path(server):
    files = {
        "image": ("photo.png", png_bytes(), "image/png"),
        "scribbles": ("strokes.png", b"not a picture at all\n", "image/png"),
    }
    response = httpx.post(f"{server.url}/v1/colorize", files=files)
    assert response.status_code == 400
    message = clean_detail(response, server)
    assert "scribbles" in message and "strokes.png" in message
    assert "/" not in message


def test_a_model_not_downloaded_names_the_model_not_the_cache(constant, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZER_HOME", str(tmp_path / "home" / "cache"))
    app = create_app(settings(tmp_path), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        response = post_image(live.url, data={"model": "eccv16"})
        assert response.status_code == 409, response.text  # issue 22: not 503 (retry)
        message = clean_detail(response, live)
        assert "not installed" in message and "colorize models pull eccv16" in message
        assert str(tmp_path) not in message and "/" not in message.split("`")[0]


# --- 5: one download, even in parallel -------------------------------------------------------


def test_parallel_gets_download_a_result_exactly_once(server, tmp_path):
    from tests.server.test_video import finished, submit, write_clip

    clip = write_clip(tmp_path / "clip.mp4", frames=20).read_bytes()
    job = submit(server.url, clip).json()
    done = wait_for(lambda: finished(server.url, job["id"]), "the job to finish")
    assert done["status"] == "done", done
    url = f"{server.url}{done['result_url']}"
    start = threading.Barrier(8)
    answers: list[httpx.Response] = []

    def fetch():
        start.wait()
        answers.append(httpx.get(url, timeout=60))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [410] * 7, codes
    assert all("downloaded" in clean_detail(r, server) for r in answers if r.status_code == 410)
    assert httpx.get(url).status_code == 410


def test_claims_are_atomic_and_a_broken_download_can_be_retried(server):
    from colorizer.server.jobs import Job

    job = Job(id="x", folder=server.state.temp.root, input=None, output=None, run=None)
    job.status = "done"
    jobs = server.state.jobs
    assert jobs.claim_download(job)
    assert not jobs.claim_download(job)
    jobs.release_download(job)
    assert jobs.claim_download(job)


# --- 6: the documented error form, "null" strings, empty files, OPTIONS ------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [({"size": "null"}, "size"), ({"saturation": "null"}, "saturation"), ({"size": "x"}, "size")],
)
def test_form_validation_errors_are_one_sentence_naming_the_field(server, data, field):
    response = post_image(server.url, data=data)
    assert response.status_code == 422, response.text
    message = clean_detail(response, server)
    assert message.startswith(field)
    assert data[field] in message


def test_a_missing_file_is_named_in_the_documented_form(server):
    response = httpx.post(f"{server.url}/v1/colorize", data={"size": "32"})
    assert response.status_code == 422
    assert clean_detail(response, server) == "image is required"
    video = httpx.post(f"{server.url}/v1/colorize/video", data={"model": MODEL})
    assert clean_detail(video, server) == "video is required"


@pytest.mark.parametrize("field", ["image", "reference", "scribbles"])
def test_zero_byte_files_are_a_clear_400(server, field):
    files = {"image": ("photo.png", png_bytes(), "image/png"), field: ("f.png", b"", "image/png")}
    response = httpx.post(f"{server.url}/v1/colorize", files=files)
    assert response.status_code == 400
    assert "empty" in clean_detail(response, server)


def test_null_strings_in_other_fields_are_clear_4xx(server):
    for data in ({"model": "null"}, {"hints": "null"}, {"options": "null"}):
        response = post_image(server.url, data=data)
        assert 400 <= response.status_code < 500, (data, response.text)
        clean_detail(response, server)


def test_options_and_wrong_methods_answer_with_allow(server):
    options = httpx.options(f"{server.url}/v1/jobs/0123456789abcdef")
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "DELETE", "OPTIONS"}
    wrong = httpx.put(f"{server.url}/v1/jobs/0123456789abcdef")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == options.headers["allow"]
    assert "PUT" in clean_detail(wrong, server)
    assert httpx.options(f"{server.url}/v1/colorize").headers["allow"] == "OPTIONS, POST"


def test_the_openapi_document_declares_the_error_form_for_422(server):
    document = httpx.get(f"{server.url}/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            if answer is not None:
                schema = answer["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorBody"), (path, method)
    assert "HTTPValidationError" not in document["components"]["schemas"]


# --- 7: a port in use -------------------------------------------------------------------------


def test_serve_on_a_port_in_use_prints_one_line_and_exits_1(capsys):
    from colorizer.cli import main

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        assert main(["serve", "--port", str(port)]) == 1
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert err.strip() == f"error: port {port} on 127.0.0.1 is in use"
    assert "Traceback" not in err


def test_no_request_here_left_an_upload_behind(server):
    assert not any((server.state.temp.root / "uploads").iterdir())
