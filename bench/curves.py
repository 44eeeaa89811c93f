"""Held-out loss against image-steps (and minutes) for finished runs, as a table and a PNG plot.

    python -m bench.curves runs/scratch-bf16 runs/from-family --plot bench/new_style.png
    python -m bench.curves runs/fit-a runs/fit-b --target 5.38e5 --plot fits.png   # the reference as a number

Each run's heldout.csv (written by the trainer at every sample step: fp32 loss terms on the same held-out photos
for runs of the same data and --heldout) is read, with the training time at each step from history.csv. The
first run is the reference: the table says when each other run first reaches the reference's final held-out
total (goal of issue 10 for a new style started with --from: a 16,000-image-step scratch network's loss in
≤ 3 minutes on 2 CPU cores); with --target, every run is compared with that loss instead.
"""
import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from training.run_folder import RunFolder

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
SIZE, MARGIN = (900, 520), (80, 30, 30, 60)  # image; left, top, right, bottom margins


def read_run(run: Path) -> list[dict]:
    """Rows of (images, heldout_total, seconds of training so far) for each sample step of a run."""
    folder = RunFolder(run)
    elapsed = {r["step"]: r["elapsed_s"] for r in folder.history_rows()}
    steps = sorted(elapsed)
    out = []
    for r in folder.heldout_rows():
        step = r["step"]
        known = [s for s in steps if s <= step]  # history is logged every log_every steps: take the nearest before
        seconds = elapsed[known[-1]] * step / known[-1] if known else None
        out.append({"images": r["images"], "total": r["heldout_total"], "seconds": seconds})
    return out


def plot(curves: dict[str, list[dict]], target: float, path: Path, target_label: str) -> None:
    img = Image.new("RGB", SIZE, "white")
    d = ImageDraw.Draw(img)
    left, top, right, bottom = MARGIN[0], MARGIN[1], SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
    xmax = max(r["images"] for rows in curves.values() for r in rows)
    values = [r["total"] for rows in curves.values() for r in rows]
    ymin, ymax = min(values + [target]) * 0.95, sorted(values)[int(len(values) * 0.98)]  # clip the first spikes
    x = lambda v: left + (right - left) * v / xmax  # noqa: E731
    y = lambda v: bottom - (bottom - top) * (min(v, ymax) - ymin) / (ymax - ymin)  # noqa: E731
    d.rectangle([left, top, right, bottom], outline="black")
    for i in range(5):
        xv, yv = xmax * i / 4, ymin + (ymax - ymin) * i / 4
        d.text((x(xv) - 15, bottom + 8), f"{xv:,.0f}", fill="black")
        d.text((5, y(yv) - 6), f"{yv:.3g}", fill="black")
    d.text(((left + right) // 2 - 60, bottom + 30), "image-steps", fill="black")
    d.line([left, y(target), right, y(target)], fill=(150, 150, 150), width=1)
    d.text((right - 260, y(target) - 14), f"{target_label} {target:.4g}", fill=(110, 110, 110))
    for (name, rows), colour in zip(curves.items(), COLOURS):
        d.line([(x(r["images"]), y(r["total"])) for r in rows], fill=colour, width=2)
    for i, (name, colour) in enumerate(zip(curves, COLOURS)):
        d.line([left + 20, top + 20 + 18 * i, left + 50, top + 20 + 18 * i], fill=colour, width=3)
        d.text((left + 58, top + 14 + 18 * i), name, fill="black")
    img.save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories; the first is the reference")
    p.add_argument("--target", type=float, default=None, help="the reference's held-out total as a number (e.g. "
                   "from the README, its run no longer at hand): then no run is the reference")
    p.add_argument("--plot", type=Path, default=None, help="write the curves to this PNG")
    args = p.parse_args()
    curves = {run.name: read_run(run) for run in args.runs}
    if args.target is not None:
        target, others, target_label = args.target, list(curves), "target held-out loss"
        print(f"target: held-out total {target:.4g}")
    else:
        (reference, *others), target_label = curves, "reference's final held-out loss"
        target = curves[reference][-1]["total"]
        print(f"reference {reference}: held-out total {target:.4g} after {curves[reference][-1]['images']:,} "
              f"image-steps, {curves[reference][-1]['seconds'] / 60:.1f} min of training")
    for name in others:
        rows = curves[name]
        hit = next((r for r in rows if r["total"] <= target), None)
        best = min(rows, key=lambda r: r["total"])
        reached = (f"reaches it after {hit['images']:,} image-steps, {hit['seconds'] / 60:.1f} min" if hit else
                   f"does not reach it (best {best['total']:.4g} at {best['images']:,} image-steps)")
        print(f"{name}: {reached}; final {rows[-1]['total']:.4g} after {rows[-1]['images']:,} image-steps, "
              f"{rows[-1]['seconds'] / 60:.1f} min")
    print(f"{'image-steps':>11} " + " ".join(f"{n[:18]:>18}" for n in curves))
    marks = sorted({r["images"] for rows in curves.values() for r in rows if r["images"] % 1000 == 0})
    for m in marks:
        cells = []
        for rows in curves.values():
            row = next((r for r in rows if r["images"] == m), None)
            cells.append(f"{row['total']:18.4g}" if row else f"{'':>18}")
        print(f"{m:>11,} " + " ".join(cells))
    if args.plot:
        plot(curves, target, args.plot, target_label)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
