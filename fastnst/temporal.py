"""Flicker: keep what did not change from one frame to the next, so the painting does not crawl.

A feed-forward network paints each frame on its own, and it amplifies what changed: sensor noise and compression
blocks on a still scene become strokes that swap from frame to frame. `Smoother` removes that at the input, so
every output frame is still one painting by the network (a blend of paintings would average their strokes away):

    flow         DIS optical flow (OpenCV, real-time on a CPU) from this frame back to the previous one, on grey
                 frames at most FLOW_SIDE px long (flow is smooth, and small is fast); while the camera is still
                 (`camera_motion`), no motion wherever no motion explains the frame as well (`still`: DIS fits
                 motion to sensor noise and compression, and drags a plain wall along with a person walking by)
    trust        per pixel, whether the previous frame, moved along that flow, shows the same thing: a forward-
                 backward check of the flow (occlusions, wrong flow), the edges of moving things (where the flow
                 drags the background along) and a photometric check (a cut, a new object); where it fails the
                 weight falls to 0 and the frame is taken as it is, so nothing ghosts or smears
    steady input input = frame + `steady` × trust × (previous steady input, moved − frame): noise averages away
                 where the scene is the same, and what moves or appears comes through at once.
                 While the camera is still, the fresh share (1 − `steady`) is cut to STILL_FRESH of itself:
                 nothing is resampled where nothing moved, so a steadier input costs no crispness there, and the
                 network, which amplifies every change of its input, re-forms fewer strokes around what moves;
                 there the last steady input must itself show this frame, so no remnant of what left lingers
    features     the network paints the steady input, and between its residual blocks and its decoder its
                 features (1/4 size) become features + `features` × trust × (previous frame's features, moved −
                 features): the strokes' layout follows the scene, and the decoder, whose instance norms restore
                 the contrast, still paints crisp strokes from it (bicubic, so carrying does not blur them)
    glue         while the camera moves, the output is a canvas glued to the scene (`Canvas`): a key frame's
                 painting, moved with the camera (a similarity fitted to the flow, then aligned to the key frame
                 itself, so it does not drift) and resampled once from a band-limited double-size copy, so its
                 strokes neither re-form nor soften frame after frame; wherever the key frame's photo, moved the
                 same way, does not show what this frame shows (what moves on its own, what the camera newly sees,
                 a cut) the fresh painting comes through; what settles there is written into the key frame, and
                 when too little of the canvas fits, the output becomes the next key frame
    carry        optionally output = painted + `carry` × trust × (previous output, moved − painted): flow-guided
                 blending of the paintings, steadier still, at the cost of the strokes' contrast (0 by default)

Measured in bench/temporal.py (bench/RESULTS.md): on a still scene the steady input alone removes three quarters
of the flicker with the texture unchanged; a moving camera's flicker comes from the network itself (its strokes
depend on where the picture falls on its stride-4 grid): carrying its features removes a further fifth of it with
the texture unchanged, where blending the paintings for as much costs half the texture; gluing the strokes to the
scene takes a pan or a zoom from about 0.6 of per-frame painting's flicker to 0.2–0.3 over the photo it was tuned
on and 0.27–0.44 over others (a whole painting filmed by the same camera shows 0.13–0.29, with other strokes, their
texture further from the painting's), for some of the finest grain (a pattern at the pixel grid's own frequency
cannot survive a sub-pixel move). A still camera is left to the steady input and the features, which steady it
better than a glued canvas does. What moves on its own before a still
camera is painted afresh every frame, steadied only at its input (0.7–0.9 of per-frame painting's flicker on it).
Each session (a video, a webcam visitor) has its own Smoother.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

FLOW_SIDE = 320          # flow is computed on grey frames scaled to at most this long side
STEADY = 0.9             # weight of the previous steady input where the flow is trusted
CARRY = 0.0              # weight of the previous output where the flow is trusted (blends paintings: softer)
GLUE = 1.0               # weight of the glued canvas where it fits (Canvas)
KEY_REFRESH = 0.8        # the output becomes the next key frame when the canvas fits less of the frame than this:
KEY_CUT = 0.3            # ... and below this it is a new scene, so the fresh painting is taken as it is
KEY_UPDATE_EVERY = 4     # frames between writing what has settled where the canvas did not fit into the key frame
GLUE_SOFTEN_PX = 4       # the glued canvas's edge is blurred this much (σ), inside where the canvas fits
CAMERA_SHARE = 0.5       # a motion of the flow is the camera's when at least this share of the frame moves with it
GLUE_SPEEDS = (0.25, 0.75)  # camera speed (px a frame at the frame's size, a running mean) from which the canvas is
                         # glued, and at which fully: a still camera is steadied better without it (the car clip,
                         # bench/RESULTS.md), and gluing costs time
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
STILL_LEVELS = 0.5       # while the camera is still, the flow counts as no motion where no motion explains the
                         # frame within this many grey levels (blurred) as well as the flow does: `still`
STILL_FRESH = 0.3        # while the camera is still, the fresh share of `steady` is cut to this much of itself (0.9
                         # → 0.97). Not of `features`: carrying them more lifted the texture up to 18 % where cars
                         # drive (bench/RESULTS.md)


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


def still(back: np.ndarray, grey: np.ndarray, last_grey: np.ndarray) -> np.ndarray:
    """Where no motion explains this frame about as well as the flow `back` (this frame → the last, on the grey
    grid) does (STILL_LEVELS): a boolean mask; for a still camera. Why: there DIS flow is fitted to sensor noise and
    compression — at a key frame of a tripod clip it moved the scene by up to 1 px, next to a walking person it
    dragged the plain wall along — and steadying along it resampled the input where nothing had moved, which the
    network paints as strokes that re-form (bench/RESULTS.md). Not while the camera moves: on a slow pan no motion
    explains smooth parts of the scene about as well too, and they would lag."""
    g, last = np.float32(grey), np.float32(last_grey)
    moved = cv2.GaussianBlur(np.abs(g - warp(last, back)), (0, 0), 1.5)
    unmoved = cv2.GaussianBlur(np.abs(g - last), (0, 0), 1.5)
    return unmoved <= moved + STILL_LEVELS


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
    moved = F.grid_sample(last.float().to(f.device), grid[None].to(f.device), mode="bicubic", padding_mode="border",
                          align_corners=True)
    share = torch.from_numpy(weight * trust)[None, None].to(f.device)
    return (f + share * (moved - f)).to(features.dtype)


def _blend(fresh: np.ndarray, carried: np.ndarray, weight: np.ndarray) -> np.ndarray:
    fresh = fresh.astype(np.float32)
    return np.clip(fresh + weight[..., None] * (carried.astype(np.float32) - fresh) + 0.5, 0, 255).astype(np.uint8)


def band_limited_double(image: np.ndarray) -> np.ndarray:
    """`image` (H×W×C) at twice the size, float32, by zero-padding its spectrum (mirrored at the edges first, so the
    FFT's wrap-around does not ring). Why: a painting is resampled at a sub-pixel offset as the camera moves, and
    bicubic interpolation between its own pixels softens its strokes (texture +54 % at half a pixel, Starry Night);
    between the pixels of this copy it does not (+8 %, the part no resampling keeps: bench/RESULTS.md)."""
    import torch

    h, w = image.shape[:2]
    pad = 16
    mirrored = np.pad(image.astype(np.float32), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    ph, pw = mirrored.shape[:2]
    spectrum = torch.fft.fftshift(torch.fft.fft2(torch.from_numpy(mirrored).permute(2, 0, 1)), dim=(-2, -1))
    double = torch.zeros((spectrum.shape[0], 2 * ph, 2 * pw), dtype=spectrum.dtype)
    top, left = ph - ph // 2, pw - pw // 2  # the zero frequency, at n // 2 of n, lands at n of 2n (odd sides too)
    double[:, top:top + ph, left:left + pw] = spectrum
    up = torch.fft.ifft2(torch.fft.ifftshift(double, dim=(-2, -1))).real * 4
    return np.ascontiguousarray(up[:, 2 * pad:2 * pad + 2 * h, 2 * pad:2 * pad + 2 * w].permute(1, 2, 0).numpy())


def _soft(image: np.ndarray) -> np.ndarray:
    """Blurred a little (float32): sensor noise and one-pixel resampling differences are no mismatch."""
    return cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.5)


def _shows_the_same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, in [0, 1]: whether RGB frames `a` and `b` show the same thing (e^-1 at TRUST_LEVELS apart)."""
    return np.exp(-(_soft(np.abs(_soft(a) - _soft(b)).mean(axis=-1)) / TRUST_LEVELS) ** 2)


def camera_motion(back: np.ndarray, sure: np.ndarray, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The camera's motion (3×3, a similarity: shift, zoom, roll) that best explains the flow `back` (this frame →
    the last, px of its grid) at the pixels where `sure` (least median of squares, so what moves on its own does
    not count), and the uint8 mask of the pixels that move with it. Identity (still) when it explains less than
    CAMERA_SHARE of the frame: two large cars driving over plain asphalt drag DIS flow along with them, and a fit
    to that flow took their motion for the camera's (the car clip, frames 200-215: 1-14 % of the frame agreed)."""
    h, w = back.shape[:2]
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    chosen = sure[ys, xs]
    src = np.stack([xs[chosen], ys[chosen]], -1).astype(np.float32)
    fitted = None
    if len(src) >= 8:
        fitted, _ = cv2.estimateAffinePartial2D(src, src + back[ys[chosen], xs[chosen]], method=cv2.LMEDS)
    motion = np.eye(3) if fitted is None else np.vstack([fitted, [0, 0, 1]])
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    expected = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), motion).reshape(h, w, 2) - grid
    agree = (np.sum((back - expected) ** 2, -1) < 0.25) & (sure > 0)
    if agree.mean() < CAMERA_SHARE:
        motion, agree = np.eye(3), (np.sum(back ** 2, -1) < 0.25) & (sure > 0)
    return motion, cv2.erode(agree.astype(np.uint8), np.ones((7, 7), np.uint8))


def camera_speed(step: np.ndarray, grey_shape: tuple, width: int) -> float:
    """How far the camera's motion `step` (3×3, on a grey grid of `grey_shape`) moves the frame's corners, in px of
    a frame `width` px wide."""
    h, w = grey_shape
    corners = np.float32([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]]).reshape(-1, 1, 2)
    return float(np.abs(cv2.perspectiveTransform(corners, step) - corners).max()) * width / w


def _misfit(reference: np.ndarray, grey: np.ndarray, motion: np.ndarray) -> float:
    """How far the grey `reference`, moved by `motion` (grey's px → reference px), is from `grey` (mean absolute
    levels over the inner part, where the motion moves nothing in from outside)."""
    h, w = grey.shape
    seen = cv2.warpPerspective(reference, motion, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
    m = max(1, min(h, w) // 10)
    return float(np.abs(seen[m:-m, m:-m].astype(np.float32) - grey[m:-m, m:-m]).mean())


@dataclass
class Canvas:
    """Strokes glued to the scene: a key frame's painting moved with the camera, where it shows this frame, while
    the camera moves (`glue`).

    Why: the network's strokes depend on where the picture falls on its stride grid, so a moving camera re-forms
    them every frame however its features are carried (bench/RESULTS.md). Painting once and moving the painting
    keeps them. The camera's motion is followed frame to frame from the flow (`camera_motion`) and then aligned
    to the key frame itself (ECC on grey frames, over the pixels that move with the camera), so errors do not add
    up; the painting is resampled from its band-limited double (`band_limited_double`) once per frame, never
    from an already-resampled frame. `fits` (per pixel) is whether the key frame's photo, moved the same way, shows
    what this frame shows: what moves on its own, what the camera newly sees and a cut get the fresh painting."""
    refresh: float = KEY_REFRESH
    cut: float = KEY_CUT
    update_every: int = KEY_UPDATE_EVERY
    _key: tuple | None = field(default=None, repr=False)   # (doubled painting, photo, grey, painting) of the key
    _motion: np.ndarray | None = field(default=None, repr=False)  # 3×3: this frame's grey px → the key's
    _last: tuple | None = field(default=None, repr=False)  # (frame, its motion, frames since the key's update)
    _speed: float = field(default=0.0, repr=False)

    def reset(self) -> None:
        self._key = self._motion = self._last = None
        self._speed = 0.0

    def glue(self, frame: np.ndarray, grey: np.ndarray, step: np.ndarray) -> float:
        """How much of the canvas to show, from the camera's running speed (`step`: its motion since the last
        frame, on the grey grid): 0 for a still camera, 1 from GLUE_SPEEDS[1] px a frame."""
        self._speed = 0.7 * self._speed + 0.3 * camera_speed(step, grey.shape, frame.shape[1])
        slow, fast = GLUE_SPEEDS
        return float(np.clip((self._speed - slow) / (fast - slow), 0.0, 1.0))

    def _start(self, painting: np.ndarray, frame: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """`painting` of `frame` becomes the key frame; returns it."""
        self._key, self._motion = (band_limited_double(painting), frame, grey, painting), np.eye(3)
        self._last = None
        return painting

    def _update(self, painting: np.ndarray, frame: np.ndarray, motion: np.ndarray, share: np.ndarray) -> None:
        """Write this frame's fresh `painting` and `frame` into the key frame by `share` (per pixel of this frame):
        what the camera saw settle where the key frame no longer fits (the road behind a car that drove on) is glued
        from now on, rather than painted afresh every frame until the next key frame. The fresh painting, not the
        output: the output there may hold some of what the photo no longer shows, and the key's photo would then
        vouch for a ghost."""
        _, photo, grey, key_painting = self._key
        h, w = frame.shape[:2]

        def into_key(image, how):  # key(q) = image(motion⁻¹ q)
            return cv2.warpPerspective(image, motion, (w, h), flags=how, borderMode=cv2.BORDER_CONSTANT)
        share = into_key(share, cv2.INTER_LINEAR)
        key_painting = _blend(key_painting, into_key(painting, cv2.INTER_CUBIC), share)
        photo = _blend(photo, into_key(frame, cv2.INTER_CUBIC), share)
        self._key = (band_limited_double(key_painting), photo, _grey(photo, max(grey.shape)), key_painting)

    def _follow(self, grey: np.ndarray, step: np.ndarray, moving: np.ndarray) -> np.ndarray:
        """This frame's motion to the key frame: the last one moved by `step` (the flow's `camera_motion`), then
        aligned to the key frame by ECC over the pixels `moving` with the camera; whichever of the three shows the
        key frame's grey best is kept."""
        chained = self._motion @ step
        candidates = [chained]
        try:  # ECC finds the warp from the key's grid to this frame's; it raises when it does not converge
            start = np.float32(np.linalg.inv(chained))[:2]
            _, found = cv2.findTransformECC(self._key[2], grey, start, cv2.MOTION_AFFINE,
                                            (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4),
                                            moving, 5)
            candidates.append(np.linalg.inv(np.vstack([found.astype(np.float64), [0, 0, 1]])))
        except (cv2.error, np.linalg.LinAlgError):
            pass
        # a still camera is the prior: a new motion is taken only when it shows the scene better. Why: on plain
        # or shaded surfaces the flow is noise, and a canvas following it would shake (tests/test_video.py)
        misfits = [_misfit(self._key[2], grey, m) for m in candidates]
        if min(misfits) < 0.97 * _misfit(self._key[2], grey, self._motion):
            self._motion = candidates[int(np.argmin(misfits))]
        return self._motion

    def __call__(self, frame, grey, camera, painting: np.ndarray, weight: float = GLUE) -> np.ndarray:
        """The output for `frame` (`grey`: its small grey; `camera`: `camera_motion` of its flow to the last frame
        on that grid, None on a first frame) given its fresh `painting`."""
        if camera is None:
            self.reset()
            return painting
        step, moving = camera
        weight *= self.glue(frame, grey, step)
        if weight <= 0 or self._key is None or self._key[1].shape != frame.shape:
            self._key = None  # nothing glued yet: the next key frame is taken when the camera moves
            return painting if weight <= 0 else self._start(painting, frame, grey)
        h, w = frame.shape[:2]
        to_small = np.diag([grey.shape[1] / w, grey.shape[0] / h, 1.0])
        motion = np.linalg.inv(to_small) @ self._follow(grey, step, moving) @ to_small  # frame px → key px
        doubled, photo = self._key[:2]
        on_double = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])  # key pixel q sits at 2q + 0.5 there
        inverse = cv2.WARP_INVERSE_MAP
        glued = cv2.warpPerspective(doubled, on_double @ motion, (w, h), flags=cv2.INTER_CUBIC | inverse,
                                    borderMode=cv2.BORDER_REPLICATE)
        seen = cv2.warpPerspective(photo, motion, (w, h), flags=cv2.INTER_CUBIC | inverse,
                                   borderMode=cv2.BORDER_REPLICATE)
        inside = cv2.erode(cv2.warpPerspective(np.ones((h, w), np.float32), motion, (w, h),
                                               flags=cv2.INTER_LINEAR | inverse, borderValue=0),
                           np.ones((5, 5), np.uint8))
        # softened (no seam) only after it is narrowed by as much: blurred as it was, the trust reached into what
        # had moved, and a card crossing a pan left faded copies of itself behind (tests/test_video.py)
        fits = _shows_the_same(seen, frame) * inside
        fits = cv2.GaussianBlur(cv2.erode(fits, np.ones((4 * GLUE_SOFTEN_PX + 1,) * 2, np.uint8)), (0, 0),
                                GLUE_SOFTEN_PX) * inside
        if fits.mean() < self.cut:
            return self._start(painting, frame, grey)
        out = _blend(painting, glued, weight * fits)
        if fits.mean() < self.refresh:
            self._start(out, frame, grey)
            return out
        # what did not fit but has settled (this frame shows what the last showed, moved with the camera) is
        # written into the key frame every few frames
        last_frame, last_motion, frames = self._last or (None, None, 0)
        if last_frame is not None and frames + 1 >= self.update_every:
            before = cv2.warpPerspective(last_frame, np.linalg.inv(last_motion) @ motion, (w, h),
                                         flags=cv2.INTER_LINEAR | inverse, borderMode=cv2.BORDER_REPLICATE)
            settled = (1.0 - fits) * _shows_the_same(before, frame) * inside > 0.25
            if settled.any():  # written whole: a share of it left a faded ghost of what had moved on (a cat
                # moving across a pan, looked at), which the next frames then half trusted
                self._update(painting, frame, motion, cv2.GaussianBlur(settled.astype(np.float32), (0, 0), 2) * inside)
                frames = -1
        self._last = (frame, motion, frames + 1)
        return out


@dataclass
class Smoother:
    """Paints frames in order, steadying the input, carrying the network's features (and optionally blending the
    output) along the photo's motion. `smoother(frame, paint)` → the output frame, where `paint(frame, features)`
    maps a uint8 H×W×3 RGB frame to its painting and passes `features` (None, or a function for
    `fastnst.inference.stylize_tensor`'s `features=`) on to the network; `reset()` after a cut. While the camera
    is still, `steady`'s fresh share (1 − steady) is cut to `still_fresh` of itself (1: as when it moves)."""
    steady: float = STEADY
    carry: float = CARRY
    features: float = FEATURES
    glue: float = GLUE
    still_fresh: float = STILL_FRESH
    flow_side: int = FLOW_SIDE
    _last: tuple | None = field(default=None, repr=False)  # (grey, frame, steady input, output) of the last frame
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
        last_grey, last_frame, last_steady = self._last[:3]
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
        if still_camera:  # where nothing moved (the last steady input is carried unmoved), also, unsoftened, whether
            # it itself shows this frame, within twice the levels: the edge of where something stood, half trusted
            # when it left, is then not carried on as a ghost for longer at the still camera's steadier input
            # (tests/test_video.py). Not where things move, and not within TRUST_LEVELS: both dropped the steadying
            # of a compressed road
            unmoved_here = cv2.resize(unmoved.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            trust = trust * (1.0 - unmoved_here * (1.0 - shows(last_steady, 2 * TRUST_LEVELS)))
        return back, trust

    def __call__(self, frame: np.ndarray, paint) -> np.ndarray:
        grey = _grey(frame, self.flow_side)
        last, moved, camera, steady = self._last, None, None, self.steady
        if last is None or last[1].shape != frame.shape or max(self.steady, self.carry, self.features,
                                                                 self.glue) <= 0:
            steady_in = frame
        else:
            flow = self.flow(grey)
            camera = camera_motion(*flow)
            still_camera = camera_speed(camera[0], grey.shape, frame.shape[1]) < GLUE_SPEEDS[0]
            if still_camera and steady > 0:
                steady = 1 - (1 - steady) * self.still_fresh
            moved = back, trust = self.trust(grey, frame, flow, still_camera)
            steady_in = _blend(frame, warp(last[2], back), steady * trust) if steady > 0 else frame
        out = paint(steady_in, self._feature_carrier(moved) if self.features > 0 else None)
        if moved is not None and self.carry > 0:
            out = _blend(out, warp(last[3], moved[0]), self.carry * moved[1])
        if self.glue > 0:
            out = self._canvas(frame, grey, camera, out, self.glue)
        self._last = (grey, frame, steady_in, out)
        return out
