"""The smoothed input and the carried features: what keeps a still scene's painting from crawling.

A feed-forward network paints each frame on its own, and it amplifies what changed: sensor noise and compression
blocks on a still scene become strokes that swap from frame to frame. The input is smoothed where the flow is
trusted (input = frame + `smooth` × trust × (last smoothed input, moved − frame)), so every output frame is still
one painting by the network; between its residual blocks and its decoder the network's features are carried the
same way (`features`), so the strokes' layout follows the scene while the decoder still paints them crisp.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

from .canvas import GLUE, GLUE_SPEEDS, Canvas
from .flow import (
    FLOW_SIDE,
    TRUST_LEVELS,
    _blend,
    _dis,
    _grey,
    _upscale_flow,
    away_from_motion_edges,
    camera_motion,
    camera_speed,
    consistent,
    flow_between,
    still,
    warp,
)

SMOOTH = 0.9             # weight of the last smoothed input where the flow is trusted: noise averages away, and
                         # what moves or appears comes through at once
CARRY = 0.0              # weight of the last output where the flow is trusted: off, as blending paintings averages
                         # their strokes away
FEATURES = 0.5           # weight of the last frame's network features where the flow is trusted: more lifts the
                         # texture above per-frame painting's
SOFTEN_PX = 8.0          # trust is blurred this much: a sharp line between smoothed and fresh input is painted as a
                         # seam in the strokes, left behind along a moving thing's path
STILL_FRESH = 0.3        # while the camera is still, the fresh share of `smooth` is cut to this much of itself
                         # (0.9 → 0.97), as nothing is resampled where nothing moved; not that of `features`, which
                         # lifted the texture where things move


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
    in feature px. Bicubic, as bilinear resampling frame after frame softens the strokes."""
    import torch
    import torch.nn.functional as F

    f = features.float()
    h, w = f.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    motion = torch.from_numpy(flow)
    grid = torch.stack([(xs + motion[..., 0]) * (2 / (w - 1)) - 1, (ys + motion[..., 1]) * (2 / (h - 1)) - 1], -1)
    moved = F.grid_sample(last.float().to(f.device), grid[None].to(f.device), mode="bicubic", padding_mode="border",
                          align_corners=True)
    share = torch.from_numpy(weight * trust)[None, None].to(f.device)
    return (f + share * (moved - f)).to(features.dtype)


@dataclass
class Smoother:
    """Paints frames in order, smoothing the input, carrying the network's features (and optionally blending the
    output) along the photo's motion. `smoother(frame, paint)` → the output frame, where `paint(frame, features)`
    maps a uint8 H×W×3 RGB frame to its painting and passes `features` (None, or a function for
    `fastnst.inference.stylize_tensor`'s `features=`) on to the network; `reset()` after a cut. While the camera
    is still, `smooth`'s fresh share (1 − smooth) is cut to `still_fresh` of itself (1: as when it moves)."""
    smooth: float = SMOOTH
    carry: float = CARRY
    features: float = FEATURES
    glue: float = GLUE
    still_fresh: float = STILL_FRESH
    flow_side: int = FLOW_SIDE
    _last: tuple | None = field(default=None, repr=False)  # (grey, frame, smoothed input, output) of the last frame
    _features: tuple | None = field(default=None, repr=False)  # (features, border, scale) the last frame painted
    _dis: object = field(default=None, repr=False)
    _canvas: Canvas = field(default_factory=Canvas, repr=False)

    def reset(self) -> None:
        self._last = self._features = None
        self._canvas.reset()

    def __getstate__(self) -> dict:
        """What crosses a process boundary (ZeroGPU paints in a worker, pickling arguments and results, so a
        visitor's smoother must travel there and back): the last features on the CPU, since unpickling a CUDA
        tensor would start CUDA in the main process, and no OpenCV flow object, which does not pickle and keeps
        nothing from one frame to the next (it is made again on use)."""
        state = self.__dict__.copy()
        state["_dis"] = None
        if state["_features"] is not None:
            features, border, scale = state["_features"]
            state["_features"] = (features.cpu(), border, scale)
        return state

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

    def flow(self, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow from this frame back to the last, where it is consistent), on the small grey grid."""
        last_grey = self._last[0]
        self._dis = self._dis or _dis()
        back = flow_between(grey, last_grey, self._dis)
        return back, consistent(flow_between(last_grey, grey, self._dis), back)

    def trust(self, grey: np.ndarray, frame: np.ndarray, flow: tuple,
              still_camera: bool) -> tuple[np.ndarray, np.ndarray]:
        """(flow from this frame back to the last at full size, trust in [0, 1] per pixel); `flow`: `self.flow`'s;
        `still_camera`: whether the camera moved less than the canvas's slowest speed (`still` applies)."""
        last_grey, last_frame, last_smoothed = self._last[:3]
        back, sure = flow
        sure = sure * away_from_motion_edges(back, grey)
        if still_camera:  # where nothing moved, only the photometric check below is asked: the flow's own checks
            unmoved = still(back, grey, last_grey)  # are of a flow that is not used there
            back, sure = np.where(unmoved[..., None], np.float32(0), back), np.where(unmoved, np.float32(1), sure)
        h, w = frame.shape[:2]
        back, sure = _upscale_flow(back, h, w), cv2.resize(sure, (w, h), interpolation=cv2.INTER_LINEAR)

        def shows(last, levels=TRUST_LEVELS):  # whether `last` shows this frame (one noisy pixel is no occlusion)
            mismatch = cv2.absdiff(last, frame).astype(np.float32).mean(axis=-1)
            return np.exp(-(cv2.GaussianBlur(mismatch, (0, 0), 1.5) / levels) ** 2)
        trust = cv2.GaussianBlur(sure * shows(warp(last_frame, back)), (0, 0), SOFTEN_PX)  # softened: no seams
        if still_camera:  # where nothing moved (the last smoothed input is carried unmoved), also, unsoftened, whether
            # it itself shows this frame, within twice the levels: the edge of where something stood, half trusted
            # when it left, is then not carried on as a ghost for longer at the still camera's steadier input
            # (tests/test_video.py). Not where things move, and not within TRUST_LEVELS: both dropped the smoothing
            # of a compressed road
            unmoved_here = cv2.resize(unmoved.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            trust = trust * (1.0 - unmoved_here * (1.0 - shows(last_smoothed, 2 * TRUST_LEVELS)))
        return back, trust

    def __call__(self, frame: np.ndarray, paint) -> np.ndarray:
        grey = _grey(frame, self.flow_side)
        last, moved, camera, smooth = self._last, None, None, self.smooth
        if last is None or last[1].shape != frame.shape or max(self.smooth, self.carry, self.features,
                                                                 self.glue) <= 0:
            smoothed = frame
        else:
            flow = self.flow(grey)
            camera = camera_motion(*flow)
            still_camera = camera_speed(camera[0], grey.shape, frame.shape[1]) < GLUE_SPEEDS[0]
            if still_camera and smooth > 0:
                smooth = 1 - (1 - smooth) * self.still_fresh
            moved = back, trust = self.trust(grey, frame, flow, still_camera)
            smoothed = _blend(frame, warp(last[2], back), smooth * trust) if smooth > 0 else frame
        out = paint(smoothed, self._feature_carrier(moved) if self.features > 0 else None)
        if moved is not None and self.carry > 0:
            out = _blend(out, warp(last[3], moved[0]), self.carry * moved[1])
        if self.glue > 0:
            out = self._canvas(frame, grey, camera, out, self.glue)
        self._last = (grey, frame, smoothed, out)
        return out
