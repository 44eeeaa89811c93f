"""Brush size: does a larger brush paint larger strokes, and does the texture gate still hold?

    python -m bench.brush                                       # 6 gallery styles, the 4 CC0 photos, at 1024 px
    python -m bench.brush --styles starry-night,the-scream --brushes 1,2,4 --photo-set B
    python -m bench.brush --styles all --json brush.json

For each style × brush it paints each photo at `--size` px (longer side) with `fastnst.stylize_tensor(...,
brush=B)` and prints, median over the photos:
- matched = the painting size, of SIZES (128–1024 px), whose Grams the output's strokes match best. Goal: it grows
  steadily with the brush.
- texture = style loss of the output / style loss of the photo under the style's training loss, as in
  bench/quality.py (gate ≤ 0.35), with the painting scaled by the brush (at brush 2 the strokes are meant to be
  those of the painting at twice its training size, so that is the texture they are held to).
- content = content loss of the output / that of brush 1: how much of the photo's structure the broader strokes
  give up (faces: look at --contact-sheet).

How "matched" is measured, and why this way. Comparing the output's Grams with the painting resized to each size
does not measure stroke size: our painting files are ≤ 1024 px, so at 768–1024 px they show canvas and paint
grain a 1024-px output enlarged from a smaller painting lacks, and resampled outputs come out "matching" small
paintings the more they are enlarged (measured: the painting at 256 px enlarged to 1024 px matched 256, not 1024).
Strokes scale with the picture, so "the output matches the painting at s" is the same statement as "the output
shrunk by REFERENCE/s matches the painting at REFERENCE" — and shrinking (antialiased) never blurs, so that is
what is compared: one reference painting at the smallest size, the output shrunk to each scale. Error per style
layer = ‖G − G_ref‖² / ‖G_ref‖², averaged over the training loss's style layers. The first rows are the meter's own
check: the painting at s tiled to 1024 px must read s, and the painting at s enlarged to 1024 px (strokes the size
of the painting at 1024, blurred) must read 1024.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from bench.gatys import terms_of
from bench.quality import (
    PAINTINGS_DIR,
    PHOTOS,
    WEIGHTS_DIR,
    build_loss,
    find_painting,
    find_recipe,
    list_photos,
    photo_set,
    resolve_loss_weights,
)
from bench.report import TEXTURE_GATE, log, resize_long_side
from fastnst import pick_device
from fastnst.errors import FastNSTError
from fastnst.imageio import image_to_tensor, load_image, tensor_to_image
from fastnst.inference import resample, stylize_tensor
from fastnst.losses import gram_matrix
from fastnst.styles import gallery, load_style
from training.paintings import load_painting

SIZES = (128, 192, 256, 384, 512, 768, 1024)  # painting sizes the strokes are matched against
REFERENCE = SIZES[0]  # the one painting size compared with: every other size is the output shrunk
STYLES = "starry-night,the-scream,great-wave,water-lilies,grande-jatte,the-kiss"
BRUSHES = "0.5,1,1.5,2,3,4"
SIZE = 1024


def shrink(x: torch.Tensor, factor: float) -> torch.Tensor:
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


class StrokeMeter:
    """The painting size whose strokes a picture matches (see the module's docstring)."""

    def __init__(self, loss_fn, painting: Path, device):
        self.vgg, self.layers, self.device = loss_fn.vgg, loss_fn.style_layers, device
        self.reference = self.grams(load_painting(painting, REFERENCE).to(device))
        self.painting = painting

    def grams(self, x) -> dict:
        with torch.no_grad():
            features = self.vgg(x, layers=self.layers)
        return {k: gram_matrix(features[k].float())[0] for k in self.layers}

    def errors(self, picture: torch.Tensor) -> list[float]:
        out = []
        for size in SIZES:
            g = self.grams(shrink(picture, REFERENCE / size))
            out.append(statistics.fmean(float(((g[k] - self.reference[k]) ** 2).sum() / (self.reference[k] ** 2).sum())
                                        for k in self.layers))
        return out

    def matched(self, picture: torch.Tensor) -> int:
        errors = self.errors(picture)
        return SIZES[errors.index(min(errors))]

    def self_check(self, side: int) -> list[tuple[str, int, int]]:
        """(case, want, read) for the painting tiled at s and enlarged from s, into a side-px picture (side: one
        of SIZES)."""
        rows = []
        for s in (128, 256, 512):
            p = load_painting(self.painting, s).to(self.device)
            h, w = p.shape[-2:]
            tiled = p.repeat(1, 1, side // h + 1, side // w + 1)[..., :side * h // w, :side]
            rows.append((f"painting at {s} tiled", s, self.matched(tiled)))
            enlarged = resample(p, round(h * side / w), side)  # the strokes of the painting at `side`, blurred
            rows.append((f"painting at {s} enlarged", side, self.matched(enlarged)))
        return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", default=STYLES, help="comma-separated gallery slugs, or 'all' (default: %(default)s)")
    p.add_argument("--brushes", default=BRUSHES, help="(default: %(default)s)")
    p.add_argument("--size", type=int, default=SIZE, help="output's longer side in pixels (default: %(default)s)")
    p.add_argument("--photos", default=str(PHOTOS), help="comma-separated photos or folders (default: %(default)s)")
    p.add_argument("--num-photos", type=int, default=4)
    p.add_argument("--photo-set", choices=("A", "B"), default=None, help="instead of --photos (bench/quality.py)")
    p.add_argument("--weights-dir", default=str(WEIGHTS_DIR))
    p.add_argument("--paintings-dir", default=str(PAINTINGS_DIR))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None, metavar="OUT", help="save every number here")
    p.add_argument("--contact-sheet", default=None, metavar="OUT.png",
                   help="one row per style: the first photo's centre at each brush")
    return p.parse_args(argv)


def _brushes(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise FastNSTError(f"Expected comma-separated brush sizes, not {text!r}.") from None
    return values


def run(args) -> dict:
    device = pick_device(args.device)
    brushes = _brushes(args.brushes)
    names = [m["slug"] for m in gallery()] if args.styles == "all" else \
        [s.strip() for s in args.styles.split(",") if s.strip()]
    paths = photo_set(args.photo_set) if args.photo_set else list_photos(args.photos, args.num_photos)
    photos = {p.name: image_to_tensor(resize_long_side(load_image(p), args.size)).to(device) for p in paths}
    rows, checks, sheet = [], {}, {}
    for name in names:
        style = load_style(name, device=device)
        recipe = find_recipe(style, name)
        painting = find_painting(style, recipe, Path(args.paintings_dir))
        loss_fn = build_loss(recipe, resolve_loss_weights(recipe, None, Path(args.weights_dir)), painting, device)
        meter = StrokeMeter(loss_fn, painting, device)
        checks[name] = meter.self_check(args.size)
        per = {b: {"matched": [], "texture": [], "content": []} for b in brushes}
        t0 = time.perf_counter()
        style_size = recipe.get("style_size") or 512
        for photo_name, x in photos.items():
            targets = loss_fn.content_targets(x)
            own_content = None
            for b in sorted(brushes, key=lambda b: b != 1):  # brush 1 first: the content baseline
                loss_fn.set_style(load_painting(painting, round(style_size * b)).to(device))
                photo_style = terms_of(loss_fn, x, targets)["style"]
                y = stylize_tensor(x, style, brush=b, device=device)
                terms = terms_of(loss_fn, y, targets)
                own_content = terms["content"] if b == 1 else own_content
                per[b]["matched"].append(meter.matched(y))
                per[b]["texture"].append(terms["style"] / photo_style)
                per[b]["content"].append(terms["content"] / own_content if own_content else float("nan"))
                if photo_name == next(iter(photos)):
                    sheet.setdefault(name, {})[b] = y
        for b in brushes:
            rows.append({"style": name, "brush": b, "matched": statistics.median_low(per[b]["matched"]),
                         "matched_each": per[b]["matched"], "texture": statistics.median(per[b]["texture"]),
                         "content": statistics.median(per[b]["content"])})
        log(f"{name}: {time.perf_counter() - t0:.0f} s")
    return {"size": args.size, "photos": list(photos), "brushes": brushes, "rows": rows, "checks": checks,
            "device": str(device), "_sheet": sheet}


def print_table(result: dict) -> None:
    print(f"meter check (want → read), {result['size']} px:")
    for name, rows in result["checks"].items():
        print(f"  {name:<28} " + "  ".join(f"{case}: {want}→{read}" for case, want, read in rows))
    print(f"\nbrush vs matched painting size, output {result['size']} px, median of {len(result['photos'])} photos "
          f"({result['device']}); texture gate ≤ {TEXTURE_GATE}")
    print(f"{'style':<28} {'brush':>5} {'matched':>8} {'texture':>8} {'content':>8}  each photo")
    for r in result["rows"]:
        gate = "" if r["texture"] <= TEXTURE_GATE else "  over the gate"
        print(f"{r['style']:<28} {r['brush']:>5g} {r['matched']:>8} {r['texture']:>8.3f} {r['content']:>8.2f}  "
              f"{','.join(map(str, r['matched_each']))}{gate}")
    grows = [name for name in result["checks"] if _grows([r["matched"] for r in result["rows"] if r["style"] == name])]
    print(f"\nmatched size grows with the brush across ≥ 3 sizes: {len(grows)} of {len(result['checks'])} styles")


def _grows(matched: list[int]) -> bool:
    """Never shrinks as the brush grows, and takes at least three different values."""
    return all(a <= b for a, b in zip(matched, matched[1:])) and len(set(matched)) >= 3


def contact_sheet(sheet: dict, path: Path, cell: int = 320) -> None:
    brushes = sorted(next(iter(sheet.values())))
    grid = Image.new("RGB", (cell * len(brushes), cell * len(sheet)), "white")
    for row, (name, outputs) in enumerate(sheet.items()):
        for col, b in enumerate(brushes):
            picture = tensor_to_image(outputs[b][0].cpu())
            w, h = picture.size
            side = min(w, h, 2 * cell)  # a crop at the output's own pixels: strokes as the user sees them
            crop = picture.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
            grid.paste(crop.resize((cell, cell), Image.LANCZOS), (col * cell, row * cell))
    grid.save(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except FastNSTError as err:
        print(f"bench/brush.py: {err}", file=sys.stderr)
        return 2
    print_table(result)
    sheet = result.pop("_sheet")
    if args.contact_sheet:
        contact_sheet(sheet, Path(args.contact_sheet))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
