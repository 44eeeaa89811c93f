"""Styles: the gallery in `styles/`, the Hugging Face Hub and local folders, behind one `load_style(name)`.

A style is named by
- a gallery slug (`starry-night`): `<gallery>/<slug>/style.json` (the gallery is `styles/` in a checkout, the
  copy inside an installed wheel otherwise, or `FASTNST_STYLES_DIR`) plus, once trained, the embedded fp16
  `model.safetensors` + `config.json` (and `light/` with the width-0.5 CPU network);
- a Hub repo id (`user/repo` or `user/repo@revision`), downloaded once into the Hugging Face cache;
- a local folder holding `config.json` + `model.safetensors` (what `save_pretrained` writes).

A *mix* of gallery styles — `{"starry-night": 0.6, "the-scream": 0.4}`, or the same spelled
`starry-night=0.6,the-scream=0.4` — is painted by the weighted mean of their networks' weights. Every gallery
network is fine-tuned from the gallery's family network (`styles/family`, Dumoulin et al. 2017), so they are
siblings that share a parent and their mean still paints; Hub and folder styles that are not fine-tuned from
that family cannot be mixed (one sentence says so).

Resolution order for a gallery slug: embedded copy → Hugging Face cache → `hf_hub_download` at the pinned
revision. With `HF_HUB_OFFLINE=1` or no network, cached and embedded styles still load. Loaded networks stay in
a small in-memory LRU per (style, variant, device).
"""
import copy
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .device import pick_device
from .hub import fetch_style, parse_repo_id
from .errors import InvalidOptionError, StyleNotFoundError
from .formats import (
    METADATA_FILE,
    THUMBNAIL_FILE,
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
FAMILY = "family"  # the gallery's family network, STYLES_DIR / FAMILY: not a gallery entry (no style.json)
SIBLINGS = 0.9     # convolutions' cosine with the family's above which a network can be mixed with its siblings


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
    """Metadata of every style in `styles/` (sorted by `order`, then slug), each with `slug` and `thumbnail_path`."""
    entries = []
    for folder in sorted(p.parent for p in STYLES_DIR.glob(f"*/{METADATA_FILE}")):
        meta = read_metadata(folder)
        meta.setdefault("slug", folder.name)
        thumbnail = folder / meta.get("tile", THUMBNAIL_FILE)
        meta["thumbnail_path"] = str(thumbnail) if thumbnail.is_file() else None
        meta["variants"] = [v for v in VARIANTS if has_network(variant_dir(folder, v))]
        entries.append(meta)
    return sorted(entries, key=lambda m: (m.get("order", 1000), m["slug"]))


def available_styles() -> list[str]:
    return [m["slug"] for m in gallery()]


def _pick_variant(variant: str, have: list[str]) -> str:
    """`auto` picks the light network on every device where the style has one: the gallery's light networks were
    retrained for the look (bench/look.py) and its full ones were not, so they lose to the peer on a GPU too."""
    if variant not in CHOICES:
        raise InvalidOptionError(f"variant must be one of {', '.join(CHOICES)}, not {variant!r}.")
    if variant != "auto":
        return variant
    return "light" if "light" in have else "full"


def _from_folder(name: str, folder: Path, device, meta: dict, source: str, variant: str = "full") -> Style:
    return Style(name, load_network(folder, device), meta, source, variant, read_info(folder))


def _resolve(name: str, variant: str, device: torch.device) -> Style:
    slug_dir = STYLES_DIR / name
    if "/" not in name and (slug_dir / METADATA_FILE).is_file():  # gallery slug
        meta = read_metadata(slug_dir)
        have = [v for v in VARIANTS if has_network(variant_dir(slug_dir, v))]
        chosen = _pick_variant(variant, have)
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


# --- mixes ------------------------------------------------------------------------------------------------------

def parse_style(spec):
    """A style name as given (str), or a mix: a dict {name: weight}, or the text `a=0.6,b=0.4` of one."""
    if isinstance(spec, dict):
        return spec
    text = str(spec).strip()
    if "=" not in text or Path(text).expanduser().exists():
        return text
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        try:
            mix[name.strip()] = float(weight)
        except ValueError:
            raise InvalidOptionError(f"A mix is written name=weight,name=weight (e.g. starry-night=0.6,"
                                     f"the-scream=0.4); {part!r} has no number for its weight.") from None
    return mix


def _weights(mix: dict) -> dict:
    """The mix's weights checked and made to sum to 1, in the order given."""
    if not mix:
        raise InvalidOptionError("A mix needs at least one style, e.g. {\"starry-night\": 0.6, \"the-scream\": 0.4}.")
    for name, weight in mix.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise InvalidOptionError(f"The weight of {name!r} in the mix must be a number of at least 0, "
                                     f"not {weight!r}.")
    total = sum(mix.values())
    if total <= 0:
        raise InvalidOptionError("The weights of a mix add up to 0; give at least one style a weight above 0.")
    return {str(name).strip(): weight / total for name, weight in mix.items() if weight > 0}


def _sibling(parent: dict, network) -> bool:
    """Whether `network` was fine-tuned from the family (`parent`: the state of one of its rows): that shape, and
    convolutions whose cosine with the family's is near 1 (0.994 for the look campaign's; about 0 for unrelated)."""
    own = network.state_dict()
    if own.keys() != parent.keys() or any(own[k].shape != v.shape for k, v in parent.items()):
        return False
    convs = [k for k, v in parent.items() if v.dim() == 4]
    flat = [torch.cat([state[k].float().flatten() for k in convs]) for state in (own, parent)]
    return float(torch.nn.functional.cosine_similarity(*flat, dim=0)) >= SIBLINGS


def _mix(weights: dict, device: torch.device) -> Style:
    """The weighted mean of every weight of the styles' networks: for the family's rows this is Dumoulin et al.'s
    blend of scale/shift; for networks fine-tuned whole from the family it interpolates siblings that share a
    parent, which stays on the painting path because fine-tuning moved the convolutions only a little."""
    folder = STYLES_DIR / FAMILY
    if not has_network(folder):
        raise InvalidOptionError(f"Mixing styles needs the gallery's family network, which is not in {STYLES_DIR}.")
    parent = load_network(folder, "cpu").style_network(0).state_dict()
    styles = [load_style(name, device="cpu") for name in weights]  # on a CPU: the light network where there is one
    for style in styles:
        if not _sibling(parent, style.network):
            can = [n for n in available_styles() if _sibling(parent, load_style(n, device="cpu").network)]
            raise InvalidOptionError(f"{style.title} is not fine-tuned from the gallery's family network, so it "
                                     f"cannot be mixed; these styles can: {', '.join(can) or 'none'}.")
    states = [style.network.state_dict() for style in styles]
    network = copy.deepcopy(styles[0].network)
    network.load_state_dict({key: sum(w * state[key].float() for w, state in zip(weights.values(), states))
                             for key in states[0]})
    titles = [f"{style.title} {weight:.0%}" for style, weight in zip(styles, weights.values())]
    label = ",".join(f"{name}={weight:.3g}" for name, weight in weights.items())
    return Style(label, network.eval().to(device), {"title": " · ".join(titles)}, str(folder), "light")


_cache: "OrderedDict[tuple, Style]" = OrderedDict()
_lock = threading.Lock()


def load_style(name, *, device=None, variant: str = "auto", cache: bool = True) -> Style:
    """Load a style by gallery slug, Hub repo id (`user/repo[@revision]`) or folder, or a mix of gallery styles
    (`{"starry-night": 0.6, "the-scream": 0.4}` or `"starry-night=0.6,the-scream=0.4"`); cached in an LRU unless
    `cache` is False (a folder whose network changes, such as a training run's live preview).

    Raises StyleNotFoundError (unknown name, listing the gallery), HubError (Hub unreachable and not cached)
    or WeightsMismatchError (files that do not fit the network).
    """
    if isinstance(name, Style):
        return name
    device = pick_device(device)
    spec = parse_style(name)
    if isinstance(spec, dict):
        weights = _weights(spec)
        if len(weights) == 1:  # all the weight on one style: that style as it is
            return load_style(next(iter(weights)), device=device, variant=variant, cache=cache)
        name, resolve = ",".join(f"{k}={v:.6g}" for k, v in weights.items()), lambda: _mix(weights, device)
    else:
        name, resolve = spec, lambda: _resolve(spec, variant, device)
    key = (name, variant, str(device))
    if not cache:
        return resolve()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    style = resolve()
    with _lock:
        _cache[key] = style
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return style


def clear_cache() -> None:
    with _lock:
        _cache.clear()
