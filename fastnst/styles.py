"""Styles: the gallery in `styles/`, the Hugging Face Hub and local folders, behind one `load_style(name)`.

A style is named by
- a gallery slug (`starry-night`): `styles/<slug>/style.json` plus, once trained, the embedded fp16
  `model.safetensors` + `config.json` (and `light/` with the width-0.5 CPU network);
- a Hub repo id (`user/repo` or `user/repo@revision`), downloaded once into the Hugging Face cache;
- a local folder holding `config.json` + `model.safetensors` (what `save_pretrained` writes).

Resolution order for a gallery slug: embedded copy → Hugging Face cache → `hf_hub_download` at the pinned
revision. With `HF_HUB_OFFLINE=1` or no network, cached and embedded styles still load. Loaded networks stay in
a small in-memory LRU per (style, variant, device).
"""
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (HfHubHTTPError, HFValidationError, LocalEntryNotFoundError,
                                    RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

from .errors import HubError, StyleNotFoundError, WeightsMismatchError
from .models import build_model, load_weights

STYLES_DIR = Path(os.environ.get("FASTNST_STYLES_DIR", Path(__file__).resolve().parent.parent / "styles"))
DEFAULT_STYLE = "starry-night"
CACHE_SIZE = 8  # networks kept in memory; a full TransformerNet is 6.7 MB in fp32
VARIANTS = ("auto", "full", "light")
WEIGHTS_FILE, CONFIG_FILE, METADATA_FILE = "model.safetensors", "config.json", "style.json"


@dataclass
class Style:
    """A loaded style: the network (eval mode, on `device`) and what the gallery says about it."""
    name: str
    network: torch.nn.Module
    metadata: dict = field(default_factory=dict)
    source: str = ""  # where the weights came from: a folder or "repo@revision"
    variant: str = "full"

    @property
    def title(self) -> str:
        return self.metadata.get("title", self.name)

    @property
    def artist(self) -> str:
        return self.metadata.get("artist", "")

    @property
    def max_side(self):
        return self.metadata.get("max_side")


def gallery() -> list[dict]:
    """Metadata of every style in `styles/` (sorted by `order`, then slug), each with `slug` and `tile` path."""
    entries = []
    for meta_file in sorted(STYLES_DIR.glob(f"*/{METADATA_FILE}")):
        meta = json.loads(meta_file.read_text())
        meta.setdefault("slug", meta_file.parent.name)
        tile = meta_file.parent / meta.get("tile", "tile.jpg")
        meta["tile_path"] = str(tile) if tile.is_file() else None
        meta["variants"] = [v for v in ("full", "light") if (_variant_dir(meta_file.parent, v) / WEIGHTS_FILE).is_file()]
        entries.append(meta)
    return sorted(entries, key=lambda m: (m.get("order", 1000), m["slug"]))


def available_styles() -> list[str]:
    return [m["slug"] for m in gallery()]


def _variant_dir(folder: Path, variant: str) -> Path:
    return folder / "light" if variant == "light" else folder


def _pick_variant(variant: str, device: torch.device, have: list[str]) -> str:
    """`auto` picks the light network on CPU (about 4x faster at 1 MP) and the full one on a GPU."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    if variant != "auto":
        return variant
    prefer = ["light", "full"] if device.type == "cpu" else ["full", "light"]
    return next((v for v in prefer if v in have), "full")


def parse_repo_id(name: str):
    """`user/repo@rev` → ("user/repo", "rev"); `user/repo` → ("user/repo", None); anything else → None."""
    repo, _, revision = name.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in name) or name.startswith((".", "/")):
        return None
    return repo, revision or None


def _download(repo_id: str, revision, subfolder=None) -> Path:
    """config.json + model.safetensors into the HF cache (cache first when offline); returns their folder."""
    def fetch(filename, local_files_only):
        return hf_hub_download(repo_id, filename, subfolder=subfolder, revision=revision,
                               local_files_only=local_files_only)

    try:
        config = fetch(CONFIG_FILE, False)
        fetch(WEIGHTS_FILE, False)
        try:  # optional: title, artist, licence ... as in the gallery
            fetch(METADATA_FILE, False)
        except (RemoteEntryNotFoundError, LocalEntryNotFoundError):
            pass
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        what = f"revision {revision!r} of " if isinstance(err, RevisionNotFoundError) else ""
        raise StyleNotFoundError(f"There is no {what}Hub repo {repo_id!r} (or it is private).") from err
    except RemoteEntryNotFoundError as err:
        raise StyleNotFoundError(f"Hub repo {repo_id!r} has no fastnst style ({CONFIG_FILE} and "
                                 f"{WEIGHTS_FILE}).") from err
    except LocalEntryNotFoundError as err:  # offline (or unreachable) and not cached
        raise HubError(f"Style {repo_id!r} is not in the local cache and the Hub cannot be reached "
                       f"(offline or no network).") from err
    except HFValidationError as err:
        raise StyleNotFoundError(f"{repo_id!r} is not a valid Hub repo id.") from err
    except HfHubHTTPError as err:
        raise HubError(f"The Hub refused {repo_id!r}: {err}.") from err
    except OSError as err:  # connection errors are OSErrors (requests/httpx wrap them)
        raise HubError(f"Could not reach the Hub for {repo_id!r}: {err}.") from err
    return Path(config).parent


def _load_folder(folder: Path, device: torch.device) -> torch.nn.Module:
    config_file, weights_file = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not config_file.is_file() or not weights_file.is_file():
        raise StyleNotFoundError(f"{folder} has no fastnst style ({CONFIG_FILE} and {WEIGHTS_FILE}).")
    try:
        config = json.loads(config_file.read_text())
    except ValueError as err:
        raise WeightsMismatchError(f"{config_file} is not valid JSON: {err}.") from err
    network = load_weights(build_model(config), weights_file)
    return network.to(device).eval().requires_grad_(False)


def _resolve(name: str, variant: str, device: torch.device) -> Style:
    slug_dir = STYLES_DIR / name
    if "/" not in name and (slug_dir / METADATA_FILE).is_file():  # gallery slug
        meta = json.loads((slug_dir / METADATA_FILE).read_text())
        have = [v for v in ("full", "light") if (_variant_dir(slug_dir, v) / WEIGHTS_FILE).is_file()]
        chosen = _pick_variant(variant, device, have)
        if chosen in have:
            folder = _variant_dir(slug_dir, chosen)
            return Style(name, _load_folder(folder, device), meta, str(folder), chosen)
        if not meta.get("hub_repo"):
            raise StyleNotFoundError(f"Gallery style {name!r} has no embedded {chosen} network and no Hub repo.")
        folder = _download(meta["hub_repo"], meta.get("hub_revision"), "light" if chosen == "light" else None)
        return Style(name, _load_folder(folder, device), meta, f"{meta['hub_repo']}@{meta.get('hub_revision')}",
                     chosen)
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        meta_file = folder / METADATA_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {"title": folder.name}
        return Style(name, _load_folder(folder, device), meta, str(folder))
    repo = parse_repo_id(name)
    if repo is None:
        known = ", ".join(available_styles()) or "none embedded"
        raise StyleNotFoundError(f"Unknown style {name!r}. Gallery styles: {known}; or give a Hub repo id "
                                 f"(user/repo or user/repo@revision) or a local folder.")
    repo_id, revision = repo
    folder = _download(repo_id, revision)
    meta_file = folder / METADATA_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta.setdefault("title", repo_id.split("/")[1].replace("-", " ").title())
    return Style(name, _load_folder(folder, device), meta, f"{repo_id}@{revision or 'main'}")


_cache: "OrderedDict[tuple, Style]" = OrderedDict()
_lock = threading.Lock()


def load_style(name, *, device=None, variant: str = "auto") -> Style:
    """Load a style by gallery slug, Hub repo id (`user/repo[@revision]`) or folder; cached in an LRU.

    Raises StyleNotFoundError (unknown name, listing the gallery), HubError (Hub unreachable and not cached)
    or WeightsMismatchError (files that do not fit the network).
    """
    if isinstance(name, Style):
        return name
    name = str(name).strip()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    key = (name, variant, str(device))
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
