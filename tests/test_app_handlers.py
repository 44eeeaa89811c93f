"""app.py in-process: importing it does nothing, build_demo() builds the page, and the handlers answer hostile
input with one sentence. (test_app.py drives the real server; this file calls the functions it serves.)"""
import importlib
import io
import sys

import gradio as gr
import pytest
from gradio.processing_utils import encode_pil_to_bytes
from PIL import Image

import fastnst
from tests.app_helpers import make_family, make_photo, make_style

LOOPING_EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n{ } loop\n%%EOF\n"


@pytest.fixture(scope="module")
def app():
    sys.modules.pop("app", None)
    return importlib.import_module("app")


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    return str(make_style(tmp_path_factory.mktemp("style") / "test-style", 0, "Test Style", "Nobody"))


def test_importing_the_app_paints_loads_and_asks_nothing(monkeypatch):
    calls = []
    for name in ("stylize", "load_style"):
        monkeypatch.setattr(fastnst, name, lambda *a, _n=name, **k: calls.append(_n))
    monkeypatch.setattr("fastnst.styles.load_style", lambda *a, **k: calls.append("load_style"))
    monkeypatch.setattr("huggingface_hub.HfApi.list_models", lambda *a, **k: calls.append("hub") or [])
    sys.modules.pop("app", None)
    module = importlib.import_module("app")
    assert calls == [] and not hasattr(module, "demo")
    sys.modules.pop("app", None)


def test_build_demo_serves_the_api_without_launching(app):
    demo = app.build_demo([], {}, [])
    assert isinstance(demo, gr.Blocks)
    api = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"stylize", "fit_style", "publish_style"} <= api


def test_postscript_renamed_png_is_refused_by_the_handler(app, style, tmp_path):
    eps = tmp_path / "photo.png"
    eps.write_bytes(LOOPING_EPS)
    with pytest.raises(gr.Error, match="is not an image fastnst reads; use a JPEG, PNG"):
        app.stylize({"path": str(eps)}, style, 1.0, False, 256)


def test_every_result_is_its_own_file_in_gradios_cache(app, style, tmp_path):
    photo = make_photo(tmp_path / "photo.png", (64, 48))
    first, second = (app.stylize({"path": str(photo)}, style, 1.0, False, 64) for _ in range(2))
    assert first.tobytes() == second.tobytes()  # the same painting...
    # ...saved as different bytes, so Gradio's content-hashed cache never rewrites a file another visitor reads
    assert encode_pil_to_bytes(first, "png") != encode_pil_to_bytes(second, "png")
    assert Image.open(io.BytesIO(encode_pil_to_bytes(first, "png"))).info["Software"] == "fastnst"


@pytest.mark.parametrize("size", [(1, 1), (1, 1000), (20, 400)])
def test_a_tiny_or_thin_painting_is_refused_before_a_fit_writes_anything(app, tmp_path, monkeypatch, size):
    monkeypatch.setattr(app.fit, "FAMILY", make_family(tmp_path / "family"))
    monkeypatch.setattr(app, "FITS_DIR", tmp_path / "fits")
    painting = tmp_path / "painting.png"
    Image.new("RGB", size, (10, 200, 10)).save(painting)
    with pytest.raises(gr.Error, match="pixels"):
        next(app.fit_style({"path": str(painting)}, None, "", 200))
    assert not any((tmp_path / "fits").glob("*/*"))


def test_a_live_stream_paints_smaller_frames_when_this_machine_cannot_keep_up(app, style, tmp_path, monkeypatch):
    """Frames that take 0.15 s to paint (a slow CPU) are painted smaller until they keep up with the stream, never below
    LIVE_SMALLEST; a style switch keeps the size; frames that paint fast grow back to LIVE_SIDE."""
    class Clock:  # each call is `step` seconds after the last: the handler's start and end of a frame
        now, step = 0.0, 0.15

        def monotonic(self):
            self.now += self.step
            return self.now
    clock, brushes, paint = Clock(), [], app.paint_live_frame
    monkeypatch.setattr(app, "time", clock)
    monkeypatch.setattr(app, "paint_live_frame", lambda *a: brushes.append(a[-1]) or paint(*a))
    frame = {"path": str(make_photo(tmp_path / "webcam.png", (640, 480)))}
    session, sizes = None, []
    for _ in range(24):
        painted, session, shown = app.paint_live(frame, style, session, "", 0.0, 1.5)
        sizes.append(max(painted.shape[:2]))
    assert sizes[:4] == [app.LIVE_SIDE] * 4  # a few frames settle before any change
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == app.LIVE_SMALLEST  # ever smaller, to the floor
    assert "to keep up on this machine" in shown
    assert brushes[0] == 1.5 and brushes[-1] == 1.0  # strokes shrink with the frame, to the network's own
    _, session, _ = app.paint_live(frame, style, session, style, 0.5, 1.0)  # another style (a mix) keeps the size
    assert session.side == app.LIVE_SMALLEST
    clock.step = 0.005
    for _ in range(24):
        painted, session, shown = app.paint_live(frame, style, session, "", 0.0, 1.0)
    assert max(painted.shape[:2]) == app.LIVE_SIDE and "keep up" not in shown


def test_a_live_stream_keeps_its_size_while_it_keeps_up(app):
    session = app.LiveSession("any")
    for seconds in [2.0] + [0.9 * app.LIVE_EVERY, 0.6 * app.LIVE_EVERY] * 20:  # the first frame loads the network
        session.fit(seconds)
    assert session.side == app.LIVE_SIDE
