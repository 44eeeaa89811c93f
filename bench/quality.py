"""Quality reference: our feed-forward networks against Gatys et al.'s optimisation, under the training loss.

    python -m bench.quality                                   # every gallery style, the 4 CC0 photos, 256 + 512 px
    python -m bench.quality --iters 0 --sizes 256                 # the texture gate only (no optimisation): fast
    python -m bench.quality --styles starry-night --device cpu --sizes 256 --num-photos 2 --iters 50,100
    python -m bench.quality --styles me/my-style --json q.json --contact-sheet sheet.png

For each style × photo × size it reports the content, style and total loss of the network's output, and of
the photo optimised directly (Gatys, Ecker, Bethge 2016) after each of `--iters` iterations, both under EXACTLY
the style's training loss. Two numbers per style:
- texture = style loss of the output / style loss of the photo itself (iteration 0), median over photos, the
  worst size counting. A network above 0.35 is a tint, whatever its total loss: the balance is too content-heavy.
- ratio = network total / Gatys total after the last of `--iters` (default 100); goal ≤ 1.0 (Johnson et al.
  2016 found their networks matching roughly 50–100 L-BFGS iterations). It only compares networks trained at
  the same balance: a lighter style weight lowers it without painting more.
At the largest size it also reports the tiling seam error: the mean absolute difference, in 8-bit levels,
between the picture painted in `--tile`-px tiles and painted whole.

Choices, and why:
- The loss is rebuilt from the style's recipe (in style.json, per network variant, else `recipe` in the
  fastnst.json that `python -m training` exports) by `training.recipe.Recipe.perceptual_loss`, the trainer's own
  construction, the painting loaded by the trainer's own loader at `style_size`. Missing recipe → the style is
  skipped, never guessed. Losses are computed in fp32 (the trainer's bf16 autocast is a speed device, not the
  loss).
- Photos are resized (Lanczos, up or down) so their LONGER side equals the size: the size then bounds the
  pixel count, like the app's max side. Content targets come from that resized photo.
- The network's output is what users get (clamped to [0, 1], `--mode fp32` eager by default so CPU and GPU
  numbers agree; `--mode compile` measures the shipped GPU path).
- Gatys optimises an unconstrained tensor z with image = sigmoid(z), initialised from the photo (squeezed into
  [½, 254½]/255 so the start rounds to the photo): the loss is smooth in z, every iterate is a valid image,
  and our networks end in the same sigmoid. (`--param clamp` optimises the pixels with image = clamp(z, 0, 1).)
  L-BFGS uses a strong-Wolfe line search, so the loss never goes up; an "iteration" is one L-BFGS iteration
  (usually 1–2 loss evaluations), as in Gatys' and Johnson's comparisons.
"""
import argparse
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.gatys import LR, earlier_gatys, gatys_once, terms_of
from bench.report import (
    CELL,
    GOAL_RATIO,
    TEXTURE_GATE,
    contact_sheet,
    log,
    print_summary,
    print_table,
    ratio_of,
    resize_long_side,
    summarise,
)
from fastnst import pick_device
from fastnst.errors import FastNSTError, LossNetworkUnavailableError, StyleNotFoundError
from fastnst.formats import (
    METADATA_FILE,
    PAINTING_FILE,
    STYLE_IMAGE,
    gallery_record,
    read_metadata,
    set_gallery_record,
    write_metadata,
)
from fastnst.imageio import image_to_tensor, load_image, tensor_to_image
from fastnst.inference import frame_width, stylize_tensor
from fastnst.losses import LOSS_LAYERS, PerceptualLoss
from fastnst.styles import STYLES_DIR, gallery, load_style
from fastnst.tiling import BLEND, tile_boxes
from training.data import heldout_photos, min_side
from training.paintings import load_painting  # the trainer's loader, same resizing
from training.recipe import Recipe, shipped_recipe

REPO = Path(__file__).resolve().parents[1]

SHARED = REPO.parent / "shared" / "data"
PHOTOS = REPO / "examples"  # CC0 photos no network was trained on
WEIGHTS_DIR = SHARED / "weights"
PAINTINGS_DIR = SHARED / "styles"
SIZES = "256,512"
ITERS = "100"
NUM_PHOTOS = 4
TILE = 256                  # seam check at the largest size: 1024 px gives 5×5 tiles
CONTENT = SHARED / "content"  # the photos the gallery trained on; its runs held 16 of them out
_GALLERY = Recipe.from_json(shipped_recipe("gallery"))  # its runs' held-out photos are the photo sets
HELDOUT, MIN_SIDE = _GALLERY.heldout, min_side(_GALLERY.crop)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _ints(text: str, minimum: int = 1) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise FastNSTError(f"Expected comma-separated whole numbers, not {text!r}.") from None
    if not values or min(values) < minimum:
        raise FastNSTError(f"Expected whole numbers of at least {minimum}, not {text!r}.")
    return values


# ------------------------------------------------------------------------------------------- inputs
def list_photos(specs: str, count: int) -> list[Path]:
    """Files and folders (comma-separated); folders in natural order (2.jpg before 10.jpg); the first `count`."""
    natural = lambda p: [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]  # noqa: E731
    photos = []
    for spec in filter(None, (s.strip() for s in specs.split(","))):
        path = Path(spec).expanduser()
        if path.is_dir():
            photos += sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural)
        elif path.is_file():
            photos.append(path)
        else:
            raise FastNSTError(f"There is no photo or folder at {path}.")
    if not photos:
        raise FastNSTError(f"No photos found in {specs}.")
    return photos[:count]


def photo_set(name: str, content: Path = CONTENT) -> list[Path]:
    """Choose on one set of photos, confirm on another. A: every other one of the 16 photos the gallery's runs held
    out of training (`training.data.heldout_photos`); B: the other 8 and the 4 CC0 photos in examples/. No network
    of the gallery saw either set."""
    held = heldout_photos(content, HELDOUT, MIN_SIDE)
    if len(held) < HELDOUT:
        raise FastNSTError(f"Photo set {name} needs the training photos in {content}, which has only {len(held)}.")
    if name == "A":
        return held[0::2]
    return held[1::2] + list_photos(str(PHOTOS), NUM_PHOTOS)


def find_recipe(style, name: str) -> dict:
    """The training recipe the style's loader found (gallery style.json, else the export's fastnst.json)."""
    if style.recipe is None:
        raise StyleNotFoundError(f"Style {name!r} has no training recipe (\"recipe\" in style.json or fastnst.json), "
                                 f"so its training loss cannot be rebuilt.")
    return style.recipe


def resolve_loss_weights(recipe: dict, override, weights_dir: Path):
    """--loss-weights wins; else the recipe's file name, as given or looked up in `weights_dir`."""
    if override:
        return override
    value = recipe.get("loss_weights") or recipe.get("loss_network")
    if not value or value in ("imagenet", "random"):
        return value or None  # None: $FASTNST_VGG_WEIGHTS or torchvision's ImageNet VGG, as the trainer did
    for path in (Path(value).expanduser(), weights_dir / Path(value).name):
        if path.is_file():
            return str(path)
    raise LossNetworkUnavailableError(f"The loss network {value} the style was trained with is not in "
                                      f"{weights_dir}; pass --weights-dir or --loss-weights PATH.")


def find_painting(style, recipe: dict, paintings_dir: Path) -> Path:
    """The painting trained on: `paintings_dir`/<recipe style_image>, else the style folder's style.jpg copy."""
    name = recipe.get(STYLE_IMAGE)
    candidates = [paintings_dir / Path(name).name] if name else []
    candidates += [Path(style.source) / PAINTING_FILE, Path(style.source).parent / PAINTING_FILE]
    for path in candidates:
        if path.is_file():
            if path.name == PAINTING_FILE and name:
                log(f"  note: {name} is not in {paintings_dir}; using the exported copy {path} (JPEG, ≤1024 px)")
            return path
    raise StyleNotFoundError(f"The painting {name or '(unnamed)'} of style {style.name!r} was not found in "
                             f"{paintings_dir}; pass --paintings-dir.")


_vggs: dict = {}


def build_loss(recipe: dict, weights, painting: Path, device) -> PerceptualLoss:
    """The trainer's loss, built by the recipe as the trainer builds it (layers, weights, painting size); one loss
    network per (arch, weights) is kept for all styles. Weights the record leaves out (None or 0) fit the loss
    network's scale, as in training."""
    r = Recipe.from_record(recipe)
    if r.loss_arch not in LOSS_LAYERS:
        raise LossNetworkUnavailableError(f"The recipe's loss network {r.loss_arch!r} is not one of "
                                          f"{sorted(LOSS_LAYERS)}.")
    r.loss_weights, r.content_weight, r.style_weight = weights, r.content_weight or None, r.style_weight or None
    key = (r.loss_arch, weights)
    if key not in _vggs:
        _vggs[key] = r.perceptual_loss(device).vgg
    loss = r.perceptual_loss(device, vgg=_vggs[key])
    loss.set_style(load_painting(painting, r.style_size).to(device))
    return loss


# --------------------------------------------------------------------------------------------- measuring


@torch.no_grad()
def seam_error(style, x, tile: int, untiled, device) -> dict:
    """Tiled vs untiled output, in 8-bit levels (mean and max absolute difference)."""
    diff = (stylize_tensor(x, style, tile=tile, device=device, mode="fp32") - untiled.clamp(0, 1)).abs() * 255
    h, w = (side + 2 * frame_width(*x.shape[-2:]) for side in x.shape[-2:])  # the framed picture
    tiles = len(list(tile_boxes(h, w, max(4 * BLEND, tile // 4 * 4))))  # as tiled_forward cuts it
    if tiles == 1:
        log(f"    note: one {tile} px tile covers {x.shape[-1]}×{x.shape[-2]}; the seam check is trivial")
    return {"mad": float(diff.mean()), "max": float(diff.max()), "tiles": tiles}


# ------------------------------------------------------------------------------------------------ output


# -------------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", default=None, help="comma-separated slugs / Hub ids / folders (default: gallery)")
    p.add_argument("--photos", default=str(PHOTOS), help="comma-separated photos or folders (default: %(default)s)")
    p.add_argument("--num-photos", type=int, default=NUM_PHOTOS)
    p.add_argument("--photo-set", choices=("A", "B"), default=None, help="instead of --photos: A (8 held-out "
                   "training photos: choose a balance on these) or B (8 others + the 4 CC0 photos: confirm on these)")
    p.add_argument("--sizes", default=SIZES, help="longer side(s) in pixels (default: %(default)s)")
    p.add_argument("--iters", default=ITERS, help="Gatys iterations to report (default: %(default)s)")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    p.add_argument("--gatys-from", default=None, metavar="EARLIER.json", help="take the Gatys numbers from an "
                   "earlier run's --json where the style, photo, size and loss are the same (e.g. the full network "
                   "of a style whose light one was measured)")
    p.add_argument("--lr", type=float, default=None, help=f"default: {LR}")
    p.add_argument("--param", choices=("sigmoid", "clamp"), default="sigmoid", help="pixels = sigmoid(z) or clamp(z)")
    p.add_argument("--variant", choices=("auto", "full", "light"), default="auto",
                   help="gallery network: auto = light on a CPU, full on a GPU, whichever is shipped")
    p.add_argument("--mode", choices=("fp32", "bf16", "compile"), default="fp32", help="network execution mode")
    p.add_argument("--loss-weights", default=None, help="VGG weights PATH | imagenet | random (default: the recipe's)")
    p.add_argument("--weights-dir", default=str(WEIGHTS_DIR), help="where recipe weight file names are looked up")
    p.add_argument("--paintings-dir", default=str(PAINTINGS_DIR), help="where the recipe's style_image is looked up")
    p.add_argument("--tile", type=int, default=TILE, help="tile size for the seam check at the largest size (0: no "
                   "seam check, for a gate of many styles)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, metavar="OUT", help="save every number here")
    p.add_argument("--contact-sheet", default=None, metavar="OUT.png", help="photos × styles grid of our outputs")
    p.add_argument("--cell", type=int, default=CELL, help="contact sheet cell size in pixels")
    p.add_argument("--record", action="store_true", help="write each gallery style's numbers into its style.json")
    return p.parse_args(argv)


def run(args) -> dict:
    device = pick_device(args.device)
    sizes, iters = sorted(_ints(args.sizes)), sorted(_ints(args.iters, minimum=0))
    names = [s.strip() for s in args.styles.split(",") if s.strip()] if args.styles else \
        [m["slug"] for m in gallery()]
    if not names:
        raise FastNSTError("The gallery has no styles; pass --styles.")
    photo_paths = photo_set(args.photo_set) if args.photo_set else list_photos(args.photos, args.num_photos)
    photos = {p.name: load_image(p) for p in photo_paths}
    sheet_size = min(sizes, key=lambda s: abs(s - CELL))
    rows, errors, sheet_outputs, titles = [], [], {}, []
    reusable = earlier_gatys(args.gatys_from)
    photo_features = {}
    for name in names:
        folder = Path(name).expanduser().is_dir()
        label = Path(name).name if folder else name
        try:
            style = load_style(name, device=device, variant=args.variant)
            label = style.metadata.get("title", label) if folder else label  # "export" says nothing
            recipe = find_recipe(style, name)
            weights = resolve_loss_weights(recipe, args.loss_weights, Path(args.weights_dir))
            painting = find_painting(style, recipe, Path(args.paintings_dir))
            log(f"{label}: {style.variant} network, loss {recipe.get('loss_arch', 'vgg16')} ({weights or 'default'}), "
                f"painting {painting.name}")
            loss_fn = build_loss(recipe, weights, painting, device)
        except FastNSTError as err:
            log(f"{label}: skipped: {err}")
            errors.append({"style": label, "error": str(err)})
            titles.append(label)
            continue
        titles.append(label)
        texture_only = bool(recipe.get("texture_only"))
        for photo_name, image in photos.items():
            for size in sizes:
                x = image_to_tensor(resize_long_side(image, size)).to(device).contiguous()
                log(f"  {photo_name} @ {size} ({x.shape[-1]}×{x.shape[-2]})")
                # the photo's VGG features are the same for every style of one loss network: computed once
                # (kept for the whole run: ~0.4 GB per 1024-px photo with VGG19's five style layers)
                key = (id(loss_fn.vgg), photo_name, size)
                if key not in photo_features:
                    with torch.no_grad():
                        photo_features[key] = loss_fn.vgg(x)
                feats = photo_features[key]
                targets = None if texture_only else {k: feats[k] for k in loss_fn.content_layers}
                t0 = time.perf_counter()
                untiled = stylize_tensor(x, style, tile=0, device=device, mode="fp32")
                y = untiled if args.mode == "fp32" else stylize_tensor(x, style, tile=0, device=device, mode=args.mode)
                net_seconds = time.perf_counter() - t0
                net = terms_of(loss_fn, y.clone(), targets)
                if iters == [0]:  # the texture gate alone: the photo's own terms from its cached features
                    g = {0: terms_of(loss_fn, x, targets, features=feats)}
                else:
                    g = gatys_once(loss_fn, x, targets, iters, reusable.get((label, photo_name, size)),
                                   optimizer=args.optimizer, lr=args.lr, param=args.param)
                seam = None
                if size == sizes[-1] and args.tile and style.network.__class__.__name__ != "TextureNet":
                    seam = seam_error(style, x, args.tile, untiled, device)
                if size == sheet_size:
                    sheet_outputs[photo_name, label] = tensor_to_image(y[0].cpu())
                rows.append({"style": label, "variant": style.variant, "photo": photo_name, "size": size,
                             "width": x.shape[-1], "height": x.shape[-2], "net": net,
                             "net_seconds": round(net_seconds, 3),
                             "gatys": {str(k): v for k, v in g.items()},
                             "ratio": ratio_of(net["total"], g[iters[-1]]["total"]) if iters[-1] else None,
                             "texture": ratio_of(net["style"], g[0]["style"]),
                             "seam_mad": seam and seam["mad"], "seam_max": seam and seam["max"],
                             "seam_tile": args.tile if seam else None, "seam_tiles": seam and seam["tiles"]})
    result = {"config": {**vars(args), "device": str(device), "sizes": sizes, "iters": iters,
                         "photos": [str(p) for p in photo_paths], "styles": names, "goal_ratio": GOAL_RATIO},
              "rows": rows, "summary": summarise(rows), "errors": errors}
    if args.contact_sheet:
        resized = {k: resize_long_side(v, sheet_size) for k, v in photos.items()}
        contact_sheet(resized, sheet_outputs, titles, Path(args.contact_sheet), cell=args.cell)
        log(f"contact sheet: {args.contact_sheet}")
    return result


def record_in_gallery(result: dict) -> list[str]:
    """Each gallery style's numbers into its style.json, under networks.<variant>.quality.<size> (with
    --photo-set, quality.set_<A|B>.<size>): the photos, the texture median and the geometric-mean ratio to
    Gatys (sizes measured by earlier runs are kept)."""
    recorded, iters = [], result["config"]["iters"][-1]
    for label in result["summary"]:
        folder = STYLES_DIR / label
        if not (folder / METADATA_FILE).is_file():
            continue  # a folder or Hub style: nothing of ours to write into
        rows = [r for r in result["rows"] if r["style"] == label]
        meta = read_metadata(folder)
        variant = rows[0].get("variant") or next(iter(meta.get("networks") or {}), "full")
        record = gallery_record(meta, variant)
        quality = record.setdefault("quality", {"texture_gate": TEXTURE_GATE, "goal_ratio": GOAL_RATIO})
        if result["config"].get("photo_set"):  # the numbers on a photo set live apart from the CC0 photos'
            quality = quality.setdefault(f"set_{result['config']['photo_set']}", {})
        for size, texture in result["summary"][label]["texture_by_size"].items():
            at = [r for r in rows if r["size"] == size]
            ratios = [r["ratio"] for r in at if r["ratio"] is not None]
            entry = quality.setdefault(f"{size}px", {})  # a texture-only run keeps an earlier ratio
            entry.update(photos=sorted(r["photo"] for r in at), texture_median=round(texture, 4))
            if ratios:
                entry[f"ratio_to_gatys{iters}"] = round(
                    math.exp(statistics.fmean(math.log(x) for x in ratios)), 3)
        set_gallery_record(meta, variant, record)
        write_metadata(folder, meta)
        recorded.append(label)
    return recorded


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(args.threads or threads)
        result = run(args)
    except FastNSTError as err:
        log(f"error: {err}")
        return 2
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests)
    iters = result["config"]["iters"]
    print_table(result["rows"], iters)
    print_summary(result["summary"], iters[-1])
    for e in result["errors"]:
        print(f"skipped {e['style']}: {e['error']}")
    if args.record:
        log(f"recorded in style.json: {', '.join(record_in_gallery(result)) or 'no gallery styles'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
        log(f"numbers: {args.json}")
    return 1 if result["errors"] or not result["rows"] else 0


if __name__ == "__main__":
    sys.exit(main())
