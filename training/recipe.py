"""What a run learns (`Recipe`) and how this particular process runs it (`RunOptions`), kept apart.

    recipe = Recipe.from_json("training/recipes/gallery.json")     # unknown keys are refused
    recipe = replace(recipe, image_steps=8000)                      # flags override the file (training.cli)
    recipe.model_config()              # the network's config.json dict: the one place it is built
    recipe.perceptual_loss(device)     # the loss, without style targets: the one place it is built

A Recipe is everything that changes the weights a run ends with: the paintings and photos, the network, the
budget, the optimiser, the loss. Two runs of the same recipe and seed learn the same network, so a checkpoint may
only be resumed under its own recipe (title and artist excepted: they are the card's words, not the weights).
`RunOptions` may change between a run and its --resume: where the run lives, how often it logs, checkpoints and
samples, the device and the data cache. `Recipe.resolved` fills the defaults that depend on the device and on
--from's network, so that what a checkpoint and recipe.json record are real values.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from fastnst.device import pick_precision
from fastnst.errors import FastNSTError
from fastnst.losses import LOSS_LAYERS, TV_WEIGHT, PerceptualLoss, default_weights
from fastnst.vgg import VGGFeatures

from . import data as D
from .paintings import parse_paintings

# Johnson et al. 2016 (and pytorch/examples' fast_neural_style), unless a comment says otherwise.
CROP = 256
IMAGE_STEPS = 160_000       # 2 epochs of COCO train2014's ~80k photos
BATCH_CPU, BATCH_GPU = 4, 16
LR = 1e-3
LR_SCHEDULES = ("constant", "cosine")
STYLE_SIZE = 512            # the painting is downscaled so its longer side is at most this (0: as is)
HELDOUT = 4                 # fixed photos kept out of training: sample grids and held-out losses
NORM_ONLY_IMAGES = 1_000    # --from: image-steps that fit only the new scale/shift before all weights train
LOG_EVERY, CHECKPOINT_EVERY, SAMPLE_EVERY = 50, 500, 1000
TEXTURE_CHANNELS = 8        # TextureNet's per-scale channels at width 1 (Ulyanov et al. 2016)
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"  # shipped recipes (package data)
CARD_FIELDS = ("title", "artist")  # in the recipe (they name the style) but free to change on --resume


class TrainingError(FastNSTError, ValueError):
    """A training run cannot start or continue as asked."""


@dataclass
class Recipe:
    style: list[str] = field(default_factory=list)  # painting(s): path[:weight=W,size=S] (training.paintings)
    data: str | None = None           # photos: a folder or a listing file
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
    palette_weight: float = 0.0       # fastnst.losses.palette_loss: the painting's colours, apart from its texture
    gamut_weight: float = 0.0         # fastnst.losses.gamut_loss: no colour far from all of the painting's
    content_layers: list | None = None  # None: the loss network's own (fastnst.losses.LOSS_LAYERS)
    stability_weight: float = 0.0     # training.stability: paint a moved photo as the moved painting (video)
    style_size: int = STYLE_SIZE
    loss_arch: str = "vgg16"
    loss_weights: str | None = None   # safetensors path | "imagenet" | "random"; None: $FASTNST_VGG_WEIGHTS or imagenet
    seed: int = 0
    precision: str = "auto"           # auto (fastnst.device.pick_precision) | bf16 | fp16 (GradScaler) | fp32
    heldout: int = HELDOUT
    title: str | None = None          # the style's name on its model card; None: from the painting's file name
    artist: str | None = None

    # ------------------------------------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, values: dict, source: str = "the recipe") -> Recipe:
        if not isinstance(values, dict):
            raise TrainingError(f"{source} must hold a JSON object of recipe keys, not {type(values).__name__}.")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise TrainingError(f"{source} has unknown key(s) {', '.join(map(repr, unknown))}; a recipe holds only "
                                f"{', '.join(f.name for f in fields(cls))}.")
        values = dict(values)
        if isinstance(values.get("style"), str):
            values["style"] = [values["style"]]
        for f in fields(cls):  # JSON writes 3.0 as 3: a float field gets a float, as its flag would give it
            if "float" in str(f.type) and isinstance(values.get(f.name), int) and not isinstance(values[f.name], bool):
                values[f.name] = float(values[f.name])
        return cls(**values)

    @classmethod
    def from_json(cls, path) -> Recipe:
        return cls.from_dict(cls.read_json(path), f"The recipe {path}")

    @staticmethod
    def read_json(path) -> dict:
        """A recipe file's values as written (not checked, no defaults filled in)."""
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise TrainingError(f"Cannot read the recipe {path}: {err.strerror or err}.") from err
        except ValueError as err:
            raise TrainingError(f"The recipe {path} is not valid JSON: {err}.") from err

    @classmethod
    def from_record(cls, record: dict) -> Recipe:
        """The recipe part of what a run recorded (recipe.json, fastnst.json's "recipe", a gallery entry's
        networks.<variant>.recipe); the record's other keys (what it ran on, derived values) are left out."""
        return cls.from_dict({k: v for k, v in record.items() if k in {f.name for f in fields(cls)}})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    def learned(self) -> dict:
        """The fields that must match for a --resume (all but the card's words)."""
        return {k: v for k, v in asdict(self).items() if k not in CARD_FIELDS}

    # ----------------------------------------------------------------------------------- what it builds
    def model_config(self) -> dict:
        """The network's config.json dict (`fastnst.models.build_model`) for a resolved recipe."""
        if self.arch == "texture":
            return {"arch": "texture", "channels": max(1, round(TEXTURE_CHANNELS * self.width)),
                    "texture_only": self.texture_only, "norm": self.norm}
        slugs = [p.slug for p in parse_paintings(self.style)]
        return {"arch": "transformer", "width": self.width, "residual_blocks": self.residual_blocks,
                "norm": self.norm, **({"styles": slugs} if len(slugs) > 1 else {})}

    def perceptual_loss(self, device=None, *, vgg: VGGFeatures | None = None) -> PerceptualLoss:
        """The training loss for `loss_arch` (fastnst.losses.LOSS_LAYERS), without style targets yet. Weights
        left as None fit the loss network's activation scale (fastnst.losses.default_weights): torchvision's VGG
        and the Caffe-converted files differ by orders of magnitude. `vgg`: a loss network to reuse (benches)."""
        if self.loss_arch not in LOSS_LAYERS:
            raise TrainingError(f"--loss-arch must be one of {sorted(LOSS_LAYERS)}, not {self.loss_arch!r}.")
        content_layers, style_layers = LOSS_LAYERS[self.loss_arch]
        content_layers = tuple(self.content_layers or content_layers)
        if vgg is None:
            vgg = VGGFeatures(self.loss_arch, layers=tuple(dict.fromkeys((*style_layers, *content_layers))),
                              weights=self.loss_weights)
        auto_content, auto_style = default_weights(vgg)
        loss = PerceptualLoss(vgg=vgg, content_layers=content_layers, style_layers=style_layers,
                              content_weight=auto_content if self.content_weight is None else self.content_weight,
                              style_weight=auto_style if self.style_weight is None else self.style_weight,
                              tv_weight=self.tv_weight, palette_weight=self.palette_weight,
                              gamut_weight=self.gamut_weight)
        return loss if device is None else loss.to(device)

    def resolved(self, device: torch.device, source=None) -> Recipe:
        """Defaults that depend on the device and on --from's network filled in, and the combination checked."""
        r = replace(self, style=list(self.style))
        if not r.style:
            raise TrainingError("Give at least one painting with --style (or \"style\" in --recipe).")
        if not r.data:
            raise TrainingError("Give the training photos with --data (or \"data\" in --recipe).")
        paintings = parse_paintings(r.style)
        if r.texture_only:
            r.arch = "texture"
        if r.arch not in ("transformer", "texture"):
            raise TrainingError(f"--arch must be transformer or texture, not {r.arch!r}.")
        if r.arch == "texture" and (len(paintings) > 1 or source is not None):
            raise TrainingError("Several paintings and --from need --arch transformer (TextureNet has no family form).")
        if r.lr_schedule not in LR_SCHEDULES:
            raise TrainingError(f"--lr-schedule must be one of {LR_SCHEDULES}, not {r.lr_schedule!r}.")
        if r.loss_arch not in LOSS_LAYERS:
            raise TrainingError(f"--loss-arch must be one of {sorted(LOSS_LAYERS)}, not {r.loss_arch!r}.")
        if source is not None:
            for key, theirs in (("width", source.width), ("residual_blocks", source.residual_blocks)):
                if key == "width" and r.width is not None and r.width > theirs:
                    continue  # a wider network starts as the narrow one, widened (training.start.widen)
                if getattr(r, key) not in (None, theirs):
                    raise TrainingError(f"--from {r.from_network} is a network of {key.replace('_', ' ')} {theirs}, "
                                        f"not {getattr(r, key)}; leave --{key.replace('_', '-')} out to use its own"
                                        f"{' (a wider --width widens it)' if key == 'width' else ''}.")
                setattr(r, key, theirs)
            r.norm_only_images = NORM_ONLY_IMAGES if r.norm_only_images is None else r.norm_only_images
        r.width = 1.0 if r.width is None else r.width
        r.residual_blocks = 5 if r.residual_blocks is None else r.residual_blocks
        r.batch_size = r.batch_size or (BATCH_GPU if device.type == "cuda" else BATCH_CPU)
        r.prep_side = r.prep_side or D.default_prep_side(r.crop)
        r.precision = pick_precision(r.precision, device)
        if r.crop < 16 or r.prep_side < r.crop:
            raise TrainingError(f"Need 16 <= crop <= prep side (got crop {r.crop}, prep side {r.prep_side}).")
        return r

    def total_steps(self, world: int = 1) -> int:
        """The budget in steps: image-steps over the global batch (a resolved recipe)."""
        return math.ceil(self.image_steps / (self.batch_size * world))


@dataclass
class RunOptions:
    """How this process runs a recipe; none of it changes what is learned, so any of it may change on --resume."""
    out: str
    resume: bool = False
    stop_at: int | None = None        # stop (with a checkpoint) once this step is reached: time-boxed sessions
    log_every: int = LOG_EVERY
    checkpoint_every: int = CHECKPOINT_EVERY
    sample_every: int = SAMPLE_EVERY
    preview_every: int | None = None  # steps between writes of the network as it is to RUN/preview (live previews)
    device: str = "auto"
    compile: bool = False
    cache_dir: str | None = None
    data_workers: int | None = None
    progress: bool = True

    def __post_init__(self):
        for flag in ("log_every", "checkpoint_every", "sample_every", "preview_every", "stop_at", "data_workers"):
            value = getattr(self, flag)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise TrainingError(f"--{flag.replace('_', '-')} must be a whole number of at least 1, not {value!r}.")


@dataclass
class TrainConfig:
    """A recipe and the options to run it with: what `training.train` takes."""
    recipe: Recipe
    options: RunOptions

    @classmethod
    def of(cls, **values) -> TrainConfig:
        """From flat keywords (`style=..., data=..., out=..., crop=...`), split between the two."""
        ours = {f.name for f in fields(Recipe)}
        theirs = {f.name for f in fields(RunOptions)}
        unknown = sorted(set(values) - ours - theirs)
        if unknown:
            raise TrainingError(f"Unknown training option(s) {', '.join(map(repr, unknown))}.")
        recipe = Recipe.from_dict({k: v for k, v in values.items() if k in ours})
        return cls(recipe, RunOptions(**{k: v for k, v in values.items() if k in theirs}))

    def flat(self) -> dict:
        """Both as one dict: the form a checkpoint stores (the same keys it always had)."""
        return {**asdict(self.recipe), **asdict(self.options)}


def shipped_recipe(name: str) -> Path:
    """A recipe that comes with the package: training/recipes/<name>.json."""
    return RECIPES_DIR / f"{name}.json"
