"""What bench.quality prints and draws: the table, the per-style summary against the goal and the gate, and the
contact sheet. Shared by the benches that report a texture (bench.brush, bench.temporal)."""
import math
import statistics
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

GOAL_RATIO = 1.0
TEXTURE_GATE = 0.35         # output's style loss / the photo's, median over photos: above it, a tint
CELL, LABEL = 256, 200      # contact sheet: default cell size (--cell) and the title column, in pixels


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resize_long_side(image, size: int):
    """Scale (up or down) so the longer side is exactly `size`, keeping the aspect ratio."""
    w, h = image.size
    scale = size / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample=3)  # 3 = LANCZOS


def contact_sheet(photos: dict, outputs: dict, titles: list, path: Path, cell: int = CELL) -> None:
    """Rows: the photos, then our output per style (its title in the left column), a photo per column, so a
    gallery of any size reads top to bottom. Paintings are never shown."""
    sheet = Image.new("RGB", (LABEL + len(photos) * cell, (1 + len(titles)) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()

    def paste(img, row, col):
        img = resize_long_side(img, cell)
        sheet.paste(img, (LABEL + col * cell + (cell - img.width) // 2, row * cell + (cell - img.height) // 2))

    for row, title in enumerate(["photo", *titles]):
        words, lines = str(title).split(), [""]
        for word in words:  # wrap the title into the label column
            lines[-1:] = [f"{lines[-1]} {word}".strip()] if len(lines[-1]) + len(word) < 20 else [lines[-1], word]
        draw.multiline_text((8, row * cell + 8), "\n".join(lines[:6]), fill="black", font=font)
    for col, (photo_name, img) in enumerate(photos.items()):
        paste(img, 0, col)
        for row, title in enumerate(titles, start=1):
            if (photo_name, title) in outputs:
                paste(outputs[photo_name, title], row, col)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, **({"quality": 88} if path.suffix.lower() in (".jpg", ".jpeg") else {}))


def ratio_of(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def _g(v, fmt=".4g"):
    return "-" if v is None else format(v, fmt)


def print_table(rows, iters):
    head = (f"{'style':<20} {'photo':<12} {'size':>5} {'net cont':>10} {'net style':>10} {'net total':>10} "
            + " ".join(f"{'G' + str(n) + ' total':>11}" for n in iters) + f" {'ratio':>6} {'texture':>7} {'seam':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        net = r["net"]
        print(f"{r['style'][:20]:<20} {r['photo'][:12]:<12} {r['size']:>5} {_g(net.get('content')):>10} "
              f"{_g(net['style']):>10} {_g(net['total']):>10} "
              + " ".join(f"{_g(r['gatys'][str(n)]['total']):>11}" for n in iters)
              + f" {_g(r['ratio'], '.3f'):>6} {_g(r['texture'], '.3f'):>7} {_g(r['seam_mad'], '.3f'):>6}")


def summarise(rows) -> dict:
    summary = {}
    for style in dict.fromkeys(r["style"] for r in rows):
        mine = [r for r in rows if r["style"] == style]
        ratios = [r["ratio"] for r in mine if r["ratio"] is not None]
        seams = [r["seam_mad"] for r in mine if r["seam_mad"] is not None]
        # the gate holds at every size: a feed-forward network's strokes have a fixed size in pixels, so the
        # larger the photo, the fainter the texture (the app paints up to 1024 px on a CPU by default)
        by_size = {size: statistics.median(r["texture"] for r in mine if r["size"] == size)
                   for size in sorted({r["size"] for r in mine})}
        texture = max(by_size.values())
        summary[style] = {
            "rows": len(mine),
            "ratio_geomean": math.exp(statistics.fmean(math.log(max(x, 1e-30)) for x in ratios)) if ratios else None,
            "ratio_worst": max(ratios) if ratios else None,
            "within_goal": sum(x <= GOAL_RATIO for x in ratios) / len(ratios) if ratios else None,
            "texture_median": texture,
            "texture_by_size": by_size,
            "texture_passes": texture <= TEXTURE_GATE,
            "seam_mad_max": max(seams) if seams else None,
        }
    return summary


def print_summary(summary: dict, last: int):
    print(f"\nper style (ratio = network total / Gatys-{last} total, goal ≤ {GOAL_RATIO}; "
          f"texture = median output/photo style loss at the worst size, gate ≤ {TEXTURE_GATE}):")
    print(f"{'style':<24} {'rows':>4} {'geomean':>8} {'worst':>7} {'≤ goal':>7} {'texture':>8} {'gate':>5} "
          f"{'seam max':>9}")
    for style, s in summary.items():
        gate = "pass" if s["texture_passes"] else "FAIL"
        print(f"{style[:24]:<24} {s['rows']:>4} {_g(s['ratio_geomean'], '.3f'):>8} {_g(s['ratio_worst'], '.3f'):>7} "
              f"{_g(s['within_goal'], '.0%'):>7} {s['texture_median']:>8.3f} {gate:>5} "
              f"{_g(s['seam_mad_max'], '.3f'):>9}")
