"""The page, assembled from its sections top to bottom, and the Space's start-up."""
from __future__ import annotations

import atexit

import gradio as gr

from fastnst.device import keep_freed_memory
from fastnst.hub import community_styles
from fastnst.imageio import quiet_decoder_warnings
from fastnst.styles import STYLES_DIR, gallery

from . import fit, live, photo, uploads, video
from .settings import EXAMPLES, QUEUE_SIZE, UPLOADS_KEPT, Settings, configure, current


def build_demo(thumbnails=(), captions=None, community=(), settings: Settings | None = None) -> gr.Blocks:
    """The page. `thumbnails` and `captions` ({style: caption}) as photo.gallery_thumbnails() makes them;
    `community`: Hub repo ids for the dropdown. Builds components only: nothing is painted, downloaded or loaded."""
    settings = settings or current()
    thumbnails, captions = list(thumbnails), dict(captions or {})
    with gr.Blocks(title="fastnst: paint your photo", delete_cache=UPLOADS_KEPT) as demo:
        photo_ui = photo.layout(settings, thumbnails, captions, community)
        fit_ui = fit.layout(settings)
        live_ui = live.layout(settings)
        video_ui = video.layout(settings)
        fitted = gr.Textbox("", label="fitted style", visible="hidden")  # the last fit's folder, for /publish_style
        style = gr.Textbox(photo_ui.start, label="style", visible="hidden")  # the selected style, for the API
        names = gr.State(captions)  # {style name: caption} in this visitor's gallery order (Hub styles: per visitor)

        painting = photo.wire(photo_ui, style, names, settings)
        fit.wire(fit_ui, photo_ui, fitted, style, names, painting)
        live.wire(live_ui, photo_ui, style, settings)
        video.wire(video_ui, photo_ui, style)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=QUEUE_SIZE)
    return demo


def main():
    """Read this machine's settings, set the process up, gather what the page shows, and serve it."""
    settings = configure(Settings.from_env())
    keep_freed_memory()  # CPU paintings reuse freed memory instead of page-faulting fresh memory in
    quiet_decoder_warnings()  # visitors' odd files must not fill the log with Pillow's warnings
    atexit.register(fit.cancel_all_fits)
    atexit.register(uploads.sweep_videos, settings, 0)  # painted videos go with the app
    uploads.sweep(settings.fits_dir)  # fits left by an earlier run past their time
    thumbnails, captions = photo.gallery_thumbnails()
    community = community_styles(exclude={m.get("hub_repo") for m in gallery()})
    photo.warm_up(captions, settings)
    demo = build_demo(thumbnails, captions, community, settings)
    demo.launch(css=photo.CSS, allowed_paths=[str(STYLES_DIR), str(EXAMPLES)], max_file_size="30mb")
