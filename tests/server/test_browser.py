"""The web UI in a real browser: Debian's chromium driven by Playwright, the shipped model.

Installs nothing: skips when chromium or Playwright is absent (``.ci/run`` installs chromium).
``COLORIZER_APP_SCREENSHOT=docs/app.png`` also saves a screenshot of the app for the README.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: the browser test needs Debian's chromium "
        "(apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )
pytest.importorskip("fastapi", reason="the app extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from colorizer.server import ServerSettings, create_app  # noqa: E402
from tests.server.live_server import LiveServer  # noqa: E402
from tests.support import SHARED  # noqa: E402

SCREENSHOT_LIMIT = 300_000
UI_LIMIT_MS = 60_000  # a hang guard for waits in the page, not a timing assertion
PHOTO = SHARED / "data" / "bw" / "01_portrait_migrant_mother_1936.jpg"

# Mean chroma (max - min channel) of the result image, and the colour at a point, in the page.
PIXELS_JS = """([x, y]) => {
  const img = document.getElementById('result-img');
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let chroma = 0;
  for (let i = 0; i < data.length; i += 4) {
    chroma += Math.max(data[i], data[i + 1], data[i + 2])
      - Math.min(data[i], data[i + 1], data[i + 2]);
  }
  const p = ctx.getImageData(x, y, 1, 1).data;
  return {w: canvas.width, h: canvas.height, chroma: chroma / (data.length / 4),
          at: [p[0], p[1], p[2]]};
}"""


def photo(tmp_path: Path) -> Path:
    """A real black-and-white photo from ../shared, downsized; a synthetic one without it."""
    target = tmp_path / "photo.jpg"
    if PHOTO.exists():
        with Image.open(PHOTO) as image:
            image.convert("L").resize((320, 400)).save(target, quality=90)
    else:
        y, x = np.mgrid[0:400, 0:320]
        grey = (128 + 60 * np.sin(x / 23.0) * np.cos(y / 31.0)).astype(np.uint8)
        Image.fromarray(grey).save(target, quality=90)
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServerSettings(device="cpu", temp_dir=tmp_path_factory.mktemp("browser-server"))
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 820}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(UI_LIMIT_MS)
    yield page
    context.close()


def wait_runs(page, runs: int) -> None:
    page.wait_for_selector(f'#result-stage[data-runs="{runs}"][data-state="done"]')


def test_upload_colorize_hint_and_download(server, page, tmp_path):
    source = photo(tmp_path)
    page.goto(server.url)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    assert page.locator("#model").input_value() == "colornet-v2"

    page.set_input_files("#file", str(source))
    wait_runs(page, 1)
    assert page.locator("#consistency-box").is_hidden()  # video only
    width, height = Image.open(source).size
    hint = (width * 52 // 100, height * 85 // 100)  # the blanket in the shared photo
    first = page.evaluate(PIXELS_JS, list(hint))
    assert (first["w"], first["h"]) == (width, height)  # full resolution
    assert first["chroma"] > 3  # a colour result from a grey photo
    assert page.locator("#error").is_hidden()

    # The provenance panel: the result's own bytes, checked by POST /v1/inspect.
    page.wait_for_selector('#provenance:not([hidden])[data-verdict="intact"]')
    assert page.locator("#provenance-verdict").inner_text().startswith("intact")
    facts = page.locator("#provenance-facts").inner_text()
    assert "edited using generative AI" in facts and "colornet-v2" in facts
    assert "Weights SHA-256" in facts and "match the recorded SHA-256" in facts

    # A blue hint: click the photo, the result is recomputed and turns blue there.
    if not page.evaluate("state.features.hints"):
        pytest.skip("this build has no colour hints yet (colorizer.guidance)")
    page.fill("#brush-color", "#3a6fd0")
    page.evaluate("setSlider('slider', 'before', 'handle', 90)")  # the user looked at 'before'
    box = page.locator("#scribble-canvas").bounding_box()
    page.locator("#scribble-canvas").click(
        position={"x": box["width"] * hint[0] / width, "y": box["height"] * hint[1] / height}
    )
    assert page.locator(".marker").count() == 1
    wait_runs(page, 2)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    second = page.evaluate(PIXELS_JS, list(hint))
    red, green, blue = second["at"]
    assert blue > red and blue > green, second["at"]
    assert second["at"] != first["at"]
    assert page.locator("#slider").input_value() == "50"  # the new result is shown half and half
    page.wait_for_selector("#swatches .swatch, #swatches:not(:has(em))")
    shares = page.locator("#swatches .swatch-box span").all_inner_texts()
    assert shares and all(share.endswith("%") for share in shares)

    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "photo_colorized.png"
    with Image.open(saved) as result:
        assert result.format == "PNG" and result.size == (width, height)

    target = os.environ.get("COLORIZER_APP_SCREENSHOT")
    if target:
        save_screenshot(page, Path(target))


def test_example_photos_are_offered_and_open(page, tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    photo(tmp_path).rename(folder / "migrant_mother.jpg")
    (folder / "notes.txt").write_text("not a photo")
    settings = ServerSettings(device="cpu", temp_dir=tmp_path / "temp", examples=folder)
    with LiveServer(create_app(settings)) as live:
        page.goto(live.url)
        page.wait_for_selector("#examples:not([hidden]) button")
        assert page.locator("#example-list button").all_inner_texts() == ["migrant mother"]
        page.locator("#example-list button").click()
        wait_runs(page, 1)
        assert page.locator("#input-info").inner_text().startswith("migrant_mother.jpg")


def test_a_video_shows_its_result_with_a_before_after_slider(server, page, tmp_path):
    pytest.importorskip("av", reason="PyAV is not installed")
    from tests.server.test_video import write_clip

    clip = write_clip(tmp_path / "film.mp4")
    page.goto(server.url)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.set_input_files("#file", str(clip))
    assert page.locator("#consistency-box").is_visible()  # shown for a video
    wait_runs(page, 1)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    assert page.locator("#video-compare").is_visible()
    page.wait_for_selector('#provenance:not([hidden])[data-verdict="intact"]')  # the film's XMP
    assert page.evaluate("$('before-video').src") == page.evaluate("state.inputUrl")
    assert page.locator("#video-slider").input_value() == "50"
    page.evaluate("setSlider('video-slider', 'before-video-box', 'video-handle', 80)")
    clip_path = page.evaluate("$('before-video-box').style.clipPath")
    assert clip_path == "inset(0px 20% 0px 0px)" or clip_path == "inset(0 20% 0 0)"


def test_a_bad_upload_shows_a_readable_message(server, page):
    page.goto(server.url)
    page.set_input_files(
        "#file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a photo at all"}
    )
    page.wait_for_selector("#error:not([hidden])")
    message = page.locator("#error").inner_text()
    assert "cannot read the uploaded image" in message
    assert "Traceback" not in message


# Scrub a <video> to a time: resolves with the time shown once the frame is there.
SEEK_JS = """([id, time]) => new Promise((resolve) => {
  const video = document.getElementById(id);
  video.addEventListener('seeked', () => resolve(video.currentTime), {once: true});
  video.currentTime = time;
})"""

# The colour at (x, y) of the frame a <video> shows, as the browser decodes it.
VIDEO_PIXEL_JS = """([id, x, y]) => {
  const video = document.getElementById(id);
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0);
  return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
}"""

# The bytes behind a blob: URL of the page, as a list of numbers.
BLOB_BYTES_JS = """async (url) => {
  const response = await fetch(url);
  return Array.from(new Uint8Array(await response.arrayBuffer()));
}"""


def console_errors(page) -> list[str]:
    """The page's console errors and uncaught exceptions from now on (filled as they come)."""
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


# Keeps every FormData the page sends (Playwright does not show multipart bodies with files).
RECORD_FORMS_JS = """
window.sentForms = [];
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url, ...rest) {
  this.sentTo = `${method} ${url}`;
  return open.call(this, method, url, ...rest);
};
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  if (body instanceof FormData) window.sentForms.push([this.sentTo, body]);
  return send.call(this, body);
};
"""

# The fields of the last form sent to a "METHOD /path": [name, text or the file's name].
SENT_FIELDS_JS = """(to) => {
  const [, form] = window.sentForms.filter(([sent]) => sent === to).pop();
  return Array.from(form.entries(), ([k, v]) => [k, typeof v === 'string' ? v : `file ${v.name}`]);
}"""

# The bytes of a file field of the last form sent to a "METHOD /path".
SENT_FILE_JS = """async ([to, name]) => {
  const [, form] = window.sentForms.filter(([sent]) => sent === to).pop();
  return Array.from(new Uint8Array(await form.get(name).arrayBuffer()));
}"""


def sent_fields(page, to: str) -> dict[str, list[str]]:
    """The fields of the last form the page sent to ``to`` ("POST /v1/colorize")."""
    fields: dict[str, list[str]] = {}
    for name, value in page.evaluate(SENT_FIELDS_JS, to):
        fields.setdefault(name, []).append(value)
    return fields


def click_at(page, selector: str, x: float, y: float, width: int, height: int) -> None:
    """Click an element showing a ``width`` x ``height`` picture at its pixel (x, y)."""
    box = page.locator(selector).bounding_box()
    page.locator(selector).click(
        position={"x": box["width"] * x / width, "y": box["height"] * y / height}
    )


def colour_reference(path: Path) -> Path:
    """A colour photo: a blue sky over warm ground, with some texture."""
    y, x = np.mgrid[0:120, 0:160]
    reference = np.zeros((120, 160, 3), np.uint8)
    reference[..., 0] = 60 + (y > 60) * 150
    reference[..., 1] = 90 + 30 * np.sin(x / 7.0)
    reference[..., 2] = 220 - (y > 60) * 170
    Image.fromarray(reference).save(path)
    return path


def greenish(rgb) -> bool:
    red, green, blue = rgb
    return green > red + 20 and green > blue + 20


def test_a_film_keyframe_with_hints_colours_its_frame_in_the_film(server, page, tmp_path):
    pytest.importorskip("av", reason="PyAV is not installed")
    from tests.video.clips import HEIGHT, WIDTH, write_clip

    clip = write_clip(tmp_path / "film.mp4", audio=False)  # a red block moving right
    # The hint is green, a colour the reference photo below (blue over orange) does not hold.
    errors = console_errors(page)
    page.add_init_script(RECORD_FORMS_JS)
    page.goto(server.url)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    if not page.evaluate("state.features.hints"):
        pytest.skip("this build has no colour hints yet (colorizer.guidance)")
    page.set_input_files("#file", str(clip))
    assert page.locator("#keyframe-tools").is_visible()
    wait_runs(page, 1)  # the automatic colours, as a film is opened
    page.wait_for_function("$('input-video').readyState >= 2")

    # Scrub to 1 s (frame 12: the red block spans columns 24-43, rows 10-29) and grab it.
    assert page.evaluate(SEEK_JS, ["input-video", 1.0]) == 1.0
    page.get_by_role("button", name="Use this frame as a keyframe").click()
    page.wait_for_selector("#input-box:not([hidden])")
    assert page.locator("#input-video").is_hidden()
    assert page.evaluate("[state.natural.w, state.natural.h]") == [WIDTH, HEIGHT]
    grabbed = page.evaluate(BLOB_BYTES_JS, page.evaluate("state.keyframes[0].url"))
    with Image.open(io.BytesIO(bytes(grabbed))) as frame:
        pixels = np.asarray(frame.convert("RGB"), dtype=np.int16)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(pixels - pixels[..., :1]).max() == 0  # grey, as the server sees it
    assert pixels[45, 57, 0] > pixels[5, 5, 0] + 30  # the green block, lighter than the field

    page.fill("#brush-color", "#30c040")
    click_at(page, "#scribble-canvas", 34.25, 20.25, WIDTH, HEIGHT)
    assert page.locator(".marker").count() == 1
    assert page.locator("#paint-tool").is_hidden()  # keyframes take point hints only
    assert page.locator("#keyframe-list li").inner_text().count("1 hint") == 1

    page.get_by_role("button", name="Preview").click()
    wait_runs(page, 2)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    preview = page.evaluate(PIXELS_JS, [34, 20])
    assert (preview["w"], preview["h"]) == (WIDTH, HEIGHT)
    assert greenish(preview["at"]), preview["at"]

    # A second keyframe at 0.25 s, coloured from a photo, and a reference for all shots.
    reference = colour_reference(tmp_path / "reference.png")
    page.get_by_role("button", name="Back to the film").click()
    assert page.locator("#input-video").is_visible()
    page.evaluate(SEEK_JS, ["input-video", 0.25])
    page.get_by_role("button", name="Use this frame as a keyframe").click()
    page.wait_for_selector("#input-box:not([hidden])")  # the grab is done: it is being edited
    page.set_input_files("#reference", str(reference))
    listed = page.locator("#keyframe-list li").all_inner_texts()
    assert len(listed) == 2 and "colours from reference.png" in listed[0] and "1 hint" in listed[1]
    page.set_input_files("#film-reference", str(reference))

    page.get_by_role("button", name="Colorize film").click()
    films_sent = "sentForms.filter(([to]) => to === 'POST /v1/colorize/video').length"
    page.wait_for_function(f"{films_sent} === 2")  # the automatic run's, then this one
    fields = sent_fields(page, "POST /v1/colorize/video")
    assert fields["video"] == ["file video"] and fields["reference"] == ["file reference"]
    assert fields["keyframe_images"] == ["file keyframe-1.png"]
    hint = {"x": 34, "y": 20, "color": "#30c040"}
    assert json.loads(fields["keyframes"][0]) == {
        "keyframes": [{"time": 0.25, "image": "keyframe-1.png"}, {"time": 1.0, "hints": [hint]}]
    }
    sent = page.evaluate(SENT_FILE_JS, ["POST /v1/colorize/video", "keyframe_images"])
    with Image.open(io.BytesIO(bytes(sent))) as coloured_frame:
        assert coloured_frame.format == "PNG" and coloured_frame.size == (WIDTH, HEIGHT)
        chroma = np.ptp(np.asarray(coloured_frame.convert("RGB"), dtype=np.int16), axis=2)
    assert chroma.mean() > 3  # the grey frame coloured from the photo, the film's size
    wait_runs(page, 3)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    assert page.locator("#video-compare").is_visible() and page.locator("#compare").is_hidden()
    page.wait_for_function("$('result-video').readyState >= 2")
    page.evaluate(SEEK_JS, ["result-video", 1.0])
    coloured = page.evaluate(VIDEO_PIXEL_JS, ["result-video", 34, 20])
    assert greenish(coloured), coloured  # the film's frame took the keyframe's hint

    # Remove the keyframe being edited: the film is shown again.
    page.get_by_role("button", name="remove the keyframe at 0.25 s").click()
    assert page.locator("#keyframe-list li").count() == 1
    assert page.locator("#input-video").is_visible()

    # The last frame, shown at the film's end: its time stays inside the film for the server.
    duration = page.evaluate("$('input-video').duration")
    page.evaluate(SEEK_JS, ["input-video", duration])
    page.get_by_role("button", name="Use this frame as a keyframe").click()
    page.wait_for_selector("#input-box:not([hidden])")
    assert page.evaluate("state.editing.time") == pytest.approx(duration - 0.001)
    assert errors == []


def test_an_album_is_coloured_from_one_reference(server, page, tmp_path):
    httpx = pytest.importorskip("httpx", reason="httpx is not installed")
    names = []
    source = np.asarray(Image.open(photo(tmp_path)).convert("L"))
    for index in range(2):
        crop = source[40 * index : 40 * index + 200, 20 * index : 20 * index + 160]
        names.append(tmp_path / f"scene{index}.png")
        Image.fromarray(crop).save(names[-1])
    colour_reference(tmp_path / "reference.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a photo at all")

    errors = console_errors(page)
    page.add_init_script(RECORD_FORMS_JS)
    page.goto(server.url)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.set_input_files("#album-files", [str(name) for name in [*names, broken]])
    assert page.locator("#album").is_visible()
    assert page.locator("#album-count").inner_text() == "3 photos"
    page.set_input_files("#album-reference", str(tmp_path / "reference.png"))
    assert page.locator("#album-reference-name").inner_text() == "reference.png"
    page.get_by_role("button", name="Colorize album").click()
    page.wait_for_selector('#album[data-state="done"][data-done="2"]')
    statuses = page.locator(".album-status").all_inner_texts()
    assert "cannot read the uploaded image" in statuses[2]  # the others go on without it
    assert page.locator('.album-item[data-state="error"]').count() == 1

    # Each result is what the REST API gives for that photo with that reference.
    links = page.locator(".album-item a")
    assert links.count() == 2
    for index, name in enumerate(names):
        assert links.nth(index).get_attribute("download") == f"scene{index}_colorized.png"
        shown = page.evaluate(BLOB_BYTES_JS, links.nth(index).get_attribute("href"))
        files = {
            "image": (name.name, name.read_bytes(), "image/png"),
            "reference": ("reference.png", (tmp_path / "reference.png").read_bytes()),
        }
        direct = httpx.post(f"{server.url}/v1/colorize", files=files, timeout=60)
        assert direct.status_code == 200, direct.text
        got = np.asarray(Image.open(io.BytesIO(bytes(shown))).convert("RGB"), dtype=np.int16)
        want = np.asarray(Image.open(io.BytesIO(direct.content)).convert("RGB"), dtype=np.int16)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1
        # ... and says, as the server says it, whether the photo matched the reference.
        share = float(direct.headers["X-Reference-Match-Share"])
        verdict = direct.headers["X-Reference-Match"]
        assert statuses[index] == f"{verdict} ({int(share * 100 + 0.5)}% of the photo matched)"

    # One hinted photo as the reference: open it, hint it, use its result for the album.
    if not page.evaluate("state.features.hints"):
        pytest.skip("this build has no colour hints yet (colorizer.guidance)")
    page.get_by_role("button", name="open scene0.png in the editor").click()
    wait_runs(page, 1)
    page.fill("#brush-color", "#3a6fd0")
    click_at(page, "#scribble-canvas", 80, 100, 160, 200)
    wait_runs(page, 2)
    page.get_by_role("button", name="Use the result above as the reference").click()
    assert page.locator("#album-reference-name").inner_text() == "scene0_colorized.png"
    used = bytes(page.evaluate(BLOB_BYTES_JS, page.evaluate("state.resultUrl")))
    page.get_by_role("button", name="Colorize album").click()
    page.wait_for_selector('#album[data-state="done"][data-done="2"]')
    assert bytes(page.evaluate(SENT_FILE_JS, ["POST /v1/colorize", "reference"])) == used
    statuses = page.locator(".album-status").all_inner_texts()
    assert all(s.startswith(("matched the reference (", "fell back (")) for s in statuses[:2])
    assert [error for error in errors if "status of 400" not in error] == []


def save_screenshot(page, target: Path) -> None:
    """The app as it looks now, as an indexed PNG under SCREENSHOT_LIMIT bytes."""
    page.locator("#hint-close").click()
    page.mouse.move(0, 0)
    bottom = page.locator("main").bounding_box()
    clip = {"x": 0, "y": 0, "width": 1280, "height": bottom["y"] + bottom["height"] + 8}
    shot = Image.open(io.BytesIO(page.screenshot(clip=clip)))
    for colours in (256, 128, 64):
        buffer = io.BytesIO()
        shot.convert("RGB").quantize(colours, dither=Image.Dither.NONE).save(
            buffer, "PNG", optimize=True
        )
        if buffer.tell() < SCREENSHOT_LIMIT:
            break
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
