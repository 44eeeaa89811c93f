"""A stability loss: the network should paint a moved photo as the moved painting of the photo.

A feed-forward network paints each video frame on its own. Its two stride-2 stages make it see a picture moved by
1–3 px (or by a fraction of one) on a different grid, and camera noise changes what it sees again, so its strokes
change from frame to frame although the scene only moved: flicker that no filter after the network removes
without averaging the strokes away (bench/temporal.py). Gupta et al. 2017 ("Characterizing and improving
stability in neural style transfer") and Huang et al. 2017 train it away with pairs whose motion is known exactly:

    x' = x moved by a random (dx, dy) of up to MAX_SHIFT px, plus sensor noise of NOISE levels
    loss = mean over the inner pixels of (net(x') − net(x) moved by (dx, dy))²

Moving is bilinear sampling with the edges mirrored; the comparison leaves out a margin of the largest shift, where
the moved painting has no true value. The perceptual loss still decides what is painted; this term only asks
that it be painted in the same place.
"""
import math

import torch
import torch.nn.functional as F

MAX_SHIFT = 4.0   # px: the network's own stride (two stride-2 stages), so every grid phase is seen
NOISE = 2.0       # levels of 255, like a webcam's sensor


def move(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images moved by shift (B, 2) = (dx, dy) px each: out(p) = x(p − shift), edges mirrored."""
    b, _, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=torch.float32)
    xs = torch.arange(w, device=x.device, dtype=torch.float32)
    gx = (xs[None, None, :] - shift[:, 0, None, None]) * (2 / max(w - 1, 1)) - 1
    gy = (ys[None, :, None] - shift[:, 1, None, None]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([gx.expand(b, h, w), gy.expand(b, h, w)], dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=True)


def moved_pair(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: float = MAX_SHIFT,
               noise: float = NOISE) -> tuple[torch.Tensor, torch.Tensor]:
    """(x moved and noisy, the shifts) for a batch in [0, 1]; the shifts are a pure function of `generator`."""
    shift = (torch.rand(x.shape[0], 2, generator=generator) * 2 - 1) * max_shift
    grain = torch.randn(x.shape, generator=generator) * (noise / 255)
    shift, grain = shift.to(x.device), grain.to(x.device, x.dtype)
    return (move(x, shift) + grain).clamp(0, 1), shift


def stability_loss(painted: torch.Tensor, painted_moved: torch.Tensor, shift: torch.Tensor,
                   max_shift: float = MAX_SHIFT) -> torch.Tensor:
    """Mean squared difference, in fp32, between net(x') and net(x) moved, inside a margin of the largest shift."""
    m = math.ceil(max_shift) + 1
    want = move(painted.float(), shift)[..., m:-m, m:-m]
    return F.mse_loss(painted_moved.float()[..., m:-m, m:-m], want)
