"""Train one style: Johnson et al. 2016's recipe, fault tolerant, single process or DDP under torchrun.

    photos (uint8 cache) → random 256² crops → TransformerNet → VGG16 perceptual loss against one painting
    → Adam 1e-3, for a budget of 160k image-steps (2 epochs of COCO's 80k), whatever the batch size.

The budget is counted in images, so `--batch-size` (or the number of GPUs) changes the number of steps, not the
amount of data seen. Batch size defaults to 4 on CPU (Johnson's) and 16 on a GPU (fills it better; Adam's step
size does not depend on the batch, so lr stays 1e-3).

Faults: every `checkpoint_every` steps, and on SIGINT/SIGTERM, the model, optimizer, step and RNG states are
written atomically (temp file + os.replace) to run_dir/checkpoint.pt; `resume=True` continues from it and
reaches bitwise the same weights on CPU, because batches and noise are pure functions of (seed, step).

Speed: bf16 autocast and channels_last on GPUs and on CPUs with native bf16 (`fastnst.device.pick_precision`;
Gram matrices and losses stay fp32 in fastnst.losses), cudnn.benchmark and fused Adam on GPUs, optional
torch.compile, the photo cache resident on the GPU, and no host sync except every `log_every` steps. The content
image only runs through VGG up to the content layer.
"""
import csv
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torchvision.utils import save_image
from tqdm.auto import tqdm

from fastnst.device import pick_device, pick_precision
from fastnst.errors import FastNSTError
from fastnst.formats import DATA_FOLDER, STYLE_IMAGE, write_run_summary
from fastnst.imageio import image_to_tensor, load_image, resize_max_side
from fastnst.losses import CONTENT_LAYERS, STYLE_LAYERS, TV_WEIGHT, PerceptualLoss, default_weights
from fastnst.models import build_model
from fastnst.vgg import VGGFeatures

from . import data as D
from .publish import export_run

# Johnson et al. 2016 (and pytorch/examples' fast_neural_style), unless a comment says otherwise.
CROP = 256
IMAGE_STEPS = 160_000       # 2 epochs of COCO train2014's ~80k photos
BATCH_CPU, BATCH_GPU = 4, 16
LR = 1e-3
STYLE_SIZE = 512            # the painting is downscaled so its longer side is at most this (0: as is)
# Loss layers per loss network. VGG19 gets Gatys et al.'s choice: style relu1_1..relu5_1, content relu4_2.
LOSS_LAYERS = {
    "vgg16": (CONTENT_LAYERS, STYLE_LAYERS),
    "vgg19": (("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")),
}
HELDOUT = 4                 # fixed photos kept out of training: sample grids and final held-out losses
LOG_EVERY, CHECKPOINT_EVERY, SAMPLE_EVERY = 50, 500, 1000
TEXTURE_CHANNELS = 8        # TextureNet's per-scale channels at width 1 (Ulyanov et al. 2016)
CHECKPOINT = "checkpoint.pt"
# Options that may change between a run and its --resume (they do not change what is learned); the first set is
# not recorded in the recipe, the second (what the model card calls the style) is.
RUNTIME_FIELDS = {"out", "resume", "stop_at", "log_every", "checkpoint_every", "sample_every", "compile",
                  "cache_dir", "data_workers", "progress", "device"}
CARD_FIELDS = {"title", "artist"}


class TrainingError(FastNSTError, ValueError):
    """A training run cannot start or continue as asked."""


@dataclass
class TrainConfig:
    style: str
    data: str
    out: str
    arch: str = "transformer"         # transformer (Johnson) | texture (Ulyanov multi-scale)
    norm: str = "instance"
    width: float = 1.0
    residual_blocks: int = 5
    texture_only: bool = False        # texture synthesis: noise in, style loss only (implies arch=texture)
    crop: int = CROP
    prep_side: int | None = None      # None: round(crop × 1.15)
    batch_size: int | None = None     # None: BATCH_CPU / BATCH_GPU
    image_steps: int = IMAGE_STEPS
    lr: float = LR
    content_weight: float | None = None  # None: fastnst.losses.default_weights, by the loss network's scale
    style_weight: float | None = None
    tv_weight: float = TV_WEIGHT
    style_size: int = STYLE_SIZE
    loss_arch: str = "vgg16"
    loss_weights: str | None = None   # safetensors path | "imagenet" | "random"; None: $FASTNST_VGG_WEIGHTS or imagenet
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"           # auto (bf16 on CUDA and on CPUs with native bf16, else fp32) | bf16 | fp32
    compile: bool = False
    heldout: int = HELDOUT
    log_every: int = LOG_EVERY
    checkpoint_every: int = CHECKPOINT_EVERY
    sample_every: int = SAMPLE_EVERY
    cache_dir: str | None = None
    data_workers: int | None = None
    resume: bool = False
    stop_at: int | None = None        # stop (with a checkpoint) once this step is reached: time-boxed sessions
    progress: bool = True
    title: str | None = None          # the style's name on its model card; None: from the painting's file name
    artist: str | None = None


def model_config(cfg: TrainConfig) -> dict:
    if cfg.arch == "texture":
        return {"arch": "texture", "channels": max(1, round(TEXTURE_CHANNELS * cfg.width)),
                "texture_only": cfg.texture_only, "norm": cfg.norm}
    return {"arch": "transformer", "width": cfg.width, "num_residual_blocks": cfg.residual_blocks, "norm": cfg.norm}


# ------------------------------------------------------------------------------------------ run-time plumbing
class Dist:
    """Rank/world from torchrun's environment; a single process otherwise."""

    def __init__(self, device_arg: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank, self.local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(device_arg)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.local_rank)  # one GPU per torchrun process
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a collective: call it at the same step everywhere)."""
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, values: dict) -> dict:
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.stack([values[k].float() for k in keys])
        dist.all_reduce(t)
        return dict(zip(keys, t / self.world))

    def close(self):
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


class StopSignal:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next step boundary and returns cleanly."""

    def __init__(self):
        self.received = None
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a notebook worker): no handler
                pass

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class History:
    """run_dir/history.csv, one row per log interval; rows past a resumed checkpoint are dropped."""

    COLUMNS = ("step", "images", "total", "content", "style", "tv", "images_per_s", "elapsed_s")

    def __init__(self, path: Path, start_step: int):
        self.path = path
        rows = []
        if path.is_file() and start_step:
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= start_step]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.COLUMNS)
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict):
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.COLUMNS, extrasaction="ignore").writerow(row)


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temp file, then rename: a crash mid-write never leaves a truncated checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_painting(path, max_side: int) -> torch.Tensor:
    if not Path(path).is_file():
        raise TrainingError(f"Style image {path} does not exist.")
    return image_to_tensor(resize_max_side(load_image(path), max_side or None))


def perceptual_loss(loss_arch: str, loss_weights, *, content_weight=None, style_weight=None,
                    tv_weight: float = TV_WEIGHT) -> PerceptualLoss:
    """The training loss for `loss_arch` (LOSS_LAYERS), without style targets yet (`set_style`). Content and style
    weights left as None fit the loss network's activation scale (fastnst.losses.default_weights): torchvision's
    VGG and the Caffe-converted files differ by orders of magnitude."""
    content_layers, style_layers = LOSS_LAYERS[loss_arch]
    vgg = VGGFeatures(loss_arch, layers=tuple(dict.fromkeys((*style_layers, *content_layers))), weights=loss_weights)
    auto_content, auto_style = default_weights(vgg)
    return PerceptualLoss(vgg=vgg, content_layers=content_layers, style_layers=style_layers,
                          content_weight=auto_content if content_weight is None else content_weight,
                          style_weight=auto_style if style_weight is None else style_weight, tv_weight=tv_weight)


def resolve(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """Fill the device-dependent defaults and check the combination, so the checkpoint stores real values."""
    cfg = TrainConfig(**asdict(cfg))
    if cfg.texture_only:
        cfg.arch = "texture"
    if cfg.arch not in ("transformer", "texture"):
        raise TrainingError(f"--arch must be transformer or texture, not {cfg.arch!r}.")
    if cfg.loss_arch not in LOSS_LAYERS:
        raise TrainingError(f"--loss-arch must be one of {sorted(LOSS_LAYERS)}, not {cfg.loss_arch!r}.")
    cfg.batch_size = cfg.batch_size or (BATCH_GPU if device.type == "cuda" else BATCH_CPU)
    cfg.prep_side = cfg.prep_side or D.default_prep_side(cfg.crop)
    cfg.precision = pick_precision(cfg.precision, device)
    if cfg.crop < 16 or cfg.prep_side < cfg.crop:
        raise TrainingError(f"Need 16 <= crop <= prep side (got crop {cfg.crop}, prep side {cfg.prep_side}).")
    return cfg


# ------------------------------------------------------------------------------------------------- training
def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training; on completion export via training.publish. Returns a summary dict."""
    env = Dist(cfg.device)
    try:
        return _train(cfg, env)
    finally:
        env.close()


def _train(cfg: TrainConfig, env: Dist) -> dict:
    device = env.device
    cfg = resolve(cfg, device)
    run_dir = Path(cfg.out)
    ckpt_path = run_dir / CHECKPOINT
    ckpt = None
    if ckpt_path.is_file():
        if not cfg.resume:
            raise TrainingError(f"{run_dir} already holds a training run; pass --resume to continue it or choose "
                                f"another --out.")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)  # our own file, tensors only
    say = _printer(env.main)
    if env.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)

    # Loss network and style first: a missing weights file or a bad painting fails before minutes of decoding.
    torch.manual_seed(cfg.seed)  # a "random" loss network (tests) must be the same one on every (re)start
    loss_fn = perceptual_loss(cfg.loss_arch, cfg.loss_weights, content_weight=cfg.content_weight,
                              style_weight=cfg.style_weight, tv_weight=cfg.tv_weight).to(device)
    cfg.content_weight, cfg.style_weight = loss_fn.content_weight, loss_fn.style_weight  # what was used
    if ckpt is not None:
        changed = [f"{f.name} ({ckpt['config'].get(f.name)!r} → {getattr(cfg, f.name)!r})" for f in fields(cfg)
                   if f.name not in RUNTIME_FIELDS | CARD_FIELDS and ckpt["config"].get(f.name) != getattr(cfg, f.name)]
        if changed:
            raise TrainingError(f"Cannot resume {run_dir} with a different recipe: {', '.join(changed)}.")
    loss_fn.set_style(load_painting(cfg.style, cfg.style_size).to(device))  # fp32, once

    # Data: one process per node decodes; the others wait and then open the same cache file.
    if env.local_rank != 0:
        env.barrier()
    cache = D.build_cache(cfg.data, prep_side=cfg.prep_side, min_side=math.ceil(cfg.crop * D.MIN_SIDE_FACTOR),
                          cache_dir=cfg.cache_dir, workers=cfg.data_workers, progress=cfg.progress and env.main)
    if env.local_rank == 0:
        env.barrier()
    n = cache.count
    if n < 2:
        raise TrainingError(f"Only {n} usable photo(s) in {cfg.data} ({len(cache.skipped)} skipped); need at least 2.")
    say(f"data: {n} photos from {cfg.data} ({len(cache.skipped)} skipped as unreadable or smaller than "
        f"{math.ceil(cfg.crop * D.MIN_SIDE_FACTOR)} px), {'reused' if cache.reused else 'built'} cache {cache.path}")
    n_held = min(cfg.heldout, n // 5)
    held = np.unique(np.linspace(0, n - 1, max(n_held, 1)).round().astype(int)) if n_held else np.arange(min(n, 4))
    pool = np.setdiff1d(np.arange(n), held) if n_held else np.arange(n)
    pixels = D.to_device(cache, device)
    sampler = D.BatchSampler(pixels, pool, batch_size=cfg.batch_size, crop=cfg.crop, seed=cfg.seed,
                             rank=env.rank, world_size=env.world)
    heldout = D.centre_crops(pixels, held, cfg.crop).to(device)

    # Networks. The same seed on every rank gives the same initial weights (DDP also broadcasts rank 0's).
    torch.manual_seed(cfg.seed)
    net = build_model(model_config(cfg)).to(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
    # channels_last is what bf16 convolutions run fastest in, on a GPU and in oneDNN on a CPU alike.
    memory_format = torch.channels_last if cuda or cfg.precision == "bf16" else torch.contiguous_format
    net, loss_fn = net.to(memory_format=memory_format), loss_fn.to(memory_format=memory_format)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=cuda)

    start_step = 0
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_step = ckpt["step"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if cuda and ckpt["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        say(f"resumed {run_dir} at step {start_step}")

    model = net
    if env.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if cuda else None)
    texture = cfg.arch == "texture"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    def losses(x, gen):
        y = model(x, generator=gen) if texture else model(x)
        return loss_fn(y, None if cfg.texture_only else loss_fn.content_targets(x)), y

    step_losses = torch.compile(losses) if cfg.compile else losses

    def noise(step, stream):  # TextureNet noise: a pure function of (seed, step, rank), like the batches
        return torch.Generator(device).manual_seed(D.derive_seed(cfg.seed, step, stream)) if texture else None

    g = cfg.batch_size * env.world
    total_steps = math.ceil(cfg.image_steps / g)

    def checkpoint(step):
        if env.main:
            rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if cuda else None}
            save_checkpoint(ckpt_path, {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                        "config": asdict(cfg), "rng": rng, "data": {"count": n, "cache": cache.path.stem}})

    def samples(step):
        if not env.main:
            return
        net.eval()
        with torch.no_grad(), autocast:
            y = net(heldout, generator=noise(0, 0x5A)) if texture else net(heldout)
        net.train()
        grid = y.float() if cfg.texture_only else torch.cat([heldout, y.float()])
        save_image(grid.cpu(), run_dir / "samples" / f"step_{step:07d}.jpg", nrow=len(heldout))

    history = History(run_dir / "history.csv", start_step) if env.main else None
    stop = StopSignal()
    status = "finished"
    bar = tqdm(total=total_steps * g, initial=start_step * g, unit="img", disable=not (env.main and cfg.progress),
               dynamic_ncols=True, desc=run_dir.name)
    running, t_start, t_log, step_log = {}, time.perf_counter(), time.perf_counter(), start_step
    net.train()
    step = start_step
    try:
        while step < total_steps:
            x = sampler.batch(step)
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            with autocast:
                terms, _ = step_losses(x, noise(step, 0x7E + env.rank))
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            for k, v in terms.items():  # stays on the device: no sync until the next log line
                running[k] = running.get(k, 0) + v.detach().float()
            step += 1
            bar.update(g)
            at_log = step % cfg.log_every == 0 or step == total_steps
            if at_log:
                avg = env.mean({k: v / (step - step_log) for k, v in running.items()})
                now = time.perf_counter()
                row = {"step": step, "images": step * g, "elapsed_s": round(now - t_start, 3),
                       "images_per_s": round((step - step_log) * g / (now - t_log), 2),
                       **{k: f"{float(v):.6g}" for k, v in avg.items()}}
                if history:
                    history.append(row)
                bar.set_postfix({k: f"{float(v):.3g}" for k, v in avg.items()}, refresh=False)
                running, t_log, step_log = {}, now, step
            # Under DDP every rank must stop at the same step, so the signal flag is agreed on at log steps only.
            stopping = (env.any(stop.received is not None) if at_log else False) if env.world > 1 \
                else stop.received is not None
            stopping = stopping or (cfg.stop_at is not None and step >= cfg.stop_at and step < total_steps)
            if stopping or step % cfg.checkpoint_every == 0 or step == total_steps:
                checkpoint(step)
            if step % cfg.sample_every == 0 or step == total_steps:
                samples(step)
            if stopping:
                status = "interrupted" if stop.received else "stopped"
                break
    finally:
        bar.close()
        stop.restore()
    loop_s = time.perf_counter() - t_start
    images_per_s = (step - start_step) * g / loop_s if step > start_step else None
    if status != "finished":
        say(f"{'got ' + stop.received + ': ' if stop.received else ''}stopped at step {step}/{total_steps}; "
            f"checkpoint saved in {ckpt_path}. Continue with the same command plus --resume.")
        env.barrier()
        return {"status": status, "run_dir": run_dir, "step": step, "total_steps": total_steps}

    result = {"status": status, "run_dir": run_dir, "step": step, "total_steps": total_steps}
    if env.main:
        metrics = evaluate(net, loss_fn, heldout, cfg, autocast, noise(0, 0x5A) if texture else None)
        metrics.update({"steps": step, "images_seen": step * g, "wall_time_s": round(loop_s, 2),
                        "images_per_s": round(images_per_s, 2) if images_per_s else None,
                        "device": _device_name(device), "world_size": env.world, "heldout_images": int(n_held)})
        recipe = {**{k: v for k, v in asdict(cfg).items() if k not in RUNTIME_FIELDS},
                  STYLE_IMAGE: Path(cfg.style).name, DATA_FOLDER: Path(cfg.data).name, "images": n,
                  "skipped": len(cache.skipped), "loss_network": Path(loss_fn.vgg.source).name,
                  "content_layers": list(loss_fn.content_layers), "style_layers": list(loss_fn.style_layers),
                  "model": model_config(cfg), "global_batch": g, "total_steps": total_steps,
                  "optimizer": "Adam"}
        recipe.pop("style"), recipe.pop("data")  # absolute local paths say nothing on a model card
        write_run_summary(run_dir, recipe, metrics)
        result.update(metrics=metrics, recipe=recipe, export=export(net, run_dir, cfg, recipe, metrics))
        say(f"done: {step} steps, {metrics['images_per_s']} img/s, held-out total loss {metrics['heldout_total']:.4g}; "
            f"exported to {result['export']}")
    env.barrier()
    return result


@torch.no_grad()
def evaluate(net, loss_fn, heldout, cfg, autocast, gen) -> dict:
    """Loss terms on the fixed held-out photos (weighted as in training), the numbers a model card reports."""
    net.eval()
    with autocast:
        y = net(heldout, generator=gen) if gen is not None else net(heldout)
        terms = loss_fn(y, None if cfg.texture_only else heldout)
    net.train()
    return {f"heldout_{k}": float(v) for k, v in terms.items()}


def export(net, run_dir: Path, cfg, recipe: dict, metrics: dict) -> Path:
    """fp32 + fp16 Hub folders (weights, config.json, model card, style image, samples) via training.publish."""
    model = build_model(model_config(cfg))
    model.load_state_dict({k: v.float().cpu() for k, v in net.state_dict().items()})
    return Path(export_run(model.eval(), run_dir, style_image_path=Path(cfg.style), recipe=recipe, metrics=metrics))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _printer(enabled: bool):
    def say(msg: str):
        if enabled:
            tqdm.write(msg, file=sys.stderr)  # stderr, like the bar: stdout stays clean for scripts
    return say
