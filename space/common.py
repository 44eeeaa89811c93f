"""What every section of the page shares: errors as toasts, the checks of numbers typed into the API, style
mixes, and the gallery's thumbnails."""
from __future__ import annotations

import gradio as gr

import fastnst
from fastnst.errors import FastNSTError, InvalidOptionError
from fastnst.formats import THUMBNAIL_PHOTO, THUMBNAIL_SIDE

from .settings import DEFAULT_BRUSH, ROOT

def error(err) -> gr.Error:
    """A toast with the library's one human sentence; no traceback in the page or the log."""
    return gr.Error(str(err), print_exception=False)


def checked(fn, *args, **kwargs):
    """fn(*args), with the library's one-sentence errors shown as a toast."""
    try:
        return fn(*args, **kwargs)
    except FastNSTError as err:
        raise error(err) from err


def caption(meta: dict) -> str:
    title, artist = meta.get("title") or meta.get("slug", "?"), meta.get("artist")
    return f"{title} — {artist}" if artist else title


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


def mixed(style, other, share) -> str:
    """The style to paint: `style`, or a mix with `other` taking `share` of it (fastnst.styles' text spelling)."""
    share = float(share or 0)
    if not other or other == style or share <= 0:
        return style
    return other if share >= 1 else f"{style}={1 - share:.3g},{other}={share:.3g}"


def paint_thumbnail(style):
    """The style's gallery thumbnail, painted on the CPU so that no GPU is needed at start-up."""
    return fastnst.stylize(ROOT / THUMBNAIL_PHOTO, style, max_side=THUMBNAIL_SIDE, device="cpu")



def selected_in_gallery(name, thumbnails, names):
    """The updates that show this visitor's gallery with `name` selected: the gallery, the names, the selected
    style, and the empty gallery's note hidden."""
    return gr.Gallery(thumbnails, selected_index=list(names).index(name), visible=True), names, name, \
        gr.Markdown(visible=False)
