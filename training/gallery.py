"""Add a trained run to the embedded gallery: `styles/<slug>/` (or `styles/<slug>/light/` for a light network).

    python -m training.gallery runs/starry-night --slug starry-night [--light]

Copies the run's fp16 export (model.safetensors + config.json), writes `style.json` from the catalog below plus
the run's recipe and final metrics, lists the style's Hub repo under `models:` in the Space's README front
matter, and paints `tile.jpg`: the network itself applied to `examples/cat.jpg`
(a CC0 photo). The painting and the training photos are never copied: they may not be redistributed.
"""
import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STYLES = ROOT / "styles"
README = ROOT / "README.md"  # the Space card: its `models:` names every gallery style's Hub repo
TILE_PHOTO = ROOT / "examples" / "cat.jpg"
TILE_SIDE = 256
HUB_OWNER = "fastnst"  # where the Space looks for each style when online (pushed separately; nothing here pushes)

# slug: (title, artist, year, source file in ../shared/data/styles). All public domain (see its SOURCES.md).
CATALOG = {
    "starry-night": ("The Starry Night", "Vincent van Gogh", "1889", "starry_night.jpg"),
    "great-wave": ("The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831", "great_wave_off_kanagawa.jpg"),
    "the-scream": ("The Scream", "Edvard Munch", "1893", "the_scream.jpg"),
    "composition-vii": ("Composition VII", "Wassily Kandinsky", "1913", "composition_vii.jpg"),
    "shipwreck": ("The Shipwreck", "J. M. W. Turner", "c. 1805", "turner_shipwreck.jpg"),
    "water-lilies": ("Water Lilies", "Claude Monet", "1919", "monet_water_lilies_1919.jpg"),
    "san-giorgio-maggiore": ("San Giorgio Maggiore at Dusk", "Claude Monet", "1908–1912",
                             "monet_san_giorgio_maggiore_at_dusk.jpg"),
    "wheat-field": ("Wheat Field with Cypresses", "Vincent van Gogh", "1889", "wheat_field_with_cypresses.jpg"),
    "te-fare": ("Te Fare (La Maison)", "Paul Gauguin", "1892", "gauguin_te_fare.jpg"),
    "dance-foyer": ("The Dance Foyer at the Opera", "Edgar Degas", "1872", "degas_dance_foyer_at_the_opera.jpg"),
    "in-bed": ("In Bed", "Henri de Toulouse-Lautrec", "1893", "toulouse_lautrec_in_bed.jpg"),
    "bedroom-in-arles": ("Bedroom in Arles", "Vincent van Gogh", "1888–1889", "van_gogh_bedroom_in_arles.jpg"),
}


def add_to_gallery(run_dir: Path, slug: str, *, light: bool, order: int | None = None) -> Path:
    from fastnst.inference import stylize
    from fastnst.styles import Style, _load_folder

    title, artist, year, source = CATALOG[slug]
    export = run_dir / "export-fp16"
    info = json.loads((export / "fastnst.json").read_text())
    folder = STYLES / slug
    target = folder / "light" if light else folder
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copyfile(export / name, target / name)

    meta_file = folder / "style.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta.update({
        "slug": slug, "title": title, "artist": artist, "year": year,
        "license": "Public domain (artwork); MIT (network weights)",
        "hub_repo": f"{HUB_OWNER}/{slug}", "hub_revision": "main",
        "max_side": 1024 if light else 3840, "tile": "tile.jpg",
    })
    if order is not None:
        meta["order"] = order
    recipe = {k: v for k, v in info["recipe"].items() if k not in ("loss_weights",)}
    meta.setdefault("networks", {})["light" if light else "full"] = {
        "recipe": recipe, "metrics": info.get("metrics", {}), "trained_on": f"{recipe.get('images')} photos "
        "(BSDS500, Urban100, Sun-Hays80, McMaster; no COCO available)"}
    meta_file.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")

    list_in_space_card(meta["hub_repo"])

    network = _load_folder(target, device="cpu")
    tile = stylize(TILE_PHOTO, Style(slug, network, meta), max_side=TILE_SIDE, device="cpu")
    tile.save(folder / "tile.jpg", quality=90)
    return folder


def list_in_space_card(repo_id: str) -> None:
    from huggingface_hub.repocard import metadata_load, metadata_save
    meta = metadata_load(README) or {}
    if repo_id not in meta.setdefault("models", []):
        meta["models"].append(repo_id)
        metadata_save(README, meta)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--slug", required=True, choices=sorted(CATALOG))
    p.add_argument("--light", action="store_true", help="the run trained the light (width-0.5) CPU network")
    p.add_argument("--order", type=int, default=None, help="position in the gallery")
    args = p.parse_args(argv)
    print(add_to_gallery(args.run_dir, args.slug, light=args.light, order=args.order))


if __name__ == "__main__":
    main()
