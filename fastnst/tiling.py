"""Painting an image tile by tile, without seams: what lets a large picture fit in memory.

Two things keep the seams invisible:
1. Instance-norm statistics are global: one pass over the whole image (downscaled to at most STATS_PIXELS)
   records each InstanceNorm's per-channel mean/variance, and every tile normalises with those.
   (`exact_stats=True` refines them from full-resolution tiles, at a price: see `tiled_forward`.)
2. Each tile is computed with a margin of MARGIN pixels of real neighbouring image on every side, which is more
   than the network's receptive-field radius (54 px for TransformerNet), and tiles start on multiples of 4
   (the two stride-2 stages), so a tile's kept core is computed exactly as in the whole image. Cores overlap by
   BLEND pixels with linear ramps, which hides any residual (e.g. bf16 rounding) differences.
For images within STATS_PIXELS the tiled output equals the untiled one up to float rounding.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

MARGIN = 64  # ≥ receptive-field radius (54 px), multiple of 4
BLEND = 16  # width of the linear cross-fade between neighbouring tile cores
STATS_PIXELS = 2_100_000  # IN statistics are first taken from the image downscaled to at most this many pixels


@contextmanager
def _instance_norm_stats(network: nn.Module, stats: dict, accumulate: dict | None = None):
    """Hooks on every InstanceNorm2d: record per-image statistics (when `stats` is empty), or normalise with the
    given `stats` and, if `accumulate` is given, add up the layer inputs' moments over the current tile's own
    region (`accumulate["box"]`, in tile-input pixels) for the next, more exact, set of statistics."""
    norms = [m for m in network.modules() if isinstance(m, nn.InstanceNorm2d)]
    record = not stats

    def hook(module, inputs, output):
        x = inputs[0]
        if record:
            stats[module] = (x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True))
            return None
        if accumulate is not None:
            (y0, y1, x0, x1), padded_h = accumulate["box"], accumulate["padded_h"]
            s = padded_h // x.shape[-2]  # this layer's stride: 1, 2 or 4 (box edges are multiples of 4)
            part = x[..., y0 // s:-(-y1 // s), x0 // s:-(-x1 // s)].double()
            sums = accumulate.setdefault(module, [0.0, 0.0, 0])
            sums[0] = sums[0] + part.sum((2, 3), keepdim=True)
            sums[1] = sums[1] + part.pow(2).sum((2, 3), keepdim=True)
            sums[2] += part.shape[-2] * part.shape[-1]
        mean, var = stats[module]
        y = (x - mean) * torch.rsqrt(var + module.eps)
        if module.affine:
            y = y * module.weight.view(1, -1, 1, 1) + module.bias.view(1, -1, 1, 1)
        return y

    handles = [m.register_forward_hook(hook) for m in norms]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _ramp(length: int, fade_in: bool, fade_out: bool, device) -> torch.Tensor:
    w = torch.ones(length, device=device)
    ramp = torch.linspace(0, 1, BLEND + 2, device=device)[1:-1]
    if fade_in:
        w[:BLEND] = ramp
    if fade_out:
        w[-BLEND:] = ramp.flip(0)
    return w


def _starts(size: int, tile: int) -> list[int]:
    """Core start positions (multiples of 4) so cores of `tile` px cover [0, size) and overlap by ≥ BLEND."""
    if size <= tile:
        return [0]
    step = max(4, (tile - BLEND) // 4 * 4)
    starts = list(range(0, size - tile, step)) + [max(0, (size - tile) // 4 * 4)]
    return sorted(set(starts))


def tile_boxes(h: int, w: int, tile: int):
    """(core box, own box, input box) per tile. Cores overlap for blending; own boxes partition the image (for
    statistics); input boxes add MARGIN of real neighbours and start on multiples of 4 like the cores."""
    ys, xs = _starts(h, tile), _starts(w, tile)
    for i, y0 in enumerate(ys):
        y1 = h if i == len(ys) - 1 else y0 + tile  # the last core runs to the edge (≤ 3 px more)
        own_y = (y0, ys[i + 1] if i + 1 < len(ys) else h)
        for j, x0 in enumerate(xs):
            x1 = w if j == len(xs) - 1 else x0 + tile
            own_x = (x0, xs[j + 1] if j + 1 < len(xs) else w)
            inp = (max(0, y0 - MARGIN), min(h, y1 + MARGIN), max(0, x0 - MARGIN), min(w, x1 + MARGIN))
            yield (y0, y1, x0, x1), (*own_y, *own_x), inp


@torch.no_grad()
def tiled_forward(network: nn.Module, x: torch.Tensor, tile: int, *, exact_stats: bool = False) -> torch.Tensor:
    """Run `network` on (B, 3, H, W) `x` tile by tile with global InstanceNorm statistics (see module doc).

    Above STATS_PIXELS the statistics come from a downscaled copy. `exact_stats=True` then refines them from
    full-resolution tiles: each pass makes one more InstanceNorm layer exact, so it costs one tiled forward per
    layer (15 for TransformerNet) and reproduces the untiled output up to float rounding.
    """
    tile = max(4 * BLEND, tile // 4 * 4)
    b, _, h, w = x.shape
    stats: dict = {}
    scale = min(1.0, (STATS_PIXELS / (h * w)) ** 0.5)
    small = x if scale == 1.0 else F.interpolate(x, scale_factor=scale, mode="area")
    with _instance_norm_stats(network, stats):
        network(small)
    passes = len(stats) if exact_stats and scale < 1.0 else 0
    for _ in range(passes):  # moments at full resolution under the current statistics
        sums: dict = {}
        with _instance_norm_stats(network, stats, sums):
            for _core, (oy0, oy1, ox0, ox1), (top, bottom, left, right) in tile_boxes(h, w, tile):
                sums["box"] = (oy0 - top, oy1 - top, ox0 - left, ox1 - left)
                sums["padded_h"] = max(8, bottom - top + (top - bottom) % 4)
                network(x[..., top:bottom, left:right])
        for module in stats:
            total, squares, n = sums[module]
            mean = total / n
            stats[module] = (mean.to(x.dtype), (squares / n - mean ** 2).clamp_min(0).to(x.dtype))
    out = torch.zeros_like(x)
    weight = torch.zeros((1, 1, h, w), device=x.device)
    with _instance_norm_stats(network, stats):
        for (y0, y1, x0, x1), _own, (top, bottom, left, right) in tile_boxes(h, w, tile):
            y = network(x[..., top:bottom, left:right])[..., y0 - top:y1 - top, x0 - left:x1 - left]
            wy = _ramp(y1 - y0, y0 > 0, y1 < h, x.device).view(-1, 1)
            wx = _ramp(x1 - x0, x0 > 0, x1 < w, x.device).view(1, -1)
            out[..., y0:y1, x0:x1] += y * (wy * wx)
            weight[..., y0:y1, x0:x1] += wy * wx
    return out / weight
