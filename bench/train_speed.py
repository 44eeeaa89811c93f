"""Training speed: our trainer against a loop mirroring pytorch/examples' fast_neural_style, in the same run.

    python -m bench.train_speed                                   # GPU: both loops, images/s and the ratio
    python -m bench.train_speed --device cpu --crop 128 --ours-images 240 --reference-images 48 [--width 0.5]
    python -m bench.train_speed --compare-quality --images 32000  # both on the same budget: held-out losses

Goals on one H100 (issue 3): ≥ 1,500 training images/s at 256², the 160k-image recipe in ≤ 2 minutes including
data preparation, and final held-out losses no worse than the plain recipe's.

- **Ours** is `training.trainer.train` itself (bf16 autocast, channels_last, cudnn.benchmark, fused Adam, photo
  cache resident on the GPU, content through VGG only to relu2_2, no host sync between log lines; `--compile`
  adds torch.compile). Its numbers come from the run's own history.csv: the first log interval (cudnn
  autotuning, compilation) is reported apart from the steady rate. The photo cache is built fresh in a temp
  folder, so "setup" includes decoding every photo once.
- **Reference** mirrors pytorch/examples/fast_neural_style/neural_style.py `train()`: Resize + CenterCrop +
  ToTensor on every JPEG inside the loop (DataLoader, num_workers=0), batch 4, fp32 eager, NCHW, the content
  batch through VGG all the way to relu4_3, `.item()` on the losses every step, plain Adam. The network and the
  loss are ours (the same layers and terms as theirs; their network's only difference is an unbounded output),
  so the comparison measures the training loop, not the model.
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
import torchvision.transforms as T
from PIL import Image

from fastnst.device import keep_freed_memory, pick_precision
from fastnst.losses import LOSS_LAYERS
from fastnst.models import TransformerNet, load_network
from training import data as D
from training.paintings import load_painting
from training.recipe import BATCH_CPU, BATCH_GPU, IMAGE_STEPS, LR, Recipe, TrainConfig
from training.run_folder import RunFolder
from training.runtime import training_memory_format
from training.trainer import train

REPO = Path(__file__).resolve().parents[1]

SHARED = REPO.parent / "shared" / "data"
DEFAULT_DATA = SHARED / "content"
DEFAULT_STYLE = SHARED / "styles" / "starry_night.jpg"
DEFAULT_WEIGHTS = SHARED / "weights" / "vgg16_hed_bsds500_features_to_relu4_3_fp16.safetensors"
REFERENCE_BATCH = 4         # pytorch/examples' default
HELDOUT_EVERY = 50          # --compare-quality: every 50th photo is kept out of both trainings
WARMUP_STEPS = 5            # reference loop steps not timed (cudnn initialisation)


def build_loss(args, device):
    """The trainer's loss (layers, weights by the loss network's scale) with the painting's style targets."""
    recipe = Recipe(loss_arch=args.loss_arch, loss_weights=args.loss_weights,
                    style_weight=getattr(args, "style_weight", None))
    loss = recipe.perceptual_loss(device)
    loss.set_style(load_painting(args.style, args.style_size).to(device))
    return loss


def run_ours(args, photos, out: Path, images: int) -> dict:
    t0 = time.perf_counter()
    result = train(TrainConfig.of(style=str(args.style), data=str(photos), out=str(out), crop=args.crop,
                               batch_size=args.batch_size, image_steps=images, loss_arch=args.loss_arch,
                               loss_weights=str(args.loss_weights), style_size=args.style_size,
                               device=args.device, compile=args.compile, cache_dir=str(out / "cache"),
                               width=args.width, style_weight=args.style_weight,
                               log_every=args.log_every, checkpoint_every=10**9, sample_every=10**9,
                               progress=False))
    wall = time.perf_counter() - t0
    rows = history(out)
    first, steady = rows[0], steady_rate(out)
    loop = result["metrics"]["wall_time_s"]
    return {"network": result["export"], "run_dir": out, "wall_s": wall, "loop_s": loop, "setup_s": wall - loop,
            "first_interval_s": first["elapsed_s"], "steady_ips": steady, "mean_ips": rows[-1]["images"] / loop,
            "batch": result["recipe"]["global_batch"]}


def bare_step(args, device, batch: int, steps: int = 10) -> dict:
    """Our training step without the loop around it (no data, no logging, no checkpoints), timed by part: what the
    loop costs is ours against this; the rest is arithmetic."""
    precision = pick_precision("auto", device)
    bf16, layout = precision == "bf16", training_memory_format(precision, device)
    net = TransformerNet(width=args.width).to(device, memory_format=layout).train()
    loss_fn = build_loss(args, device).to(memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    x = torch.rand(batch, 3, args.crop, args.crop, device=device).contiguous(memory_format=layout)
    parts = dict.fromkeys(("content targets", "network forward", "loss forward", "backward", "Adam"), 0.0)
    for i in range(steps + 3):  # 3 warm-up steps
        marks = [time.perf_counter()]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            targets = loss_fn.content_targets(x)
            marks.append(sync(device) or time.perf_counter())
            y = net(x)
            marks.append(sync(device) or time.perf_counter())
            total = loss_fn(y, targets)["total"]
            marks.append(sync(device) or time.perf_counter())
        opt.zero_grad(set_to_none=True)
        total.backward()
        marks.append(sync(device) or time.perf_counter())
        opt.step()
        marks.append(sync(device) or time.perf_counter())
        if i >= 3:
            for name, a, b in zip(parts, marks, marks[1:]):
                parts[name] += (b - a) / steps
    return {"ips": batch / sum(parts.values()), "ms": {k: v * 1000 for k, v in parts.items()}}


def history(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if v is not None} for r in RunFolder(run_dir).history_rows()]


def steady_rate(run_dir: Path) -> float | None:
    """Images/s after the first log interval (warm-up, cudnn autotuning or compilation are not steady)."""
    rows = history(run_dir)
    first, last = rows[0], rows[-1]
    return (last["images"] - first["images"]) / (last["elapsed_s"] - first["elapsed_s"]) if len(rows) > 1 else None


class Photos(torch.utils.data.Dataset):
    """What torchvision.datasets.ImageFolder + the example's transform do: open, decode, resize, crop, ToTensor."""

    def __init__(self, paths, crop):
        self.paths = paths
        self.transform = T.Compose([T.Resize(crop), T.CenterCrop(crop), T.ToTensor()])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB"))


def run_reference(args, paths, images: int, device) -> dict:
    torch.manual_seed(0)
    loss_fn = build_loss(args, device)
    net = TransformerNet(width=args.width).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(Photos(paths, args.crop), batch_size=REFERENCE_BATCH, shuffle=True,
                                         drop_last=True)
    steps = images // REFERENCE_BATCH + WARMUP_STEPS
    done, t0 = 0, None
    while done < steps:
        for x in loader:
            if done == WARMUP_STEPS:
                sync(device)
                t0 = time.perf_counter()
            x = x.to(device)
            y = net(x)
            full = loss_fn.vgg(x)  # the example runs the content batch through every loss layer
            terms = loss_fn(y, {k: full[k] for k in loss_fn.content_layers})
            opt.zero_grad()
            terms["total"].backward()
            opt.step()
            float(terms["content"].item()), float(terms["style"].item())  # the example's per-step logging sync
            done += 1
            if done == steps:
                break
    sync(device)
    seconds = time.perf_counter() - t0
    return {"network": net.eval(), "ips": (steps - WARMUP_STEPS) * REFERENCE_BATCH / seconds, "loop_s": seconds}


@torch.no_grad()
def heldout_losses(net, loss_fn, paths, args, device) -> dict:
    """fp32 loss terms on held-out photos, the same loss for both networks."""
    x = torch.stack([Photos(paths, args.crop)[i] for i in range(len(paths))]).to(device)
    net = net.to(device).float().eval()
    return {k: float(v) for k, v in loss_fn(net(x).clamp(0, 1), x).items()}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of photos")
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE, help="the painting")
    p.add_argument("--loss-weights", default=str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.is_file() else "imagenet")
    p.add_argument("--loss-arch", default="vgg16", choices=sorted(LOSS_LAYERS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=None, help="ours, per process (default: the trainer's)")
    p.add_argument("--width", type=float, default=1.0, help="network width, both loops (0.5: the light CPU net)")
    p.add_argument("--style-weight", type=float, default=None, help="default: by the loss network's scale")
    p.add_argument("--compile", action="store_true", help="ours: torch.compile the training step")
    p.add_argument("--ours-images", type=int, default=None, help="images to train ours on (GPU 48000, CPU 240)")
    p.add_argument("--reference-images", type=int, default=None, help="reference images (GPU 2000, CPU 48)")
    p.add_argument("--log-every", type=int, default=None, help="ours: steps per history row (default: ~8 rows)")
    p.add_argument("--compare-quality", action="store_true", help="train both on --images and compare held-out "
                   "losses (photos every 50th are held out of both)")
    p.add_argument("--images", type=int, default=32000, help="--compare-quality budget for both")
    p.add_argument("--step-breakdown", action="store_true", help="also time our bare training step by part "
                   "(content targets, network, loss, backward, Adam): the loop's overhead is ours against it")
    p.add_argument("--plain-malloc", action="store_true", help="leave glibc's malloc as it is, to see what "
                   "fastnst.device.keep_freed_memory (which the app and CLIs call) buys")
    args = p.parse_args()
    if not args.plain_malloc:
        keep_freed_memory()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    paths = D.list_images(args.data)
    heldout = paths[::HELDOUT_EVERY] if args.compare_quality else []
    train_paths = [q for q in paths if q not in set(heldout)]
    ours_images = args.images if args.compare_quality else args.ours_images or (48000 if gpu else 240)
    ref_images = args.images if args.compare_quality else args.reference_images or (2000 if gpu else 48)
    batch = args.batch_size or (BATCH_GPU if gpu else BATCH_CPU)
    args.log_every = args.log_every or max(1, ours_images // batch // 8)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {len(train_paths)} photos, crop {args.crop}, loss "
          f"{args.loss_arch} ({Path(args.loss_weights).name})", flush=True)

    with tempfile.TemporaryDirectory(prefix="fastnst-train-speed-") as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("".join(f"{q.resolve()}\n" for q in train_paths))
        ours = run_ours(args, listing, Path(tmp) / "ours", ours_images)
        ref = run_reference(args, train_paths, ref_images, device)
        steady = ours["steady_ips"] or ours["mean_ips"]
        print(f"{'loop':<34} {'batch':>5} {'images':>7} {'img/s':>8} {'vs ref':>7}")
        print(f"{'reference (pytorch/examples)':<34} {REFERENCE_BATCH:>5} {ref_images:>7} {ref['ips']:8.1f} "
              f"{'1.00x':>7}")
        print(f"{'ours' + (' + compile' if args.compile else ''):<34} {ours['batch']:>5} {ours_images:>7} "
              f"{steady:8.1f} {steady / ref['ips']:6.2f}x")
        if args.step_breakdown:
            bare = bare_step(args, device, ours["batch"])
            print(f"{'bare step (no loop around it)':<34} {ours['batch']:>5} {'':>7} {bare['ips']:8.1f} "
                  f"{bare['ips'] / ref['ips']:6.2f}x  ms: " + ", ".join(f"{k} {v:.0f}" for k, v in bare["ms"].items()))
        print(f"ours: setup {ours['setup_s']:.1f} s (loss network, photo cache built from scratch, export), first "
              f"log interval {ours['first_interval_s']:.1f} s (warm-up/compile), mean {ours['mean_ips']:.1f} img/s")
        recipe_s = ours["setup_s"] + ours["first_interval_s"] + IMAGE_STEPS / steady
        print(f"projected {IMAGE_STEPS:,}-image recipe: ours {recipe_s / 60:.1f} min (incl. setup), reference "
              f"{IMAGE_STEPS / ref['ips'] / 60:.1f} min (loop only)")
        if args.compare_quality:
            ours_net = load_network(RunFolder(ours["run_dir"]).export(fp16=False), device)  # the fp32 export
            loss_fn = build_loss(args, device)
            rows = {name: heldout_losses(net, loss_fn, heldout, args, device)
                    for name, net in (("reference", ref["network"]), ("ours", ours_net))}
            print(f"held-out losses on {len(heldout)} photos after {args.images:,} images each (fp32, same loss):")
            for label, terms in rows.items():
                print(f"  {label:<10} " + "  ".join(f"{k} {v:.4g}" for k, v in terms.items()))
            ratio = rows["ours"]["total"] / rows["reference"]["total"]
            print(f"  ours / reference total: {ratio:.3f} ({'no worse' if ratio <= 1.0 else 'WORSE'})")


if __name__ == "__main__":
    main()
