"""Inference: `stylize(image, style)` for photos, `stylize_tensor(batch, style)` for video frames.

Execution modes: a GPU defaults to "compile" (half precision + channels_last + torch.compile; eager bf16 is
slower than fp32 there because of InstanceNorm, so compilation is what makes half precision pay), falling back to
fp32 eager if compilation fails. The half precision is the card's own (`fastnst.device.pick_precision`): bf16
where it is native (compute capability 8.0 on), fp16 before (a T4); "fp16" and "bf16" name one for eager runs.
ZeroGPU does not support torch.compile, so there a GPU defaults to fp32 eager. A CPU on which bf16 is measurably
faster (timed once per process, `fastnst.device.cpu_bf16_is_faster`) defaults to "bf16": bf16 autocast +
channels_last, visually identical to fp32; other CPUs use "fp32" (emulated bf16 is slower, and some CPUs with
native bf16 run it slower than fp32 too). `FASTNST_MODE` overrides the choice. CPU compilation recompiles for
every new image size, which takes minutes, so it is never a default. The measurements behind these choices are in
bench/RESULTS.md.

Tiling: images above a pixel budget (AUTO_TILE_PIXELS, or what a GPU's free memory allows) are painted tile
by tile, without seams, by `fastnst.tiling.tiled_forward`.
"""
import os
import threading
import warnings
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import AUTOCAST_DTYPES, memory_plan, pick_device, pick_precision
from .errors import FastNSTError, InvalidOptionError
from .imageio import load_image, resize_max_side, tensor_to_image
from .styles import Style, load_style
from .tiling import tiled_forward

# Above this many pixels, tile automatically; on a GPU at most what its free memory allows (auto_tiling).
AUTO_TILE_PIXELS = {"cpu": 4_200_000, "cuda": 16_000_000}
DEFAULT_TILE = {"cpu": 512, "cuda": 1024}  # tile core size in pixels
MODES = ("fp32", "bf16", "fp16", "compile")
# A network can tell where the picture ends (the padding) and may learn to paint a band of its own along the edge.
# So the photo is painted inside a mirrored frame of BORDER px, cut off afterwards.
BORDER = 32
BRUSH_RANGE = (0.5, 4.0)  # brush sizes offered: the network's own strokes × 0.5 … × 4


def frame_width(h: int, w: int) -> int:
    """The mirrored frame around an h×w picture: BORDER, less where the picture is too small to mirror that far."""
    return max(0, min(BORDER, h - 1, w - 1))


def on_zero_gpu() -> bool:
    """A ZeroGPU Space (what Gradio itself checks): no torch.compile there."""
    return os.environ.get("SPACES_ZERO_GPU") == "true"


def default_mode(device: torch.device) -> str:
    if os.environ.get("FASTNST_MODE"):
        mode = os.environ["FASTNST_MODE"]
    elif device.type == "cuda":
        mode = "fp32" if on_zero_gpu() else "compile"
    else:
        mode = "bf16" if pick_precision("auto", device) == "bf16" else "fp32"
    if mode not in MODES:
        raise InvalidOptionError(f"FASTNST_MODE must be one of {', '.join(MODES)}, not {mode!r}.")
    return mode


def auto_tiling(device: torch.device) -> tuple[int, int]:
    """(pixels painted untiled at most, tile side above that) on `device`: on a GPU also what its free memory
    allows (`fastnst.device.memory_plan`), counting every image of a batch."""
    untiled, tile = AUTO_TILE_PIXELS[device.type], DEFAULT_TILE[device.type]
    if device.type == "cuda":
        plan = memory_plan(torch.device("cuda", torch.cuda.current_device()) if device.index is None else device)
        untiled, tile = min(untiled, plan.untiled_pixels), min(tile, plan.tile)
    return untiled, tile


def half_precision(device: torch.device) -> str:
    """The half precision "compile" runs in: the GPU's own (bf16 or fp16), bf16 on a CPU."""
    return pick_precision("auto", device) if device.type == "cuda" else "bf16"


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype:
    return AUTOCAST_DTYPES[half_precision(device) if mode == "compile" else mode]


# Prepared networks (channels_last, autocast, compiled), the least recently used evicted first. An entry holds its
# network (so its id cannot be reused while it is cached) and is the only thing here that does: evicting it frees
# the network unless a Style still holds it. A mode that failed for a network is remembered in its place, so a failed
# compile (out of memory included) is not retried on every request.
PREPARED_MAX = 6
_prepared: "OrderedDict[tuple, object]" = OrderedDict()
_prepared_lock = threading.Lock()


class Failed(NamedTuple):
    """A mode that failed for a network on a device: its requests go straight to fp32 eager."""
    network: nn.Module
    reason: str


def cache_key(network: nn.Module, device: torch.device, mode: str) -> tuple:
    """What a prepared network is specific to: the network itself, the device and the precision it runs in."""
    dtype = torch.float32 if mode == "fp32" else autocast_dtype(mode, device)
    return id(network), str(device), mode, dtype


def _make_runner(network: nn.Module, device: torch.device, mode: str):
    """A function (batch, **network keywords) → output: bf16/fp16 autocast + channels_last, or that compiled."""
    net = network.to(memory_format=torch.channels_last)
    fn = torch.compile(net, dynamic=True) if mode == "compile" else net

    def run(x, fn=fn, dtype=autocast_dtype(mode, device), **kw):
        with torch.autocast(device.type, dtype=dtype):
            return fn(x.contiguous(memory_format=torch.channels_last), **kw).float()
    run.network = network  # what keeps the id in the key valid while the entry lives
    return run


def _runner(network: nn.Module, device: torch.device, mode: str):
    """The function to run `network` in `mode` with: itself for fp32, a prepared one (cached) otherwise, None if
    that mode already failed for it here."""
    if mode == "fp32":
        return network
    key = cache_key(network, device, mode)
    with _prepared_lock:
        entry = _prepared.get(key)
        if entry is None:
            entry = _prepared[key] = _make_runner(network, device, mode)
            while len(_prepared) > PREPARED_MAX:
                _prepared.popitem(last=False)
        _prepared.move_to_end(key)
    return None if isinstance(entry, Failed) else entry


def _remember_failure(network: nn.Module, device: torch.device, mode: str, err: Exception) -> None:
    with _prepared_lock:
        _prepared[cache_key(network, device, mode)] = Failed(network, f"{type(err).__name__}: {err}")
    if isinstance(err, torch.OutOfMemoryError) and device.type == "cuda":
        torch.cuda.empty_cache()  # what the failed attempt left cached is what fp32 eager now needs


def clear_prepared() -> None:
    """Forget every prepared network and remembered failure (tests; a server that swaps its whole gallery)."""
    with _prepared_lock:
        _prepared.clear()


def forward(network: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """`network(x)` in execution `mode` (see MODES), falling back to fp32 eager if that mode fails (remembered)."""
    run = _runner(network, x.device, mode)
    if run is None:
        return network(x)
    try:
        return run(x)
    except Exception as err:  # a compiler failure must not cost the user their image: fall back to eager fp32
        if mode == "fp32":
            raise
        _remember_failure(network, x.device, mode, err)
        warnings.warn(f"fastnst: {mode} inference failed ({type(err).__name__}: {err}); using fp32 eager for this "
                      f"network from now on.")
        return network(x)


def forward_between(network: nn.Module, x: torch.Tensor, mode: str, between) -> torch.Tensor:
    """`network(x, between=between)` in `mode`, eager half precision for "compile" (a compiled network has no door
    between its layers); plain `forward` if that fails, so a frame is never lost to it."""
    try:
        run = _runner(network, x.device, half_precision(x.device) if mode == "compile" else mode) or network
        return run(x, between=between)
    except Exception as err:
        warnings.warn(f"fastnst: painting with carried features failed ({type(err).__name__}: {err}); painting "
                      f"the frame on its own.")
        return forward(network, x, mode)


# --- colour and strength ----------------------------------------------------------------------------------------

def preserve_colors(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Stylised luminance with the original's chroma (JPEG's full-range YCbCr, BT.601)."""
    r, g, b = stylized.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    r0, g0, b0 = original.unbind(1)
    cb = -0.168736 * r0 - 0.331264 * g0 + 0.5 * b0
    cr = 0.5 * r0 - 0.418688 * g0 - 0.081312 * b0
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1)
    return rgb.clamp(0, 1)


def _check_options(strength, tile, max_side, brush=1.0):
    if not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise InvalidOptionError(f"strength must be a number between 0 and 1, not {strength!r}.")
    low, high = BRUSH_RANGE
    if isinstance(brush, bool) or not isinstance(brush, (int, float)) or not low <= brush <= high:
        raise InvalidOptionError(f"brush must be a number from {low:g} (finer strokes) to {high:g} (broader), "
                                 f"not {brush!r}.")
    if tile is not None and (not isinstance(tile, int) or tile < 0):
        raise InvalidOptionError(f"tile must be a whole number of pixels (0 = never tile), not {tile!r}.")
    if max_side is not None and (not isinstance(max_side, int) or max_side < 1):
        raise InvalidOptionError(f"max_side must be a positive whole number of pixels, not {max_side!r}.")


# --- brush size -------------------------------------------------------------------------------------------------

def resample(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] to h×w: area averaging down (no aliasing), bicubic up."""
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if h <= x.shape[-2] and w <= x.shape[-1]:
        return F.interpolate(x, size=(h, w), mode="area")
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def brushed(paint, x: torch.Tensor, brush: float) -> torch.Tensor:
    """`paint(x)` with strokes `brush` times the network's own size in pixels (a network's strokes are a fixed
    number of pixels, so painting a smaller copy makes them relatively larger). The layout pass below is called as
    `paint(x, final=False)`; the pass whose painting is the output, as `paint(x)`.

    brush < 1: paint a copy enlarged by 1/brush and shrink it back.
    brush > 1: paint at a working size 1/√brush of the picture and enlarge the painting by √brush. At the working
    size, a copy shrunk by a further 1/√brush is painted first for the layout of broad strokes, enlarged, given the
    photo's finer detail back, and painted again, so each stroke carries paint texture. Why √: painting the last
    pass at full size keeps the network's own stroke size (its Grams match the painting at the same size as at
    brush 1), and enlarging a painting by the whole brush is blur; in between, strokes grow steadily and are
    softened by only √brush (bench/brush.py measures it).
    """
    if brush == 1:
        return paint(x)
    h, w = x.shape[-2:]
    if brush < 1:
        return resample(paint(resample(x, round(h / brush), round(w / brush))), h, w)
    step = brush ** 0.5
    work = resample(x, max(1, round(h / step)), max(1, round(w / step)))
    small = resample(work, max(1, round(h / brush)), max(1, round(w / brush)))
    size = work.shape[-2:]
    broad = resample(paint(small, final=False), *size)
    detail = work - resample(small, *size)
    return resample(paint((broad + detail).clamp(0, 1)), h, w)


# --- public API -------------------------------------------------------------------------------------------------

@torch.inference_mode()
def stylize_tensor(batch: torch.Tensor, style, *, strength: float = 1.0, preserve_color: bool = False,
                   brush: float = 1.0, tile: int | None = None, device=None, mode: str | None = None,
                   features=None) -> torch.Tensor:
    """Stylise a (B, 3, H, W) float batch in [0, 1], or uint8 in [0, 255] (e.g. video frames); returns the same
    shape, float in [0, 1], on `device`.

    `brush`: stroke size, × the network's own (BRUSH_RANGE; see `brushed`). `tile`: None tiles automatically
    above AUTO_TILE_PIXELS, 0 never tiles, N uses N-pixel tiles. `features(f, border, scale)` (video, from
    fastnst.temporal): given a Johnson network's features after its residual blocks in the pass that paints the
    output, when that pass is not tiled (`border`: px of mirrored frame around a copy `scale` × the batch's size),
    returns the features to paint instead.
    """
    _check_options(strength, tile, None, brush)
    device = pick_device(device)
    style = style if isinstance(style, Style) else load_style(style, device=device)
    network = style.network.to(device)
    if getattr(network, "styles", None):
        raise InvalidOptionError(f"{style.name} is a family network of {len(network.styles)} paintings; paint with "
                                 f"one of its exported networks (the run's export/<painting> folders).")
    # uint8 travels to a GPU at a quarter of float32's bytes and is converted there
    x = batch.to(device).float().div_(255) if batch.dtype == torch.uint8 else batch.to(device, torch.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise InvalidOptionError(f"expected a (B, 3, H, W) batch, got shape {tuple(x.shape)}.")
    mode = mode or default_mode(device)
    untiled, auto_tile = auto_tiling(device)
    if mode not in MODES:
        raise InvalidOptionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")

    def paint(x, final=True):
        h, w = x.shape[-2:]
        border = frame_width(h, w)
        framed = F.pad(x, (border,) * 4, mode="reflect") if border > 0 else x
        size = tile
        if size is None and framed[0, 0].numel() * (len(framed) if device.type == "cuda" else 1) > untiled:
            size = auto_tile
        if size and network.tileable and max(framed.shape[-2:]) > size:
            y = tiled_forward(network, framed, size)
        elif features is not None and final and network.arch == "transformer":
            scale = h / batch.shape[-2]
            y = forward_between(network, framed, mode, lambda f: features(f, border, scale))
        else:
            y = forward(network, framed, mode)
        return y[..., border:border + h, border:border + w]

    y = brushed(paint, x, brush)
    if preserve_color:
        y = preserve_colors(y, x)
    if strength < 1.0:
        y = torch.lerp(x, y, strength)
    return y.clamp(0, 1)


def stylize(image, style, *, strength: float = 1.0, preserve_color: bool = False, brush: float = 1.0,
            max_side: int | None = None, tile: int | None = None, device=None, max_pixels: int | None = None):
    """Stylise a photo. `image`: path, bytes, file, PIL image or array; `style`: name, Hub id, folder or Style.

    The photo is read with EXIF orientation applied and transparency on white, downscaled so its longer side is
    at most `max_side` (None keeps it), and returned as an RGB PIL image of that size.
    Errors are fastnst.errors.FastNSTError subclasses with one human sentence.
    """
    _check_options(strength, tile, max_side, brush)
    device = pick_device(device)
    style = style if isinstance(style, Style) else load_style(style, device=device)
    photo = resize_max_side(load_image(image, max_pixels=max_pixels), max_side)
    try:
        pixels = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)[None]  # uint8
        out = stylize_tensor(pixels, style, strength=strength, preserve_color=preserve_color,
                             brush=brush, tile=tile, device=device)
    except torch.OutOfMemoryError as err:
        raise FastNSTError(f"Out of memory stylising a {photo.width}×{photo.height} image; try a smaller max side "
                           f"or a smaller tile size.") from err
    return tensor_to_image(out[0])  # converted to uint8 where it was painted, then copied: a quarter of the bytes
