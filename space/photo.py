"""The page's first section: a photo in, a style clicked in the gallery, the painting out; more styles from the Hub."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import gradio as gr

import fastnst
from fastnst import zerogpu
from fastnst.device import trim_freed_memory
from fastnst.errors import FastNSTError
from fastnst.formats import THUMBNAIL_PHOTO
from fastnst.hub import HUB_TAG, parse_repo_id
from fastnst.inference import BRUSH_RANGE
from fastnst.styles import DEFAULT_STYLE, gallery, load_style

from .common import brush_size, caption, error, mixed, paint_thumbnail, selected_in_gallery, whole_number
from .settings import DEFAULT_BRUSH, EXAMPLES, ROOT, SMALLEST_SIDE, Settings, current
from .uploads import photo_source

CSS = """
#styles .grid-wrap { min-height: 0; max-height: 70vh; }  /* Gradio's default: 450 px whatever the thumbnail count */
/* as many ~170 px thumbnails as fit: six on a laptop, two on a phone (a fixed column count overflows phones) */
#styles .grid-container { grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)) !important; }
/* captions wrap instead of ending in "…": the artist's name is half of what a thumbnail says */
#styles .caption-label { white-space: normal; max-width: calc(100% - 2 * var(--block-label-margin)); }
"""


def example_photos() -> list[str]:
    return [str(p) for p in sorted(EXAMPLES.glob("*.jpg"))]


def gallery_thumbnails():
    """(thumbnail, caption) pairs for the embedded gallery, and {style name: caption} in the same order."""
    thumbnails, names = [], {}
    for meta in gallery():
        thumbnail = meta["thumbnail_path"]
        if thumbnail is None:  # no tile.jpg shipped: paint one, or leave out a style that cannot even load
            try:
                thumbnail = paint_thumbnail(meta["slug"])
            except FastNSTError as err:
                print(f"fastnst: leaving {meta['slug']!r} out of the gallery: {err}")
                continue
        thumbnails.append((thumbnail, caption(meta)))
        names[meta["slug"]] = caption(meta)
    return thumbnails, names


def warm_up(names, settings: Settings):
    """Load the default style now, so that the first visitor does not wait for it (on a GPU: compile it too;
    ZeroGPU has no GPU at start-up)."""
    if DEFAULT_STYLE not in names:
        return
    try:
        if settings.on_gpu and not settings.zero_gpu:  # compiling takes a while: better now than in a click
            fastnst.stylize(ROOT / THUMBNAIL_PHOTO, DEFAULT_STYLE, max_side=512)
        else:
            load_style(DEFAULT_STYLE)
    except Exception as err:  # a warm-up failure must not stop the Space; the error returns on first use
        print(f"fastnst: could not warm up {DEFAULT_STYLE!r}: {err}")


def output_side(max_side) -> int:
    settings = current()
    if max_side in (None, ""):
        return settings.default_side
    return whole_number(max_side, SMALLEST_SIDE, settings.largest_side, "max_side must be a whole number of pixels",
                        " on this hardware")


@zerogpu.gpu(duration=zerogpu.PHOTO_SECONDS)
def paint(image, style, strength, preserve_color, max_side, brush=1.0):
    try:
        painted = fastnst.stylize(image, style, strength=strength, preserve_color=preserve_color, max_side=max_side,
                                  brush=brush)
    finally:
        trim_freed_memory(current().memory_ceiling)  # a large photo's decode is not kept resident for good
    # Gradio saves a returned picture under a hash of its bytes, rewriting the file in place: two visitors who get
    # the same picture would have one's download cut short while the other's is being written (an ASGI error,
    # "Too little data for declared Content-Length"). A painting id in the PNG makes every result its own file.
    painted.info.update({"Software": "fastnst", "fastnst-painting": uuid.uuid4().hex})
    return painted


def stylize(image, style, strength=1.0, preserve_color=False, max_side=None, brush=DEFAULT_BRUSH):
    """Paint a photo in a style. Returns the painted image (PNG, longer side at most `max_side`, aspect kept).

    Args:
        image: the photo (JPEG, PNG, WebP, GIF, BMP or TIFF).
        style: a gallery slug (e.g. "starry-night"), a Hub repo id ("user/repo" or "user/repo@revision"), or a mix
            of gallery styles ("starry-night=0.6,the-scream=0.4").
        strength: 0 (the photo) to 1 (fully painted).
        preserve_color: keep the photo's colours and take only light and texture from the painting.
        max_side: longest side of the result in pixels (the photo is never enlarged).
        brush: stroke size, 1 = the network's own strokes, 0.5 finer, up to 4 broader.
    """
    if not style:
        raise gr.Error("Pick a style first: click a painting in the gallery, or load one from the Hub.",
                       print_exception=False)
    try:
        return paint(photo_source(image), style, strength, bool(preserve_color), output_side(max_side),
                     brush_size(brush))
    except FastNSTError as err:
        raise error(err) from err


def restylize(image, style, strength, preserve_color, max_side, names, other="", share=0.0, brush=DEFAULT_BRUSH):
    """Paint again after the photo, the style or a control changed; quietly nothing while there is no photo."""
    if image is None:
        return gr.Image(None, label="Painted")
    painted = stylize(image, mixed(style, other, share), strength, preserve_color, max_side, brush)
    label = names.get(style, style)
    if mixed(style, other, share) != style:
        label = f"{label} + {float(share):.0%} {names.get(other, other)}"
    return gr.Image(painted, label=f"Painted: {label}")


def pick_style(names, evt: gr.SelectData):
    return list(names)[evt.index]


def show_style(style, names):
    """Mark `style` in the gallery and the result's label, e.g. after an example set it."""
    index = list(names).index(style) if style in names else None
    return gr.Gallery(selected_index=index), gr.Image(label=f"Painted: {names.get(style, style)}")


def example_rows(names) -> list[list[str]]:
    """Each example photo with a gallery style, taking the styles in turn."""
    styles = list(names)
    return [[photo, styles[i % len(styles)]] for i, photo in enumerate(example_photos())] if styles else []


def add_hub_style(repo, thumbnails, names):
    """Load `user/repo[@revision]` from the Hub (cached) and add it to this visitor's gallery, selected."""
    repo = (repo or "").strip()
    if not repo:
        raise gr.Error("Type a Hub repo id first: user/repo or user/repo@revision.", print_exception=False)
    if parse_repo_id(repo) is None:
        raise gr.Error(f"{repo!r} is not a Hub repo id; write it as user/repo or user/repo@revision.",
                       print_exception=False)
    thumbnails = thumbnails or []  # an empty gallery arrives as None
    if repo not in names:
        try:  # on the CPU: this downloads once into the HF cache, which painting on a GPU then reads
            style = load_style(repo, device="cpu")
            names = {**names, repo: caption({"slug": repo, **style.metadata})}
            thumbnails = [*thumbnails, (paint_thumbnail(style), names[repo])]
        except FastNSTError as err:
            raise error(err) from err
    return selected_in_gallery(repo, thumbnails, names)


def layout(settings: Settings, thumbnails, captions, community) -> SimpleNamespace:
    """The photo, the painting and its controls, the gallery and the Hub's styles."""
    start = DEFAULT_STYLE if DEFAULT_STYLE in captions else next(iter(captions), "")
    gr.Markdown("# fastnst: paint your photo like a famous painting\n"
                "**1.** Upload, paste or drop a photo, or pick an example. **2.** Click a painting in the "
                "gallery. **3.** Download the result at full size (⬇ on the painted image).")
    with gr.Row():
        with gr.Column():
            photo = gr.Image(label="Your photo", type="filepath", sources=["upload", "clipboard", "webcam"],
                             height=340, elem_id="photo")
            examples_slot = gr.Column()  # filled by `wire`, once the hidden style box exists
        with gr.Column():
            result = gr.Image(label="Painted", format="png", interactive=False, height=340, elem_id="result",
                              buttons=["download", "fullscreen"])
            with gr.Row(equal_height=True):
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                                     info="0 = your photo, 1 = fully painted")
                size = gr.Slider(SMALLEST_SIDE, settings.largest_side, value=settings.default_side, step=64,
                                 label="Output size", info="longest side in pixels (never enlarged)")
                brush = gr.Slider(*BRUSH_RANGE, value=DEFAULT_BRUSH, step=0.25, label="Brush size",
                                  info="1 = the network's own strokes; larger = broader", elem_id="brush")
            with gr.Row(equal_height=True):
                mix_with = gr.Dropdown([("No second style", "")] + [(c, s) for s, c in captions.items()],
                                       value="", label="Mix with", info="a second gallery style", elem_id="mix-with")
                mix = gr.Slider(0, 1, value=0.5, step=0.05, label="Mix", info="the second style's share",
                                elem_id="mix")
            with gr.Row(equal_height=True):
                preserve = gr.Checkbox(label="Keep the photo's colours", info="take only light and brushwork")
                go = gr.Button("Paint", variant="primary")
                api_paint = gr.Button(visible=False)  # the /stylize endpoint: the page's Paint also mixes
    styles = gr.Gallery(thumbnails, label="Styles: click one", columns=6, height="auto", object_fit="cover",
                        allow_preview=False, fit_columns=False, interactive=False, buttons=[], elem_id="styles",
                        selected_index=list(captions).index(start) if start else None, visible=bool(thumbnails))
    empty = gr.Markdown("**The style gallery is empty on this machine:** load a style from the Hugging Face Hub "
                        "below.", visible=not thumbnails)
    with gr.Accordion("More styles from the Hugging Face Hub", open=not thumbnails):
        with gr.Row(equal_height=True):
            repo = gr.Textbox(label="Hub repo", placeholder="user/repo or user/repo@revision", scale=3)
            load = gr.Button("Load style", scale=1)
        community_list = gr.Dropdown(community, value=None, label=f"Community styles (Hub tag: {HUB_TAG})",
                                     visible=bool(community))
    return SimpleNamespace(**locals())


def wire(ui, style, names, settings: Settings) -> dict:
    """The section's events; returns the repainting event, which other sections chain after theirs."""
    rows = example_rows(ui.captions)
    with ui.examples_slot:
        # Painted at the default controls on first use, then served from Gradio's cache (lazy: nothing is
        # computed at start-up).
        gr.Examples(rows or example_photos(), inputs=[ui.photo, style] if rows else ui.photo, outputs=ui.result,
                    fn=stylize if rows else None, cache_examples=bool(rows), cache_mode="lazy", visible_columns=[0],
                    label="Example photos (public domain / CC0)", preprocess=False)
    controls = [ui.photo, style, ui.strength, ui.preserve, ui.size]
    painting = dict(fn=restylize, inputs=[*controls, names, ui.mix_with, ui.mix, ui.brush], outputs=ui.result,
                    preprocess=False, concurrency_id="paint", concurrency_limit=settings.concurrency,
                    trigger_mode="always_last", api_visibility="private")
    ui.api_paint.click(stylize, [*controls, ui.brush], ui.result, api_name="stylize", preprocess=False,
                       concurrency_id="paint", concurrency_limit=settings.concurrency)
    # .input, not .change: an example sets the photo too, and its painting comes from the cache instead.
    gr.on([ui.go.click, ui.photo.input, ui.strength.release, ui.preserve.input, ui.size.release, ui.mix_with.input,
           ui.mix.release, ui.brush.release], **painting)
    style.change(show_style, [style, names], [ui.styles, ui.result], api_visibility="private", queue=False)
    ui.styles.select(pick_style, names, style, api_visibility="private").then(**painting)
    hub_outputs = [ui.styles, names, style, ui.empty]
    gr.on([ui.load.click, ui.repo.submit], add_hub_style, [ui.repo, ui.styles, names], hub_outputs,
          api_visibility="private").success(**painting)
    ui.community_list.input(add_hub_style, [ui.community_list, ui.styles, names], hub_outputs,
                            api_visibility="private").success(**painting)
    return painting
