"""The section "Make a style from your painting": a fit of the visitor's painting in a child process
(`training.fit`), previewed on their photo as it learns, added to their gallery, and published to the Hub.

`training` is imported when a fit is asked for, not before: it brings the trainer and torchvision.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

import fastnst
from fastnst.errors import FastNSTError, InvalidImageError
from fastnst.formats import readable_title
from fastnst.imageio import resize_max_side
from fastnst.styles import load_style

from . import uploads
from .common import caption, checked, paint_thumbnail, selected_in_gallery, whole_number
from .settings import ROOT, Settings, current

FIT_RECIPE = ROOT / "training" / "recipes" / "fit.json"  # what training.fit runs; read here for image_steps
FIT_RECIPE_ENV = "FASTNST_FIT_RECIPE"  # training.fit's: another recipe file instead
IMAGE_STEPS_RANGE = (200, 8_000)
PAINTING_SIDE = 1024  # a painting is kept at most this large (training reads it at the family's style size)
PREVIEW_SIDE, PREVIEW_EVERY_S = 512, 2.0
FITS: dict = {}  # the running fit (training.fit.FitJob) of each browser session


def default_image_steps() -> int:
    """The fit recipe's image_steps, read without importing the trainer."""
    return json.loads(Path(os.environ.get(FIT_RECIPE_ENV) or FIT_RECIPE).read_text())["image_steps"]


def fit_style(painting, photo, title="", image_steps=None, repo_name="", token="",
              oauth_token: gr.OAuthToken | None = None, request: gr.Request = None, progress=gr.Progress()):
    """Fit a new style to a painting, starting from the gallery's family network. Yields (status, preview of
    the photo painted by the network as it is, style name); the last style name paints with /stylize.

    Args:
        painting: the painting (an image file).
        photo: a photo to preview the style on as it learns (optional).
        title: the style's name, e.g. "Sunflowers at Dusk" (default: from the file name).
        image_steps: training budget in images; more is closer to the painting and takes longer.
        repo_name: if given, checked now (valid, not taken) so that publishing later cannot fail on it.
        token: a Hugging Face write token (on a Space, sign in instead).
    """
    from training import fit
    from training.paintings import slug_of

    image_steps = checked(whole_number, default_image_steps() if image_steps is None else image_steps,
                          *IMAGE_STEPS_RANGE, "image_steps must be a whole number")
    if repo_name and repo_name.strip():
        checked(fit.check_repo, repo_name, visitor_token(token, oauth_token))
    session = request.session_hash if request else uuid.uuid4().hex
    if FITS.get(session) and FITS[session].running:
        raise gr.Error("A style is already being fitted for you; stop or cancel it first.", print_exception=False)
    out = uploads.new_fit_folder(current(), running=[job.out for job in FITS.values()])
    title = (title or "").strip() or readable_title(uploads.upload_name(painting))
    try:
        source = checked(save_painting, painting, out / f"{slug_of(title)}.png")
        job = FITS[session] = checked(fit.FitJob.start, source, out=out, image_steps=image_steps, title=title)
    except BaseException:
        uploads.delete(out)  # a fit that did not start leaves nothing
        raise
    try:
        yield from follow(job, photo, progress)
        if job.cancelled:
            return
        export = checked(job.wait_result)
        yield (f"**Done:** “{title}” is in your gallery below. Paint with it, or publish it to the Hub.",
               preview_of(photo, str(export)) if photo is not None else None, str(export))
    finally:
        if job.running:  # the visitor cancelled or left: free the CPU now
            job.cancel()
        FITS.pop(session, None)


def follow(job, photo, progress):
    """Yield the fit's progress and its preview on `photo` every PREVIEW_EVERY_S seconds while it runs."""
    shown = None
    while job.running:
        now = job.progress()
        progress((now.images, now.total), desc=now.describe(), unit="images")
        preview = job.preview_dir()
        if preview and photo is not None:
            shown = preview_of(photo, str(preview))
        yield now.describe(), shown, ""
        time.sleep(PREVIEW_EVERY_S)


def visitor_token(token: str, oauth_token) -> str:
    """The Hub token to act with: the signed-in visitor's (on a Space), else the one typed in."""
    return oauth_token.token if oauth_token else (token or "").strip()


def save_painting(painting, dest: Path) -> Path:
    """The uploaded painting, checked like any photo (a bad or huge file gets its sentence), as a PNG."""
    from training import fit

    if painting is None:
        raise InvalidImageError("Upload a painting first.")
    image = fastnst.load_image(uploads.photo_source(painting))
    fit.check_fit_painting(image)  # too small or too thin: refused before anything is written
    dest.parent.mkdir(parents=True, exist_ok=True)
    resize_max_side(image, PAINTING_SIDE).save(dest)
    return dest


def preview_of(photo, folder: str):
    """The photo painted by the network in `folder`, small; read afresh (the preview changes as it learns)."""
    try:
        style = load_style(folder, device="cpu", cache=False)
        return fastnst.stylize(uploads.photo_source(photo), style, max_side=PREVIEW_SIDE, device="cpu")
    except (FastNSTError, OSError):  # a preview swapped out mid-read, or an unreadable photo: skip this one
        return None


def stop_fit(request: gr.Request):
    """Finish the visitor's fit now, with the network as it is."""
    job = FITS.get(request.session_hash)
    if job is None or not job.finish_early():
        gr.Warning("Nothing to stop yet: the fit has not started training.")


def cancel_fit(request: gr.Request):
    job = FITS.pop(request.session_hash, None)
    if job is not None:
        job.cancel()
    return "Cancelled.", None


def cancel_all_fits():
    """Fits run in their own process groups: stop them with the app (Ctrl-C, or the end of the process), and
    delete every fit folder this process made."""
    for job in list(FITS.values()):
        job.cancel()
    uploads.delete_made_fits()


def add_fitted_style(folder, thumbnails, names):
    """Add a finished fit to this visitor's gallery, selected, like a style loaded from the Hub."""
    thumbnails = thumbnails or []
    if folder not in names:
        style = checked(load_style, folder, device="cpu")
        names = {**names, folder: caption(style.metadata)}
        thumbnails = [*thumbnails, (paint_thumbnail(style), names[folder])]
    return selected_in_gallery(folder, thumbnails, names)


def publish_style(style, repo_name, token="", oauth_token: gr.OAuthToken | None = None):
    """Publish a fitted style (its folder, as /fit_style returned it) to a new Hub repo; returns its URL.

    Args:
        style: the style name /fit_style returned.
        repo_name: "name" (under your account) or "user/name".
        token: a Hugging Face write token (on a Space, sign in instead).
    """
    folder = Path(style or "").resolve()
    if not style or current().fits_dir.resolve() not in folder.parents:
        raise gr.Error("Fit a style first; only styles fitted here can be published.", print_exception=False)
    from training import fit

    token = visitor_token(token, oauth_token)
    repo_id = checked(fit.check_repo, repo_name, token)
    url = checked(fit.publish, folder.parent, repo_id, token)
    return f"**Published:** [{repo_id}]({url}). Anyone can now load it under “More styles from the Hub”."


def layout(settings: Settings) -> SimpleNamespace:
    with gr.Accordion("Make a style from your painting", open=False, elem_id="fit"):
        gr.Markdown("Upload a painting: a network learns it, starting from the gallery's shared network, and "
                    "paints your photo above as it learns. Stop when it looks right; the style joins your gallery, "
                    "and you can publish it to the Hugging Face Hub under your account. One fit runs at a time.")
        with gr.Row():
            painting = gr.Image(label="Your painting", type="filepath", sources=["upload", "clipboard"], height=260,
                                elem_id="painting")
            with gr.Column():
                title = gr.Textbox(label="Style name", placeholder="e.g. Sunflowers at Dusk (default: the file name)")
                images = gr.Slider(*IMAGE_STEPS_RANGE, value=default_image_steps(), step=100, label="Training images",
                                   info="more: closer to the painting, and longer")
                with gr.Row():
                    go = gr.Button("Fit style", variant="primary", elem_id="fit-go")
                    stop = gr.Button("Looks right: stop", elem_id="fit-stop")
                    cancel = gr.Button("Cancel", variant="stop", elem_id="fit-cancel")
                status = gr.Markdown(elem_id="fit-status")
            preview = gr.Image(label="Preview on your photo", interactive=False, height=260, elem_id="fit-preview")
        with gr.Row(equal_height=True):
            if settings.on_space:
                gr.LoginButton()
            token = gr.Textbox(label="Hugging Face write token", type="password", visible=not settings.on_space,
                               scale=2, elem_id="token")
            repo_name = gr.Textbox(label="Hub repo name", placeholder="my-painting-style (under your account)",
                                   scale=2, elem_id="repo-name")
            publish = gr.Button("Publish to the Hub", scale=1, elem_id="publish")
        publish_status = gr.Markdown(elem_id="publish-status")
    return SimpleNamespace(**locals())


def wire(ui, photo_ui, fitted, style, names, painting: dict) -> None:
    """`fitted`: the last fit's folder, for /publish_style; `painting`: the photo section's repainting event."""
    fitting = ui.go.click(fit_style, [ui.painting, photo_ui.photo, ui.title, ui.images, ui.repo_name, ui.token],
                          [ui.status, ui.preview, fitted], api_name="fit_style", preprocess=False,
                          concurrency_id="fit", concurrency_limit=1)  # one at a time; others see their place
    gallery_outputs = [photo_ui.styles, names, style, photo_ui.empty]
    fitting.success(add_fitted_style, [fitted, photo_ui.styles, names], gallery_outputs,
                    api_visibility="private").success(**painting)
    ui.stop.click(stop_fit, None, None, api_visibility="private", queue=False)
    ui.cancel.click(cancel_fit, None, [ui.status, ui.preview], cancels=[fitting], api_visibility="private",
                    queue=False)
    ui.publish.click(publish_style, [fitted, ui.repo_name, ui.token], ui.publish_status, api_name="publish_style",
                     concurrency_id="hub", concurrency_limit=2)
