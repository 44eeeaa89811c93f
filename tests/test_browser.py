"""The Space in a real browser: headless Chromium (/usr/bin/chromium) driven by Playwright.

A visitor uploads a photo, clicks a gallery thumbnail and gets the painted photo, at full size; a bad upload gets the
library's sentence in a toast; with an empty gallery, a style loaded from the Hub (the local stand-in) becomes a
thumbnail and paints; a painting of their own is fitted (progress, live preview, stop), joins the gallery and is
published to the stand-in Hub; a webcam (Chromium's fake camera playing a generated clip) is painted live, and
keeps being painted after a change of style. Skips when Chromium or the playwright package is missing (CI:
apt-get install chromium).
"""
import io
import os
import shutil
from types import SimpleNamespace

import pytest
from PIL import Image

from tests.app_helpers import (make_family, make_fit_recipe, make_gallery, make_photo, make_photos, make_style,
                               running_app)
from tests.clips import make_y4m

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHOTO_SIZE = (300, 200)
TIMEOUT_MS = 30_000

if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:  # one per module: a second one inside it is refused
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser_app")
    with running_app(make_gallery(tmp), tmp) as url:
        yield SimpleNamespace(url=url, tmp=tmp, photo=make_photo(tmp / "photo.png", PHOTO_SIZE))


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.close()


def open_app(page, url):
    page.goto(url)
    page.wait_for_selector("#photo input[type=file]", state="attached")


def upload(page, path):
    page.locator("#photo input[type=file]").set_input_files(str(path))


def result_src(page) -> str | None:
    img = page.locator("#result img")
    return img.get_attribute("src") if img.count() else None


def wait_for_new_result(page, old_src=None) -> str:
    """Wait until the painted image shows, different from `old_src`, and has loaded; return its src."""
    page.wait_for_function(
        """old => { const img = document.querySelector('#result img');
                    return img && img.src !== old && img.complete && img.naturalWidth > 0; }""",
        arg=old_src)
    return result_src(page)


def toast_text(page) -> str:
    toast = page.locator('[data-testid="toast-body"]').first
    toast.wait_for(state="visible")
    return toast.inner_text()


def test_upload_click_thumbnail_get_full_size_painting(app, page):
    open_app(page, app.url)
    upload(page, app.photo)
    first = wait_for_new_result(page)  # uploading paints at once with the selected (first) style
    page.locator("#styles button.thumbnail-item").nth(1).click()
    second = wait_for_new_result(page, first)
    assert "Second Style" in page.locator("#result label").first.inner_text()
    natural = page.eval_on_selector("#result img", "img => [img.naturalWidth, img.naturalHeight]")
    assert tuple(natural) == PHOTO_SIZE
    # The download button serves the same full-resolution, lossless file.
    href = page.locator("#result a[download]").get_attribute("href")
    assert href == second
    response = page.request.get(href)
    assert response.ok
    with Image.open(io.BytesIO(response.body())) as downloaded:
        assert (downloaded.format, downloaded.size) == ("PNG", PHOTO_SIZE)


def test_an_example_paints_in_its_style_and_is_cached(app, page):
    """Clicking an example photo sets the photo and its style (marked in the gallery) and shows the painting,
    computed on first use and then kept in Gradio's example cache (cache_mode="lazy")."""
    open_app(page, app.url)
    cache = app.tmp / ".gradio" / "cached_examples"
    assert not list(cache.rglob("*.csv"))  # lazy: nothing was painted at start-up
    page.get_by_role("button").filter(has=page.locator("img[src*='cat']")).first.click()  # 2nd example → 2nd style
    wait_for_new_result(page)
    assert "Second Style" in page.locator("#result label").first.inner_text()
    assert "selected" in (page.locator("#styles button.thumbnail-item").nth(1).get_attribute("class") or "")
    assert page.locator("#photo img").count() == 1
    assert list(cache.rglob("*.csv")), "the example's painting was not cached"


def test_bad_upload_shows_the_library_sentence(app, page):
    bad = app.tmp / "really-text.png"
    bad.write_text("I am text, not a PNG.\n")
    open_app(page, app.url)
    upload(page, bad)
    assert "is not an image fastnst reads" in toast_text(page)
    assert "Traceback" not in page.content()


def test_empty_gallery_then_a_style_from_the_hub(tmp_path, page):
    from tests.hub_server import HubServer, client_env

    folder = make_style(tmp_path / "hub-style", seed=7, title="Hub Style", artist="Somebody Online")
    with HubServer() as hub:
        hub.commit("alice/hub-style", {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
        (tmp_path / "styles").mkdir()
        env = {**client_env(hub.url, str(tmp_path / "hf")), "HF_HUB_OFFLINE": None}
        with running_app(tmp_path / "styles", tmp_path, env) as url:
            open_app(page, url)
            assert page.get_by_text("The style gallery is empty").is_visible()
            repo = page.get_by_label("Hub repo")
            repo.fill("not a repo id")
            page.get_by_role("button", name="Load style").click()
            assert "is not a Hub repo id" in toast_text(page)
            repo.fill("alice/hub-style")
            page.get_by_role("button", name="Load style").click()
            thumbnail = page.locator("#styles button.thumbnail-item")
            thumbnail.first.wait_for(state="visible")
            assert "Hub Style — Somebody Online" in thumbnail.first.inner_text()
            assert not page.get_by_text("The style gallery is empty").is_visible()
            upload(page, make_photo(tmp_path / "photo.png", PHOTO_SIZE))
            wait_for_new_result(page)
            assert "Hub Style" in page.locator("#result label").first.inner_text()


def test_fit_a_painting_preview_stop_and_publish(tmp_path, page):
    from tests.hub_server import HubServer, client_env

    styles = make_gallery(tmp_path)
    make_family(styles / "family")
    with HubServer() as hub:
        env = {**client_env(hub.url, str(tmp_path / "hf")), "HF_HUB_OFFLINE": None,
               "FASTNST_FIT_PHOTOS": str(make_photos(tmp_path / "photos")), "FASTNST_FITS_DIR": str(tmp_path / "fits"),
               "FASTNST_FIT_RECIPE": str(make_fit_recipe(tmp_path / "fit.json"))}
        hub.create_repo(f"{hub.username}/taken")
        with running_app(styles, tmp_path, env) as url:
            open_app(page, url)
            upload(page, make_photo(tmp_path / "photo.png", PHOTO_SIZE))
            wait_for_new_result(page)
            page.get_by_text("Make a style from your painting").click()
            page.locator("#painting input[type=file]").set_input_files(str(make_photo(tmp_path / "sunset.png",
                                                                                         (90, 70), shift=100)))
            page.get_by_label("Style name").fill("Sunset Study")
            page.get_by_label("Hugging Face write token").fill("hf_local_test_token")
            page.get_by_label("Hub repo name").fill("taken")
            page.locator("#fit-go").click()
            assert "already exists" in toast_text(page)  # checked before any work starts
            page.get_by_label("Hub repo name").fill("sunset-study")
            page.locator("#fit-go").click()
            page.wait_for_function("() => document.querySelector('#fit-status')?.innerText.includes('Trained on')")
            page.wait_for_function("""() => { const img = document.querySelector('#fit-preview img');
                                             return img && img.complete && img.naturalWidth > 0; }""")
            page.locator("#fit-stop").click()  # it looks right: keep the network as it is
            page.wait_for_function("() => document.querySelector('#fit-status')?.innerText.includes('Done')",
                                   timeout=60_000)
            thumbnail = page.locator("#styles button.thumbnail-item", has_text="Sunset Study")
            thumbnail.wait_for(state="visible")
            assert "selected" in (thumbnail.get_attribute("class") or "")
            page.locator("#publish").click()
            page.wait_for_function("() => document.querySelector('#publish-status')?.innerText.includes('Published')",
                                   timeout=60_000)
            assert "Traceback" not in page.content()
        assert (("model", f"{hub.username}/sunset-study")) in hub.repos


def live_frames(page, count: int, seen: set) -> tuple[set, list]:
    """Wait until `count` painted frames not in `seen` have shown in the Live section; return all seen and the last
    one's natural size. Each frame's source and size are read in the same evaluation that finds it loaded: the
    stream swaps the image's source between frames, and a frame read while the next one loads is 0×0 (this raced
    once in CI)."""
    seen, size = set(seen), None
    for _ in range(count):
        src, *size = page.wait_for_function(
            """seen => { const img = document.querySelector('#live-out img');
                         return img && img.complete && img.naturalWidth > 0 && !seen.includes(img.src)
                                && [img.src, img.naturalWidth, img.naturalHeight]; }""",
            arg=list(seen)).json_value()
        seen.add(src)
    return seen, size


def test_the_webcam_is_painted_live_and_the_style_switches_while_it_runs(app, playwright, tmp_path):
    clip = make_y4m(tmp_path / "camera.y4m")
    camera = [f"--use-file-for-fake-video-capture={clip}", "--use-fake-ui-for-media-stream",
              "--use-fake-device-for-media-stream"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        open_app(page, app.url)
        page.get_by_text("Live: your webcam, painted").click()
        page.get_by_text("Click to Access Webcam").click()
        page.get_by_role("button", name="capture photo").click()  # Gradio's label for the Record button
        seen, natural = live_frames(page, 5, set())
        assert 160 <= natural[0] <= 320 and natural[0] * 3 == natural[1] * 4  # LIVE_SIDE or less, not the camera's
        page.wait_for_function("() => /[0-9.]+ frames a second/.test(document.querySelector('#live-rate').innerText)")
        page.locator("#styles button.thumbnail-item").nth(1).click()
        live_frames(page, 3, seen)  # the stream goes on in the new style
    finally:
        browser.close()


def test_a_second_style_and_the_mix_slider_blend_the_painting(app, page):
    open_app(page, app.url)
    upload(page, app.photo)
    first = wait_for_new_result(page)
    page.locator("#mix-with input").click()
    page.get_by_role("option", name="Second Style — Somebody").click()
    mixed = wait_for_new_result(page, first)
    assert "Test Style — Nobody + 50% Second Style — Somebody" in page.locator("#result label").first.inner_text()
    box = page.locator("#mix input[type=range]").bounding_box()  # drag the slider to its end, as a visitor does
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 20, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    wait_for_new_result(page, mixed)
    # the drag may paint at a value on the way before its end: wait for the painting at the slider's end
    sync_api.expect(page.locator("#result label").first).to_contain_text(
        "Test Style — Nobody + 100% Second Style — Somebody", timeout=TIMEOUT_MS)


def test_the_brush_slider_repaints_with_broader_strokes(app, page):
    open_app(page, app.url)
    upload(page, app.photo)
    first = wait_for_new_result(page)
    box = page.locator("#brush input[type=range]").bounding_box()  # drag to the broadest brush, as a visitor does
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 20, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    sync_api.expect(page.locator("#brush input[type=number]")).to_have_value("4", timeout=TIMEOUT_MS)
    assert wait_for_new_result(page, first) != first


def test_a_gallery_of_26_styles_stays_within_the_page_and_its_last_thumbnail_paints(tmp_path, browser):
    """The real gallery has 20 styles: the thumbnails scroll inside a box that leaves the photo and the painting in
    view, and the last one is as clickable as the first."""
    entries = {f"style-{k:02d}": (f"Style {k:02d}", "Artist", k) for k in range(1, 27)}
    with running_app(make_gallery(tmp_path, entries), tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            open_app(page, url)
            upload(page, make_photo(tmp_path / "photo.png", PHOTO_SIZE))
            first = wait_for_new_result(page)
            thumbnails = page.locator("#styles button.thumbnail-item")
            assert thumbnails.count() == 26
            assert page.locator("#styles").bounding_box()["height"] <= 0.75 * 900
            thumbnails.nth(25).scroll_into_view_if_needed()
            thumbnails.nth(25).click()
            wait_for_new_result(page, first)
            assert "Style 26" in page.locator("#result label").first.inner_text()
        finally:
            page.close()
