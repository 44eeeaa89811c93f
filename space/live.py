"""The section "Live: your webcam, painted": each frame painted in the selected style, steadied by the frames
before it, at the size this machine keeps up with."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace

import gradio as gr
import numpy as np

from fastnst import zerogpu
from fastnst.errors import FastNSTError
from fastnst.imageio import load_image, resize_max_side
from fastnst.temporal import Smoother
from fastnst.video import paint_frames

from .common import brush_size, error, mixed
from .settings import DEFAULT_BRUSH, Settings, current
from .uploads import photo_source

LIVE_EVERY = 0.1  # a frame every 0.1 s at most


@dataclass
class LiveSession:
    """One visitor's stream: its own Smoother (so two visitors never share a previous frame), frame times, and the
    size its frames are painted at (`side`, from `smallest` to `largest`, changed by `keep_up`)."""
    style: str
    brush: float = 1.0
    side: int = 320
    largest: int = 320
    smallest: int = 160
    smoother: Smoother = field(default_factory=Smoother)
    times: deque = field(default_factory=lambda: deque(maxlen=20))
    seconds: float | None = None  # painting one frame at `side`, a running average
    painted_at_side: int = 0

    @classmethod
    def start(cls, style: str, brush: float, settings: Settings, side: int | None = None) -> LiveSession:
        return cls(style, brush, side=side or settings.live_side, largest=settings.live_side,
                   smallest=settings.live_smallest)

    def rate(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0

    def stroke(self) -> float:
        """The brush at this `side`: strokes keep their size relative to the frame as it shrinks, down to the
        network's own, which keeps faces on a small frame. Under 1.25 it is 1: the broad pass of a brush just
        over 1 costs nearly a second painting for strokes hardly larger."""
        if self.brush <= 1 or self.side == self.largest:
            return self.brush
        stroke = self.brush * self.side / self.largest
        return stroke if stroke >= 1.25 else 1.0

    def keep_up(self, seconds: float) -> None:
        """Take the time the last frame took to paint, and change `side` when painting cannot keep up with the
        stream's LIVE_EVERY (smaller frames) or keeps up with much to spare (larger). Why: a stream of a few
        frames a second no longer reads as live, so, as video calls do, the resolution gives way before the
        frame rate. The time grows with the pixels, so the side scales with the square root of the time; a few
        frames settle before each change, and the margins keep it from swinging to and fro."""
        self.painted_at_side += 1
        if self.painted_at_side == 1:  # the first frame at a size pays for loading the network, and has no flow
            return
        self.seconds = seconds if self.seconds is None else 0.6 * self.seconds + 0.4 * seconds
        slow, spare = self.seconds > 1.2 * LIVE_EVERY, self.seconds < 0.5 * LIVE_EVERY
        if self.painted_at_side < 4 or not (slow and self.side > self.smallest or spare and self.side < self.largest):
            return
        side = round(self.side * (0.8 * LIVE_EVERY / self.seconds) ** 0.5 / 16) * 16
        self.side, self.seconds, self.painted_at_side = min(self.largest, max(self.smallest, side)), None, 0


@zerogpu.gpu(duration=zerogpu.LIVE_FRAME_SECONDS)
def paint_live_frame(rgb, style, smoother, brush=1.0):
    """One webcam frame painted through the visitor's smoother; returns (painting, smoother). The smoother comes
    back because on ZeroGPU the call runs in a worker, where what it changes in its arguments is lost."""
    painted, smoother = paint_frames([rgb], style, smoother, brush=brush)
    return painted[0], smoother


def paint_live(frame, style, session, other="", share=0.0, brush=DEFAULT_BRUSH):
    """Paint one webcam frame in the selected style (or mix), steadied by this visitor's previous frames."""
    if frame is None:
        return gr.skip(), session, gr.skip()
    if not style:
        raise gr.Error("Pick a style first: click a painting in the gallery.", print_exception=False)
    style, brush = mixed(style, other, share), brush_size(brush)
    if not isinstance(session, LiveSession) or (session.style, session.brush) != (style, brush):
        # a new style starts afresh (its strokes are not the last style's), at the size this machine keeps up with
        session = LiveSession.start(style, brush, current(), session.side if isinstance(session, LiveSession) else None)
    start = time.monotonic()
    try:
        photo = resize_max_side(load_image(photo_source(frame)), session.side)
        painted, session.smoother = paint_live_frame(np.asarray(photo), style, session.smoother, session.stroke())
    except FastNSTError as err:
        raise error(err) from err
    session.times.append(time.monotonic())
    session.keep_up(session.times[-1] - start)
    rate = session.rate()
    shown = f"**{rate:.1f}** frames a second, {photo.width}×{photo.height}" if rate else "Painting…"
    if rate and session.side < session.largest:
        shown += f" (smaller than {session.largest} px, to keep up on this machine)"
    return painted, session, shown


def layout(settings: Settings) -> SimpleNamespace:
    with gr.Accordion("Live: your webcam, painted", open=False, elem_id="live"):
        gr.Markdown("Allow the camera and start it: every frame is painted in the style selected in the gallery "
                    f"(switch styles while it runs). A stream lasts up to {settings.live_seconds // 60} minutes.")
        with gr.Row():
            camera = gr.Image(label="Your webcam", sources=["webcam"], streaming=True, height=300, elem_id="camera")
            painted = gr.Image(label="Painted live", interactive=False, format="jpeg", height=300,
                               elem_id="live-out")
        rate = gr.Markdown(elem_id="live-rate")
    return SimpleNamespace(camera=camera, painted=painted, rate=rate)


def wire(ui, photo_ui, style, settings: Settings) -> None:
    session = gr.State(None)  # this visitor's LiveSession
    ui.camera.stream(paint_live, [ui.camera, style, session, photo_ui.mix_with, photo_ui.mix, photo_ui.brush],
                     [ui.painted, session, ui.rate], preprocess=False, stream_every=LIVE_EVERY,
                     time_limit=settings.live_seconds, concurrency_id="live",
                     concurrency_limit=settings.live_concurrency, show_progress="hidden", api_visibility="private")
