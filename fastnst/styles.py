"""Styles: the gallery in `styles/`, the Hugging Face Hub and local folders, behind one `load_style(name)`.

A style is named by
- a gallery slug (`starry-night`): `<gallery>/<slug>/style.json` (the gallery is `styles/` in a checkout, the
  copy inside an installed wheel otherwise, or `FASTNST_STYLES_DIR`) plus, once trained, the embedded fp16
  `model.safetensors` + `config.json` (and `light/` with the width-0.5 CPU network);
- a Hub repo id (`user/repo` or `user/repo@revision`), downloaded once into the Hugging Face cache;
- a local folder holding `config.json` + `model.safetensors` (what `save_pretrained` writes).

Resolution order for a gallery slug: embedded copy → Hugging Face cache → `hf_hub_download` at the pinned
revision. With `HF_HUB_OFFLINE=1` or no network, cached and embedded styles still load. Loaded networks stay in
a small in-memory LRU per (style, variant, device).
"""
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .device import pick_device
from .download import fetch_style, parse_repo_id
from .errors import InvalidOptionError, StyleNotFoundError
from .formats import (
    METADATA_FILE,
    TILE_FILE,
    VARIANTS,
    has_network,
    read_info,
    read_metadata,
    readable_title,
    recipe_of,
    variant_dir,
    variant_subfolder,
)
from .models import load_network



def _default_styles_dir() -> Path:
    """The copy an installed wheel carries (`fastnst/_gallery/`, built from `styles/`; see pyproject.toml), else
    `styles/` beside the package, as in a checkout (the Space, editable installs). The wheel's copy is checked
    first so that an unrelated `styles/` folder in site-packages is never taken for the gallery."""
    here = Path(__file__).resolve().parent
    installed = here / "_gallery"
    return installed if installed.is_dir() else here.parent / "styles"


STYLES_DIR = Path(os.environ.get("FASTNST_STYLES_DIR") or _default_styles_dir())
DEFAULT_STYLE = "starry-night"
CACHE_SIZE = 8  # networks kept in memory; a full TransformerNet is 6.7 MB in fp32
CHOICES = ("auto", *VARIANTS)


@dataclass
class Style:
    """A loaded style: the network (eval mode, on `device`) and what its style.json says about it."""
    name: str
    network: torch.nn.Module
    metadata: dict = field(default_factory=dict)
    source: str = ""  # where the weights came from: a folder or "repo@revision"
    variant: str = "full"
    info: dict = field(default_factory=dict)  # fastnst.json of an exported run (recipe + metrics), if any

    @property
    def title(self) -> str:
        return self.metadata.get("title", self.name)

    @property
    def recipe(self) -> dict | None:
        """How the network was trained (None when nothing recorded it)."""
        return recipe_of(self.metadata, self.info, self.variant)


def gallery() -> list[dict]:
    """Metadata of every style in `styles/` (sorted by `order`, then slug), each with `slug` and `tile` path."""
    entries = []
    for folder in sorted(p.parent for p in STYLES_DIR.glob(f"*/{METADATA_FILE}")):
        meta = read_metadata(folder)
        meta.setdefault("slug", folder.name)
        tile = folder / meta.get("tile", TILE_FILE)
        meta["tile_path"] = str(tile) if tile.is_file() else None
        meta["variants"] = [v for v in VARIANTS if has_network(variant_dir(folder, v))]
        entries.append(meta)
    return sorted(entries, key=lambda m: (m.get("order", 1000), m["slug"]))


def available_styles() -> list[str]:
    return [m["slug"] for m in gallery()]


def _pick_variant(variant: str, device: torch.device, have: list[str]) -> str:
    """`auto` picks the light network on a CPU (several times faster there) and the full one on a GPU."""
    if variant not in CHOICES:
        raise InvalidOptionError(f"variant must be one of {', '.join(CHOICES)}, not {variant!r}.")
    if variant != "auto":
        return variant
    prefer = ["light", "full"] if device.type == "cpu" else ["full", "light"]
    return next((v for v in prefer if v in have), "full")


def _from_folder(name: str, folder: Path, device, meta: dict, source: str, variant: str = "full") -> Style:
    return Style(name, load_network(folder, device), meta, source, variant, read_info(folder))


def _resolve(name: str, variant: str, device: torch.device) -> Style:
    slug_dir = STYLES_DIR / name
    if "/" not in name and (slug_dir / METADATA_FILE).is_file():  # gallery slug
        meta = read_metadata(slug_dir)
        have = [v for v in VARIANTS if has_network(variant_dir(slug_dir, v))]
        chosen = _pick_variant(variant, device, have)
        if chosen in have:
            folder = variant_dir(slug_dir, chosen)
            return _from_folder(name, folder, device, meta, str(folder), chosen)
        if not meta.get("hub_repo"):
            raise StyleNotFoundError(f"Gallery style {name!r} has no embedded {chosen} network and no Hub repo.")
        folder = fetch_style(meta["hub_repo"], meta.get("hub_revision"), variant_subfolder(chosen))
        return _from_folder(name, folder, device, meta, f"{meta['hub_repo']}@{meta.get('hub_revision')}", chosen)
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        meta = read_metadata(folder) or {"title": folder.name}
        return _from_folder(name, folder, device, meta, str(folder))
    repo = parse_repo_id(name)
    if repo is None:
        known = ", ".join(available_styles()) or "none embedded"
        raise StyleNotFoundError(f"Unknown style {name!r}. Gallery styles: {known}; or give a Hub repo id "
                                 f"(user/repo or user/repo@revision) or a local folder.")
    repo_id, revision = repo
    folder = fetch_style(repo_id, revision)
    meta = read_metadata(folder)
    meta.setdefault("title", readable_title(repo_id.split("/")[1]))
    return _from_folder(name, folder, device, meta, f"{repo_id}@{revision or 'main'}")


_cache: "OrderedDict[tuple, Style]" = OrderedDict()
_lock = threading.Lock()


def load_style(name, *, device=None, variant: str = "auto", cache: bool = True) -> Style:
    """Load a style by gallery slug, Hub repo id (`user/repo[@revision]`) or folder; cached in an LRU unless
    `cache` is False (a folder whose network changes, such as a training run's live preview).

    Raises StyleNotFoundError (unknown name, listing the gallery), HubError (Hub unreachable and not cached)
    or WeightsMismatchError (files that do not fit the network).
    """
    if isinstance(name, Style):
        return name
    name = str(name).strip()
    device = pick_device(device)
    key = (name, variant, str(device))
    if not cache:
        return _resolve(name, variant, device)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    style = _resolve(name, variant, device)
    with _lock:
        _cache[key] = style
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return style


def clear_cache() -> None:
    with _lock:
        _cache.clear()
