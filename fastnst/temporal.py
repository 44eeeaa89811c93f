"""Flicker: keep what did not change from one frame to the next, so the painting does not crawl.

A feed-forward network paints each frame on its own, and it amplifies what changed: sensor noise and compression
blocks on a still scene become strokes that swap from frame to frame. `Smoother` removes that at the input, so
every output frame is still one painting by the network (a blend of paintings would average their strokes away):

    flow         DIS optical flow (OpenCV, real-time on a CPU) from this frame back to the previous one, on grey
                 frames at most FLOW_SIDE px long (flow is smooth, and small is fast)
    trust        per pixel, whether the previous frame, moved along that flow, shows the same thing: a forward-
                 backward check of the flow (occlusions, wrong flow) times a photometric check (a cut, a new
                 object); where it fails the weight falls to 0 and the frame is taken as it is, so nothing ghosts
    steady input input = frame + `steady` × trust × (previous steady input, moved − frame): noise averages away
                 where the scene is the same, and what moves or appears comes through at once
    paint        the network paints the steady input
    carry        optionally output = painted + `carry` × trust × (previous output, moved − painted): flow-guided
                 blending of the paintings, steadier still, at the cost of the strokes' contrast (0 by default)

Measured in bench/temporal.py (bench/RESULTS.md): on a still scene this alone removes three quarters of the
flicker with the texture unchanged; a moving camera's flicker comes from the network itself (its strokes depend
on where the picture falls on its stride-4 grid), which only a network trained to be stable removes.
Each session (a video, a webcam visitor) has its own Smoother.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

FLOW_SIDE = 320          # flow is computed on grey frames scaled to at most this long side
STEADY = 0.9             # weight of the previous steady input where the flow is trusted
CARRY = 0.0              # weight of the previous output where the flow is trusted (blends paintings: softer)
TRUST_LEVELS = 12.0      # input mismatch (0–255 levels, after warping) at which trust has fallen to e^-1
CONSISTENCY_PX = 1.0     # forward-backward flow disagreement (px at flow scale) beyond which a pixel is occluded
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


def _upscale_flow(flow: np.ndarray, h: int, w: int) -> np.ndarray:
    fh, fw = flow.shape[:2]
    if (fh, fw) == (h, w):
        return flow
    up = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    up[..., 0] *= w / fw
    up[..., 1] *= h / fh
    return up


def _blend(fresh: np.ndarray, carried: np.ndarray, weight: np.ndarray) -> np.ndarray:
    fresh = fresh.astype(np.float32)
    return np.clip(fresh + weight[..., None] * (carried.astype(np.float32) - fresh) + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Smoother:
    """Paints frames in order, steadying the input (and optionally blending the output) along the photo's motion.
    `smoother(frame, paint)` → the output frame, where `paint` maps a uint8 H×W×3 RGB frame to its painting;
    `reset()` after a cut."""
    steady: float = STEADY
    carry: float = CARRY
    flow_side: int = FLOW_SIDE
    _last: tuple | None = field(default=None, repr=False)  # (grey, frame, steady input, output) of the last frame
    _dis: object = field(default=None, repr=False)

    def reset(self) -> None:
        self._last = None

    def trust(self, grey: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow from this frame back to the last at full size, trust in [0, 1] per pixel)."""
        last_grey, last_frame = self._last[0], self._last[1]
        self._dis = self._dis or _dis()
        back = flow_between(grey, last_grey, self._dis)       # this frame → last, on the small grid
        sure = consistent(flow_between(last_grey, grey, self._dis), back).astype(np.float32)
        h, w = frame.shape[:2]
        back, sure = _upscale_flow(back, h, w), cv2.resize(sure, (w, h), interpolation=cv2.INTER_LINEAR)
        mismatch = np.abs(warp(last_frame, back).astype(np.float32) - frame.astype(np.float32)).mean(axis=-1)
        mismatch = cv2.GaussianBlur(mismatch, (0, 0), 1.5)   # one noisy pixel is not an occlusion
        return back, cv2.GaussianBlur(sure * np.exp(-(mismatch / TRUST_LEVELS) ** 2), (0, 0), SOFTEN_PX)

    def __call__(self, frame: np.ndarray, paint) -> np.ndarray:
        grey = _grey(frame, self.flow_side)
        last = self._last
        if last is None or last[1].shape != frame.shape or (self.steady <= 0 and self.carry <= 0):
            steady_in = frame
            out = paint(steady_in)
        else:
            back, trust = self.trust(grey, frame)
            steady_in = _blend(frame, warp(last[2], back), self.steady * trust) if self.steady > 0 else frame
            out = paint(steady_in)
            if self.carry > 0:
                out = _blend(out, warp(last[3], back), self.carry * trust)
        self._last = (grey, frame, steady_in, out)
        return out
