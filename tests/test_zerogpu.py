"""ZeroGPU, checked on a CPU with the stand-in `spaces` module (tests/spaces.py): videos are painted in chunks that
fit a call, and the visitor's Smoother comes back from every call. CPU-only: the painting runs on the CPU."""
import math
import sys

import av
import numpy as np
import pytest

import tests.spaces as fake_spaces
from fastnst import load_style, stylize_video, zerogpu
from fastnst.temporal import Smoother
from fastnst.video import GPU_LIMITS, paint_frames
from tests.clips import make_clip, scene


@pytest.fixture
def spaces(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces)
    fake_spaces.calls.clear()
    yield fake_spaces
    fake_spaces.calls.clear()


@pytest.fixture(scope="module")
def style():
    return load_style("starry-night", device="cpu", variant="light")


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (1920, 1080), (3840, 2160)])
def test_a_chunk_of_frames_fits_one_call_and_a_long_clip_takes_several(size):
    w, h = size
    per = zerogpu.frames_per_call(w, h)
    assert per >= 1 and (per == 1 or per * w * h * 3 <= zerogpu.CHUNK_BYTES)
    assert zerogpu.call_seconds(per, w, h) <= zerogpu.CHUNK_SECONDS <= zerogpu.CALL_SECONDS[1]
    frames = int(GPU_LIMITS.max_seconds * 30)  # the longest clip the Space takes on a GPU, at 30 frames a second
    assert zerogpu.START_SECONDS + frames * zerogpu.frame_seconds(w, h) > 30  # what duration=30 could never paint
    pieces = zerogpu.chunks(frames, per)
    assert len(pieces) == math.ceil(frames / per) and [i for r in pieces for i in r] == list(range(frames))
    assert zerogpu.video_call_seconds([np.zeros((h, w, 3), np.uint8)] * per) == zerogpu.call_seconds(per, w, h)


def test_the_smoother_comes_back_from_each_call_so_the_stream_stays_steady(spaces, style):
    clip = [scene(t, 64, 48) for t in range(6)]

    @spaces.GPU(duration=zerogpu.video_call_seconds)
    def paint_chunk(frames, style, smoother):
        return paint_frames(frames, style, smoother, device="cpu")

    whole, _ = paint_frames(clip, style, Smoother(), device="cpu")  # one process, one smoother
    smoother, chunked = Smoother(), []
    for piece in zerogpu.chunks(len(clip), 2):
        painted, smoother = paint_chunk([clip[i] for i in piece], style, smoother)  # the state passed back
        chunked += painted
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))
    assert [name for name, _ in spaces.calls] == ["paint_chunk"] * 3
    assert [seconds for _, seconds in spaces.calls] == [zerogpu.call_seconds(2, 64, 48)] * 3

    lost, kept = Smoother(), []  # the bug: the caller's smoother never learns what the worker's did
    for piece in zerogpu.chunks(len(clip), 2):
        kept += paint_chunk([clip[i] for i in piece], style, lost)[0]
    assert not np.array_equal(kept[2], whole[2])  # each call's first frame painted as a first frame


def test_a_video_is_painted_in_gpu_sized_chunks_through_a_painter(tmp_path, spaces):
    src = make_clip(tmp_path / "clip.mp4", frames=7, fps=7, audio=False)

    @spaces.GPU(duration=zerogpu.video_call_seconds)
    def paint_chunk(frames, style, smoother):
        return paint_frames(frames, style, smoother, device="cpu")

    sizes = []

    def painter(frames, smoother):
        sizes.append(len(frames))
        return paint_chunk(frames, "starry-night", smoother)

    chunked = stylize_video(src, "starry-night", tmp_path / "chunked.mp4", max_side=64, painter=painter,
                            frames_per_call=3)
    assert sizes == [3, 3, 1] and chunked.frames == 7 and len(spaces.calls) == 3  # exactness: the test above
    with av.open(str(chunked.path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 7 and np.abs(frames[0].astype(int) - scene(0, 64, 48)).mean() > 20  # painted


def test_a_live_frame_call_hands_its_smoother_back(spaces, style):
    """What the Space's webcam function does on ZeroGPU: one frame a call, the smoother returned and kept."""
    @zerogpu.gpu(duration=zerogpu.LIVE_FRAME_SECONDS)
    def paint_live_frame(rgb, style, smoother):
        painted, smoother = paint_frames([rgb], style, smoother, device="cpu")
        return painted[0], smoother

    smoother, frames = Smoother(), [scene(t, 64, 48) for t in range(3)]
    for rgb in frames:
        painted, smoother = paint_live_frame(rgb, style, smoother)
    assert np.array_equal(painted, paint_frames(frames, style, Smoother(), device="cpu")[0][-1])
    assert spaces.calls == [("paint_live_frame", zerogpu.LIVE_FRAME_SECONDS)] * 3


def test_without_spaces_the_decorator_is_the_function_itself(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces → ImportError
    fn = lambda: 1  # noqa: E731
    assert zerogpu.gpu(30)(fn) is fn
