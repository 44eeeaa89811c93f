"""The Space (app.py) as gradio_client sees it: `python app.py` in a subprocess, driven through /stylize.

The app runs on a generated two-style gallery of tiny random networks (tests/app_helpers.py), offline
(HF_HUB_OFFLINE=1), or, for the Hub tests, with an empty gallery against the local Hub stand-in.
"""
import concurrent.futures
import json
import os
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.app_helpers import (
    client_tempdir,
    log_of,
    make_family,
    make_fit_recipe,
    make_gallery,
    make_photo,
    make_photos,
    make_style,
    running_app,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

PHOTO_SIZE = (300, 200)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    styles = make_gallery(tmp)
    make_family(styles / "family")  # what fits start from; not a gallery entry (no style.json)
    photo = make_photo(tmp / "photo.png", PHOTO_SIZE)
    env = {"FASTNST_FIT_PHOTOS": str(make_photos(tmp / "photos")), "FASTNST_FITS_DIR": str(tmp / "fits"),
           "FASTNST_FIT_RECIPE": str(make_fit_recipe(tmp / "fit.json"))}
    with running_app(styles, tmp, env) as url, client_tempdir(tmp / "client"):
        client = Client(url, verbose=False, download_files=str(tmp / "downloads"))
        yield SimpleNamespace(url=url, tmp=tmp, styles=styles, photo=photo, client=client)


def paint(app, photo=None, style="test-style", strength=1.0, preserve_color=False, max_side=150, brush=None):
    more = () if brush is None else (brush,)  # left out: the API's default brush
    out = app.client.predict(handle_file(str(photo or app.photo)), style, strength, preserve_color, max_side, *more,
                             api_name="/stylize")
    with Image.open(out) as img:
        return img.convert("RGB")


def expected_sentence(fn, *args):
    """The FastNSTError sentence the library itself gives for this mistake."""
    from fastnst.errors import FastNSTError

    with pytest.raises(FastNSTError) as info:
        fn(*args)
    return str(info.value)


def test_only_the_four_named_endpoints_are_public(app):
    api = app.client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/stylize", "/fit_style", "/publish_style", "/stylize_video"]
    assert not api["unnamed_endpoints"]
    params = lambda name: [p["parameter_name"] for p in api["named_endpoints"][name]["parameters"]]  # noqa: E731
    assert params("/stylize") == ["image", "style", "strength", "preserve_color", "max_side", "brush"]
    assert params("/fit_style") == ["painting", "photo", "title", "image_steps", "repo_name", "token"]
    assert params("/publish_style") == ["style", "repo_name", "token"]
    assert params("/stylize_video") == ["video", "style", "strength", "preserve_color", "brush"]


def test_a_video_through_the_api_comes_back_painted_and_a_picture_is_refused(app):
    import av

    from tests.clips import make_clip

    clip = make_clip(app.tmp / "clip.mp4", frames=6, size=(96, 64))
    video, status = app.client.predict(handle_file(str(clip)), "test-style", 1.0, False,
                                       api_name="/stylize_video")
    with av.open(video["video"] if isinstance(video, dict) else video) as painted:
        assert painted.streams.video[0].frames == 6 and painted.streams.audio
    assert "Painted** 6 frames of 96×64 (with its sound)" in status
    with pytest.raises(Exception, match="This file is not a video fastnst reads; send mp4, mov, mkv or webm."):
        app.client.predict(handle_file(str(app.photo)), "test-style", 1.0, False,
                           api_name="/stylize_video")


def test_fit_a_style_through_the_api_then_paint_with_it(app):
    painting = make_photo(app.tmp / "api_painting.png", (90, 70), shift=60)
    status, preview, style = app.client.predict(handle_file(str(painting)), handle_file(str(app.photo)),
                                                "API Style", 200, "", "", api_name="/fit_style")
    assert "Done" in status and "API Style" in status
    with Image.open(preview) as img:
        assert img.size == PHOTO_SIZE  # the photo is smaller than the preview size: never enlarged
    painted = paint(app, style=style)
    assert painted.size == (150, 100)


def test_fit_bad_input_gets_one_sentence(app):
    from fastnst import load_image

    bad = app.tmp / "not-a-painting.png"
    bad.write_text("text\n")
    with pytest.raises(Exception) as info:
        app.client.predict(handle_file(str(bad)), None, "", 200, "", "", api_name="/fit_style")
    assert expected_sentence(load_image, bad.read_bytes()) in str(info.value)
    huge = app.tmp / "huge-painting.png"
    Image.new("1", (8000, 8000)).save(huge)
    with pytest.raises(Exception, match="64 MP"):
        app.client.predict(handle_file(str(huge)), None, "", 200, "", "", api_name="/fit_style")
    with pytest.raises(Exception, match="image_steps must be a whole number from 200 to 8000"):
        app.client.predict(handle_file(str(app.photo)), None, "", 10**9, "", "", api_name="/fit_style")
    with pytest.raises(Exception, match="only styles fitted here can be published"):
        app.client.predict(str(app.styles / "test-style"), "x", "", api_name="/publish_style")
    with pytest.raises(Exception, match="Sign in"):
        app.client.predict(handle_file(str(app.photo)), None, "", 200, "my-style", "", api_name="/fit_style")
    assert "Traceback" not in log_of(app.tmp)


def test_paints_at_max_side_keeping_aspect(app):
    painted = paint(app, max_side=150)
    assert painted.size == (150, 100)
    with Image.open(app.photo) as photo:
        original = np.asarray(photo.convert("RGB").resize((150, 100)), dtype=np.float32)
    assert np.abs(np.asarray(painted, dtype=np.float32) - original).mean() > 10


def test_small_photo_is_not_enlarged_and_controls_reach_the_library(app):
    full = paint(app, max_side=1024)
    assert full.size == PHOTO_SIZE
    with Image.open(app.photo) as photo:
        original = np.asarray(photo.convert("RGB"), dtype=np.int16)
    untouched = np.asarray(paint(app, strength=0.0, max_side=1024), dtype=np.int16)
    assert np.abs(untouched - original).max() <= 1  # strength 0 is the photo itself
    recoloured = paint(app, preserve_color=True, max_side=1024)
    assert np.abs(np.asarray(recoloured, dtype=np.int16) - np.asarray(full, dtype=np.int16)).mean() > 1
    other = paint(app, style="second-style", max_side=1024)
    assert np.abs(np.asarray(other, dtype=np.int16) - np.asarray(full, dtype=np.int16)).mean() > 1
    own, broad = paint(app, brush=1, max_side=1024), paint(app, brush=3, max_side=1024)
    assert broad.size == PHOTO_SIZE
    assert np.abs(np.asarray(broad, dtype=np.int16) - np.asarray(own, dtype=np.int16)).mean() > 1


def test_non_image_upload_gives_the_library_sentence(app):
    from fastnst import load_image

    bad = app.tmp / "not-a-photo.png"
    bad.write_text("This is a text file wearing a .png name.\n")
    sentence = expected_sentence(load_image, bad.read_bytes())
    with pytest.raises(Exception) as info:
        paint(app, photo=bad)
    assert sentence in str(info.value)
    assert "Traceback" not in log_of(app.tmp)


def test_huge_image_gives_the_library_sentence(app):
    from fastnst import load_image

    huge = app.tmp / "huge.png"
    Image.new("1", (8000, 8000)).save(huge)  # 64 MP, over the 36 MP budget, in a file of a few kB
    sentence = expected_sentence(load_image, huge.read_bytes())
    assert "64 MP" in sentence
    with pytest.raises(Exception) as info:
        paint(app, photo=huge)
    assert sentence in str(info.value)


def test_unknown_style_gives_the_library_sentence(app, monkeypatch):
    import fastnst.styles

    monkeypatch.setattr(fastnst.styles, "STYLES_DIR", app.styles)  # the sentence lists the gallery
    sentence = expected_sentence(fastnst.styles.load_style, "no-such-style")
    with pytest.raises(Exception) as info:
        paint(app, style="no-such-style")
    assert sentence in str(info.value)
    assert "Traceback" not in log_of(app.tmp)


def test_out_of_range_options_are_refused_clearly(app):
    with pytest.raises(Exception, match="max_side must be a whole number of pixels"):
        paint(app, max_side=100_000)
    with pytest.raises(Exception, match="strength must be a number between 0 and 1"):
        paint(app, strength=3.0)
    with pytest.raises(Exception, match=r"brush must be a number from 0\.5 \(finer strokes\) to 4"):
        paint(app, brush=9)


def test_twenty_concurrent_requests_all_succeed(app):
    sizes = [64 + 8 * i for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        painted = list(pool.map(lambda side: paint(app, max_side=side), sizes))
    assert [img.size for img in painted] == [(side, round(side * 2 / 3)) for side in sizes]


# --- empty gallery, styles from the Hub (the local stand-in) -----------------------------------------------------

@pytest.fixture(scope="module")
def hub_app(tmp_path_factory):
    from tests.hub_server import HubServer, client_env

    tmp = tmp_path_factory.mktemp("hub_app")
    folder = make_style(tmp / "hub-style", seed=7, title="Hub Style", artist="Somebody Online")
    hub = HubServer().start()
    try:
        hub.commit("alice/hub-style", {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
        empty = tmp / "styles"
        empty.mkdir()
        env = {**client_env(hub.url, str(tmp / "hf")), "HF_HUB_OFFLINE": None}
        with running_app(empty, tmp, env) as url, client_tempdir(tmp / "client"):
            client = Client(url, verbose=False, download_files=str(tmp / "downloads"))
            yield SimpleNamespace(url=url, tmp=tmp, photo=make_photo(tmp / "photo.png", PHOTO_SIZE),
                                  client=client)
    finally:
        hub.stop()


def test_empty_gallery_starts_and_offers_community_styles(hub_app):
    with urllib.request.urlopen(hub_app.url + "config", timeout=10) as response:
        config = json.load(response)
    props = [c.get("props", {}) for c in config["components"]]
    assert any("gallery is empty" in str(p.get("value", "")) and p.get("visible") for p in props)
    community = [p for p in props if str(p.get("label", "")).startswith("Community styles")]
    assert community and community[0]["visible"]
    assert ["alice/hub-style", "alice/hub-style"] in [list(c) for c in community[0]["choices"]]


def test_hub_style_paints_and_unknown_repo_is_explained(hub_app):
    painted = paint(hub_app, style="alice/hub-style", max_side=120)
    assert painted.size == (120, 80)
    with pytest.raises(Exception) as info:
        paint(hub_app, style="alice/no-such-style")
    assert "There is no Hub repo 'alice/no-such-style' (or it is private)." in str(info.value)
    with pytest.raises(Exception, match="Pick a style first"):
        paint(hub_app, style="")
    assert "Traceback" not in log_of(hub_app.tmp)


def test_space_front_matter_matches_the_gallery_and_the_pins():
    """The README's Space metadata: Gradio SDK at the pinned version, app.py, and `models:` naming every gallery
    style's Hub repo (so the Hub links the Space to them)."""
    from pathlib import Path

    from huggingface_hub.repocard import metadata_load

    from fastnst.styles import gallery
    root = Path(__file__).resolve().parents[1]
    meta = metadata_load(root / "README.md")
    pins = dict(line.split("==") for line in (root / "requirements.txt").read_text().splitlines() if "==" in line)
    assert (meta["sdk"], meta["app_file"], str(meta["sdk_version"])) == ("gradio", "app.py", pins["gradio"])
    assert {"suggested_hardware", "short_description", "tags"} <= meta.keys() and "fastnst" in meta["tags"]
    assert sorted(meta["models"]) == sorted(m["hub_repo"] for m in gallery() if m.get("hub_repo"))
