"""Train a style, or a family of styles: Johnson et al. 2016's recipe, fault tolerant, single process or DDP.

    photos (uint8 cache) → random 256² crops → TransformerNet → VGG16 perceptual loss against the painting
    → Adam 1e-3, for a budget of 160k image-steps (2 epochs of COCO's 80k), whatever the batch size.

Several paintings (`--style a.jpg --style b.jpg`) train one family network (Dumoulin et al. 2017: shared
convolutions, a scale/shift row per painting in every instance norm); every batch mixes paintings, each image's
painting is a pure function of (step, position), and the export writes one standalone network per painting.
`--from` starts from another network's convolutions (training.start): first only the new scale/shift learn, for
`norm_only_images`, then all weights.

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
from torchvision.utils import make_grid, save_image
from tqdm.auto import tqdm

from fastnst.device import pick_device, pick_precision
from fastnst.errors import FastNSTError
from fastnst.formats import DATA_FOLDER, DEVICE, HELDOUT_PREFIX, SPEED, STYLE_IMAGE, WALL_TIME, write_run_summary
from fastnst.losses import CONTENT_LAYERS, STYLE_LAYERS, TV_WEIGHT, PerceptualLoss, default_weights
from fastnst.models import build_model
from fastnst.vgg import VGGFeatures

from . import data as D
from .paintings import Painting, load_painting, parse_paintings
from .publish import export_family, export_preview, export_run
from .start import initial_weights, load_source, widen

# Johnson et al. 2016 (and pytorch/examples' fast_neural_style), unless a comment says otherwise.
CROP = 256
IMAGE_STEPS = 160_000       # 2 epochs of COCO train2014's ~80k photos
BATCH_CPU, BATCH_GPU = 4, 16
LR = 1e-3
LR_SCHEDULES = ("constant", "cosine")
STYLE_SIZE = 512            # the painting is downscaled so its longer side is at most this (0: as is)
# Loss layers per loss network. VGG19 gets Gatys et al.'s choice: style relu1_1..relu5_1, content relu4_2.
LOSS_LAYERS = {
    "vgg16": (CONTENT_LAYERS, STYLE_LAYERS),
    "vgg19": (("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")),
}
HELDOUT = 4                 # fixed photos kept out of training: sample grids and held-out losses
NORM_ONLY_IMAGES = 1_000    # --from: image-steps that fit only the new scale/shift before all weights train
LOG_EVERY, CHECKPOINT_EVERY, SAMPLE_EVERY = 50, 500, 1000
TEXTURE_CHANNELS = 8        # TextureNet's per-scale channels at width 1 (Ulyanov et al. 2016)
CHECKPOINT, HISTORY, HELDOUT_CURVE = "checkpoint.pt", "history.csv", "heldout.csv"
CURVE_COLUMNS = ("step", "images", *(f"heldout_{k}" for k in ("total", "content", "style", "tv")))
# Options that may change between a run and its --resume (they do not change what is learned); the first set is
# not recorded in the recipe, the second (what the model card calls the style) is.
RUNTIME_FIELDS = {"out", "resume", "stop_at", "log_every", "checkpoint_every", "sample_every", "preview_every",
                  "compile", "cache_dir", "data_workers", "progress", "device"}
CARD_FIELDS = {"title", "artist"}


class TrainingError(FastNSTError, ValueError):
    """A training run cannot start or continue as asked."""


@dataclass
class TrainConfig:
    style: str | list[str]            # painting(s): path[:weight=W,size=S] (training.paintings)
    data: str
    out: str
    arch: str = "transformer"         # transformer (Johnson) | texture (Ulyanov multi-scale)
    norm: str = "instance"
    width: float | None = None        # None: --from's width, else 1.0
    residual_blocks: int | None = None  # None: --from's depth, else 5
    from_network: str | None = None   # start from this network: run dir, style folder, gallery name or Hub id
    norm_only_images: int | None = None  # with from_network; None: NORM_ONLY_IMAGES
    texture_only: bool = False        # texture synthesis: noise in, style loss only (implies arch=texture)
    crop: int = CROP
    prep_side: int | None = None      # None: round(crop × 1.15)
    batch_size: int | None = None     # None: BATCH_CPU / BATCH_GPU
    image_steps: int = IMAGE_STEPS
    lr: float = LR
    lr_schedule: str = "constant"     # constant | cosine (down to 0 at the last step: a short run ends less noisy)
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
    preview_every: int | None = None  # steps between writes of the network as it is to RUN/preview (live previews)
    progress: bool = True
    title: str | None = None          # the style's name on its model card; None: from the painting's file name
    artist: str | None = None


def model_config(cfg: TrainConfig) -> dict:
    if cfg.arch == "texture":
        return {"arch": "texture", "channels": max(1, round(TEXTURE_CHANNELS * cfg.width)),
                "texture_only": cfg.texture_only, "norm": cfg.norm}
    slugs = [p.slug for p in parse_paintings(cfg.style)]
    return {"arch": "transformer", "width": cfg.width, "num_residual_blocks": cfg.residual_blocks, "norm": cfg.norm,
            **({"styles": slugs} if len(slugs) > 1 else {})}


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
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next step boundary and returns cleanly. SIGUSR1
    ("that looks right") finishes the run early instead: held-out losses and the export, at the step reached."""

    def __init__(self):
        self.received = None
        self.finish_early = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a notebook worker): no handler
                pass

    def _handle(self, signum, frame):
        if signum == signal.SIGUSR1:
            self.finish_early = True
        else:
            self.received = signal.Signals(signum).name

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class History:
    """A CSV of one row per log interval (history.csv) or per sample grid (heldout.csv); rows past a resumed
    checkpoint are dropped."""

    COLUMNS = ("step", "images", "total", "content", "style", "tv", "images_per_s", "elapsed_s")

    def __init__(self, path: Path, start_step: int, columns=COLUMNS):
        self.path, self.columns = path, tuple(columns)
        rows = []
        if path.is_file() and start_step:
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= start_step]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict):
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temp file, then rename: a crash mid-write never leaves a truncated checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


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


def training_memory_format(precision: str, device: torch.device) -> torch.memory_format:
    """channels_last is what bf16 convolutions run fastest in, on a GPU and in oneDNN on a CPU alike."""
    return torch.channels_last if device.type == "cuda" or precision == "bf16" else torch.contiguous_format


def resolve(cfg: TrainConfig, device: torch.device, source=None) -> TrainConfig:
    """Fill the defaults that depend on the device and on --from's network, and check the combination, so the
    checkpoint stores real values."""
    cfg = TrainConfig(**asdict(cfg))
    cfg.style = [cfg.style] if isinstance(cfg.style, str) else list(cfg.style)
    paintings = parse_paintings(cfg.style)
    if cfg.texture_only:
        cfg.arch = "texture"
    if cfg.arch not in ("transformer", "texture"):
        raise TrainingError(f"--arch must be transformer or texture, not {cfg.arch!r}.")
    if cfg.arch == "texture" and (len(paintings) > 1 or source is not None):
        raise TrainingError("Several paintings and --from need --arch transformer (TextureNet has no family form).")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise TrainingError(f"--lr-schedule must be one of {LR_SCHEDULES}, not {cfg.lr_schedule!r}.")
    if cfg.loss_arch not in LOSS_LAYERS:
        raise TrainingError(f"--loss-arch must be one of {sorted(LOSS_LAYERS)}, not {cfg.loss_arch!r}.")
    if source is not None:
        for key, theirs in (("width", source.width), ("residual_blocks", source.num_residual_blocks)):
            if key == "width" and cfg.width is not None and cfg.width > theirs:
                continue  # a wider network starts as the narrow one, widened (training.start.widen)
            if getattr(cfg, key) not in (None, theirs):
                raise TrainingError(f"--from {cfg.from_network} is a network of {key.replace('_', ' ')} {theirs}, "
                                    f"not {getattr(cfg, key)}; leave --{key.replace('_', '-')} out to use its own"
                                    f"{' (a wider --width widens it)' if key == 'width' else ''}.")
            setattr(cfg, key, theirs)
        cfg.norm_only_images = NORM_ONLY_IMAGES if cfg.norm_only_images is None else cfg.norm_only_images
    cfg.width = 1.0 if cfg.width is None else cfg.width
    cfg.residual_blocks = 5 if cfg.residual_blocks is None else cfg.residual_blocks
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
        run = Run(cfg, env)
        return run.finish(*run.loop())
    finally:
        env.close()


class Run:
    """One training run in three parts: set-up (`__init__`: checkpoint, loss and paintings, photos, network), the
    loop (`loop`) and the finish (`finish`: held-out losses, recipe, export)."""

    def __init__(self, cfg: TrainConfig, env: Dist):
        self.env, self.device, self.say = env, env.device, _printer(env.main)
        self.signal = None  # the signal that stopped the loop, if one did
        self.run_dir = Path(cfg.out)
        self.ckpt_path = self.run_dir / CHECKPOINT
        ckpt = self._read_checkpoint(cfg.resume)
        source = load_source(cfg.from_network) if cfg.from_network else None
        self.cfg = resolve(cfg, self.device, source)
        self.paintings: list[Painting] = parse_paintings(self.cfg.style)
        self.family = len(self.paintings) > 1
        self.texture = self.cfg.arch == "texture"
        if env.main:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        # Loss network and paintings first: a missing weights file or a bad painting fails before minutes of decoding.
        self.loss_fn = self._build_loss(ckpt)
        self._build_data()
        self._build_network(ckpt, source if ckpt is None else None)

    def _read_checkpoint(self, resume: bool) -> dict | None:
        if not self.ckpt_path.is_file():
            return None
        if not resume:
            raise TrainingError(f"{self.run_dir} already holds a training run; pass --resume to continue it or "
                                f"choose another --out.")
        return torch.load(self.ckpt_path, map_location="cpu", weights_only=True)  # our own file, tensors only

    def _build_loss(self, ckpt) -> PerceptualLoss:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)  # a "random" loss network (tests) must be the same one on every (re)start
        loss_fn = perceptual_loss(cfg.loss_arch, cfg.loss_weights, content_weight=cfg.content_weight,
                                  style_weight=cfg.style_weight, tv_weight=cfg.tv_weight).to(self.device)
        cfg.content_weight, cfg.style_weight = loss_fn.content_weight, loss_fn.style_weight  # what was used
        if ckpt is not None:
            then = {f.name: ckpt["config"].get(f.name, f.default) for f in fields(cfg)}  # newer fields: defaults
            changed = [f"{name} ({then[name]!r} → {getattr(cfg, name)!r})" for name in then
                       if name not in RUNTIME_FIELDS | CARD_FIELDS and then[name] != getattr(cfg, name)]
            if changed:
                raise TrainingError(f"Cannot resume {self.run_dir} with a different recipe: {', '.join(changed)}.")
        images = [load_painting(p.path, self.style_size(p)).to(self.device) for p in self.paintings]  # fp32, once
        if self.family:
            loss_fn.set_styles(images, [self.style_weight(p) for p in self.paintings])
        else:
            loss_fn.style_weight = self.style_weight(self.paintings[0])
            loss_fn.set_style(images[0])
        return loss_fn

    def style_weight(self, p: Painting) -> float:
        return self.cfg.style_weight if p.style_weight is None else p.style_weight

    def style_size(self, p: Painting) -> int:
        return self.cfg.style_size if p.style_size is None else p.style_size

    def _build_data(self) -> None:
        """Photos: one process per node decodes; the others wait and then open the same cache file."""
        cfg, env = self.cfg, self.env
        min_side = math.ceil(cfg.crop * D.MIN_SIDE_FACTOR)
        if env.local_rank != 0:
            env.barrier()
        cache = D.build_cache(cfg.data, prep_side=cfg.prep_side, min_side=min_side, cache_dir=cfg.cache_dir,
                              workers=cfg.data_workers, progress=cfg.progress and env.main)
        if env.local_rank == 0:
            env.barrier()
        n = cache.count
        if n < 2:
            raise TrainingError(f"Only {n} usable photo(s) in {cfg.data} ({len(cache.skipped)} skipped); need at "
                                f"least 2.")
        self.say(f"data: {n} photos from {cfg.data} ({len(cache.skipped)} skipped as unreadable or smaller than "
                 f"{min_side} px), {'reused' if cache.reused else 'built'} cache {cache.path}")
        self.n_held = min(cfg.heldout, n // 5)
        held = np.unique(np.linspace(0, n - 1, max(self.n_held, 1)).round().astype(int)) if self.n_held \
            else np.arange(min(n, 4))
        pool = np.setdiff1d(np.arange(n), held) if self.n_held else np.arange(n)
        pixels = D.to_device(cache, self.device)
        self.sampler = D.BatchSampler(pixels, pool, batch_size=cfg.batch_size, crop=cfg.crop, seed=cfg.seed,
                                      rank=env.rank, world_size=env.world)
        self.heldout = D.centre_crops(pixels, held, cfg.crop).to(self.device)
        self.cache = cache

    def _build_network(self, ckpt, source) -> None:
        cfg, device, cuda = self.cfg, self.device, self.device.type == "cuda"
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        net = build_model(model_config(cfg)).to(device)
        if source is not None:
            if source.width < cfg.width:
                self.say(f"--from: widened from width {source.width} to {cfg.width} (Net2Net)")
                source = widen(source, cfg.width, seed=cfg.seed)
            self.say(initial_weights(net, source, [p.slug for p in self.paintings]))
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
        self.memory_format = training_memory_format(cfg.precision, device)
        self.net = net.to(memory_format=self.memory_format)
        self.loss_fn = self.loss_fn.to(memory_format=self.memory_format)
        self.opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=cuda)
        self.start_step = 0
        if ckpt is not None:
            net.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
            self.start_step = ckpt["step"]
            torch.set_rng_state(ckpt["rng"]["torch"])
            if cuda and ckpt["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
            self.say(f"resumed {self.run_dir} at step {self.start_step}")
        self.convolutions = [p for m in net.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters()]
        self.norms_only = None  # set by _enter_phase
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        self.step_losses = torch.compile(self._losses) if cfg.compile else self._losses
        self.g = cfg.batch_size * self.env.world
        self.total_steps = math.ceil(cfg.image_steps / self.g)

    def _enter_phase(self, step: int) -> None:
        """--from: only the norms' scale/shift learn for the first norm_only_images, then every weight. Frozen
        convolutions get no weight gradients at all (cheaper steps), and Adam skips parameters without one."""
        norms_only = bool(self.cfg.norm_only_images) and step * self.g < self.cfg.norm_only_images
        if norms_only == self.norms_only:
            return
        self.norms_only = norms_only
        for p in self.convolutions:
            p.requires_grad_(not norms_only)
        self.model = self.net
        if self.env.world > 1:  # DDP fixes its parameter set when wrapped: wrap again at the switch
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _set_lr(self, step: int) -> None:
        """The learning rate of `step` (a function of the step alone, so --resume stays exact)."""
        if self.cfg.lr_schedule == "cosine":
            for group in self.opt.param_groups:
                group["lr"] = self.cfg.lr * 0.5 * (1 + math.cos(math.pi * step / self.total_steps))

    # --------------------------------------------------------------------------------------------- one step
    def paint(self, model, x, style_ids, generator):
        if self.texture:
            return model(x, generator=generator)
        return model(x, style_ids) if self.family else model(x)

    def _losses(self, x, style_ids, generator) -> dict:
        y = self.paint(self.model, x, style_ids, generator)
        return self.loss_fn(y, None if self.cfg.texture_only else self.loss_fn.content_targets(x), style_ids)

    def style_ids(self, step: int) -> torch.Tensor | None:
        """A family's paintings for this rank's images at `step`: global position modulo the number of paintings,
        so every batch mixes paintings and each gets the same share of the budget."""
        if not self.family:
            return None
        first = step * self.g + self.env.rank * self.cfg.batch_size
        return torch.arange(first, first + self.cfg.batch_size, device=self.device) % len(self.paintings)

    def noise(self, step: int, stream: int):
        """TextureNet noise: a pure function of (seed, step, stream), like the batches."""
        if not self.texture:
            return None
        return torch.Generator(self.device).manual_seed(D.derive_seed(self.cfg.seed, step, stream))

    def checkpoint(self, step: int) -> None:
        if self.env.main:
            cuda = self.device.type == "cuda"
            rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if cuda else None}
            save_checkpoint(self.ckpt_path, {"model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                                             "step": step, "config": asdict(self.cfg), "rng": rng,
                                             "data": {"count": self.cache.count, "cache": self.cache.path.stem}})

    @torch.no_grad()
    def paint_heldout(self) -> tuple[list[torch.Tensor], dict[str, dict]]:
        """Each painting's output on the held-out photos, and its loss terms there (weighted as in training). In
        fp32 whatever the training precision, so that runs in fp32 and bf16 compare."""
        self.net.eval()
        outputs, losses = [], {}
        for k, painting in enumerate(self.paintings):
            ids = torch.full((len(self.heldout),), k, device=self.device) if self.family else None
            y = self.paint(self.net, self.heldout.contiguous(memory_format=self.memory_format), ids,
                           self.noise(0, 0x5A))
            terms = self.loss_fn(y, None if self.cfg.texture_only else self.heldout, ids)
            outputs.append(y.float())
            losses[painting.slug] = {f"{HELDOUT_PREFIX}{name}": float(v) for name, v in terms.items()}
        self.net.train()
        return outputs, losses

    def samples(self, step: int) -> None:
        """A sample grid (photos, then each painting's output) and a row of held-out losses in heldout.csv."""
        if not self.env.main:
            return
        outputs, losses = self.paint_heldout()
        grid = torch.cat(outputs) if self.cfg.texture_only else torch.cat([self.heldout.float(), *outputs])
        save_image(grid.cpu(), self.run_dir / "samples" / f"step_{step:07d}.jpg", nrow=len(self.heldout))
        self.curve.append({"step": step, "images": step * self.g, **mean_terms(losses)})

    # ------------------------------------------------------------------------------------------------ loop
    def loop(self) -> tuple[str, int]:
        """Train to the budget, or until a signal or --stop-at; returns (status, step reached)."""
        cfg, env = self.cfg, self.env
        history = History(self.run_dir / HISTORY, self.start_step) if env.main else None
        self.curve = History(self.run_dir / HELDOUT_CURVE, self.start_step, CURVE_COLUMNS) if env.main else None
        stop, status = StopSignal(), "finished"
        bar = tqdm(total=self.total_steps * self.g, initial=self.start_step * self.g, unit="img",
                   disable=not (env.main and cfg.progress), dynamic_ncols=True, desc=self.run_dir.name)
        log = RunningLog(self.start_step)
        self.net.train()
        step = self.start_step
        try:
            while step < self.total_steps:
                self._enter_phase(step)
                x = self.sampler.batch(step).to(self.device, non_blocking=True)
                with self.autocast:
                    terms = self.step_losses(x.contiguous(memory_format=self.memory_format), self.style_ids(step),
                                             self.noise(step, 0x7E + env.rank))
                self.opt.zero_grad(set_to_none=True)
                terms["total"].backward()
                self._set_lr(step)
                self.opt.step()
                log.add(terms)
                step += 1
                bar.update(self.g)
                at_log = step % cfg.log_every == 0 or step == self.total_steps
                if at_log:
                    row = log.row(step, self.g, env)
                    if history:
                        history.append(row)
                    bar.set_postfix({k: f"{float(row[k]):.3g}" for k in log.keys}, refresh=False)
                # Under DDP every rank must stop at the same step, so the signal flag is agreed on at log steps.
                stopping = (env.any(stop.received is not None) if at_log else False) if env.world > 1 \
                    else stop.received is not None
                stopping = stopping or (cfg.stop_at is not None and cfg.stop_at <= step < self.total_steps)
                finishing = stop.finish_early and env.world == 1  # "looks right": finish here, exported
                if stopping or finishing or step % cfg.checkpoint_every == 0 or step == self.total_steps:
                    self.checkpoint(step)
                if step % cfg.sample_every == 0 or step == self.total_steps:
                    self.samples(step)
                if cfg.preview_every and step % cfg.preview_every == 0 and env.main:
                    self.preview()
                if finishing:
                    break
                if stopping:
                    status = "interrupted" if stop.received else "stopped"
                    self.signal = stop.received
                    break
        finally:
            bar.close()
            stop.restore()
        self.loop_s = time.perf_counter() - log.t_start
        return status, step

    # ---------------------------------------------------------------------------------------------- finish
    def finish(self, status: str, step: int) -> dict:
        result = {"status": status, "run_dir": self.run_dir, "step": step, "total_steps": self.total_steps}
        if status != "finished":
            self.say(f"{'got ' + self.signal + ': ' if self.signal else ''}stopped at step {step}/"
                     f"{self.total_steps}; checkpoint saved in {self.ckpt_path}. Continue with the same command plus "
                     f"--resume.")
            self.env.barrier()
            return result
        if self.env.main:
            outputs, per_style = self.paint_heldout()
            ips = (step - self.start_step) * self.g / self.loop_s if step > self.start_step else None
            metrics = {**mean_terms(per_style), "steps": step, "images_seen": step * self.g,
                       WALL_TIME: round(self.loop_s, 2), SPEED: round(ips, 2) if ips else None,
                       DEVICE: _device_name(self.device), "world_size": self.env.world,
                       "heldout_images": int(self.n_held)}
            if self.family:
                metrics["per_style"] = per_style
            recipe = self.recipe()
            write_run_summary(self.run_dir, recipe, metrics)
            result.update(metrics=metrics, recipe=recipe, export=self.export(recipe, metrics, outputs))
            self.say(f"done: {step} steps, {metrics[SPEED]} img/s, held-out total loss "
                     f"{metrics[HELDOUT_PREFIX + 'total']:.4g}; exported to {result['export']}")
        self.env.barrier()
        return result

    def recipe(self) -> dict:
        cfg, first = self.cfg, self.paintings[0]
        recipe = {**{k: v for k, v in asdict(cfg).items() if k not in RUNTIME_FIELDS | {"style", "data"}},
                  STYLE_IMAGE: Path(first.path).name, DATA_FOLDER: Path(cfg.data).name, "images": self.cache.count,
                  "skipped": len(self.cache.skipped), "loss_network": Path(self.loss_fn.vgg.source).name,
                  "content_layers": list(self.loss_fn.content_layers), "style_layers": list(self.loss_fn.style_layers),
                  "model": model_config(cfg), "global_batch": self.g, "total_steps": self.total_steps,
                  "optimizer": "Adam", "style_weight": self.style_weight(first), "style_size": self.style_size(first)}
        if self.family:  # absolute local paths say nothing on a model card: file names only
            recipe["paintings"] = [{"slug": p.slug, STYLE_IMAGE: Path(p.path).name,
                                    "style_weight": self.style_weight(p), "style_size": self.style_size(p)}
                                   for p in self.paintings]
        return recipe

    def exportable(self) -> torch.nn.Module:
        """A plain fp32 CPU copy of the network in eval mode (no DDP/compile wrapper, no channels_last)."""
        model = build_model(model_config(self.cfg))
        model.load_state_dict({k: v.float().cpu() for k, v in self.net.state_dict().items()})
        return model.eval()

    def preview(self) -> None:
        """RUN/preview: the (first painting's) network as it is now, for a live preview of a run in progress."""
        model = self.exportable()
        export_preview(model.style_network(0) if self.family else model, self.run_dir)

    def export(self, recipe: dict, metrics: dict, outputs: list[torch.Tensor]) -> Path:
        """fp32 + fp16 Hub folders per painting (weights, config.json, model card, painting, samples) via
        training.publish; a family also keeps itself in run_dir/family (for --from and for continuing)."""
        model = self.exportable()
        if not self.family:
            return Path(export_run(model, self.run_dir, style_image_path=Path(self.paintings[0].path),
                                   recipe=recipe, metrics=metrics))
        heldout = self.heldout.float().cpu()
        styles = []
        for k, (p, y) in enumerate(zip(self.paintings, outputs)):
            own = {key: recipe["paintings"][k][key] for key in (STYLE_IMAGE, "style_weight", "style_size")}
            styles.append({"slug": p.slug, "painting": Path(p.path), "recipe": {**recipe, **own, "family_index": k},
                           "metrics": {**{m: v for m, v in metrics.items() if m != "per_style"},
                                       **metrics["per_style"][p.slug]},
                           "samples": [make_grid(torch.cat([heldout, y.cpu()]), nrow=len(heldout))]})
        return Path(export_family(model, self.run_dir, styles=styles, recipe=recipe, metrics=metrics))


def mean_terms(per_style: dict[str, dict]) -> dict:
    """The loss terms averaged over a family's paintings (one painting: its own terms)."""
    rows = list(per_style.values())
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


class RunningLog:
    """Loss terms summed on the device between log lines (no host sync per step) and the timing of each line."""

    def __init__(self, step: int):
        self.sums, self.keys, self.step_log = {}, [], step
        self.t_start = self.t_log = time.perf_counter()

    def add(self, terms: dict) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
        self.keys = list(terms)

    def row(self, step: int, g: int, env: Dist) -> dict:
        avg = env.mean({k: v / (step - self.step_log) for k, v in self.sums.items()})
        now = time.perf_counter()
        row = {"step": step, "images": step * g, "elapsed_s": round(now - self.t_start, 3),
               "images_per_s": round((step - self.step_log) * g / (now - self.t_log), 2),
               **{k: f"{float(v):.6g}" for k, v in avg.items()}}
        self.sums, self.t_log, self.step_log = {}, now, step
        return row


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _printer(enabled: bool):
    def say(msg: str):
        if enabled:
            tqdm.write(msg, file=sys.stderr)  # stderr, like the bar: stdout stays clean for scripts
    return say
