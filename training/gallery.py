"""Add a trained run to the embedded gallery: `styles/<slug>/` (or `styles/<slug>/light/` for a light network).

    python -m training.gallery runs/starry-night --slug starry-night [--light]
    python -m training.gallery runs/new --slug my-style --title "My Style" --artist "Me" --year 2026   (a new entry)
    python -m training.gallery --remove my-style                                                     (out again)

Copies the run's fp16 export (model.safetensors + config.json) and updates `styles/<slug>/style.json`: the
title, artist and year it already holds (or the options, for a new entry), the Hub repo, and the run's recipe
and final metrics under `networks.<variant>`. Lists the style's Hub repo under `models:` in the Space's README
front matter and paints the thumbnail: `examples/cat.jpg` (a CC0 photo) painted by the entry's light network when it
has one — what a CPU Space paints, whichever network was exported last — else by the full one. The painting
and the training photos are never copied: they may not be redistributed.
"""
import argparse
import shutil
from pathlib import Path

from huggingface_hub.repocard import metadata_load, metadata_save

from fastnst.formats import (
    CONFIG_FILE,
    THUMBNAIL_FILE,
    THUMBNAIL_PHOTO,
    THUMBNAIL_SIDE,
    WEIGHTS_FILE,
    gallery_record,
    has_network,
    read_info,
    read_metadata,
    set_gallery_record,
    variant_dir,
    write_metadata,
)
from fastnst.inference import stylize
from fastnst.models import load_network
from fastnst.styles import STYLES_DIR, Style

from .run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"  # the Space card: its `models:` names every gallery style's Hub repo
HUB_OWNER = "fastnst"  # where the Space looks for each style when online (pushed separately; nothing here pushes)
LICENSE = "Public domain (artwork); MIT (network weights)"
TRAINED_ON = "{images} photos (BSDS500, Urban100, Sun-Hays80, McMaster; no COCO available)"


def add_to_gallery(run_dir: Path, slug: str, *, light: bool, order: int | None = None, painting: str = "",
                   **names) -> Path:
    """Copy the run's network (a family's: that of `painting`) into the gallery entry `slug`; `names` (title,
    artist, year) update its style.json."""
    variant = "light" if light else "full"
    export = RunFolder(run_dir).export(painting)
    info = read_info(export)
    folder = STYLES_DIR / slug
    target = variant_dir(folder, variant)
    target.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        shutil.copyfile(export / name, target / name)

    meta = read_metadata(folder)
    meta.update({k: v for k, v in names.items() if v is not None})
    meta.setdefault("title", info.get("name") or slug)
    meta.update({"slug": slug, "license": LICENSE, "hub_repo": f"{HUB_OWNER}/{slug}", "hub_revision": "main",
                 "tile": THUMBNAIL_FILE})
    meta.pop("max_side", None)  # older entries': the output size is the caller's (stylize's max_side)
    if order is not None:
        meta["order"] = order
    recipe = {k: v for k, v in info["recipe"].items() if k != "loss_weights"}  # a local path says nothing
    metrics = info.get("metrics", {})
    # the runs behind a network, oldest first: a continued network (`--from styles/family`) keeps its history, and
    # installing a run again rewrites its history from that run on instead of recording it twice
    run = f"{Path(run_dir).name} (--from {recipe.get('from_network')})" if recipe.get("from_network") \
        else Path(run_dir).name
    history = gallery_record(meta, variant).get("lineage", [])
    history = history[:next((i for i, entry in enumerate(history) if entry["run"] == run), len(history))]
    lineage = [*history, {
        "run": run, "paintings": len(recipe.get("model", {}).get("styles") or []) or 1,
        "image_steps": metrics.get("images_seen"), "wall_time_s": metrics.get("wall_time_s"),
        "style_weight": recipe.get("style_weight")}]
    set_gallery_record(meta, variant, {"recipe": recipe, "metrics": metrics, "lineage": lineage,
                                       "trained_on": TRAINED_ON.format(images=recipe.get("images"))})
    write_metadata(folder, meta)
    list_in_space_card(meta["hub_repo"])

    paint_thumbnail(folder, meta)
    return folder


def paint_thumbnail(folder: Path, meta: dict) -> None:
    """`tile.jpg`: the CC0 cat painted by the light network if the entry has one (what a CPU paints), else the full."""
    light = variant_dir(folder, "light")
    network = load_network(light if has_network(light) else variant_dir(folder, "full"))
    thumbnail = stylize(ROOT / THUMBNAIL_PHOTO, Style(meta["slug"], network, meta), max_side=THUMBNAIL_SIDE,
                        device="cpu")
    thumbnail.save(folder / THUMBNAIL_FILE, quality=90)


def list_in_space_card(repo_id: str) -> None:
    meta = metadata_load(README) or {}
    if repo_id not in meta.setdefault("models", []):
        meta["models"].append(repo_id)
        metadata_save(README, meta)


def remove_from_gallery(slug: str) -> None:
    """Take the entry `slug` out of the gallery: its folder and its Hub repo in the Space card's `models:`."""
    folder = STYLES_DIR / slug
    if not (folder / "style.json").is_file():
        raise SystemExit(f"{slug!r} is not in the gallery ({STYLES_DIR}).")
    meta = metadata_load(README) or {}
    repo_id = read_metadata(folder).get("hub_repo")
    if repo_id in meta.get("models", []):
        meta["models"].remove(repo_id)
        metadata_save(README, meta)
    shutil.rmtree(folder)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, nargs="?", help="the trained run to add")
    p.add_argument("--remove", metavar="SLUG", help="take this entry out of the gallery instead")
    p.add_argument("--slug", help="the gallery entry: styles/<slug>/")
    p.add_argument("--light", action="store_true", help="the run trained the light (width-0.5) CPU network")
    p.add_argument("--order", type=int, default=None, help="position in the gallery")
    p.add_argument("--painting", default="", help="a family run's painting (its export subfolder)")
    for name in ("title", "artist", "year"):
        p.add_argument(f"--{name}", default=None, help=f"the painting's {name} (default: what style.json holds)")
    args = p.parse_args(argv)
    if args.remove:
        return remove_from_gallery(args.remove)
    if not (args.run_dir and args.slug):
        p.error("give a run folder and --slug (or --remove SLUG)")
    print(add_to_gallery(args.run_dir, args.slug, light=args.light, order=args.order, painting=args.painting,
                         title=args.title, artist=args.artist, year=args.year))


if __name__ == "__main__":
    main()
