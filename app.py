"""fastnst, the Space: upload a photo, click a painting in the gallery, get your photo painted in that style.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)

- Hardware: a GPU paints up to 4K with the full networks (kept loaded in the library's LRU); on ZeroGPU the
  painting function borrows a GPU per call (`spaces.GPU`); a CPU paints about 1 MP with the light networks.
- Offline (HF_HUB_OFFLINE=1 or no network) the embedded gallery in styles/ still works; styles from the Hub
  then load only if they are already in the Hugging Face cache.
- Uploads reach our functions undecoded (`preprocess=False`): fastnst.load_image, with its decompression-bomb
  guard and EXIF handling, is the only code that opens them, so a bad file gets its one-sentence error instead
  of a Gradio processing error.
- Examples pair each example photo with a gallery style; a click shows that painting, computed on first use and
  then served from Gradio's example cache (`cache_mode="lazy"`: nothing is painted at start-up).
- API: `Client(url).predict(handle_file("photo.jpg"), "starry-night", 1.0, False, 1024, api_name="/stylize")`.
"""
import base64
import logging
import os
import threading
from pathlib import Path

import gradio as gr
from huggingface_hub import HfApi
from huggingface_hub import constants as hub_constants

import fastnst
from fastnst.download import parse_repo_id
from fastnst.errors import FastNSTError, InvalidImageError, InvalidOptionError
from fastnst.models.hub import HUB_TAG
from fastnst.styles import DEFAULT_STYLE, STYLES_DIR, gallery, load_style

try:  # ZeroGPU Spaces: `spaces.GPU` lends a GPU for each call; the package only exists on Spaces
    import spaces
except ImportError:
    spaces = None

HERE = Path(__file__).resolve().parent
EXAMPLES = [str(p) for p in sorted((HERE / "examples").glob("*.jpg"))]
TILE_PHOTO = HERE / "examples" / "cat.jpg"  # what a style loaded from the Hub is shown painting in the gallery
TILE_SIDE = 256
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU") == "true"  # what Gradio itself checks (gradio.utils)
ON_GPU = ZERO_GPU or fastnst.pick_device().type == "cuda"
DEFAULT_SIDE = 3840 if ON_GPU else 1024  # 4K on a GPU; ~1 MP on a CPU, where that takes a second or two
LARGEST_SIDE = 3840 if ON_GPU else 2048  # beyond this a CPU keeps people waiting (and the queue behind them)
SMALLEST_SIDE = 64
CONCURRENCY = 4 if ON_GPU else 2  # paintings at once: a GPU overlaps transfers and encoding; 2 CPU threads suffice
QUEUE_SIZE = 64
HUB_LIMIT, HUB_TIMEOUT = 50, 5.0  # community styles: how many, seconds to wait for the list


def gpu(fn):
    """`spaces.GPU` on ZeroGPU; elsewhere the function itself (spaces.GPU is effect-free off ZeroGPU anyway)."""
    return spaces.GPU(duration=30)(fn) if spaces is not None else fn


def error(err) -> gr.Error:
    """A toast with the library's one human sentence; no traceback in the page or the log."""
    return gr.Error(str(err), print_exception=False)


def caption(meta: dict) -> str:
    title, artist = meta.get("title") or meta.get("slug", "?"), meta.get("artist")
    return f"{title} — {artist}" if artist else title


def paint_tile(style):
    """The style applied to TILE_PHOTO, small; on the CPU so no GPU is needed at start-up (it takes ~0.1 s)."""
    return fastnst.stylize(TILE_PHOTO, style, max_side=TILE_SIDE, device="cpu")


def gallery_tiles():
    """(tile, caption) pairs for the embedded gallery, and {style name: caption} in the same order."""
    tiles, names = [], {}
    for meta in gallery():
        tile = meta["tile_path"]
        if tile is None:  # no tile.jpg shipped: paint one, or leave out a style that cannot even load
            try:
                tile = paint_tile(meta["slug"])
            except FastNSTError as err:
                print(f"fastnst: leaving {meta['slug']!r} out of the gallery: {err}")
                continue
        tiles.append((tile, caption(meta)))
        names[meta["slug"]] = caption(meta)
    return tiles, names


def community_styles(exclude) -> list[str]:
    """Hub repos tagged `fastnst` (most downloaded first); [] offline, on any error or after HUB_TIMEOUT s."""
    if hub_constants.HF_HUB_OFFLINE:
        return []
    found = []

    def fetch():
        try:
            found.extend(m.id for m in HfApi().list_models(filter=HUB_TAG, sort="downloads", limit=HUB_LIMIT))
        except Exception as err:  # no network, Hub down, rate-limited: the Space works without the list
            print(f"fastnst: no community styles from the Hub ({type(err).__name__}).")

    thread = threading.Thread(target=fetch, daemon=True, name="fastnst-community")
    # huggingface_hub's HTTP layer logs each of its retries; for this optional list one line (above) says enough
    logging.getLogger("huggingface_hub.utils._http").addFilter(lambda record: record.threadName != thread.name)
    thread.start()
    thread.join(HUB_TIMEOUT)
    return [] if thread.is_alive() else [repo for repo in found if repo not in exclude]


def warm_up(names):
    """Load the default style now, so the first visitor does not wait for it (on a GPU: compile it too;
    ZeroGPU has no GPU at start-up)."""
    if DEFAULT_STYLE not in names:
        return
    try:
        if ON_GPU and not ZERO_GPU:  # compiling takes a while: better now than in the first visitor's click
            fastnst.stylize(TILE_PHOTO, DEFAULT_STYLE, max_side=512)
        else:
            load_style(DEFAULT_STYLE)
    except Exception as err:  # a warm-up failure must not stop the Space; the error returns on first use
        print(f"fastnst: could not warm up {DEFAULT_STYLE!r}: {err}")


def photo_source(image):
    """What fastnst.load_image reads: Gradio's raw upload payload (preprocess=False) or a plain path.

    Bytes rather than the path, so an error says "The file ..." instead of naming a server temp file.
    """
    if isinstance(image, dict):
        url = image.get("url") or ""
        if not image.get("path") and url.startswith("data:"):  # pasted/webcam images may arrive as data URLs
            try:
                return base64.b64decode(url.partition(",")[2])
            except ValueError as err:
                raise InvalidImageError("The pasted image could not be decoded; try uploading it as a file.") from err
        image = image.get("path")
    if image is None:
        return None
    try:
        return Path(image).read_bytes()
    except OSError as err:
        raise InvalidImageError("The uploaded file could not be read; please upload it again.") from err


def output_side(max_side) -> int:
    if max_side in (None, ""):
        return DEFAULT_SIDE
    if isinstance(max_side, float) and max_side.is_integer():
        max_side = int(max_side)
    if not isinstance(max_side, int) or not SMALLEST_SIDE <= max_side <= LARGEST_SIDE:
        raise InvalidOptionError(f"max_side must be a whole number of pixels from {SMALLEST_SIDE} to "
                                 f"{LARGEST_SIDE} on this hardware, not {max_side!r}.")
    return max_side


@gpu
def paint(image, style, strength, preserve_color, max_side):
    return fastnst.stylize(image, style, strength=strength, preserve_color=preserve_color, max_side=max_side)


def stylize(image, style, strength=1.0, preserve_color=False, max_side=DEFAULT_SIDE):
    """Paint a photo in a style. Returns the painted image (PNG, longer side at most `max_side`, aspect kept).

    Args:
        image: the photo (JPEG, PNG, WebP, GIF, BMP or TIFF).
        style: a gallery slug (e.g. "starry-night") or a Hub repo id ("user/repo" or "user/repo@revision").
        strength: 0 (the photo) to 1 (fully painted).
        preserve_color: keep the photo's colours and take only light and texture from the painting.
        max_side: longest side of the result in pixels (the photo is never enlarged).
    """
    if not style:
        raise gr.Error("Pick a style first: click a painting in the gallery, or load one from the Hub.",
                       print_exception=False)
    try:
        return paint(photo_source(image), style, strength, bool(preserve_color), output_side(max_side))
    except FastNSTError as err:
        raise error(err) from err


def restylize(image, style, strength, preserve_color, max_side, names):
    """Paint again after the photo, the style or a control changed; quietly nothing while there is no photo."""
    if image is None:
        return gr.Image(None, label="Painted")
    painted = stylize(image, style, strength, preserve_color, max_side)
    return gr.Image(painted, label=f"Painted: {names.get(style, style)}")


def pick_style(names, evt: gr.SelectData):
    return list(names)[evt.index]


def show_style(style, names):
    """Mark `style` in the gallery and the result's label, e.g. after an example set it."""
    index = list(names).index(style) if style in names else None
    return gr.Gallery(selected_index=index), gr.Image(label=f"Painted: {names.get(style, style)}")


def example_rows(names) -> list[list[str]]:
    """Each example photo with a gallery style, taking the styles in turn."""
    styles = list(names)
    return [[photo, styles[i % len(styles)]] for i, photo in enumerate(EXAMPLES)] if styles else []


def add_hub_style(repo, tiles, names):
    """Load `user/repo[@revision]` from the Hub (cached) and add it to this visitor's gallery, selected."""
    repo = (repo or "").strip()
    if not repo:
        raise gr.Error("Type a Hub repo id first: user/repo or user/repo@revision.", print_exception=False)
    if parse_repo_id(repo) is None:
        raise gr.Error(f"{repo!r} is not a Hub repo id; write it as user/repo or user/repo@revision.",
                       print_exception=False)
    tiles = tiles or []  # an empty gallery arrives as None
    if repo not in names:
        try:  # on the CPU: this downloads once into the HF cache, which painting on a GPU then reads
            style = load_style(repo, device="cpu")
            names = {**names, repo: caption({"slug": repo, **style.metadata})}
            tiles = [*tiles, (paint_tile(style), names[repo])]
        except FastNSTError as err:
            raise error(err) from err
    gallery_update = gr.Gallery(tiles, selected_index=list(names).index(repo), visible=True)
    return gallery_update, names, repo, gr.Markdown(visible=False)


TILES, NAMES = gallery_tiles()
EXAMPLE_ROWS = example_rows(NAMES)
START = DEFAULT_STYLE if DEFAULT_STYLE in NAMES else next(iter(NAMES), "")
COMMUNITY = community_styles(exclude={m.get("hub_repo") for m in gallery()})
warm_up(NAMES)
CSS = """
#styles .grid-wrap { min-height: 0; max-height: 70vh; }  /* Gradio's default: 450 px whatever the tile count */
/* as many ~170 px tiles as fit: six on a laptop, two on a phone (a fixed column count overflows phones) */
#styles .grid-container { grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)) !important; }
/* captions wrap instead of ending in "…": the artist's name is half of what a tile says */
#styles .caption-label { white-space: normal; max-width: calc(100% - 2 * var(--block-label-margin)); }
"""

with gr.Blocks(title="fastnst: paint your photo", delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# fastnst: paint your photo like a famous painting\n"
                "**1.** Upload, paste or drop a photo, or pick an example. **2.** Click a painting in the "
                "gallery. **3.** Download the result at full size (⬇ on the painted image).")
    with gr.Row():
        with gr.Column():
            photo = gr.Image(label="Your photo", type="filepath", sources=["upload", "clipboard", "webcam"],
                             height=340, elem_id="photo")
            examples_slot = gr.Column()  # filled below, once the hidden style box exists
        with gr.Column():
            result = gr.Image(label="Painted", format="png", interactive=False, height=340, elem_id="result",
                              buttons=["download", "fullscreen"])
            with gr.Row(equal_height=True):
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                                     info="0 = your photo, 1 = fully painted")
                size = gr.Slider(SMALLEST_SIDE, LARGEST_SIDE, value=DEFAULT_SIDE, step=64, label="Output size",
                                 info="longest side in pixels (never enlarged)")
            with gr.Row(equal_height=True):
                preserve = gr.Checkbox(label="Keep the photo's colours", info="take only light and brushwork")
                go = gr.Button("Paint", variant="primary")
    styles = gr.Gallery(TILES, label="Styles: click one", columns=6, height="auto", object_fit="cover",
                        allow_preview=False, fit_columns=False, interactive=False, buttons=[], elem_id="styles",
                        selected_index=list(NAMES).index(START) if START else None, visible=bool(TILES))
    empty = gr.Markdown("**The style gallery is empty on this machine:** load a style from the Hugging Face Hub "
                        "below.", visible=not TILES)
    with gr.Accordion("More styles from the Hugging Face Hub", open=not TILES):
        with gr.Row(equal_height=True):
            repo = gr.Textbox(label="Hub repo", placeholder="user/repo or user/repo@revision", scale=3)
            load = gr.Button("Load style", scale=1)
        community = gr.Dropdown(COMMUNITY, value=None, label=f"Community styles (Hub tag: {HUB_TAG})",
                                visible=bool(COMMUNITY))
    style = gr.Textbox(START, label="style", visible="hidden")  # the selected style's name, for the API
    names = gr.State(NAMES)  # {style name: caption} in this visitor's gallery order (Hub styles are per visitor)
    with examples_slot:
        # Painted at the default controls on first use, then served from Gradio's cache (lazy: nothing is
        # computed at start-up).
        gr.Examples(EXAMPLE_ROWS or EXAMPLES, inputs=[photo, style] if EXAMPLE_ROWS else photo, outputs=result,
                    fn=stylize if EXAMPLE_ROWS else None, cache_examples=bool(EXAMPLE_ROWS),
                    cache_mode="lazy", visible_columns=[0], label="Example photos (public domain / CC0)",
                    preprocess=False)

    painting = dict(fn=restylize, inputs=[photo, style, strength, preserve, size, names], outputs=result,
                    preprocess=False, concurrency_id="paint", concurrency_limit=CONCURRENCY,
                    trigger_mode="always_last", api_visibility="private")
    go.click(stylize, [photo, style, strength, preserve, size], result, api_name="stylize", preprocess=False,
             concurrency_id="paint", concurrency_limit=CONCURRENCY)
    # .input, not .change: an example sets the photo too, and its painting comes from the cache instead.
    gr.on([photo.input, strength.release, preserve.input, size.release], **painting)
    style.change(show_style, [style, names], [styles, result], api_visibility="private", queue=False)
    styles.select(pick_style, names, style, api_visibility="private").then(**painting)
    hub_outputs = [styles, names, style, empty]
    gr.on([load.click, repo.submit], add_hub_style, [repo, styles, names], hub_outputs,
          api_visibility="private").success(**painting)
    community.input(add_hub_style, [community, styles, names], hub_outputs, api_visibility="private"
                    ).success(**painting)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    demo.launch(css=CSS, allowed_paths=[str(STYLES_DIR), str(HERE / "examples")], max_file_size="30mb")
