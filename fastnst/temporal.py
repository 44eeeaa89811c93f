"""Flicker: keep what did not change from one frame to the next, so the painting does not crawl.

A feed-forward network paints each frame on its own, and it amplifies what changed: sensor noise and compression
blocks on a still scene become strokes that swap from frame to frame. `Smoother` removes that at the input, so
every output frame is still one painting by the network (a blend of paintings would average their strokes away):

    flow         DIS optical flow (OpenCV, real-time on a CPU) from this frame back to the previous one, on grey
                 frames at most FLOW_SIDE px long (flow is smooth, and small is fast)
    trust        per pixel, whether the previous frame, moved along that flow, shows the same thing: a forward-
                 backward check of the flow (occlusions, wrong flow), the edges of moving things (where the flow
                 drags the background along) and a photometric check (a cut, a new object); where it fails the
                 weight falls to 0 and the frame is taken as it is, so nothing ghosts or smears
    steady input input = frame + `steady` × trust × (previous steady input, moved − frame): noise averages away
                 where the scene is the same, and what moves or appears comes through at once
    features     the network paints the steady input, and between its residual blocks and its decoder its
                 features (1/4 size) become features + `features` × trust × (previous frame's features, moved −
                 features): the strokes' layout follows the scene, and the decoder, whose instance norms restore
                 the contrast, still paints crisp strokes from it (bicubic, so carrying does not blur them)
    carry        optionally output = painted + `carry` × trust × (previous output, moved − painted): flow-guided
                 blending of the paintings, steadier still, at the cost of the strokes' contrast (0 by default)

Measured in bench/temporal.py (bench/RESULTS.md): on a still scene the steady input alone removes three quarters
of the flicker with the texture unchanged; a moving camera's flicker comes from the network itself (its strokes
depend on where the picture falls on its stride-4 grid): carrying its features removes a further fifth of it with
the texture unchanged, where blending the paintings for as much costs half the texture.
Each session (a video, a webcam visitor) has its own Smoother.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

FLOW_SIDE = 320          # flow is computed on grey frames scaled to at most this long side
STEADY = 0.9             # weight of the previous steady input where the flow is trusted
CARRY = 0.0              # weight of the previous output where the flow is trusted (blends paintings: softer)
FEATURES = 0.5           # weight of the previous frame's network features where the flow is trusted (0.55 lifted
                         # Starry Night's texture 11 % over per-frame painting at the live size, 320 px: RESULTS.md)
TRUST_LEVELS = 12.0      # input mismatch (0–255 levels, after warping) at which trust has fallen to e^-1
CONSISTENCY_PX = 1.0     # forward-backward flow disagreement (px at flow scale) beyond which a pixel is occluded
BOUNDARY = 0.05          # change of the flow (px per px) at which trust has fallen to e^-1: a moving object's edge,
BOUNDARY_PX = 8          # widened by this many px (at FLOW_SIDE; 5× as far from the picture's edges). Why: behind a
                         # car, DIS flow drags the plain road along with it, and carried frame after frame the road's
                         # grain was painted as streaks along the car's path (looked at: car clip, 2026-12-03)
EDGE_LEVELS = 8.0        # an edge of the picture: grey changing by this many levels a px (flow scale)
SOFTEN_PX = 8.0          # trust is blurred this much: a sharp line between steadied and fresh input is painted as
                         # a seam in the strokes, left behind along a moving object's path (looked at: car clip)


def _grey(frame: np.ndarray, side: int) -> np.ndarray:
    """uint8 H×W×3 RGB → float32 grey, scaled so its longer side is at most `side`."""
    h, w = frame.shape[:2]
    scale = min(1.0, side / max(h, w))
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return grey


def _dis():
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis


def flow_between(a: np.ndarray, b: np.ndarray, dis=None) -> np.ndarray:
    """Dense flow (H×W×2, float32, in pixels of `a`'s grid) such that a(p) ≈ b(p + flow(p)); grey uint8 inputs."""
    return (dis or _dis()).calc(a, b, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p) for every pixel p of the flow's grid (bilinear, edges replicated)."""
    h, w = flow.shape[:2]
    grid = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(image, grid[1] + flow[..., 0], grid[0] + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent(forward: np.ndarray, backward: np.ndarray, tolerance: float = CONSISTENCY_PX) -> np.ndarray:
    """Where `backward` (this frame → previous) and `forward` (previous → this) undo each other: a boolean H×W
    mask, False at occlusions and wrong flow (Sundaram et al. 2010's check, with a motion-dependent tolerance)."""
    there = warp(forward, backward)
    gap = np.sum((backward + there) ** 2, axis=-1)
    size = np.sum(backward ** 2, axis=-1) + np.sum(there ** 2, axis=-1)
    return gap <= 0.01 * size + tolerance ** 2


def away_from_motion_edges(flow: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Per pixel of `flow`'s grid, in [0, 1]: near 0 at the edges of moving things — where the flow changes fast
    next to an edge of the picture (`grey`, the same grid). The edge is asked for because on plain or smoothly
    shaded surfaces DIS flow is noise whose changes are no boundary (and steadying them is what removes flicker)."""
    px = max(3, round(BOUNDARY_PX * max(flow.shape[:2]) / FLOW_SIDE))  # the windows scale with the picture
    smooth = cv2.GaussianBlur(np.float32(flow), (0, 0), px / 2)
    change = sum(cv2.Sobel(smooth[..., c], cv2.CV_32F, dx, 1 - dx, ksize=3) ** 2 for c in (0, 1) for dx in (0, 1))
    change = cv2.dilate(np.sqrt(change) / 8, np.ones((px, px), np.uint8))  # Sobel's sums are 8 × the slope
    grey = cv2.GaussianBlur(np.float32(grey), (0, 0), 1.5)  # sensor noise is no edge
    slope = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 8
    near_edge = cv2.dilate((slope > EDGE_LEVELS).astype(np.float32), np.ones((5 * px, 5 * px), np.uint8))
    return 1.0 - near_edge * (1.0 - np.exp(-(change / BOUNDARY) ** 2))


def _upscale_flow(flow: np.ndarray, h: int, w: int) -> np.ndarray:
    fh, fw = flow.shape[:2]
    if (fh, fw) == (h, w):
        return flow
    up = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    up[..., 0] *= w / fw
    up[..., 1] *= h / fh
    return up


def _feature_grid(flow: np.ndarray, trust: np.ndarray, shape, border: int, scale: float):
    """The frame's flow (in frame px) and trust, sampled at the centres of a network's 1/4-size features and the
    flow put in feature px. The features are of the frame scaled by `scale` inside a `border`-px mirrored frame;
    feature (i, j) is centred on painted pixel (4i, 4j) (two stride-2 convolutions). Outside the frame: trust 0."""
    h4, w4 = shape
    xs = ((4 * np.arange(w4) - border + 0.5) / scale - 0.5).astype(np.float32)
    ys = ((4 * np.arange(h4) - border + 0.5) / scale - 0.5).astype(np.float32)
    mx, my = np.meshgrid(xs, ys)
    moved = cv2.remap(flow, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) * (scale / 4)
    sure = cv2.remap(trust, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return moved, sure


def carry_features(features, last, flow: np.ndarray, trust: np.ndarray, weight: float):
    """features + weight × trust × (last, moved along `flow` − features); (1, C, h, w) tensors, flow h×w×2 numpy
    in feature px. Bicubic, as bilinear resampling frame after frame softens the strokes (bench/RESULTS.md)."""
    import torch
    import torch.nn.functional as F

    f = features.float()
    h, w = f.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    motion = torch.from_numpy(flow)
    grid = torch.stack([(xs + motion[..., 0]) * (2 / (w - 1)) - 1, (ys + motion[..., 1]) * (2 / (h - 1)) - 1], -1)
    moved = F.grid_sample(last.float(), grid[None].to(f.device), mode="bicubic", padding_mode="border",
                          align_corners=True)
    share = torch.from_numpy(weight * trust)[None, None].to(f.device)
    return (f + share * (moved - f)).to(features.dtype)


def _blend(fresh: np.ndarray, carried: np.ndarray, weight: np.ndarray) -> np.ndarray:
    fresh = fresh.astype(np.float32)
    return np.clip(fresh + weight[..., None] * (carried.astype(np.float32) - fresh) + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Smoother:
    """Paints frames in order, steadying the input, carrying the network's features (and optionally blending the
    output) along the photo's motion. `smoother(frame, paint)` → the output frame, where `paint(frame, features)`
    maps a uint8 H×W×3 RGB frame to its painting and passes `features` (None, or a function for
    `fastnst.inference.stylize_tensor`'s `features=`) on to the network; `reset()` after a cut."""
    steady: float = STEADY
    carry: float = CARRY
    features: float = FEATURES
    flow_side: int = FLOW_SIDE
    _last: tuple | None = field(default=None, repr=False)  # (grey, frame, steady input, output) of the last frame
    _features: tuple | None = field(default=None, repr=False)  # (features, border, scale) the last frame painted
    _dis: object = field(default=None, repr=False)

    def reset(self) -> None:
        self._last = self._features = None

    def _feature_carrier(self, moved):
        """The `features` function for this frame: blends in the last frame's features along `moved` (flow back,
        trust; None on a first frame) when they are of the same geometry, and keeps what it returns for the next.
        Nothing is kept if the network never calls it (a tiled or Texture Networks pass): the next frame starts
        afresh rather than carrying features two frames old."""
        last, self._features = self._features, None

        def carrier(f, border: int, scale: float):
            if moved is not None and last is not None and last[0].shape == f.shape and last[1:] == (border, scale) \
                    and min(f.shape[-2:]) > 1:
                flow, trust = _feature_grid(*moved, f.shape[-2:], border, scale)
                f = carry_features(f, last[0], flow, trust, self.features)
            self._features = (f, border, scale)
            return f
        return carrier

    def trust(self, grey: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow from this frame back to the last at full size, trust in [0, 1] per pixel)."""
        last_grey, last_frame = self._last[0], self._last[1]
        self._dis = self._dis or _dis()
        back = flow_between(grey, last_grey, self._dis)       # this frame → last, on the small grid
        sure = consistent(flow_between(last_grey, grey, self._dis), back) * away_from_motion_edges(back, grey)
        h, w = frame.shape[:2]
        back, sure = _upscale_flow(back, h, w), cv2.resize(sure, (w, h), interpolation=cv2.INTER_LINEAR)
        mismatch = np.abs(warp(last_frame, back).astype(np.float32) - frame.astype(np.float32)).mean(axis=-1)
        mismatch = cv2.GaussianBlur(mismatch, (0, 0), 1.5)   # one noisy pixel is not an occlusion
        return back, cv2.GaussianBlur(sure * np.exp(-(mismatch / TRUST_LEVELS) ** 2), (0, 0), SOFTEN_PX)

    def __call__(self, frame: np.ndarray, paint) -> np.ndarray:
        grey = _grey(frame, self.flow_side)
        last, moved = self._last, None
        if last is None or last[1].shape != frame.shape or max(self.steady, self.carry, self.features) <= 0:
            steady_in = frame
        else:
            moved = back, trust = self.trust(grey, frame)
            steady_in = _blend(frame, warp(last[2], back), self.steady * trust) if self.steady > 0 else frame
        out = paint(steady_in, self._feature_carrier(moved) if self.features > 0 else None)
        if moved is not None and self.carry > 0:
            out = _blend(out, warp(last[3], moved[0]), self.carry * moved[1])
        self._last = (grey, frame, steady_in, out)
        return out
