"""POST /v1/inspect (issue 24, item 3): what a result says about its making, over the REST API,
against a real uvicorn server on 127.0.0.1 with the tiny constant model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

pytest.importorskip("fastapi", reason="the app extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from colorizer.provenance import xmp  # noqa: E402
from colorizer.server import create_app  # noqa: E402
from tests.server.live_server import LiveServer  # noqa: E402
from tests.server.test_api import MODEL, detail, png_bytes, post_image, settings  # noqa: E402


@pytest.fixture(scope="module")
def server(constant, tmp_path_factory):
    app = create_app(settings(tmp_path_factory.mktemp("inspect")), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        yield live


def inspect(url: str, data: bytes, name: str = "result.png", mime: str = "image/png"):
    return httpx.post(f"{url}/v1/inspect", files={"file": (name, data, mime)}, timeout=60)


def colorized(url: str, **kwargs) -> bytes:
    response = post_image(url, **kwargs)
    assert response.status_code == 200, response.text
    return response.content


def with_pixel_changed(png: bytes) -> bytes:
    """The PNG with one pixel changed and its XMP kept, as a careless editor would save it."""
    with Image.open(io.BytesIO(png)) as im:
        packet = im.info["xmp"]
        rgb = np.array(im)
    rgb[3, 4] ^= 1
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet if isinstance(packet, str) else packet.decode())
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_a_colorized_png_is_intact_with_the_iptc_source_type(server):
    response = inspect(server.url, colorized(server.url))
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["verdict"] == "intact" and found["exit_code"] == 0
    assert found["meaning"] == "provenance recorded and intact"
    assert found["kind"] == "image" and found["file"] == "result.png"
    assert found["xmp"]["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE
    assert found["xmp"]["model"] == MODEL and found["xmp"]["tool"] == "colorizer"
    assert len(found["xmp"]["weights_sha256"]) == 64
    assert found["pixels"] == "match"
    assert found["c2pa"] is None  # no signing identity in this server


def test_a_pixel_edit_is_tampered(server):
    response = inspect(server.url, with_pixel_changed(colorized(server.url)))
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["verdict"] == "tampered" and found["exit_code"] == 3
    assert found["pixels"] == "differ"
    assert found["xmp"]["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE  # the XMP stayed


def test_a_plain_png_has_no_provenance(server):
    found = inspect(server.url, png_bytes(), "plain.png").json()
    assert found["verdict"] == "no provenance" and found["exit_code"] == 1
    assert found["xmp"] == {k: None for k in found["xmp"]}
    assert found["pixels"] == "not recorded" and found["c2pa"] is None


def test_a_jpeg_result_records_no_pixel_hash(server):
    jpeg = colorized(server.url, headers={"Accept": "image/jpeg"})
    found = inspect(server.url, jpeg, "result.jpg", "image/jpeg").json()
    assert found["verdict"] == "intact"
    assert found["pixels"] == "not recorded"
    assert found["xmp"]["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"not a photo at all, just words", 400, "is not a photo"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, "not a readable image"),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8, 400, "cannot read its C2PA manifest"),
    ],
)
def test_garbage_gets_a_readable_4xx(server, data, status, words):
    response = inspect(server.url, data, "/etc/odd name?.png")
    assert response.status_code == status, response.text
    message = detail(response)
    assert words in message and "odd name.png" in message and "/etc" not in message


def test_uploads_over_the_limits_answer_413(server):
    response = inspect(server.url, b"\x89PNG\r\n\x1a\n" + b"\x00" * 300_000)
    assert response.status_code == 413 and "limit" in detail(response)
    big = io.BytesIO()
    Image.new("L", (1100, 1000)).save(big, "PNG")  # tiny file, over 1,000,000 pixels
    response = inspect(server.url, big.getvalue())
    assert response.status_code == 413 and "pixels" in detail(response)
    empty = inspect(server.url, b"")
    assert empty.status_code == 400 and "empty" in detail(empty)


def test_a_signed_result_shows_its_manifest(server, constant_weights, tmp_path):
    pytest.importorskip("c2pa")
    pytest.importorskip("cryptography")
    from colorizer.pipeline import Colorizer
    from colorizer.provenance import Provenance
    from colorizer.provenance.identity import throwaway_identity

    signing, _ = throwaway_identity(tmp_path / "identity")
    signer = Colorizer(
        MODEL, weights=constant_weights, size=32, device="cpu", provenance=Provenance(signing)
    )
    grey = tmp_path / "grey.png"
    Image.fromarray(np.linspace(0, 255, 48 * 64).reshape(48, 64).astype(np.uint8)).save(grey)
    out = signer.colorize_file(grey, tmp_path / "signed.png")
    found = inspect(server.url, Path(out).read_bytes(), "signed.png").json()
    assert found["verdict"] == "intact", found
    # A throwaway signer is in no trust list: Valid (not Trusted), which is no tampering.
    assert found["c2pa"]["state"] == "Valid" and found["c2pa"]["untrusted"]
    assert set(found["c2pa"]["failures"]) <= {"signingCredential.untrusted"}
    assert "throwaway" in found["c2pa"]["signer"]
    assert found["xmp"]["source_sha256"]


def test_a_colorized_film_is_intact(server, constant, tmp_path):
    pytest.importorskip("av", reason="PyAV is not installed")
    from colorizer.video.colorize import VideoOptions, colorize_video
    from tests.video.clips import write_clip

    clip = write_clip(tmp_path / "clip.mp4", audio=False)
    out = tmp_path / "film.mp4"
    colorize_video(constant, clip, out, VideoOptions(consistency=0))
    found = inspect(server.url, out.read_bytes(), "film.mp4", "video/mp4").json()
    assert found["kind"] == "film" and found["verdict"] == "intact"
    assert found["xmp"]["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE


def test_the_schema_documents_the_route(server):
    document = httpx.get(f"{server.url}/openapi.json").json()
    operation = document["paths"]["/v1/inspect"]["post"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Inspection"}
    assert {"400", "413", "429", "504"} <= set(operation["responses"])
    verdict = document["components"]["schemas"]["Inspection"]["properties"]["verdict"]
    assert verdict["enum"] == ["intact", "no provenance", "tampered"]
