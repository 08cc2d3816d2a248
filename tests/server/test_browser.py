"""The web UI in a real browser: Debian's chromium driven by Playwright, the shipped model.

Installs nothing: skips when chromium or Playwright is absent (``.ci/run`` installs chromium).
``COLORIZER_APP_SCREENSHOT=docs/app.png`` also saves a screenshot of the app for the README.
"""

from __future__ import annotations

import io
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
