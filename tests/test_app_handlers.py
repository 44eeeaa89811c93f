"""The Space in-process: importing app.py does nothing, build_demo() builds the page, and the handlers (space/)
answer hostile input with one sentence. (test_app.py drives the real server; this file calls the functions it
serves.)"""
import dataclasses
import importlib
import io
import subprocess
import sys

import gradio as gr
import pytest
from gradio.processing_utils import encode_pil_to_bytes
from PIL import Image

import fastnst
from space import fit, live, photo, settings
from tests.app_helpers import ROOT, make_family, make_photo, make_style

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
    for name in [m for m in sys.modules if m in ("app", "space") or m.startswith("space.")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh here, put back afterwards
    module = importlib.import_module("app")
    assert calls == [] and not hasattr(module, "demo")


def test_importing_the_app_or_building_the_page_loads_no_trainer():
    """`training` (the trainer, torchvision) is imported when a visitor asks for a fit, not at start-up."""
    code = ("import sys, app; heavy = lambda: sorted(m for m in ('training', 'torchvision') if m in sys.modules); "
            "print(heavy()); app.build_demo([], {}, []); print(heavy())")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[]", "[]"]


def test_the_page_offers_the_fit_recipes_budget():
    from training import fit as training_fit

    assert fit.default_image_steps() == training_fit.default_image_steps() == 1200


def test_build_demo_serves_the_api_without_launching(app):
    demo = app.build_demo([], {}, [])
    assert isinstance(demo, gr.Blocks)
    api = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"stylize", "fit_style", "publish_style"} <= api


def test_postscript_renamed_png_is_refused_by_the_handler(style, tmp_path):
    eps = tmp_path / "photo.png"
    eps.write_bytes(LOOPING_EPS)
    with pytest.raises(gr.Error, match="is not an image fastnst reads; use a JPEG, PNG"):
        photo.stylize({"path": str(eps)}, style, 1.0, False, 256)


def test_every_result_is_its_own_file_in_gradios_cache(style, tmp_path):
    picture = make_photo(tmp_path / "photo.png", (64, 48))
    first, second = (photo.stylize({"path": str(picture)}, style, 1.0, False, 64) for _ in range(2))
    assert first.tobytes() == second.tobytes()  # the same painting...
    # ...saved as different bytes, so Gradio's content-hashed cache never rewrites a file another visitor reads
    assert encode_pil_to_bytes(first, "png") != encode_pil_to_bytes(second, "png")
    assert Image.open(io.BytesIO(encode_pil_to_bytes(first, "png"))).info["Software"] == "fastnst"


@pytest.mark.parametrize("size", [(1, 1), (1, 1000), (20, 400)])
def test_a_tiny_or_thin_painting_is_refused_before_a_fit_writes_anything(tmp_path, monkeypatch, size):
    from training import fit as training_fit

    monkeypatch.setattr(training_fit, "FAMILY", make_family(tmp_path / "family"))
    monkeypatch.setattr(settings, "_current", dataclasses.replace(settings.current(), fits_dir=tmp_path / "fits"))
    painting = tmp_path / "painting.png"
    Image.new("RGB", size, (10, 200, 10)).save(painting)
    with pytest.raises(gr.Error, match="pixels"):
        next(fit.fit_style({"path": str(painting)}, None, "", 200))
    assert not any((tmp_path / "fits").glob("*/*"))


def test_a_live_stream_paints_smaller_frames_when_this_machine_cannot_keep_up(style, tmp_path, monkeypatch):
    """Frames that take 0.15 s to paint (a slow CPU) are painted smaller until they keep up with the stream, never below
    live_smallest; a style switch keeps the size; frames that paint fast grow back to live_side."""
    class Clock:  # each call is `step` seconds after the last: the handler's start and end of a frame
        now, step = 0.0, 0.15

        def monotonic(self):
            self.now += self.step
            return self.now
    clock, brushes, paint = Clock(), [], live.paint_live_frame
    monkeypatch.setattr(live, "time", clock)
    monkeypatch.setattr(live, "paint_live_frame", lambda *a: brushes.append(a[-1]) or paint(*a))
    frame = {"path": str(make_photo(tmp_path / "webcam.png", (640, 480)))}
    largest, smallest = settings.current().live_side, settings.current().live_smallest
    session, sizes = None, []
    for _ in range(24):
        painted, session, shown = live.paint_live(frame, style, session, "", 0.0, 1.5)
        sizes.append(max(painted.shape[:2]))
    assert sizes[:4] == [largest] * 4  # a few frames settle before any change
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == smallest  # ever smaller, to the floor
    assert "to keep up on this machine" in shown
    assert brushes[0] == 1.5 and brushes[-1] == 1.0  # strokes shrink with the frame, to the network's own
    _, session, _ = live.paint_live(frame, style, session, style, 0.5, 1.0)  # another style (a mix) keeps the size
    assert session.side == smallest
    clock.step = 0.005
    for _ in range(24):
        painted, session, shown = live.paint_live(frame, style, session, "", 0.0, 1.0)
    assert max(painted.shape[:2]) == largest and "keep up" not in shown


def test_a_live_stream_keeps_its_size_while_it_keeps_up():
    session = live.LiveSession.start("any", 1.0, settings.current())
    for seconds in [2.0] + [0.9 * live.LIVE_EVERY, 0.6 * live.LIVE_EVERY] * 20:  # the first frame loads the network
        session.keep_up(seconds)
    assert session.side == settings.current().live_side
