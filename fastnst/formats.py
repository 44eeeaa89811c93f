"""The on-disk formats, in one place: file names, `style.json`, `fastnst.json` and the recipe keys.

Only this module reads or writes these files; everything else asks it. A style folder (a gallery entry
`styles/<slug>/`, a Hub repo, what `save_pretrained` writes, a run's export) holds:

    config.json         the network: "arch" + its constructor's keyword arguments (`fastnst.models.build_model`)
    model.safetensors   its weights (fp16 in the gallery and on the Hub, fp32 in memory)
    style.json          what people see: title, artist, year, license, tile (the thumbnail's file); a gallery
                        entry adds order, hub_repo / hub_revision and, per network variant,
                        networks.<variant>.{recipe, metrics}
    light/              the gallery's light (CPU) network: config.json + model.safetensors
    tile.jpg            the gallery thumbnail: the network's own painting of examples/cat.jpg

A training run's export adds `style.jpg` (the painting), `samples/`, `fastnst.json` (recipe + metrics, machine
readable) and `README.md` (the model card). The run folder around an export is training's (training.run_folder).
"""
import json
import re
from pathlib import Path

from .errors import WeightsMismatchError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METADATA_FILE = "style.json"
INFO_FILE = "fastnst.json"
CARD_FILE = "README.md"
PAINTING_FILE = "style.jpg"
THUMBNAIL_FILE = "tile.jpg"  # the gallery thumbnail; style.json may name another ("tile")
THUMBNAIL_PHOTO = "examples/cat.jpg"  # what every thumbnail shows painted, from the checkout's root (CC0)
THUMBNAIL_SIDE = 256  # thumbnails' longer side
FP32_REPO_FILE = "model_fp32.safetensors"  # the fp32 copy next to the fp16 weights on the Hub
RENAMED_CONFIG_KEYS = {"num_residual_blocks": "residual_blocks"}  # config.json keys of earlier versions
VARIANTS = ("full", "light")  # the gallery's two network sizes; "light" lives in the LIGHT_DIR subfolder
LIGHT_DIR = "light"

# Recipe and metric keys read outside the trainer that writes them.
STYLE_IMAGE = "style_image"      # the painting's file name
DATA_FOLDER = "data_folder"      # the training photos' folder name
TITLE, ARTIST = "title", "artist"
LICENSE, STYLE_LICENSE = "license", "style_license"  # of the weights; of the painting
HELDOUT_PREFIX = "heldout_"      # metrics: heldout_{content,style,tv,total}, losses on photos kept out of training
WALL_TIME, SPEED, DEVICE = "wall_time_s", "images_per_s", "device"


def variant_subfolder(variant: str) -> str | None:
    """The subfolder of a gallery entry (or its Hub repo) holding its `variant` network; None: the top level."""
    return LIGHT_DIR if variant == "light" else None


def variant_dir(folder, variant: str) -> Path:
    return Path(folder) / (variant_subfolder(variant) or "")


def has_network(folder) -> bool:
    return (Path(folder) / CONFIG_FILE).is_file() and (Path(folder) / WEIGHTS_FILE).is_file()


def read_config(folder) -> dict:
    path = Path(folder) / CONFIG_FILE
    try:
        return current_config(json.loads(path.read_text()))
    except ValueError as err:
        raise WeightsMismatchError(f"{path} is not valid JSON: {err}.") from err


def current_config(config: dict) -> dict:
    """A config.json dict with the keys earlier versions wrote under other names renamed, so their files load."""
    config = dict(config)
    for old, new in RENAMED_CONFIG_KEYS.items():
        if old in config:
            config.setdefault(new, config.pop(old))
    return config


def read_metadata(folder) -> dict:
    """style.json of a folder, or {} when it has none."""
    path = Path(folder) / METADATA_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_metadata(folder, meta: dict) -> None:
    _write_json(Path(folder) / METADATA_FILE, meta)


def read_info(folder) -> dict:
    """fastnst.json of an exported run (recipe + metrics), or {} when it has none."""
    path = Path(folder) / INFO_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_info(folder, info: dict) -> None:
    _write_json(Path(folder) / INFO_FILE, info)


def gallery_record(meta: dict, variant: str) -> dict:
    """{"recipe": ..., "metrics": ...} of a gallery entry's `variant` network ({} when not recorded)."""
    return (meta.get("networks") or {}).get(variant) or {}


def set_gallery_record(meta: dict, variant: str, record: dict) -> None:
    meta.setdefault("networks", {})[variant] = record


def recipe_of(meta: dict, info: dict, variant: str) -> dict | None:
    """The training recipe of a style: its gallery record, else fastnst.json's (None when neither has one)."""
    for recipe in (gallery_record(meta, variant).get("recipe"), meta.get("recipe"), info.get("recipe")):
        if isinstance(recipe, dict):
            return recipe
    return None


def readable_title(name: str) -> str:
    """A title from a file or repo name: "starry_night-2.jpg" → "Starry Night 2"."""
    words = re.split(r"[\s_\-]+", Path(name).stem if "." in name else name)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or name


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
