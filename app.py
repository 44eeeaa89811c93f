"""fastnst, the Space: upload a photo, click a painting in the gallery, get your photo painted in that style.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)

- Hardware: a GPU paints up to 4K with the full networks (kept loaded in the library's LRU); on ZeroGPU the
  painting function borrows a GPU per call (`spaces.GPU`); a CPU paints about 1 MP with the light networks.
- Offline (HF_HUB_OFFLINE=1 or no network) the embedded gallery in styles/ still works; styles from the Hub
  then load only if they are already in the Hugging Face cache.
- Uploads reach our functions undecoded (`preprocess=False`): fastnst.load_image, with its decoder allow-list,
  decompression-bomb guard and EXIF handling, is the only code that opens them, so a bad file gets its
  one-sentence error instead of a Gradio processing error, and no upload ever starts an external program.
- Nothing is done at import: `build_demo()` returns the Blocks, `main()` paints missing tiles, asks the Hub for
  community styles, warms up the default style and launches, so tests can import the handlers directly.
- What is kept on disk, and for how long: uploads and results in Gradio's cache are deleted an hour after they
  were made (`delete_cache`, checked every 10 minutes); a failed or cancelled fit is deleted at once; a finished
  fit stays FIT_KEEP_S (2 hours) for its visitor to paint with and publish, all fits together at most
  FITS_MAX_BYTES (training.fit), and every fit this process made is deleted when it exits.
- Memory: keep_freed_memory makes the CPU reuse freed memory (fast), so a rare large picture would stay resident
  for good; after each painting, memory over MEMORY_CEILING is handed back to the kernel (fastnst.device).
- Examples pair each example photo with a gallery style; a click shows that painting, computed on first use and
  then served from Gradio's example cache (`cache_mode="lazy"`: nothing is painted at start-up).
- API: `Client(url).predict(handle_file("photo.jpg"), "starry-night", 1.0, False, 1024, api_name="/stylize")`.
- "Make a style from your painting": `training.fit` runs `python -m training --from styles/family` in a niced child
  process (one fit at a time, queued; cancel kills it at once), previews it on the visitor's photo as it learns
  and adds the result to the visitor's gallery; `/fit_style` is the same as an API, `/publish_style` pushes it to
  the Hub under the visitor's account (Hugging Face login on a Space, a token field elsewhere).
"""
import atexit
import base64
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
from huggingface_hub import HfApi
from huggingface_hub import constants as hub_constants

import fastnst
from fastnst.device import keep_freed_memory, trim_freed_memory
from fastnst.download import parse_repo_id
from fastnst.errors import FastNSTError, InvalidImageError, InvalidOptionError
from fastnst.models.hub import HUB_TAG
from fastnst.formats import readable_title
from fastnst.imageio import load_image, quiet_decoder_warnings, resize_max_side
from fastnst.inference import BRUSH_RANGE
from fastnst.styles import DEFAULT_STYLE, STYLES_DIR, gallery, load_style
from fastnst.temporal import Smoother
from fastnst.video import GPU_LIMITS, VideoLimits, paint_frame
from training import fit
from training.paintings import slug_of

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
DEFAULT_SIDE = 3840 if ON_GPU else 1024  # 4K on a GPU; ~1 MP on a CPU, well under a second
LARGEST_SIDE = 3840 if ON_GPU else 2048  # beyond this a CPU keeps people waiting (and the queue behind them)
SMALLEST_SIDE = 64
# Strokes × the network's own: at the default 1024 px, 1.5 reads as brushwork and keeps faces (2 starts to lose
# them with The Scream), chosen by eye on the CC0 photos in examples/.
DEFAULT_BRUSH = 1.5
CONCURRENCY = 4 if ON_GPU else 2  # paintings at once: a GPU overlaps transfers and encoding; 2 CPU threads suffice
QUEUE_SIZE = 64  # waiting paintings; one more is told "Queue is full! Please try again." at once
UPLOADS_KEPT = (600, 3600)  # Gradio's cache: every 10 min, delete uploads and results older than an hour
MEMORY_CEILING = int(float(os.environ.get("FASTNST_MEMORY_CEILING_MB", 1536)) * 2**20)
HUB_LIMIT, HUB_TIMEOUT = 50, 5.0  # community styles: how many, seconds to wait for the list
ON_SPACE = bool(os.environ.get("SPACE_ID"))  # Hugging Face login works on a Space; elsewhere a token field
FITS_DIR = Path(os.environ.get("FASTNST_FITS_DIR") or Path(tempfile.gettempdir()) / "fastnst-fits")
PAINTING_SIDE = 1024  # a painting is kept at most this large (training reads it at the family's style size)
PREVIEW_SIDE, PREVIEW_EVERY_S = 512, 2.0
FITS: dict[str, fit.FitJob] = {}  # the running fit of each browser session
MADE_FITS: set[Path] = set()  # every fit folder this process made, deleted when it exits
FIT_IMAGES_RANGE = (200, 8_000)
LIVE_SIDE = 640 if ON_GPU else 320  # webcam frames are painted at most this large (the light network on 2 cores)
LIVE_SMALLEST = LIVE_SIDE if ON_GPU else 160  # a slow CPU paints smaller frames, not fewer (LiveSession.fit)
LIVE_EVERY, LIVE_SECONDS = 0.1, 600 if ON_GPU else 180  # a frame every 0.1 s at most; a stream ends after this
LIVE_CONCURRENCY = 4 if ON_GPU else 2
VIDEO_SIDE = 1280 if ON_GPU else 640  # painted video frames' longer side
VIDEOS_DIR = Path(tempfile.gettempdir()) / "fastnst-videos"  # painted videos, kept as long as Gradio's uploads


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


def whole_number(value, low: int, high: int, what: str, where: str = "") -> int:
    """`value` as an int from `low` to `high` (512.0 counts as 512), else the sentence naming `what`."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise InvalidOptionError(f"{what} from {low} to {high}{where}, not {value!r}.")
    return value


def brush_size(brush):
    """The API's brush, DEFAULT_BRUSH when left out (fastnst checks the range and says so in one sentence)."""
    return DEFAULT_BRUSH if brush in (None, "") else brush


def output_side(max_side) -> int:
    if max_side in (None, ""):
        return DEFAULT_SIDE
    return whole_number(max_side, SMALLEST_SIDE, LARGEST_SIDE, "max_side must be a whole number of pixels",
                        " on this hardware")


@gpu
def paint(image, style, strength, preserve_color, max_side, brush=1.0):
    try:
        painted = fastnst.stylize(image, style, strength=strength, preserve_color=preserve_color, max_side=max_side,
                                  brush=brush)
    finally:
        trim_freed_memory(MEMORY_CEILING)  # a large photo's decode is not kept resident for good
    # Gradio saves a returned picture under a hash of its bytes, rewriting the file in place: two visitors who get
    # the same picture would have one's download cut short while the other's is being written (an ASGI error,
    # "Too little data for declared Content-Length"). A painting id in the PNG makes every result its own file.
    painted.info.update({"Software": "fastnst", "fastnst-painting": uuid.uuid4().hex})
    return painted


def stylize(image, style, strength=1.0, preserve_color=False, max_side=DEFAULT_SIDE, brush=DEFAULT_BRUSH):
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


def mixed(style, other, share) -> str:
    """The style to paint: `style`, or a mix with `other` taking `share` of it (fastnst.styles' text spelling)."""
    share = float(share or 0)
    if not other or other == style or share <= 0:
        return style
    return other if share >= 1 else f"{style}={1 - share:.3g},{other}={share:.3g}"


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


def fit_style(painting, photo, title="", image_steps=fit.FIT_IMAGES, repo_name="", token="",
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
    budget = checked(whole_number, image_steps, *FIT_IMAGES_RANGE, "image_steps must be a whole number")
    if repo_name and repo_name.strip():
        checked(fit.check_repo, repo_name, visitor_token(token, oauth_token))
    session = request.session_hash if request else uuid.uuid4().hex
    if FITS.get(session) and FITS[session].running:
        raise gr.Error("A style is already being fitted for you; stop or cancel it first.", print_exception=False)
    fit.sweep(FITS_DIR, keep=[job.out for job in FITS.values()])
    out = FITS_DIR / uuid.uuid4().hex[:12]
    title = (title or "").strip() or readable_title(painting_name(painting))
    MADE_FITS.add(out)
    try:
        source = checked(save_painting, painting, out / f"{slug_of(title)}.png")
        job = FITS[session] = checked(fit.FitJob.start, source, out=out, image_steps=budget, title=title)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a fit that did not start leaves nothing
        raise
    try:
        shown = None
        while job.running:
            now = job.progress()
            progress((now.images, now.total), desc=now.describe(), unit="images")
            preview = job.preview_dir()
            if preview and photo is not None:
                shown = preview_of(photo, str(preview))
            yield now.describe(), shown, ""
            time.sleep(PREVIEW_EVERY_S)
        if job.cancelled:
            return
        export = checked(job.wait_result)
        yield (f"**Done:** “{title}” is in your gallery below. Paint with it, or publish it to the Hub.",
               preview_of(photo, str(export)) if photo is not None else None, str(export))
    finally:
        if job.running:  # the visitor cancelled or left: free the CPU now
            job.cancel()
        FITS.pop(session, None)


def checked(fn, *args, **kwargs):
    """fn(*args), with the library's one-sentence errors shown as a toast."""
    try:
        return fn(*args, **kwargs)
    except FastNSTError as err:
        raise error(err) from err


def visitor_token(token: str, oauth_token) -> str:
    """The Hub token to act with: the signed-in visitor's (on a Space), else the one typed in."""
    return oauth_token.token if oauth_token else (token or "").strip()


def painting_name(painting) -> str:
    return (painting.get("orig_name") or "") if isinstance(painting, dict) else Path(str(painting or "")).name


def save_painting(painting, dest: Path) -> Path:
    """The uploaded painting, checked like any photo (a bad or huge file gets its sentence), as a PNG."""
    if painting is None:
        raise InvalidImageError("Upload a painting first.")
    image = fastnst.load_image(photo_source(painting))
    fit.check_fit_painting(image)  # too small or too thin: refused before anything is written
    dest.parent.mkdir(parents=True, exist_ok=True)
    resize_max_side(image, PAINTING_SIDE).save(dest)
    return dest


def preview_of(photo, folder: str):
    """The photo painted by the network in `folder`, small; read afresh (the preview changes as it learns)."""
    try:
        style = load_style(folder, device="cpu", cache=False)
        return fastnst.stylize(photo_source(photo), style, max_side=PREVIEW_SIDE, device="cpu")
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
    for folder in MADE_FITS:
        shutil.rmtree(folder, ignore_errors=True)


def add_fitted_style(folder, tiles, names):
    """Add a finished fit to this visitor's gallery, selected, like a style loaded from the Hub."""
    tiles = tiles or []
    if folder not in names:
        style = checked(load_style, folder, device="cpu")
        names = {**names, folder: caption(style.metadata)}
        tiles = [*tiles, (paint_tile(style), names[folder])]
    return gr.Gallery(tiles, selected_index=list(names).index(folder), visible=True), names, folder, \
        gr.Markdown(visible=False)


def publish_style(style, repo_name, token="", oauth_token: gr.OAuthToken | None = None):
    """Publish a fitted style (its folder, as /fit_style returned it) to a new Hub repo; returns its URL.

    Args:
        style: the style name /fit_style returned.
        repo_name: "name" (under your account) or "user/name".
        token: a Hugging Face write token (on a Space, sign in instead).
    """
    folder = Path(style or "").resolve()
    if not style or FITS_DIR.resolve() not in folder.parents:
        raise gr.Error("Fit a style first; only styles fitted here can be published.", print_exception=False)
    token = visitor_token(token, oauth_token)
    repo_id = checked(fit.check_repo, repo_name, token)
    url = checked(fit.publish, folder.parent, repo_id, token)
    return f"**Published:** [{repo_id}]({url}). Anyone can now load it under “More styles from the Hub”."

# --- live webcam --------------------------------------------------------------------------------------------------

@dataclass
class LiveSession:
    """One visitor's stream: its own Smoother (so two visitors never share a previous frame), frame times, and the
    size its frames are painted at (`side`, fitted to how fast this machine paints them: see `fit`)."""
    style: str
    brush: float = 1.0
    side: int = LIVE_SIDE
    smoother: Smoother = field(default_factory=Smoother)
    times: deque = field(default_factory=lambda: deque(maxlen=20))
    seconds: float | None = None  # painting one frame at `side`, a running average
    painted_at_side: int = 0

    def rate(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0

    def stroke(self) -> float:
        """The brush at this `side`: strokes keep their size relative to the frame as it shrinks, down to the
        network's own (brush 1.5 on a 160-px frame painted over the face, looked at; brush 1 kept it). Under 1.25
        it is 1: the broad pass of a brush just over 1 costs nearly a second painting for strokes hardly larger."""
        if self.brush <= 1 or self.side == LIVE_SIDE:
            return self.brush
        stroke = self.brush * self.side / LIVE_SIDE
        return stroke if stroke >= 1.25 else 1.0

    def fit(self, seconds: float) -> None:
        """Take the time the last frame took to paint, and change `side` when painting cannot keep up with the
        stream's LIVE_EVERY (smaller frames, down to LIVE_SMALLEST) or keeps up with much to spare (larger, up to
        LIVE_SIDE). Why: on a slow CPU a full-size stream paints 2-4 frames a second, which no longer reads as live;
        video calls lower the resolution before the frame rate for the same reason. The time grows with the
        pixels, so the side scales with the square root of the time; a few frames settle before each change, and
        the margins keep it from swinging to and fro."""
        self.painted_at_side += 1
        if self.painted_at_side == 1:  # the first frame at a size pays for loading the network, and has no flow
            return
        self.seconds = seconds if self.seconds is None else 0.6 * self.seconds + 0.4 * seconds
        slow, spare = self.seconds > 1.2 * LIVE_EVERY, self.seconds < 0.5 * LIVE_EVERY
        if self.painted_at_side < 4 or not (slow and self.side > LIVE_SMALLEST or spare and self.side < LIVE_SIDE):
            return
        side = round(self.side * (0.8 * LIVE_EVERY / self.seconds) ** 0.5 / 16) * 16
        self.side, self.seconds, self.painted_at_side = min(LIVE_SIDE, max(LIVE_SMALLEST, side)), None, 0


@gpu
def paint_live_frame(rgb, style, smoother, brush=1.0):
    network = load_style(style)
    return smoother(rgb, lambda x, features: paint_frame(x, network, brush=brush, features=features))


def paint_live(frame, style, session, other="", share=0.0, brush=DEFAULT_BRUSH):
    """Paint one webcam frame in the selected style (or mix), steadied by this visitor's previous frames."""
    if frame is None:
        return gr.skip(), session, gr.skip()
    if not style:
        raise gr.Error("Pick a style first: click a painting in the gallery.", print_exception=False)
    style, brush = mixed(style, other, share), brush_size(brush)
    if not isinstance(session, LiveSession) or (session.style, session.brush) != (style, brush):
        # a new style starts afresh (its strokes are not the last style's), at the size this machine keeps up with
        session = LiveSession(style, brush, side=session.side if isinstance(session, LiveSession) else LIVE_SIDE)
    start = time.monotonic()
    try:
        photo = resize_max_side(load_image(photo_source(frame)), session.side)
        painted = paint_live_frame(np.asarray(photo), style, session.smoother, session.stroke())
    except FastNSTError as err:
        raise error(err) from err
    session.times.append(time.monotonic())
    session.fit(session.times[-1] - start)
    rate = session.rate()
    shown = f"**{rate:.1f}** frames a second, {photo.width}×{photo.height}" if rate else "Painting…"
    if rate and session.side < LIVE_SIDE:
        shown += f" (smaller than {LIVE_SIDE} px, to keep up on this machine)"
    return painted, session, shown


# --- video files --------------------------------------------------------------------------------------------------

def video_source(video) -> str | None:
    """The uploaded video's path from Gradio's raw payload (preprocess=False) or a plain path."""
    if isinstance(video, dict):
        video = (video.get("video") or video) if "video" in video else video
        video = video.get("path") if isinstance(video, dict) else video
    return str(video) if video else None


def sweep_videos(max_age_s: float = UPLOADS_KEPT[1]):
    """Delete painted videos older than Gradio keeps its uploads (and all of them at exit: max_age_s=0)."""
    fit.sweep(VIDEOS_DIR, max_age_s=max_age_s, max_bytes=float("inf"))


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
    src = video_source(video)
    if src is None:
        raise gr.Error("Upload a video first (mp4, mov, mkv or webm).", print_exception=False)
    sweep_videos()
    VIDEOS_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=VIDEOS_DIR))
    dst = folder / "painted.mp4"
    stop, updates = threading.Event(), queue.Queue()

    def work():  # in a thread, so that this generator can report progress and notice a cancel between frames
        try:
            result = fastnst.stylize_video(src, style, dst, strength=strength, preserve_color=bool(preserve_color),
                                           brush=brush,
                                           max_side=VIDEO_SIDE, limits=GPU_LIMITS if ON_GPU else VideoLimits(),
                                           progress=lambda *p: updates.put(("progress", p)), cancelled=stop.is_set)
            updates.put(("done", result))
        except BaseException as err:  # noqa: BLE001 - handed to the generator, which raises it
            updates.put(("error", err))

    worker = threading.Thread(target=work, name="fastnst-video", daemon=True)
    worker.start()
    finished, shown = False, 0.0
    try:
        while True:
            kind, value = updates.get()
            if kind == "progress":
                done, total, elapsed = value
                progress((done, total), desc="frames", unit="frames")
                if time.monotonic() - shown >= 1.0:
                    shown = time.monotonic()
                    left = elapsed / done * (total - done)
                    yield gr.skip(), f"Painting: {done} of {total} frames, about {left:.0f} s left."
            elif kind == "done":
                finished = True
                sound = "with its sound" if value.audio else "no sound"
                yield str(value.path), (f"**Painted** {value.frames} frames of {value.width}×{value.height} "
                                        f"({sound}) in {value.seconds:.0f} s, "
                                        f"{value.frames / max(value.seconds, 1e-9):.1f} frames a second.")
                return
            elif isinstance(value, FastNSTError):
                raise error(value) from value
            else:
                raise value
    finally:  # also when the visitor cancels: the worker stops at the next frame and removes its file
        stop.set()
        worker.join()
        if not finished:
            shutil.rmtree(folder, ignore_errors=True)


CSS = """
#styles .grid-wrap { min-height: 0; max-height: 70vh; }  /* Gradio's default: 450 px whatever the tile count */
/* as many ~170 px tiles as fit: six on a laptop, two on a phone (a fixed column count overflows phones) */
#styles .grid-container { grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)) !important; }
/* captions wrap instead of ending in "…": the artist's name is half of what a tile says */
#styles .caption-label { white-space: normal; max-width: calc(100% - 2 * var(--block-label-margin)); }
"""

def build_demo(tiles=(), captions=None, community=()) -> gr.Blocks:
    """The page. `tiles` and `captions` ({style: caption}) as gallery_tiles() makes them; `community`: Hub repo
    ids for the dropdown. Builds components only: nothing is painted, downloaded or loaded."""
    tiles, captions = list(tiles), dict(captions or {})
    rows = example_rows(captions)
    start = DEFAULT_STYLE if DEFAULT_STYLE in captions else next(iter(captions), "")
    with gr.Blocks(title="fastnst: paint your photo", delete_cache=UPLOADS_KEPT) as demo:
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
                    brush = gr.Slider(*BRUSH_RANGE, value=DEFAULT_BRUSH, step=0.25, label="Brush size",
                                      info="1 = the network's own strokes; larger = broader", elem_id="brush")
                with gr.Row(equal_height=True):
                    mix_with = gr.Dropdown([("No second style", "")] + [(c, s) for s, c in captions.items()],
                                           value="", label="Mix with", info="a second gallery style",
                                           elem_id="mix-with")
                    mix = gr.Slider(0, 1, value=0.5, step=0.05, label="Mix", info="the second style's share",
                                    elem_id="mix")
                with gr.Row(equal_height=True):
                    preserve = gr.Checkbox(label="Keep the photo's colours", info="take only light and brushwork")
                    go = gr.Button("Paint", variant="primary")
                    api_paint = gr.Button(visible=False)  # the /stylize endpoint: the page's Paint also mixes
        styles = gr.Gallery(tiles, label="Styles: click one", columns=6, height="auto", object_fit="cover",
                            allow_preview=False, fit_columns=False, interactive=False, buttons=[], elem_id="styles",
                            selected_index=list(captions).index(start) if start else None, visible=bool(tiles))
        empty = gr.Markdown("**The style gallery is empty on this machine:** load a style from the Hugging Face Hub "
                            "below.", visible=not tiles)
        with gr.Accordion("More styles from the Hugging Face Hub", open=not tiles):
            with gr.Row(equal_height=True):
                repo = gr.Textbox(label="Hub repo", placeholder="user/repo or user/repo@revision", scale=3)
                load = gr.Button("Load style", scale=1)
            community_list = gr.Dropdown(community, value=None, label=f"Community styles (Hub tag: {HUB_TAG})",
                                         visible=bool(community))
        with gr.Accordion("Make a style from your painting", open=False, elem_id="fit"):
            gr.Markdown("Upload a painting: a network learns it, starting from the gallery's shared network, and "
                        "paints your photo above as it learns. Stop when it looks right; the style joins your gallery, "
                        "and you can publish it to the Hugging Face Hub under your account. One fit runs at a time.")
            with gr.Row():
                painting_in = gr.Image(label="Your painting", type="filepath", sources=["upload", "clipboard"],
                                       height=260, elem_id="painting")
                with gr.Column():
                    fit_title = gr.Textbox(label="Style name",
                                           placeholder="e.g. Sunflowers at Dusk (default: the file name)")
                    fit_images = gr.Slider(*FIT_IMAGES_RANGE, value=fit.FIT_IMAGES, step=100, label="Training images",
                                           info="more: closer to the painting, and longer")
                    with gr.Row():
                        fit_go = gr.Button("Fit style", variant="primary", elem_id="fit-go")
                        fit_stop = gr.Button("Looks right: stop", elem_id="fit-stop")
                        fit_cancel = gr.Button("Cancel", variant="stop", elem_id="fit-cancel")
                    fit_status = gr.Markdown(elem_id="fit-status")
                fit_preview = gr.Image(label="Preview on your photo", interactive=False, height=260,
                                       elem_id="fit-preview")
            with gr.Row(equal_height=True):
                if ON_SPACE:
                    gr.LoginButton()
                token = gr.Textbox(label="Hugging Face write token", type="password", visible=not ON_SPACE, scale=2,
                                   elem_id="token")
                repo_name = gr.Textbox(label="Hub repo name", placeholder="my-painting-style (under your account)",
                                       scale=2, elem_id="repo-name")
                publish = gr.Button("Publish to the Hub", scale=1, elem_id="publish")
            publish_status = gr.Markdown(elem_id="publish-status")
        with gr.Accordion("Live: your webcam, painted", open=False, elem_id="live"):
            gr.Markdown("Allow the camera and start it: every frame is painted in the style selected in the gallery "
                        f"(switch styles while it runs). A stream lasts up to {LIVE_SECONDS // 60} minutes.")
            with gr.Row():
                camera = gr.Image(label="Your webcam", sources=["webcam"], streaming=True, height=300,
                                  elem_id="camera")
                live_out = gr.Image(label="Painted live", interactive=False, format="jpeg", height=300,
                                    elem_id="live-out")
            live_rate = gr.Markdown(elem_id="live-rate")
        with gr.Accordion("Paint a video", open=False, elem_id="video"):
            gr.Markdown(f"mp4, mov, mkv or webm: painted in the selected style at {VIDEO_SIDE} px, without "
                        f"flicker where the scene is still, with its sound. Up to "
                        f"{(GPU_LIMITS if ON_GPU else VideoLimits()).max_seconds:.0f} seconds.")
            with gr.Row():
                video_in = gr.Video(label="Your video", sources=["upload"], height=300, elem_id="video-in")
                video_out = gr.Video(label="Painted video", interactive=False, height=300, elem_id="video-out")
            with gr.Row():
                video_go = gr.Button("Paint video", variant="primary", elem_id="video-go")
                video_cancel = gr.Button("Cancel", variant="stop", elem_id="video-cancel")
            video_status = gr.Markdown(elem_id="video-status")
        fitted = gr.Textbox("", label="fitted style", visible="hidden")  # the last fit's folder, for /publish_style
        style = gr.Textbox(start, label="style", visible="hidden")  # the selected style's name, for the API
        names = gr.State(captions)  # {style name: caption} in this visitor's gallery order (Hub styles are per visitor)
        with examples_slot:
            # Painted at the default controls on first use, then served from Gradio's cache (lazy: nothing is
            # computed at start-up).
            gr.Examples(rows or EXAMPLES, inputs=[photo, style] if rows else photo, outputs=result,
                        fn=stylize if rows else None, cache_examples=bool(rows),
                        cache_mode="lazy", visible_columns=[0], label="Example photos (public domain / CC0)",
                        preprocess=False)

        painting = dict(fn=restylize, inputs=[photo, style, strength, preserve, size, names, mix_with, mix, brush],
                        outputs=result, preprocess=False, concurrency_id="paint", concurrency_limit=CONCURRENCY,
                        trigger_mode="always_last", api_visibility="private")
        api_paint.click(stylize, [photo, style, strength, preserve, size, brush], result, api_name="stylize",
                        preprocess=False, concurrency_id="paint", concurrency_limit=CONCURRENCY)
        # .input, not .change: an example sets the photo too, and its painting comes from the cache instead.
        gr.on([go.click, photo.input, strength.release, preserve.input, size.release, mix_with.input, mix.release,
               brush.release],
              **painting)
        style.change(show_style, [style, names], [styles, result], api_visibility="private", queue=False)
        styles.select(pick_style, names, style, api_visibility="private").then(**painting)
        hub_outputs = [styles, names, style, empty]
        gr.on([load.click, repo.submit], add_hub_style, [repo, styles, names], hub_outputs,
              api_visibility="private").success(**painting)
        community_list.input(add_hub_style, [community_list, styles, names], hub_outputs, api_visibility="private"
                        ).success(**painting)

        fitting = fit_go.click(fit_style, [painting_in, photo, fit_title, fit_images, repo_name, token],
                               [fit_status, fit_preview, fitted], api_name="fit_style", preprocess=False,
                               concurrency_id="fit", concurrency_limit=1)  # one at a time; others see their place
        fitting.success(add_fitted_style, [fitted, styles, names], hub_outputs, api_visibility="private"
                        ).success(**painting)
        fit_stop.click(stop_fit, None, None, api_visibility="private", queue=False)
        fit_cancel.click(cancel_fit, None, [fit_status, fit_preview], cancels=[fitting], api_visibility="private",
                         queue=False)
        publish.click(publish_style, [fitted, repo_name, token], publish_status, api_name="publish_style",
                      concurrency_id="hub", concurrency_limit=2)

        live = gr.State(None)  # this visitor's LiveSession
        camera.stream(paint_live, [camera, style, live, mix_with, mix, brush], [live_out, live, live_rate],
                      preprocess=False, stream_every=LIVE_EVERY, time_limit=LIVE_SECONDS, concurrency_id="live",
                      concurrency_limit=LIVE_CONCURRENCY, show_progress="hidden", api_visibility="private")
        painting_video = video_go.click(paint_video, [video_in, style, strength, preserve, brush],
                                        [video_out, video_status], api_name="stylize_video", preprocess=False, concurrency_id="video",
                                        concurrency_limit=1)
        video_cancel.click(lambda: "Cancelled: nothing was kept.", None, video_status, cancels=[painting_video],
                           api_visibility="private", queue=False)

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def main():
    """Set the process up, gather what the page shows, and serve it."""
    keep_freed_memory()  # CPU paintings reuse freed memory instead of page-faulting fresh memory in
    quiet_decoder_warnings()  # visitors' odd files must not fill the log with Pillow's warnings
    atexit.register(cancel_all_fits)
    atexit.register(sweep_videos, 0)  # painted videos go with the app
    fit.sweep(FITS_DIR)  # fits left by an earlier run past their time
    tiles, captions = gallery_tiles()
    community = community_styles(exclude={m.get("hub_repo") for m in gallery()})
    warm_up(captions)
    demo = build_demo(tiles, captions, community)
    demo.launch(css=CSS, allowed_paths=[str(STYLES_DIR), str(HERE / "examples")], max_file_size="30mb")


if __name__ == "__main__":
    main()
