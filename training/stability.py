"""A stability loss: the network should paint a moved photo as the moved painting of the photo.

A feed-forward network paints each video frame on its own. Its two stride-2 stages make it see a picture moved by
1–3 px (or by a fraction of one) on a different grid, and camera noise changes what it sees again, so its strokes
change from frame to frame although the scene only moved: flicker that no filter after the network removes
without averaging the strokes away (bench/temporal.py). Gupta et al. 2017 ("Characterizing and improving
stability in neural style transfer") and Huang et al. 2017 train it away with pairs whose motion is known exactly:

    x' = x moved by a random (dx, dy) of up to MAX_SHIFT px and zoomed by up to MAX_ZOOM about its centre, plus
         sensor noise of NOISE levels (a camera's pan, its zoom and its grain)
    loss = mean over the inner pixels of (net(x') − net(x) moved the same way)²

Moving is bilinear sampling with the edges mirrored; the comparison leaves out a margin of the largest shift, where
the moved painting has no true value. The perceptual loss still decides what is painted; this term only asks
that it be painted in the same place.
"""
import math

import torch
import torch.nn.functional as F

MAX_SHIFT = 4.0   # px: the network's own stride (two stride-2 stages), so every grid phase is seen
MAX_ZOOM = 1.03   # scale: a few pixels at the edges of a training crop, like a zoom between two frames
NOISE = 2.0       # levels of 255, like a webcam's sensor


def move(x: torch.Tensor, shift: torch.Tensor, zoom: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, H, W) images moved by shift (B, 2) = (dx, dy) px and zoomed by zoom (B,) about their centre:
    out(p) = x(c + (p − c − shift) / zoom), edges mirrored."""
    b, _, h, w = x.shape
    zoom = torch.ones(b, device=x.device) if zoom is None else zoom
    ys = torch.arange(h, device=x.device, dtype=torch.float32) - (h - 1) / 2
    xs = torch.arange(w, device=x.device, dtype=torch.float32) - (w - 1) / 2
    gx = (xs[None, None, :] - shift[:, 0, None, None]) / zoom[:, None, None] * (2 / max(w - 1, 1))
    gy = (ys[None, :, None] - shift[:, 1, None, None]) / zoom[:, None, None] * (2 / max(h - 1, 1))
    grid = torch.stack([gx.expand(b, h, w), gy.expand(b, h, w)], dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=True)


def moved_pair(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: float = MAX_SHIFT,
               max_zoom: float = MAX_ZOOM, noise: float = NOISE) -> tuple[torch.Tensor, tuple]:
    """(x moved, zoomed and noisy; the motion) for a batch in [0, 1]; all of it a pure function of `generator`,
    drawn on the generator's device (a GPU's own, so a step copies no noise from the host)."""
    b, dev = x.shape[0], generator.device if generator is not None else torch.device("cpu")
    shift = (torch.rand(b, 2, generator=generator, device=dev) * 2 - 1) * max_shift
    zoom = max_zoom ** (torch.rand(b, generator=generator, device=dev) * 2 - 1)
    grain = torch.randn(x.shape, generator=generator, device=dev) * (noise / 255)
    motion = (shift.to(x.device), zoom.to(x.device))
    return (move(x, *motion) + grain.to(x.device, x.dtype)).clamp(0, 1), motion


def stability_loss(painted: torch.Tensor, painted_moved: torch.Tensor, motion: tuple,
                   max_shift: float = MAX_SHIFT, max_zoom: float = MAX_ZOOM) -> torch.Tensor:
    """Mean squared difference, in fp32, between net(x') and net(x) moved, inside a margin the motion can reach
    (the largest shift plus what the largest zoom moves the edge)."""
    m = math.ceil(max_shift + (max_zoom - 1) * max(painted.shape[-2:]) / 2) + 1
    want = move(painted.float(), *motion)[..., m:-m, m:-m]
    return F.mse_loss(painted_moved.float()[..., m:-m, m:-m], want)
