"""The section "Paint a video": a file painted frame by frame in a worker thread, with progress and cancel. On
ZeroGPU the frames are painted in chunks, one `spaces.GPU` call each; decoding and encoding stay in this process."""
from __future__ import annotations

import contextvars
import queue
import threading
import time
from types import SimpleNamespace

import gradio as gr

import fastnst
from fastnst import zerogpu
from fastnst.errors import FastNSTError
from fastnst.video import GPU_LIMITS, VideoLimits, paint_frames

from . import uploads
from .common import brush_size, error
from .settings import DEFAULT_BRUSH, Settings, current


def limits(settings: Settings) -> VideoLimits:
    return GPU_LIMITS if settings.on_gpu else VideoLimits()


@zerogpu.gpu(duration=zerogpu.video_call_seconds)
def paint_video_chunk(frames, style, smoother, strength, preserve_color, brush):
    """Consecutive frames painted through the video's smoother; returns (paintings, smoother). One ZeroGPU call,
    asking for the time its frames need (ZeroGPU calls `duration` with these same arguments)."""
    return paint_frames(frames, style, smoother, strength=strength, preserve_color=preserve_color, brush=brush)


def chunk_painter(style, strength, preserve_color, brush, settings: Settings):
    """`stylize_video`'s painter: on ZeroGPU each chunk is one `spaces.GPU` call, so this process never touches
    CUDA (it may not there); elsewhere None, and the frames are painted in the worker thread."""
    if not settings.zero_gpu:
        return None
    return lambda frames, smoother: paint_video_chunk(frames, style, smoother, strength, preserve_color, brush)


def paint_video(video, style, strength=1.0, preserve_color=False, brush=DEFAULT_BRUSH, progress=gr.Progress()):
    """Paint a video in a style: mp4, mov, mkv or webm in; H.264 mp4 out with its sound, timing and rotation.

    Args:
        video: the video file.
        style: a gallery slug (e.g. "starry-night"), a Hub repo id, or a mix ("starry-night=0.6,the-scream=0.4").
        strength: 0 (the video) to 1 (fully painted).
        preserve_color: keep the video's colours.
        brush: stroke size, 1 = the network's own strokes, 0.5 finer, up to 4 broader.
    """
    if not style:
        raise gr.Error("Pick a style first: click a painting in the gallery.", print_exception=False)
    brush = brush_size(brush)
    src = uploads.video_source(video)
    if src is None:
        raise gr.Error("Upload a video first (mp4, mov, mkv or webm).", print_exception=False)
    settings = current()
    folder = uploads.new_video_folder(settings)
    stop, updates = threading.Event(), queue.Queue()

    def work():  # in a thread, so that this generator can report progress and notice a cancel between frames
        try:
            result = fastnst.stylize_video(src, style, folder / "painted.mp4", strength=strength,
                                           preserve_color=bool(preserve_color), brush=brush,
                                           max_side=settings.video_side, limits=limits(settings),
                                           progress=lambda *p: updates.put(("progress", p)), cancelled=stop.is_set,
                                           painter=chunk_painter(style, strength, bool(preserve_color), brush,
                                                                 settings))
            updates.put(("done", result))
        except BaseException as err:  # noqa: BLE001 - handed to the generator, which raises it
            updates.put(("error", err))

    # In this request's context: `spaces.GPU` reads the visitor's Gradio request from it (their ZeroGPU quota).
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="fastnst-video", daemon=True)
    worker.start()
    finished = False
    try:
        for finished, shown in report(updates, progress):
            yield shown
    finally:  # also when the visitor cancels: the worker stops at the next frame and removes its file
        stop.set()
        worker.join()
        if not finished:
            uploads.delete(folder)


def report(updates: queue.Queue, progress):
    """(finished, (video, status)) from the worker's messages, until it is done; its error is raised here."""
    shown = 0.0
    while True:
        kind, value = updates.get()
        if kind == "progress":
            done, total, elapsed = value
            progress((done, total), desc="frames", unit="frames")
            if time.monotonic() - shown >= 1.0:
                shown = time.monotonic()
                left = elapsed / done * (total - done)
                yield False, (gr.skip(), f"Painting: {done} of {total} frames, about {left:.0f} s left.")
        elif kind == "done":
            sound = "with its sound" if value.audio else "no sound"
            yield True, (str(value.path), f"**Painted** {value.frames} frames of {value.width}×{value.height} "
                                          f"({sound}) in {value.seconds:.0f} s, "
                                          f"{value.frames / max(value.seconds, 1e-9):.1f} frames a second.")
            return
        elif isinstance(value, FastNSTError):
            raise error(value) from value
        else:
            raise value


def layout(settings: Settings) -> SimpleNamespace:
    with gr.Accordion("Paint a video", open=False, elem_id="video"):
        gr.Markdown(f"mp4, mov, mkv or webm: painted in the selected style at {settings.video_side} px, without "
                    f"flicker where the scene is still, with its sound. Up to "
                    f"{limits(settings).max_seconds:.0f} seconds.")
        with gr.Row():
            video_in = gr.Video(label="Your video", sources=["upload"], height=300, elem_id="video-in")
            video_out = gr.Video(label="Painted video", interactive=False, height=300, elem_id="video-out")
        with gr.Row():
            go = gr.Button("Paint video", variant="primary", elem_id="video-go")
            cancel = gr.Button("Cancel", variant="stop", elem_id="video-cancel")
        status = gr.Markdown(elem_id="video-status")
    return SimpleNamespace(video_in=video_in, video_out=video_out, go=go, cancel=cancel, status=status)


def wire(ui, photo_ui, style) -> None:
    painting = ui.go.click(paint_video, [ui.video_in, style, photo_ui.strength, photo_ui.preserve, photo_ui.brush],
                           [ui.video_out, ui.status], api_name="stylize_video", preprocess=False,
                           concurrency_id="video", concurrency_limit=1)
    ui.cancel.click(lambda: "Cancelled: nothing was kept.", None, ui.status, cancels=[painting],
                    api_visibility="private", queue=False)
