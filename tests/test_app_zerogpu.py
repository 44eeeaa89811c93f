"""The Space on ZeroGPU, checked on a CPU: the sections are imported afresh with the stand-in `spaces` module
(tests/spaces.py, which pickles arguments and results as ZeroGPU's worker does) and ZeroGPU's settings. Every
function that paints borrows the GPU for a duration that fits its work, the webcam's smoother comes back from each
call, and a video is painted in chunks that give the same frames as painting it here. Settings on a dedicated GPU
fake its free memory. CPU-only: the painting runs on the CPU, on a GPU host too."""
import dataclasses
import importlib
import sys

import numpy as np
import pytest
import torch
from gradio.context import LocalContext
from PIL import Image

import fastnst.video
import tests.spaces as fake_spaces
from fastnst import device as D
from fastnst import zerogpu
from fastnst.temporal import Smoother
from tests.app_helpers import make_style
from tests.clips import make_clip, scene

GB = 10**9


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    return str(make_style(tmp_path_factory.mktemp("style") / "test-style", 0, "Test Style", "Nobody"))


@pytest.fixture
def space(monkeypatch, tmp_path):
    """The Space's sections imported afresh on a ZeroGPU Space (put back afterwards), with its settings."""
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # painted on the CPU on any machine
    for name in [m for m in sys.modules if m in ("app", "space") or m.startswith("space.")]:
        monkeypatch.delitem(sys.modules, name)
    settings = importlib.import_module("space.settings")
    settings.configure(dataclasses.replace(settings.Settings.from_env({"SPACES_ZERO_GPU": "true"}),
                                           videos_dir=tmp_path / "videos"))
    fake_spaces.calls.clear()
    fake_spaces.requests.clear()
    yield importlib.import_module("space")
    fake_spaces.calls.clear()
    fake_spaces.requests.clear()


def test_each_painting_borrows_the_gpu_for_a_duration_that_fits_it(space, style, tmp_path):
    from space import live, photo, video

    assert space.settings.current().zero_gpu and space.settings.current().concurrency == \
        space.settings.ZERO_GPU_CONCURRENCY
    Image.fromarray(scene(0)).save(tmp_path / "photo.png")
    photo.paint(str(tmp_path / "photo.png"), style, 1.0, False, 64)
    live.paint_live_frame(scene(0), style, Smoother())
    frames = [scene(t) for t in range(3)]
    video.paint_video_chunk(frames, style, Smoother(), 1.0, False, 1.0)
    assert fake_spaces.calls == [("paint", zerogpu.PHOTO_SECONDS), ("paint_live_frame", zerogpu.LIVE_FRAME_SECONDS),
                                 ("paint_video_chunk", zerogpu.video_call_seconds(frames))]


def test_the_webcam_keeps_the_smoother_each_call_hands_back(space, style, tmp_path):
    """Frame 3 of a stream is painted as one process with one Smoother paints it, though every call's smoother
    crossed to the worker and back pickled; and that differs from painting frame 3 as a first frame."""
    from space import live

    frames = [scene(t) for t in range(3)]
    session = None
    for t, rgb in enumerate(frames):
        Image.fromarray(rgb).save(tmp_path / f"webcam{t}.png")
        frame = {"path": str(tmp_path / f"webcam{t}.png")}
        painted, session, _ = live.paint_live(frame, style, session, "", 0.0, 1.0)
    assert fake_spaces.calls == [("paint_live_frame", zerogpu.LIVE_FRAME_SECONDS)] * 3
    steady, _ = fastnst.video.paint_frames(frames, style, Smoother(), brush=1.0)
    assert np.array_equal(painted, steady[-1])
    assert not np.array_equal(painted, fastnst.video.paint_frames(frames[-1:], style, Smoother(), brush=1.0)[0][0])


def paint_clip(video, src, style, request):
    """The page's video handler run to the end in a visitor's `request`; returns its status line."""
    token = LocalContext.request.set(request)
    try:
        *_, (_, status) = video.paint_video(src, style, 1.0, False, 1.0, progress=lambda *a, **k: None)
    finally:
        LocalContext.request.reset(token)
    return status


def test_a_video_on_zero_gpu_is_painted_in_chunks_that_paint_what_this_process_would(space, style, tmp_path,
                                                                                      monkeypatch):
    from space import video

    painted, paint_frames = [], fastnst.video.paint_frames

    def recording(*args, **kwargs):  # where the frames are painted: in ZeroGPU's worker, or here
        frames, smoother = paint_frames(*args, **kwargs)
        painted.extend(frames)
        return frames, smoother
    monkeypatch.setattr(fastnst.video, "paint_frames", recording)
    monkeypatch.setattr(video, "paint_frames", recording)
    monkeypatch.setattr(zerogpu, "frames_per_call", lambda width, height: 3)
    src = make_clip(tmp_path / "clip.mp4", frames=7, fps=7, audio=False)

    visitor = object()  # stands for the visitor's Gradio request
    assert "**Painted** 7 frames" in paint_clip(video, src, style, visitor)
    assert [name for name, _ in fake_spaces.calls] == ["paint_video_chunk"] * 3  # 3 + 3 + 1 frames
    assert [seconds for _, seconds in fake_spaces.calls] == [zerogpu.call_seconds(n, 64, 48) for n in (3, 3, 1)]
    assert fake_spaces.requests == [visitor] * 3  # the worker thread's calls knew whose quota they spend
    chunked, painted[:] = list(painted), []

    space.settings.configure(dataclasses.replace(space.settings.current(), zero_gpu=False))
    fake_spaces.calls.clear()
    paint_clip(video, src, style, visitor)
    assert fake_spaces.calls == [] and len(painted) == 7
    assert all(np.array_equal(a, b) for a, b in zip(chunked, painted, strict=True))


@pytest.mark.parametrize("free, concurrency", [(14.5 * GB, 1), (79 * GB, D.MAX_CONCURRENCY)])
def test_a_dedicated_gpu_paints_as_many_at_once_as_its_free_memory_holds(monkeypatch, free, concurrency):
    from space import settings

    D.memory_plan.cache_clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(free), 80 * GB))
    try:
        read = settings.Settings.from_env({})
    finally:
        D.memory_plan.cache_clear()
    assert (read.concurrency, read.live_concurrency) == (concurrency, concurrency)


def test_zero_gpu_settings_touch_no_cuda(monkeypatch):
    from space import settings

    def touched(*args, **kwargs):
        raise AssertionError("CUDA was touched in the main process")
    for name in ("is_available", "mem_get_info", "current_device", "init"):
        monkeypatch.setattr(torch.cuda, name, touched)
    read = settings.Settings.from_env({"SPACES_ZERO_GPU": "true"})
    assert read.on_gpu and read.concurrency == read.live_concurrency == settings.ZERO_GPU_CONCURRENCY
