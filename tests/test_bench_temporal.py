"""bench/temporal.py: its synthetic clips carry their exact motion, and the bench prints its table end to end."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """bench/temporal.py, with no loss network kept from an earlier test (it shares bench.quality's)."""
    from bench import quality, temporal

    monkeypatch.setattr(quality, "_vggs", {})
    return temporal


def test_the_synthetic_pan_and_zoom_carry_their_exact_motion(bench):
    """Frame t−1 moved along the clip's own flow is frame t up to the sensor noise; without the motion it is not."""
    for kind in ("pan", "zoom"):
        clip, flows, masks = bench.synthetic_clip(ROOT / "examples" / "rocket.jpg", kind, 4, 160)
        moved = bench.warping_error(clip, flows, masks)
        still = bench.warping_error(clip, [None] + [np.zeros_like(f) for f in flows[1:]], masks)
        floor = bench.NOISE * 2 ** 0.5 * (2 / np.pi) ** 0.5  # mean |difference| of two frames' independent noise
        assert moved < 1.1 * floor and still > 1.1 * moved, (kind, moved, still)


def test_the_object_clip_carries_the_things_exact_motion_and_masks_what_it_uncovers(bench, monkeypatch):
    """Moved by whole pixels, the cut-out's frame t−1 moved along the clip's flow is frame t exactly, and not
    without the motion; at the bench's own sub-pixel motion and turn the background stays still and what the thing
    uncovers (and its feathered rim) is left out of the comparison."""
    canvas = bench.camera_canvas(ROOT / "examples" / "rocket.jpg", 160)
    thing = bench.sprite(ROOT / "examples" / "astronaut.jpg", 160)

    def on_thing(flows, masks):
        return bench.moving_thing("object", flows, masks)
    with monkeypatch.context() as m:
        m.setattr(bench, "WALK", (2.0 * 384 / 160, 0.0, 0.0))
        clip, flows, masks = bench.film_object(canvas, thing, 4, 160, noise=0)
        assert bench.warping_error(clip, flows, on_thing(flows, masks)) < 0.01
        assert bench.warping_error(clip, [None] + [np.zeros_like(f) for f in flows[1:]], on_thing(flows, masks)) > 5
    clip, flows, masks = bench.film_object(canvas, thing, 4, 160)
    assert all(0.05 < t.mean() < 0.5 for t in on_thing(flows, masks)[1:])
    background = [None] + [m & (f == 0).all(-1) for f, m in zip(flows[1:], masks[1:])]
    assert bench.warping_error(clip, flows, background) < 1.1 * bench.NOISE * 2 ** 0.5 * (2 / np.pi) ** 0.5
    assert all(0.8 < m.mean() < 1 for m in masks[1:])


def test_the_real_clips_motion_is_no_motion_where_that_explains_the_input_better(bench):
    """A flow fitted to noise on a still frame is dropped; a pan's real motion is kept where the picture has detail."""
    clip, flows, _ = bench.synthetic_clip(ROOT / "examples" / "rocket.jpg", "pan", 2, 160)
    kept = bench.or_still(flows[1], clip[1], clip[0])
    assert np.array_equal(kept != 0, np.broadcast_to((kept != 0).any(-1, keepdims=True), kept.shape))
    assert (kept != 0).any(-1).mean() > 0.5
    noise = np.random.default_rng(0).normal(0, 0.5, flows[1].shape).astype(np.float32)
    assert (bench.or_still(noise, clip[0], clip[0]) == 0).all()  # the same frame: nothing moved


def test_the_bench_prints_flicker_texture_and_speed_and_draws_the_strip(bench, shared_data, tmp_path, capsys):
    strip = tmp_path / "strip.jpg"
    assert bench.main(["--styles", "starry-night", "--clips", "pan,object", "--frames", "5", "--side", "128",
                      "--strip", str(strip), "--weights-dir", str(shared_data / "weights"),
                      "--paintings-dir", str(shared_data / "styles")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("starry-night"))
    per_frame, ideal, ideal_texture, shipped_ratio = (float(row.split()[i]) for i in (3, 5, 6, 8))
    assert per_frame > 0 and 0 < shipped_ratio < 1  # the shipped path flickers less than painting frame by frame
    assert 0 < ideal < shipped_ratio and ideal_texture > 0  # and a painting glued to the scene less still
    thing = next(line for line in out.splitlines() if line.startswith("starry-night") and "object" in line)
    assert 0 < float(thing.split()[9]) < 1.5  # the moving thing's own ratio, beside the whole frame's
    assert "worst ratio" in out
    assert Image.open(strip).size == (4 * 256, 3 * 192)  # 4 frames × (input, per-frame, shipped)


def test_the_live_page_bench_feeds_chromium_a_panning_camera(tmp_path):
    from bench import live_page as live

    clip = live.pan_y4m(tmp_path / "camera.y4m", (64, 48), frames=3).read_bytes()
    header, _, body = clip.partition(b"\n")
    assert header == b"YUV4MPEG2 W64 H48 F30:1 Ip A1:1 C420jpeg"
    frames = body.split(b"FRAME\n")[1:]
    assert [len(f) for f in frames] == [64 * 48 * 3 // 2] * 3 and frames[0] != frames[1]  # I420, and it moves
