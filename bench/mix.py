"""Mixing every pair of gallery styles: does a 50/50 mix paint between its two parents, and keep the scene?

    python -m bench.mix                                  # every pair of the gallery on two CC0 photos, 512 px
    python -m bench.mix --styles the-scream,water-lilies,great-wave --side 256 --photos 1

A mix is the weighted mean of its styles' networks (fastnst/styles.py). For a pair (a, b) painted by the mix m,
with texture_a(x) = bench.look's texture ratio of x against painting a (lower: more like a), the pair is
- *between* when texture_a(m) < texture_a(pure b) and texture_b(m) < texture_b(pure a): the mix carries more of
  each painting than the other parent does, so the slider moves the picture from one toward the other;
- *kept* when its content loss (bench.look's) is at most 1.1x the worse parent's: averaging weights did not break
  the network into noise or flat colour.
Medians over the photos. The last line counts the pairs that are both.
"""
import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import fastnst
from bench.look import STYLE_LAYERS, Judge, content_lost, log, painting_of, photo_set, texture_ratio, to_view
from fastnst.errors import FastNSTError
from fastnst.imageio import load_image, resize_max_side
from fastnst.styles import gallery, load_style

KEPT = 1.1   # a mix may lose at most this much more of the scene than the worse of its parents


@torch.no_grad()
def scores(judge: Judge, picture, photo, paintings: dict) -> dict:
    """Texture against every painting of the pair, and content, for one painted photo (features taken once)."""
    ours, ref = (judge.vgg(t, STYLE_LAYERS) for t in (picture, photo))
    row = {"content": content_lost(ours, ref)}
    for name, path in paintings.items():
        row[f"texture:{name}"] = texture_ratio(ours, ref, judge.painting(path)[0])
    return row


def run(styles: list[str], photos: list[Path], side: int) -> dict:
    judge = Judge()
    originals = {p: resize_max_side(load_image(p), side) for p in photos}
    views = {p: to_view(photo) for p, photo in originals.items()}
    paintings = {name: painting_of(load_style(name, device="cpu")) for name in styles}

    def measure(style, pair):
        rows = [scores(judge, to_view(fastnst.stylize(photo, style, max_side=side, device="cpu")), views[p],
                       {n: paintings[n] for n in pair}) for p, photo in originals.items()]
        return {k: statistics.median(r[k] for r in rows) for k in rows[0]}

    pure = {name: measure(name, styles) for name in styles}  # each parent scored against every painting once
    pairs = {}
    for a, b in itertools.combinations(styles, 2):
        t0 = time.perf_counter()
        m = measure({a: 0.5, b: 0.5}, (a, b))
        between = m[f"texture:{a}"] < pure[b][f"texture:{a}"] and m[f"texture:{b}"] < pure[a][f"texture:{b}"]
        kept = m["content"] <= KEPT * max(pure[a]["content"], pure[b]["content"])
        pairs[f"{a}+{b}"] = {"mix": m, "between": between, "kept": kept}
        log(f"  {a} + {b}: {'between' if between else 'NOT between'}, {'kept' if kept else 'NOT kept'} "
            f"({time.perf_counter() - t0:.1f} s)")
    return {"pure": pure, "pairs": pairs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", default="all", help="'all' (the gallery) or slugs, comma-separated")
    p.add_argument("--photos", type=int, default=2, help="how many CC0 photos from examples/ (default 2)")
    p.add_argument("--side", type=int, default=512, help="longest side painted and scored (default 512)")
    p.add_argument("--json", type=Path, help="also write every pair's scores here")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    styles = ([m["slug"] for m in gallery()] if args.styles == "all"
              else [s.strip() for s in args.styles.split(",") if s.strip()])
    if len(styles) < 2:
        print("error: mixing needs at least two styles.", file=sys.stderr)
        return 2
    try:
        result = run(styles, photo_set("CC0", args.photos), args.side)
    except FastNSTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pairs = result["pairs"]
    for name, row in pairs.items():
        if not (row["between"] and row["kept"]):
            print(f"{name}: {'between' if row['between'] else 'not between'}, "
                  f"{'kept' if row['kept'] else 'scene lost'} (content {row['mix']['content']:.3f})")
    good = sum(r["between"] and r["kept"] for r in pairs.values())
    print(f"{good}/{len(pairs)} pairs paint between their parents and keep the scene "
          f"({sum(r['between'] for r in pairs.values())} between, {sum(r['kept'] for r in pairs.values())} kept; "
          f"{len(styles)} styles, {args.photos} CC0 photos at {args.side} px)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
