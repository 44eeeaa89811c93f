"""The glued canvas: while the camera moves, the output is a key frame's painting moved with the scene.

The network's strokes depend on where the picture falls on its stride grid, so a moving camera re-forms them every
frame however its features are carried; painting once and moving the painting keeps them. Wherever the key frame's
photo, moved the same way, does not show what this frame shows (what moves on its own, what the camera newly sees,
a cut) the fresh painting comes through; what settles there is written into the key frame, and when too little of
the canvas fits, the output becomes the next key frame.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

from .flow import _blend, _grey, _shows_the_same, camera_speed

GLUE = 1.0               # weight of the glued canvas where it fits
KEY_REFRESH = 0.8        # the output becomes the next key frame when the canvas fits less of the frame than this,
                         # before much of it is painted afresh
KEY_CUT = 0.3            # below this the frame is a new scene, and its fresh painting is taken as it is
KEY_UPDATE_EVERY = 4     # frames between writing what settled where the canvas did not fit into the key frame:
                         # soon enough to glue it, seldom enough to cost little
GLUE_SOFTEN_PX = 4       # the canvas's edge is blurred this much (σ), inside where it fits, so it leaves no seam
GLUE_SPEEDS = (0.25, 0.75)  # camera speed (px a frame at the frame's size, a running mean) from which the canvas
                         # is glued, and at which fully: a still camera is smoothed better without it, and gluing
                         # costs time


def band_limited_double(image: np.ndarray) -> np.ndarray:
    """`image` (H×W×C) at twice the size, float32, by zero-padding its spectrum (mirrored at the edges first, so the
    FFT's wrap-around does not ring). Why: a painting is resampled at a sub-pixel offset as the camera moves, and
    bicubic interpolation between its own pixels softens its strokes; between the pixels of this copy it hardly
    does."""
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
    them every frame however its features are carried. Painting once and moving the painting
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
            if settled.any():  # written whole: a share of it leaves a faded ghost of what moved on, which the
                # next frames then half trust
                self._update(painting, frame, motion, cv2.GaussianBlur(settled.astype(np.float32), (0, 0), 2) * inside)
                frames = -1
        self._last = (frame, motion, frames + 1)
        return out
