"""Flow and trust: how the last frame moved to this one, and where the last frame, moved, still shows this one.

DIS optical flow (OpenCV, real-time on a CPU) is computed on small grey frames. Trust is per pixel: a forward-
backward check of the flow (occlusions, wrong flow), the edges of moving things (where the flow drags the
background along) and a photometric check (a cut, a new object); where it fails the frame is taken as it is, so
nothing ghosts or smears.
"""
import cv2
import numpy as np

FLOW_SIDE = 320          # flow is computed on grey frames at most this long: flow is smooth, and small is fast
CONSISTENCY_PX = 1.0     # forward and backward flow that disagree by more (px at flow scale) mark an occlusion
BOUNDARY = 0.05          # change of the flow (px per px) at which trust has fallen to e^-1: a moving thing's edge
BOUNDARY_PX = 8          # that edge widened by this many px at FLOW_SIDE: DIS drags the plain ground beside a
                         # moving thing along with it, and carried frame after frame its grain is painted as streaks
EDGE_LEVELS = 8.0        # a picture edge: grey changing by this many levels a px (on plain surfaces the flow's
                         # changes are noise, not boundaries)
TRUST_LEVELS = 12.0      # input mismatch (0–255 levels, after warping) at which trust has fallen to e^-1: noise
                         # passes, a new thing does not
STILL_LEVELS = 0.5       # while the camera is still, no motion is taken wherever it explains the frame within this
                         # many grey levels as well as the flow, which there is fitted to noise (`still`)
CAMERA_SHARE = 0.5       # a motion is the camera's only when at least this share of the frame moves with it, so
                         # that things moving on their own are not taken for the camera


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
    shaded surfaces DIS flow is noise whose changes are no boundary (and smoothing them is what removes flicker)."""
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
    compression, and smoothing along it would resample the input where nothing moved, which the network paints as
    strokes that re-form. Not while the camera moves: on a slow pan no motion explains smooth parts of the scene
    about as well too, and they would lag."""
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


def _soft(image: np.ndarray) -> np.ndarray:
    """Blurred a little (float32): sensor noise and one-pixel resampling differences are no mismatch."""
    return cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.5)


def _shows_the_same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, in [0, 1]: whether RGB frames `a` and `b` show the same thing (e^-1 at TRUST_LEVELS apart)."""
    return np.exp(-(_soft(np.abs(_soft(a) - _soft(b)).mean(axis=-1)) / TRUST_LEVELS) ** 2)


def _blend(fresh: np.ndarray, carried: np.ndarray, weight: np.ndarray) -> np.ndarray:
    fresh = fresh.astype(np.float32)
    return np.clip(fresh + weight[..., None] * (carried.astype(np.float32) - fresh) + 0.5, 0, 255).astype(np.uint8)


def camera_motion(back: np.ndarray, sure: np.ndarray, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The camera's motion (3×3, a similarity: shift, zoom, roll) that best explains the flow `back` (this frame →
    the last, px of its grid) at the pixels where `sure` (least median of squares, so what moves on its own does
    not count), and the uint8 mask of the pixels that move with it. Identity (still) when it explains less than
    CAMERA_SHARE of the frame: large things moving over a plain surface drag DIS flow along with them, and a fit
    to that flow would take their motion for the camera's."""
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
