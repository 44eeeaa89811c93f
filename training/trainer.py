"""Train a style, or a family of styles: Johnson et al. 2016's recipe, fault tolerant, single process or DDP.

    photos (uint8 cache) → random 256² crops → TransformerNet → VGG16 perceptual loss against the painting
    → Adam 1e-3, for a budget of 160k image-steps (2 epochs of COCO's 80k), whatever the batch size.

What is learned is a `training.recipe.Recipe`; how this process runs it (where, how often it logs, the device) is
`RunOptions`. Several paintings (`--style a.jpg --style b.jpg`) train one family network (Dumoulin et al. 2017:
shared convolutions, a scale/shift row per painting in every instance norm); every batch mixes paintings, each
image's painting is a pure function of (step, position), and the export writes one standalone network per
painting. `--from` starts from another network's convolutions (training.start): first only the new scale/shift
learn, for `norm_only_images`, then all weights.

The budget is counted in images, so `--batch-size` (or the number of GPUs) changes the number of steps, not the
amount of data seen. Batch size defaults to 4 on CPU (Johnson's) and 16 on a GPU (fills it better; Adam's step
size does not depend on the batch, so lr stays 1e-3).

Faults: every `checkpoint_every` steps, and on SIGINT/SIGTERM, the model, optimizer, step and RNG states are
written atomically (temp file + os.replace) to the run folder's checkpoint (training.checkpoint); `resume=True`
continues from it and reaches bitwise the same weights on CPU, because batches and noise are pure functions of
(seed, step). On CUDA it is close, not exact: cudnn.benchmark may pick other kernels after a restart, and the
backwards of nearest upsampling and reflection padding add with atomics, in no fixed order.

Speed: half-precision autocast and channels_last on GPUs (bf16 where native, else fp16 with a GradScaler) and
bf16 on CPUs where it is faster (`fastnst.device.pick_precision`; Gram matrices and losses stay fp32 in
fastnst.losses), cudnn.benchmark and fused Adam on GPUs, optional
torch.compile, the photo cache resident on the GPU, and no host sync except every `log_every` steps. The content
image only runs through VGG up to the content layer.
"""
import math
import time

import numpy as np
import torch
from torchvision.utils import save_image
from tqdm.auto import tqdm

from fastnst.device import AUTOCAST_DTYPES
from fastnst.formats import HELDOUT_PREFIX
from fastnst.losses import PerceptualLoss
from fastnst.models import build_model

from . import data as D
from .checkpoint import check_same_recipe, read_checkpoint, restore, save_checkpoint, snapshot
from .finish import finish, mean_terms, preview
from .paintings import Painting, load_painting, parse_paintings
from .recipe import (  # noqa: F401  (the defaults are re-exported: benches and older scripts import them here)
    BATCH_CPU,
    BATCH_GPU,
    CARD_FIELDS,
    CROP,
    IMAGE_STEPS,
    LR,
    LR_SCHEDULES,
    NORM_ONLY_IMAGES,
    Recipe,
    RunOptions,
    TrainConfig,
    TrainingError,
)
from .run_folder import HELDOUT_COLUMNS, CsvLog, RunFolder
from .stability import moved_pair, stability_loss
from .runtime import Dist, RunningLog, StopSignal, printer, training_memory_format
from .start import initial_weights, load_source, widen


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training; on completion export via training.publish. Returns a summary dict."""
    env = Dist(cfg.options.device)
    try:
        run = Run(cfg, env)
        return finish(run, *run.loop())
    finally:
        env.close()


class Run:
    """One training run: set-up (`__init__`: checkpoint, loss and paintings, photos, network), the loop (`loop`:
    `train_step` then `after_step`), held-out evaluation (`paint_heldout`); the finish (metrics, recipe record,
    export) is training.finish's, the checkpoint's format training.checkpoint's."""

    def __init__(self, cfg: TrainConfig, env: Dist):
        self.env, self.device, self.say = env, env.device, printer(env.main)
        self.opts = cfg.options
        self.signal = None  # the signal that stopped the loop, if one did
        self.folder = RunFolder(self.opts.out)
        self.run_dir = self.folder.root
        ckpt = read_checkpoint(self.folder, self.opts.resume)
        source = load_source(cfg.recipe.from_network) if cfg.recipe.from_network else None
        self.recipe = cfg.recipe.resolved(self.device, source)
        self.paintings: list[Painting] = parse_paintings(self.recipe.style)
        self.family = len(self.paintings) > 1
        self.texture = self.recipe.arch == "texture"
        if env.main:
            self.folder.samples.mkdir(parents=True, exist_ok=True)
        # Loss network and paintings first: a missing weights file or a bad painting fails before minutes of decoding.
        self.loss_fn = self._build_loss(ckpt)
        self._build_data()
        self._build_network(ckpt, source if ckpt is None else None)

    @property
    def cfg(self) -> TrainConfig:
        return TrainConfig(self.recipe, self.opts)

    def _build_loss(self, ckpt) -> PerceptualLoss:
        r = self.recipe
        torch.manual_seed(r.seed)  # a "random" loss network (tests) must be the same one on every (re)start
        loss_fn = r.perceptual_loss(self.device)
        r.content_weight, r.style_weight = loss_fn.content_weight, loss_fn.style_weight  # what was used
        if ckpt is not None:
            check_same_recipe(ckpt["config"], r, self.run_dir)
        images = [load_painting(p.path, self.style_size(p)).to(self.device) for p in self.paintings]  # fp32, once
        if self.family:
            loss_fn.set_styles(images, [self.style_weight(p) for p in self.paintings])
        else:
            loss_fn.style_weight = self.style_weight(self.paintings[0])
            loss_fn.set_style(images[0])
        return loss_fn

    def style_weight(self, p: Painting) -> float:
        return self.recipe.style_weight if p.style_weight is None else p.style_weight

    def style_size(self, p: Painting) -> int:
        return self.recipe.style_size if p.style_size is None else p.style_size

    def _build_data(self) -> None:
        """Photos: one process per node decodes; the others wait and then open the same cache file."""
        r, env = self.recipe, self.env
        min_side = D.min_side(r.crop)
        if env.local_rank != 0:
            env.barrier()
        cache = D.build_cache(r.data, prep_side=r.prep_side, min_side=min_side, cache_dir=self.opts.cache_dir,
                              workers=self.opts.data_workers, progress=self.opts.progress and env.main)
        if env.local_rank == 0:
            env.barrier()
        n = cache.count
        if n < 2:
            raise TrainingError(f"Only {n} usable photo(s) in {r.data} ({len(cache.skipped)} skipped); need at "
                                f"least 2.")
        self.say(f"data: {n} photos from {r.data} ({len(cache.skipped)} skipped as unreadable or smaller than "
                 f"{min_side} px), {'reused' if cache.reused else 'built'} cache {cache.path}")
        self.n_held = min(r.heldout, n // 5)
        held = D.heldout_indices(n, self.n_held) if self.n_held else np.arange(min(n, 4))
        pool = np.setdiff1d(np.arange(n), held) if self.n_held else np.arange(n)
        pixels = D.to_device(cache, self.device)
        self.sampler = D.BatchSampler(pixels, pool, batch_size=r.batch_size, crop=r.crop, seed=r.seed,
                                      rank=env.rank, world_size=env.world)
        self.heldout = D.centre_crops(pixels, held, r.crop).to(self.device)
        self.cache = cache

    def _build_network(self, ckpt, source) -> None:
        r, device, cuda = self.recipe, self.device, self.device.type == "cuda"
        torch.manual_seed(r.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        net = build_model(r.model_config()).to(device)
        if source is not None:
            if source.width < r.width:
                self.say(f"--from: widened from width {source.width} to {r.width} (Net2Net)")
                source = widen(source, r.width, seed=r.seed)
            self.say(initial_weights(net, source, [p.slug for p in self.paintings]))
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
        self.memory_format = training_memory_format(r.precision, device)
        self.net = net.to(memory_format=self.memory_format)
        self.loss_fn = self.loss_fn.to(memory_format=self.memory_format)
        self.opt = torch.optim.Adam(net.parameters(), lr=r.lr, fused=cuda)
        # fp16's narrow range underflows small gradients: scale the loss up and the gradients back (skipping a step
        # that overflowed). bf16 has fp32's range and needs none; a disabled scaler passes everything through.
        self.scaler = torch.amp.GradScaler(device.type, enabled=r.precision == "fp16")
        self.start_step = 0
        if ckpt is not None:
            self.start_step = restore(ckpt, net, self.opt, self.scaler, device)
            then = ckpt["config"].get("precision", r.precision)
            self.say(f"resumed {self.run_dir} at step {self.start_step}"
                     f"{f' in {r.precision} (it ran in {then})' if then != r.precision else ''}")
        self.convolutions = [p for m in net.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters()]
        self.norms_only = None  # set by _enter_phase
        self.autocast = torch.autocast(device.type, dtype=AUTOCAST_DTYPES.get(r.precision, torch.bfloat16),
                                       enabled=r.precision in AUTOCAST_DTYPES)
        self.step_losses = torch.compile(self._losses) if self.opts.compile else self._losses
        self.g = r.batch_size * self.env.world
        self.total_steps = r.total_steps(self.env.world)

    def checkpoint(self, step: int) -> None:
        if self.env.main:
            save_checkpoint(self.folder, snapshot(self.net, self.opt, self.scaler, step, self.cfg.flat(), self.cache,
                                                  self.device))

    # ----------------------------------------------------------------------------------- phase and schedule
    def _enter_phase(self, step: int) -> None:
        """--from: only the norms' scale/shift learn for the first norm_only_images, then every weight. Frozen
        convolutions get no weight gradients at all (cheaper steps), and Adam skips parameters without one."""
        norms_only = bool(self.recipe.norm_only_images) and step * self.g < self.recipe.norm_only_images
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
        if self.recipe.lr_schedule == "cosine":
            for group in self.opt.param_groups:
                group["lr"] = self.recipe.lr * 0.5 * (1 + math.cos(math.pi * step / self.total_steps))

    # --------------------------------------------------------------------------------------------- one step
    def paint(self, model, x, style_ids, generator):
        if self.texture:
            return model(x, generator=generator)
        return model(x, style_ids) if self.family else model(x)

    def _losses(self, x, style_ids, generator, moves=None) -> dict:
        y = self.paint(self.model, x, style_ids, generator)
        terms = self.loss_fn(y, None if self.recipe.texture_only else self.loss_fn.content_targets(x), style_ids)
        if self.recipe.stability_weight:
            moved, motion = moved_pair(x, moves)
            terms["stability"] = self.recipe.stability_weight * stability_loss(
                y, self.paint(self.model, moved, style_ids, generator), motion)
            terms["total"] = terms["total"] + terms["stability"]
        return terms

    def style_ids(self, step: int) -> torch.Tensor | None:
        """A family's paintings for this rank's images at `step`: global position modulo the number of paintings,
        so every batch mixes paintings and each gets the same share of the budget."""
        if not self.family:
            return None
        first = step * self.g + self.env.rank * self.recipe.batch_size
        return torch.arange(first, first + self.recipe.batch_size, device=self.device) % len(self.paintings)

    def moves(self, step: int) -> torch.Generator | None:
        """The stability loss's shifts and grain at `step`: a pure function of (seed, step, rank), like the batches."""
        if not self.recipe.stability_weight:
            return None
        return torch.Generator(self.device).manual_seed(D.derive_seed(self.recipe.seed, step, 0x5B + self.env.rank))

    def noise(self, step: int, stream: int):
        """TextureNet noise: a pure function of (seed, step, stream), like the batches."""
        if not self.texture:
            return None
        return torch.Generator(self.device).manual_seed(D.derive_seed(self.recipe.seed, step, stream))

    def train_step(self, step: int) -> dict:
        """One optimiser step; its phase, batch, noise and learning rate are functions of `step` alone, which is
        what makes a resumed run bitwise the same."""
        self._enter_phase(step)
        x = self.sampler.batch(step, self.device)
        with self.autocast:
            terms = self.step_losses(x.contiguous(memory_format=self.memory_format), self.style_ids(step),
                                     self.noise(step, 0x7E + self.env.rank), self.moves(step))
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self._set_lr(step)
        self.scaler.step(self.opt)
        self.scaler.update()
        return terms

    # ------------------------------------------------------------------------------------------- held out
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
            terms = self.loss_fn(y, None if self.recipe.texture_only else self.heldout, ids)
            outputs.append(y.float())
            losses[painting.slug] = {f"{HELDOUT_PREFIX}{name}": float(v) for name, v in terms.items()}
        self.net.train()
        return outputs, losses

    def samples(self, step: int) -> None:
        """A sample grid (photos, then each painting's output) and a row of held-out losses in heldout.csv."""
        if not self.env.main:
            return
        outputs, losses = self.paint_heldout()
        grid = torch.cat(outputs) if self.recipe.texture_only else torch.cat([self.heldout.float(), *outputs])
        save_image(grid.cpu(), self.folder.sample(step), nrow=len(self.heldout))
        self.curve.append({"step": step, "images": step * self.g, **mean_terms(losses)})

    # ------------------------------------------------------------------------------------------------ loop
    def loop(self) -> tuple[str, int]:
        """Train to the budget, or until a signal or --stop-at; returns (status, step reached)."""
        main = self.env.main
        self.history = CsvLog(self.folder.history, self.start_step) if main else None
        self.curve = CsvLog(self.folder.heldout, self.start_step, HELDOUT_COLUMNS) if main else None
        self.bar = tqdm(total=self.total_steps * self.g, initial=self.start_step * self.g, unit="img",
                        disable=not (main and self.opts.progress), dynamic_ncols=True, desc=self.run_dir.name)
        self.log, stop, status = RunningLog(self.start_step), StopSignal(), None
        self.net.train()
        step = self.start_step
        try:
            while step < self.total_steps and status is None:
                terms = self.train_step(step)
                step += 1
                status = self.after_step(step, terms, stop)
        finally:
            self.bar.close()
            stop.restore()
        self.loop_s = time.perf_counter() - self.log.t_start
        return status or "finished", step

    def after_step(self, step: int, terms: dict, stop: StopSignal) -> str | None:
        """Log, checkpoint, sample and preview as due after `step`; returns the status to stop with, or None."""
        opts, env = self.opts, self.env
        self.log.add(terms)
        self.bar.update(self.g)
        at_log = step % opts.log_every == 0 or step == self.total_steps
        if at_log:
            row = self.log.row(step, self.g, env)
            if self.history:
                self.history.append(row)
            self.bar.set_postfix({k: f"{float(row[k]):.3g}" for k in self.log.keys}, refresh=False)
        # Under DDP every rank must stop at the same step, so the signal flag is agreed on at log steps.
        stopping = (env.any(stop.received is not None) if at_log else False) if env.world > 1 \
            else stop.received is not None
        stopping = stopping or (opts.stop_at is not None and opts.stop_at <= step < self.total_steps)
        finishing = stop.finish_early and env.world == 1  # "looks right": finish here, exported
        if stopping or finishing or step % opts.checkpoint_every == 0 or step == self.total_steps:
            self.checkpoint(step)
        if step % opts.sample_every == 0 or step == self.total_steps:
            self.samples(step)
        if opts.preview_every and step % opts.preview_every == 0 and env.main:
            preview(self)
        if finishing:
            return "finished"
        if stopping:
            self.signal = stop.received
            return "interrupted" if stop.received else "stopped"
        return None


__all__ = ["CARD_FIELDS", "Recipe", "Run", "RunOptions", "TrainConfig", "TrainingError", "train"]
