"""The paintings a run learns: `--style path[:weight=W,size=S]`, one or many (a family).

    --style starry_night.jpg                        style weight and size from --style-weight / --style-size
    --style the_scream.jpg:weight=2,size=384        this painting's own style weight and size

Each painting gets a slug from its file name (`The Scream.jpg` → `the-scream`): the name of its exported network
(`RUN/export/<slug>/`), so two paintings with the same slug are refused.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from fastnst.errors import FastNSTError
from fastnst.imageio import image_to_tensor, load_image, resize_max_side

OPTIONS = {"weight": float, "size": int}
SMALLEST_SIDE = 16  # the loss network's deepest style layer (relu5_1) sees the painting at 1/16 of its size
WIDEST_ASPECT = 4   # a longer strip than 4:1 is a border or a banner, not a painting whose texture we can learn


class PaintingError(FastNSTError, ValueError):
    """A --style argument cannot be used."""


@dataclass(frozen=True)
class Painting:
    path: str
    slug: str
    style_weight: float | None  # None: the run's --style-weight
    style_size: int | None      # None: the run's --style-size


def slug_of(path) -> str:
    return re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-") or "style"


def parse_painting(spec: str) -> Painting:
    """`path` or `path:key=value,...` (keys: weight, size) → Painting."""
    path, sep, options = spec.rpartition(":")
    if not sep or "=" not in options:  # no options (a ':' inside a path stays part of it)
        path, options = spec, ""
    values = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in OPTIONS:
            raise PaintingError(f"Unknown option {key.strip()!r} in --style {spec}; use weight=W and/or size=S.")
        try:
            values[key.strip()] = OPTIONS[key.strip()](value)
        except ValueError:
            raise PaintingError(f"--style {spec}: {key.strip()} must be a number, not {value!r}.") from None
    return Painting(path, slug_of(path), values.get("weight"), values.get("size"))


def parse_paintings(specs) -> list[Painting]:
    paintings = [parse_painting(s) for s in ([specs] if isinstance(specs, str) else specs)]
    if not paintings:
        raise PaintingError("Give at least one painting with --style.")
    seen = {}
    for p in paintings:
        if p.slug in seen:
            raise PaintingError(f"Two paintings have the same name {p.slug!r} ({seen[p.slug]} and {p.path}); "
                                f"rename one of the files.")
        seen[p.slug] = p.path
    return paintings


def check_painting(size: tuple[int, int], smallest_side: int = SMALLEST_SIDE, name: str = "The painting") -> None:
    """Refuse, in one sentence, a painting too small or too thin to learn a style from, before any work starts."""
    w, h = size
    if min(w, h) < smallest_side:
        raise PaintingError(f"{name} is {w}×{h} pixels; a style needs at least {smallest_side} pixels on its "
                            f"shorter side, so use a larger picture of it.")
    if max(w, h) > WIDEST_ASPECT * min(w, h):
        raise PaintingError(f"{name} is {w}×{h} pixels, longer than {WIDEST_ASPECT}:1; crop it to the painted "
                            f"part and try again.")


def load_painting(path, max_side: int) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], the longer side at most `max_side` (0: as is)."""
    if not Path(path).is_file():
        raise PaintingError(f"Style image {path} does not exist.")
    image = resize_max_side(load_image(path), max_side or None)
    check_painting(image.size, name=f"Style image {Path(path).name}")
    return image_to_tensor(image)
