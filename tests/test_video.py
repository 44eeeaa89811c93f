"""Video files: decode, paint, smooth, encode; every bad file gets a sentence and leaves nothing behind."""
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from fastnst import load_style, stylize_video
from fastnst.errors import FastNSTError, InvalidOptionError
from fastnst.temporal import Smoother
from fastnst.video import Cancelled, InvalidVideoError, VideoLimits, VideoTooLargeError, probe
from tests.clips import make_clip, scene

ROOT = Path(__file__).resolve().parents[1]
STYLE = "starry-night"


def streams(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(video=0))
        return {"codec": v.codec_context.name, "size": (frames[0].width, frames[0].height), "frames": len(frames),
                "rate": v.average_rate, "pts": [f.pts * f.time_base for f in frames],
                "audio": [a.codec_context.name for a in c.streams.audio], "first": frames[0].to_ndarray(format="rgb24")}


@pytest.fixture(scope="module")
def style():
    return load_style(STYLE, device="cpu", variant="light")


def test_an_mp4_comes_back_painted_with_its_frames_rate_and_sound(tmp_path, style):
    src = make_clip(tmp_path / "clip.mp4", frames=12, fps=12)
    seen = []
    result = stylize_video(src, style, tmp_path / "out.mp4", max_side=48, device="cpu",
                           progress=lambda done, total, elapsed: seen.append((done, total)))
    got = streams(result.path)
    assert got["codec"] == "h264" and got["size"] == (48, 36) and got["frames"] == 12 and got["rate"] == 12
    assert got["audio"] == ["aac"] and result.audio and result.frames == 12
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == list(range(1, 13))
    assert np.abs(got["first"].astype(int) - scene(0, 48, 36)).mean() > 20  # painted, not copied
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # nothing half-written left


def test_brush_reaches_the_frames(tmp_path, style):
    src = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    first = {b: streams(stylize_video(src, style, tmp_path / f"{b}.mp4", max_side=64, brush=b, smooth=0.0,
                                      device="cpu").path)["first"].astype(int) for b in (1, 3)}
    assert np.abs(first[1] - first[3]).mean() > 5


def test_webm_with_opus_and_uneven_timestamps_keeps_its_timing(tmp_path, style):
    times = [0, 100, 150, 400, 450, 500, 900, 1000]  # ms: a variable frame rate
    src = make_clip(tmp_path / "clip.webm", frames=len(times), fmt="webm", codec="libvpx-vp9",
                    audio_codec="libopus", pts=times)
    result = stylize_video(src, style, tmp_path / "out.mp4", device="cpu")
    got = streams(result.path)
    assert [float(t) for t in got["pts"]] == pytest.approx([t / 1000 for t in times], abs=0.002)
    assert got["size"] == (64, 48) and got["audio"] == ["aac"]  # mp4 holds Opus badly: it becomes AAC


def test_a_phone_video_is_painted_upright(tmp_path, style):
    src = make_clip(tmp_path / "phone.mp4", frames=3, audio=False)
    data = bytearray(src.read_bytes())  # the track header's display matrix: rotate 90° clockwise to show
    at = data.index(b"tkhd") + 44
    data[at:at + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 0x40000000)
    src.write_bytes(bytes(data))
    result = stylize_video(src, style, tmp_path / "out.mp4", device="cpu", strength=0.0)
    first = streams(result.path)["first"].astype(int)
    assert first.shape == (64, 48, 3)  # portrait now
    upright = np.rot90(scene(0), -1)  # the square, top left as stored, is top right when shown
    assert np.abs(first - upright).mean() < 12


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_bytes((ROOT / "examples" / "cat.jpg").read_bytes()), "not a video fastnst reads"),
    (lambda p: p.write_bytes(b"#EXTM3U\n#EXTINF:1,\nhttp://example.com/a.ts\n"), "not a video fastnst reads"),
    (lambda p: p.write_bytes(make_clip(p.with_name("whole.mp4")).read_bytes()[:600]), "damaged or cut short"),
])
def test_bad_files_get_one_sentence_and_leave_nothing(tmp_path, style, make, message):
    src = tmp_path / "in.mp4"
    make(src)
    before = set(tmp_path.iterdir())
    with pytest.raises(InvalidVideoError, match=message) as err:
        stylize_video(src, style, tmp_path / "out.mp4", device="cpu")
    assert str(err.value).endswith(".") and "\n" not in str(err.value)
    assert set(tmp_path.iterdir()) == before


def test_sound_only_file_is_refused(tmp_path, style):
    src = tmp_path / "song.m4a"
    with av.open(str(src), "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    with pytest.raises(InvalidVideoError, match="no video picture"):
        stylize_video(src, style, tmp_path / "out.mp4", device="cpu")


def test_limits_and_options_are_sentences(tmp_path, style):
    src = make_clip(tmp_path / "clip.mp4", frames=10, fps=10)
    with pytest.raises(VideoTooLargeError, match="lasts 1 s; the longest"):
        probe(src, VideoLimits(max_seconds=0.5))
    with pytest.raises(VideoTooLargeError, match="64×48 pixels; the largest side"):
        probe(src, VideoLimits(max_input_side=32))
    with pytest.raises(VideoTooLargeError, match="million pixels"):
        stylize_video(src, style, tmp_path / "out.mp4", device="cpu", limits=VideoLimits(max_pixels=1000))
    for bad in ({"strength": 2}, {"max_side": 4}, {"smooth": 1.0}, {"brush": 0.25}):
        with pytest.raises(InvalidOptionError):
            stylize_video(src, style, tmp_path / "out.mp4", device="cpu", **bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_cancel_stops_and_keeps_nothing(tmp_path, style):
    src = make_clip(tmp_path / "clip.mp4", frames=10)
    asked = []

    def cancelled():
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled):
        stylize_video(src, style, tmp_path / "out.mp4", device="cpu", cancelled=cancelled)
    assert len(asked) == 4 and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert issubclass(Cancelled, FastNSTError)


def test_smoother_steadies_a_still_scene_and_never_ghosts_across_a_cut():
    rng = np.random.default_rng(0)
    still = scene(0).astype(np.float32)
    noisy = [np.clip(still + rng.normal(0, 4, still.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    seen = []
    smoother = Smoother(smooth=0.9)
    out = [smoother(frame, lambda x, _: seen.append(x) or x) for frame in noisy]
    change = lambda frames: np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])])  # noqa
    assert change(out[3:]) < 0.5 * change(noisy[3:])  # the network is shown a steadier picture
    cut = np.full_like(noisy[0], 30)
    assert np.array_equal(smoother(cut, lambda x, _: x), cut)  # nothing of the last scene comes through
    assert np.array_equal(Smoother(smooth=0.0)(noisy[0], lambda x, _: x), noisy[0])


def pan(frames: int, side: int = 96, step=(2.3, 0.7)):
    """A camera panning over a CC0 photo by `step` px a frame, and the exact flow of each frame back to the last."""
    import cv2
    from PIL import Image

    photo = np.asarray(Image.open(ROOT / "examples" / "rocket.jpg").convert("RGB").resize((2 * side, 2 * side)))
    clip = [cv2.warpAffine(photo, np.float32([[1, 0, 20 + t * step[0]], [0, 1, 20 + t * step[1]]]),
                           (side, side * 3 // 4), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP) for t in range(frames)]
    return clip, np.broadcast_to(np.float32(step), (side * 3 // 4, side, 2)).copy()


def flicker(frames, flow):
    """Each painted frame against the last, moved along the camera's exact motion (inner part)."""
    from fastnst.temporal import warp

    return np.mean([np.abs(b[8:-8, 8:-8].astype(np.float32) - warp(a, flow)[8:-8, 8:-8]).mean()
                    for a, b in zip(frames, frames[1:])])


def test_the_glued_canvas_follows_the_camera_and_steadies_a_pan(style):
    from fastnst.video import paint_frame

    clip, flow = pan(8, side=256)

    def painted(glue):
        smoother = Smoother(glue=glue)
        out = [smoother(f, lambda x, carry: paint_frame(x, style, device="cpu", features=carry)) for f in clip]
        return out, smoother._canvas._motion

    glued, motion = painted(1.0)
    assert np.allclose(motion[:2, 2], 6 * flow[0, 0], atol=0.5)  # the key frame is the first that moved: frame 1
    assert np.allclose(motion[:2, :2], np.eye(2), atol=0.01)     # and neither zoomed nor turned
    assert flicker(glued, flow) < 0.75 * flicker(painted(0.0)[0], flow)


@pytest.mark.parametrize("side", [256, 250])  # 192 and 187 rows: a side of odd length once shifted the double's
def test_a_glued_canvas_shows_the_scene_whatever_the_frames_size(side):  # spectrum, a dark band across the canvas
    from fastnst.temporal import band_limited_double

    clip, _ = pan(10, side=side)
    assert np.abs(band_limited_double(clip[0])[::2, ::2] - clip[0]).max() < 0.01  # the double holds the picture
    smoother = Smoother(smooth=0.0, features=0.0)
    out = [smoother(frame, lambda x, _: x) for frame in clip]  # a "painting" that is the photo itself
    assert smoother._canvas._key is not None  # glued
    assert np.abs(out[-1][8:-8, 8:-8].astype(int) - clip[-1][8:-8, 8:-8]).mean() < 3  # 53 with the band


def test_nothing_ghosts_where_a_moving_thing_was_when_the_canvas_was_glued():
    clip, _ = pan(14, side=256)
    for t, frame in enumerate(clip):
        frame[80:116, 10 + 6 * t:58 + 6 * t] = (230, 0, 0)  # a red card crossing the pan on its own, 6 px a frame
    was = np.s_[84:112, 2:40]  # where the card was while the canvas was glued, the camera's pan taken off

    def error_where_it_was(glue):  # against the last frame's own "painting" (one that is not the photo)
        smoother = Smoother(glue=glue)
        out = [smoother(frame, lambda x, _: 255 - x) for frame in clip]
        assert (smoother._canvas._key is not None) == (glue > 0)
        return np.abs(out[-1][was].astype(int) - (255 - clip[-1][was])).mean()

    # the path without the canvas leaves a faint trail (the smoothed input); faded copies of the card were 10 more
    assert error_where_it_was(1.0) < error_where_it_was(0.0) + 3


def test_the_camera_is_what_most_of_the_frame_does_not_a_large_moving_thing():
    from fastnst.temporal import camera_motion

    sure = np.ones((120, 160), bool)
    pan = np.broadcast_to(np.float32([2.3, -0.7]), (120, 160, 2)).copy()
    motion, moving = camera_motion(pan, sure)
    assert np.allclose(motion[:2, 2], [2.3, -0.7], atol=0.01) and moving.mean() > 0.9
    cars = np.random.default_rng(0).normal(0, 1.0, (120, 160, 2)).astype(np.float32)  # plain road: flow is noise
    cars[:, 100:] = [3.0, -2.0]  # two cars, coherent, over 3/8 of the frame
    motion, moving = camera_motion(cars, sure)
    assert np.array_equal(motion, np.eye(3)) and moving[:, 100:].max() == 0  # still: the cars do not move with it


def test_the_edges_of_moving_things_are_not_trusted_but_a_pan_or_zoom_is():
    from fastnst.temporal import away_from_motion_edges

    road = np.full((120, 160), 90, np.uint8)
    road[50:70, 70:90] = 200  # a bright car
    grid = np.stack(np.meshgrid(np.arange(160), np.arange(120)), -1).astype(np.float32)
    assert away_from_motion_edges(np.full((120, 160, 2), 3.0, np.float32), road).min() > 0.99  # a pan
    assert away_from_motion_edges(0.006 * (grid - [80, 60]), road).min() > 0.95  # a zoom of 0.6 % a frame
    car = np.zeros((120, 160, 2), np.float32)
    car[50:70, 70:90, 1] = -4.0  # the car moving up 4 px a frame over the still road
    trust = away_from_motion_edges(car, road)
    assert trust[50, 70:90].max() < 0.01 and trust[70, 70:90].max() < 0.01  # its front and back
    assert trust[:25].min() > 0.99 and trust[:, :45].min() > 0.99  # the road away from it
    noise = np.random.default_rng(0).normal(0, 2, car.shape).astype(np.float32)
    assert away_from_motion_edges(car + noise, np.full_like(road, 90)).min() == 1  # no edge in the picture: noise


def shown(frames, **options) -> list:
    """What the network is shown of each frame: the steadied input only (`options`: more of the Smoother's)."""
    smoother = Smoother(**{"features": 0.0, "glue": 0.0, **options})
    return [smoother(f, lambda x, _: x) for f in frames]


def shown_change(frames, where=np.s_[:, :], skip: int = 0, **options) -> float:
    """How much what the network is shown changes from frame to frame (`where`, from frame `skip` on)."""
    from itertools import pairwise

    seen = shown(frames, **options)[skip:]
    return np.mean([np.abs(a.astype(int) - b).mean(-1)[where].mean() for a, b in pairwise(seen)])


def rocket(side: int = 256) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(ROOT / "examples" / "rocket.jpg").convert("RGB").resize((side, side * 3 // 4)))


def test_a_still_camera_is_not_moved_by_noise_and_a_moving_one_is_not_held_still(monkeypatch):
    import io

    from PIL import Image

    from fastnst import temporal

    photo = rocket()
    rng = np.random.default_rng(0)

    def jpeg(frame, quality):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, "JPEG", quality=quality)
        return np.asarray(Image.open(buf))

    # a tripod shot: sensor noise, and the compression changing at a key frame
    clip = [jpeg(np.clip(photo + rng.normal(0, 2, photo.shape), 0, 255).astype(np.uint8), 60 if t < 6 else 40)
            for t in range(10)]

    steadied = shown_change(clip)
    monkeypatch.setattr(temporal.flow, "STILL_LEVELS", -np.inf)  # the flow taken as DIS found it
    assert steadied < 0.75 * shown_change(clip)  # DIS's noise flow resampled the smoothed input every frame

    held = []
    monkeypatch.setattr(temporal.smooth, "still",
                        lambda back, *_: held.append(back) or np.zeros(back.shape[:2], bool))
    shown_change(pan(4, side=256)[0])
    assert not held  # a moving camera's flow is never taken for noise
    shown_change(clip[:3])
    assert len(held) == 2


def test_a_plain_wall_beside_someone_walking_is_held_still(monkeypatch):
    from fastnst import temporal

    photo = rocket()
    rng = np.random.default_rng(0)
    clip = []
    for t in range(10):  # a noisy plain wall, a textured "walker" crossing it 4 px a frame
        frame = np.clip(200 + rng.normal(0, 2, (192, 256, 3)), 0, 255).astype(np.uint8)
        frame[60:140, 40 + 4 * t:100 + 4 * t] = photo[60:140, 100:160]
        clip.append(frame)
    beside = np.zeros((192, 256), bool)  # the wall up to 20 px around where the walker goes
    beside[40:160, 30:150] = True
    beside[55:145, 36:144] = False

    steadied = shown_change(clip, beside, skip=2)
    monkeypatch.setattr(temporal.flow, "STILL_LEVELS", -np.inf)
    assert steadied < 0.4 * shown_change(clip, beside, skip=2)  # DIS drags the wall along with the walker, and that flow was not trusted


def test_nothing_that_left_the_picture_is_left_for_long_in_what_the_network_is_shown():
    photo = rocket()
    rng = np.random.default_rng(0)
    clip = []
    for t in range(13):  # a noisy plain wall; a textured thing stands in front of it, then is gone (frame 5)
        frame = np.clip(200 + rng.normal(0, 2, (192, 256, 3)), 0, 255).astype(np.uint8)
        if t < 5:
            frame[60:140, 80:140] = photo[60:140, 100:160]
        clip.append(frame)
    seen = shown(clip)
    where = np.s_[44:156, 64:156]  # where it stood, and 16 px around
    off = [np.abs(seen[t].astype(int) - clip[t]).mean(-1)[where].max() for t in range(10, 13)]
    # the edge of where it stood is half trusted when it leaves; at the still camera's steadier input it was still
    # 15-17 levels off 5-7 frames later, until the last smoothed input itself was checked (as before that input: 10)
    assert max(off) < 12.5, off


def test_a_still_camera_is_steadied_more_and_a_moving_one_as_before():
    photo = rocket()
    rng = np.random.default_rng(1)
    tripod = [np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    assert shown_change(tripod, skip=2, still_fresh=0.3) < 0.75 * shown_change(tripod, skip=2, still_fresh=1.0)
    moving = pan(5, side=256)[0]
    assert all(np.array_equal(a, b) for a, b in zip(shown(moving, still_fresh=0.3), shown(moving, still_fresh=1.0)))


def test_features_are_sampled_on_the_networks_grid_where_the_frame_is():
    from fastnst.temporal.smooth import _feature_grid

    flow = np.broadcast_to(np.float32([8.0, -4.0]), (60, 80, 2)).copy()
    moved, sure = _feature_grid(flow, np.ones((60, 80), np.float32), (15, 20), 0, 1.0)
    assert np.allclose(moved, [2.0, -1.0]) and np.allclose(sure, 1)  # 1/4 size: 8 px are 2 feature px
    moved, sure = _feature_grid(flow, np.ones((60, 80), np.float32), (12, 14), 8, 0.5)  # half size, 8-px frame
    assert np.allclose(moved, [1.0, -0.5])
    assert sure[0].max() == 0 and sure[:, 0].max() == 0 and sure[6, 6] == 1  # the mirrored frame is not the scene


def test_carried_features_steady_a_moving_camera_and_a_cut_or_a_pass_without_them_starts_afresh(style):
    from fastnst.video import paint_frame

    clip, flow = pan(6)

    def painted(features):  # the features alone: the glued canvas would steady the pan on its own
        smoother = Smoother(smooth=0.9, features=features, glue=0.0)
        return [smoother(f, lambda x, carry: paint_frame(x, style, device="cpu", features=carry)) for f in clip]

    assert flicker(painted(0.65), flow) < 0.9 * flicker(painted(0.0), flow)

    smoother, calls = Smoother(smooth=0.9), []

    def paint(x, carry, call_it=True):
        calls.append(carry)
        return paint_frame(x, style, device="cpu", features=carry if call_it else None)

    smoother(clip[0], paint)
    assert smoother._features is not None  # kept for the next frame
    smoother(clip[1], lambda x, carry: paint(x, carry, call_it=False))  # e.g. a tiled pass: the network never asks
    assert smoother._features is None  # so the next frame carries nothing two frames old
    smoother(clip[2], paint)
    cut = (np.kron(np.indices((18, 24)).sum(0) % 2, np.ones((4, 4)))[..., None].repeat(3, -1) * 255).astype(np.uint8)
    assert np.array_equal(smoother(cut, paint), paint_frame(cut, style, device="cpu"))  # a new scene: nothing carried


def test_cli_paints_a_video_and_refuses_a_picture(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=4)
    run = subprocess.run([sys.executable, "-m", "fastnst.cli", "stylize-video", str(src), "--style", STYLE,
                          "-o", str(tmp_path / "out.mp4"), "--max-side", "32", "--device", "cpu", "--brush", "2"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "4 frames of 32×24 at 10 fps, with its sound" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "fastnst.cli", "stylize-video", str(ROOT / "examples" / "cat.jpg"),
                          "--style", STYLE, "-o", str(tmp_path / "x.mp4")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip() == ("fastnst: This file is not a video fastnst reads; send "
                                                           "mp4, mov, mkv or webm.")
