"""Video jobs over the REST API: lifecycle, limits, the bounded queue, expiry."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the app extra is not installed")
av = pytest.importorskip("av", reason="PyAV is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from colorizer.server import create_app  # noqa: E402
from tests.server.live_server import LiveServer, wait_for  # noqa: E402
from tests.server.test_api import MODEL, BlockingColorizer, detail, settings  # noqa: E402

FRAMES, WIDTH, HEIGHT, FPS = 12, 64, 48, 12


def write_clip(path, frames: int = FRAMES):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(frames):
            grey = np.full((HEIGHT, WIDTH, 3), 40 + 10 * index, np.uint8)
            grey[10:30, 2 * index : 2 * index + 16] = 220
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4").read_bytes()


@pytest.fixture(scope="module")
def server(constant, tmp_path_factory):
    folder = tmp_path_factory.mktemp("video-server")
    app = create_app(settings(folder, max_video_seconds=60), colorizers={MODEL: constant})
    with LiveServer(app) as live:
        yield live


def submit(url: str, data: bytes, **fields) -> httpx.Response:
    files = {"video": ("film.mp4", data, "video/mp4")}
    return httpx.post(f"{url}/v1/colorize/video", files=files, data=fields, timeout=60)


def status(url: str, job_id: str) -> dict:
    return httpx.get(f"{url}/v1/jobs/{job_id}").json()


def finished(url: str, job_id: str):
    job = status(url, job_id)
    return job if job["status"] not in ("queued", "running") else None


def test_job_lifecycle_submit_poll_download_once(server, clip, tmp_path):
    response = submit(server.url, clip, consistency="0.5")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running")
    done = wait_for(lambda: finished(server.url, job["id"]), "the job to finish")
    assert done["status"] == "done", done
    assert done["fraction"] == 1.0 and done["expires_at"] > done["finished_at"]
    assert (done["done"], done["total"]) == (FRAMES, FRAMES)  # progress was reported
    early = httpx.get(f"{server.url}{done['result_url']}")
    assert early.status_code == 200
    assert early.headers["content-type"] == "video/mp4"
    result = tmp_path / "result.mp4"
    result.write_bytes(early.content)
    with av.open(str(result)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == FRAMES
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    assert np.ptp(frames[0].astype(int), axis=2).mean() > 5  # coloured, not grey
    # One download: the files are gone and the record says so.
    assert status(server.url, job["id"])["status"] == "downloaded"
    again = httpx.get(f"{server.url}{done['result_url']}")
    assert again.status_code == 410
    assert "downloaded" in detail(again)
    assert not (server.state.temp.root / "jobs" / job["id"]).exists()


def test_unknown_job_is_404(server):
    response = httpx.get(f"{server.url}/v1/jobs/0123456789abcdef")
    assert response.status_code == 404
    assert "no job" in detail(response)


def test_results_expire(server, clip):
    job = submit(server.url, clip).json()
    wait_for(lambda: finished(server.url, job["id"]), "the job to finish")
    state = server.state
    assert state.jobs.sweep(now=state.jobs.get(job["id"]).finished_at + 10**6) >= 1
    assert status(server.url, job["id"])["status"] == "expired"
    assert httpx.get(f"{server.url}/v1/jobs/{job['id']}/result").status_code == 410
    assert not (state.temp.root / "jobs" / job["id"]).exists()


@pytest.mark.parametrize(
    ("data", "status_code", "words"),
    [
        (b"this is not a film", 400, "not a readable video"),
        (b"", 400, "empty"),
    ],
    ids=["not-a-video", "zero-size"],
)
def test_bad_video_uploads(server, data, status_code, words):
    response = submit(server.url, data)
    assert response.status_code == status_code, response.text
    assert words in detail(response)
    folders = {p.name for p in (server.state.temp.root / "jobs").iterdir()}
    assert folders <= set(server.state.jobs.jobs)  # the refused upload left no folder


def test_video_duration_and_size_limits(constant, clip, tmp_path):
    app = create_app(
        settings(tmp_path, max_video_seconds=0.5, max_video_bytes=len(clip) + 10),
        colorizers={MODEL: constant},
    )
    with LiveServer(app) as live:
        long = submit(live.url, clip)
        assert long.status_code == 413
        assert "lasts 1 s" in detail(long)
        big = submit(live.url, clip + b"\0" * 2_000_000)
        assert big.status_code == 413
        assert "too large" in detail(big)
        assert not any((live.state.temp.root / "jobs").iterdir())


def test_a_full_job_queue_answers_429_and_jobs_can_be_cancelled(constant_weights, clip, tmp_path):
    blocking = BlockingColorizer(MODEL, weights=constant_weights, size=64, device="cpu")
    blocking.gate = threading.Event()
    app = create_app(
        settings(tmp_path, video_workers=1, max_queued_jobs=1), colorizers={MODEL: blocking}
    )
    try:
        with LiveServer(app) as live:
            running = submit(live.url, clip).json()
            wait_for(lambda: status(live.url, running["id"])["status"] == "running", "a start")
            queued = submit(live.url, clip).json()
            assert queued["status"] == "queued"
            refused = submit(live.url, clip)
            assert refused.status_code == 429
            assert "queue is full" in detail(refused)
            cancelled = httpx.delete(f"{live.url}/v1/jobs/{queued['id']}").json()
            assert cancelled["status"] == "cancelled"
            blocking.gate.set()
            done = wait_for(lambda: finished(live.url, running["id"]), "the job to finish")
            assert done["status"] == "done"
            assert submit(live.url, clip).status_code == 202
    finally:
        blocking.gate.set()


# --- keyframes and a colour reference ----------------------------------------------------------


def colour_png(width: int = WIDTH, height: int = HEIGHT, rgb=(200, 60, 40)) -> bytes:
    """A colour frame: a grey field with a coloured block."""
    pixels = np.full((height, width, 3), 90, np.uint8)
    pixels[: height // 2, : width // 2] = rgb
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def grey_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((HEIGHT, WIDTH), 120, np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def submit_keyframes(url: str, clip: bytes, manifest=None, images=(), reference=None):
    files = [("video", ("film.mp4", clip, "video/mp4"))]
    files += [("keyframe_images", (name, data, "image/png")) for name, data in images]
    if reference is not None:
        files.append(("reference", ("ref.png", reference, "image/png")))
    data = {} if manifest is None else {"keyframes": json.dumps(manifest)}
    return httpx.post(f"{url}/v1/colorize/video", files=files, data=data, timeout=60)


MANIFEST = {
    "keyframes": [
        {"time": 0.0, "image": "shot1.png"},
        {"frame": 6, "hints": [{"x": 10, "y": 5, "color": "#8a2be2"}]},
    ]
}


def spy_on_jobs(monkeypatch) -> dict:
    """What the server's jobs hand ``colorize_video``: the options, the files they name."""
    import colorizer.video as video

    seen: dict = {}
    real = video.colorize_video

    def spy(colorizer, source, destination, options, **kwargs):
        seen["options"] = options
        if options.keyframes is not None:
            manifest = Path(options.keyframes)
            seen["manifest"] = json.loads(manifest.read_text(encoding="utf-8"))
            seen["image"] = (manifest.parent / "shot1.png").read_bytes()
        if options.reference is not None:
            seen["reference"] = Path(options.reference).read_bytes()
        return real(colorizer, source, destination, options, **kwargs)

    monkeypatch.setattr(video, "colorize_video", spy)
    return seen


def test_a_job_with_keyframes_completes(server, clip, monkeypatch):
    seen = spy_on_jobs(monkeypatch)
    shot = colour_png()
    response = submit_keyframes(server.url, clip, MANIFEST, [("shot1.png", shot)])
    assert response.status_code == 202, response.text
    job = response.json()
    done = wait_for(lambda: finished(server.url, job["id"]), "the job to finish")
    assert done["status"] == "done", done
    # The job ran with the files as uploaded, kept in its own folder.
    assert seen["manifest"] == MANIFEST and seen["image"] == shot
    folder = server.state.temp.root / "jobs" / job["id"]
    assert seen["options"].keyframes.startswith(str(folder))
    result = httpx.get(f"{server.url}{done['result_url']}")
    assert result.status_code == 200
    with av.open(io.BytesIO(result.content)) as container:
        assert len(list(container.decode(video=0))) == FRAMES
    wait_for(lambda: not folder.exists(), "the job's files to go")  # removed with the job


def test_a_reference_needs_a_model_with_an_encoder(server, clip, tmp_path, monkeypatch):
    refused = submit_keyframes(server.url, clip, reference=colour_png(20, 20))
    assert refused.status_code == 400
    assert "reference: needs a model with a pretrained encoder" in detail(refused)
    from colorizer.pipeline import Colorizer

    seen = spy_on_jobs(monkeypatch)
    encoder = Colorizer("colornet-v2", size=64, device="cpu")
    app = create_app(settings(tmp_path, model="colornet-v2"), colorizers={"colornet-v2": encoder})
    with LiveServer(app) as live:
        reference = colour_png(20, 20, (30, 80, 200))
        response = submit_keyframes(live.url, clip, reference=reference)
        assert response.status_code == 202, response.text
        done = wait_for(lambda: finished(live.url, response.json()["id"]), "the job to finish")
        assert done["status"] == "done", done
    assert seen["reference"] == reference and seen["options"].keyframes is None


def test_keyframe_images_alone_are_named_by_position(server, clip):
    images = [("f000003.png", colour_png()), ("t0.5.png", colour_png(rgb=(40, 200, 60)))]
    response = submit_keyframes(server.url, clip, images=images)
    assert response.status_code == 202, response.text
    done = wait_for(lambda: finished(server.url, response.json()["id"]), "the job to finish")
    assert done["status"] == "done", done


def _one_image(name="shot1.png", time=0.0):
    return {"keyframes": [{"time": time, "image": name}]}


@pytest.mark.parametrize(
    ("manifest", "images", "reference", "words"),
    [
        ("{not json", [("shot1.png", colour_png())], None, "keyframes: not valid JSON"),
        (
            {"keyframes": [{"when": 1, "image": "shot1.png"}]},
            [("shot1.png", colour_png())],
            None,
            "keyframes: keyframe 0: unknown keys ['when']",
        ),
        (
            _one_image(time=5.0),
            [("shot1.png", colour_png())],
            None,
            "keyframes: keyframe 0 (shot1.png): 5 s is past the end of the film",
        ),
        (
            _one_image(time=-1),
            [("shot1.png", colour_png())],
            None,
            "'time' must be 0 or more seconds",
        ),
        (_one_image("other.png"), [], None, "'other.png' is not among the uploaded"),
        (
            _one_image(),
            [("shot1.png", colour_png(32, 24))],
            None,
            "keyframes: keyframe 0 (shot1.png) is 32x24; the film is 64x48",
        ),
        (_one_image(), [("shot1.png", grey_png())], None, "the image has no colour"),
        (
            {"keyframes": [{"frame": 2, "hints": [[100, 5, "#ff0000"]]}]},
            [],
            None,
            "keyframes: keyframe 0: point 0 at (100, 5) lies outside",
        ),
        (None, [("shot1.png", colour_png())], None, "keyframe_images shot1.png: not named by"),
        (None, [("f000012.png", colour_png())], None, "frame 12 is outside the film"),
        (None, [("../f1.png", colour_png())], None, "is not an image file name"),
        (None, [], grey_png(), "reference: the reference photo has no colour"),
        (None, [], b"not an image", "reference:"),
    ],
    ids=[
        "not-json",
        "unknown-key",
        "past-the-end",
        "negative-time",
        "image-not-sent",
        "image-size",
        "grey-keyframe",
        "hint-outside",
        "not-named-by-position",
        "frame-outside",
        "path-as-name",
        "grey-reference",
        "unreadable-reference",
    ],
)
def test_bad_keyframes_answer_400_naming_the_problem(
    server, clip, manifest, images, reference, words
):
    files = [("video", ("film.mp4", clip, "video/mp4"))]
    files += [("keyframe_images", (name, data, "image/png")) for name, data in images]
    if reference is not None:
        files.append(("reference", ("ref.png", reference, "image/png")))
    text = manifest if isinstance(manifest, str) or manifest is None else json.dumps(manifest)
    data = {} if text is None else {"keyframes": text}
    response = httpx.post(f"{server.url}/v1/colorize/video", files=files, data=data, timeout=60)
    assert response.status_code == 400, response.text
    message = detail(response)
    assert words in message
    assert str(server.state.temp.root) not in message and "<upload>" not in message
    folders = {p.name for p in (server.state.temp.root / "jobs").iterdir()}
    assert folders <= set(server.state.jobs.jobs)  # the refused request left no folder
