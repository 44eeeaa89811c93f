"""Flicker: the warping error of painted video, per-frame painting against the shipped video path.

    python -m bench.temporal                                # synthetic pan + zoom over examples/, real clips
    python -m bench.temporal --styles starry-night --frames 16 --settings 0.9:0:0.65,0.9:0,0.9:0.3,0:0.8
    python -m bench.temporal --save-frames out/             # the frames, to look at (ghosting, smearing)
    python -m bench.temporal --styles starry-night --clips pan --strip bench/video_strip.jpg   # the README's strip

Warping error (Lai et al. 2018's measure): frame t−1 carried onto frame t along the *input's* motion, mean
absolute difference over the pixels visible in both, in 0–255 levels, averaged over the clip. The motion is exact
for the synthetic clips — a camera pan (1.3, 0.4 px a frame) and a zoom (0.6 % a frame) rendered over the CC0
photos in examples/ with sensor noise (σ = 2 levels), and a still camera with a cut-out of a second photo moving
across (`object`: what moves on its own, at a 30-fps webcam's speed) — and for the real clips
(../shared/data/video, `--frames` frames from the first or from frame N for NAME@N) it is DIS flow on the input
with a forward-backward occlusion check, taken as no motion wherever no motion explains the input better
(`or_still`; `--dis-only`: DIS flow alone, the bench before 2026-12-05's fourth session). The input's own error is
printed too: it is the floor. For each style and clip:
- per-frame: every frame painted on its own (smooth 0, carry 0);
- shipped: fastnst.video's path, `fastnst.temporal.Smoother`, at each `--settings`
  smooth:carry:features:glue:still_fresh (left-out values are 0, still_fresh 1: a smooth:carry pair is the path
  before 2026-12-03's third session, a triple the path before the glued canvas of 2026-12-05's third session, four
  values the path before the steadier still camera of 2026-12-06);
- ideal (the pan and zoom): the ratio and texture of the whole photo painted once and filmed by the same camera
  from its band-limited double (as the shipped canvas samples it; bicubic between its pixels before 2026-12-06's
  fourth session), strokes glued to the scene: the floor of the ratio for a painting of that texture;
- ratio = shipped / per-frame (goal ≤ 0.3); thing: the same on the object clip's moving thing alone (both count
  for the worst ratio); texture = style loss of the output / of the photo as in bench/quality.py (median over
  frames 4, 8, ...; goal within 10 % of per-frame), fps = painting + smoothing.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.gatys import terms_of
from bench.quality import build_loss, find_painting, find_recipe, resolve_loss_weights
from fastnst import load_style, pick_device
from fastnst.device import keep_freed_memory
from fastnst.errors import FastNSTError
from fastnst.imageio import load_image
from fastnst.temporal import (
    CARRY,
    FEATURES,
    GLUE,
    SMOOTH,
    STILL_FRESH,
    Smoother,
    band_limited_double,
    consistent,
    flow_between,
    warp,
)
from fastnst.video import paint_frame

REPO = Path(__file__).resolve().parents[1]

SHARED = REPO.parent / "shared" / "data"
VIDEOS = SHARED / "video"
NOISE = 2.0               # synthetic sensor noise, levels
PAN = (1.3, 0.4)          # px per frame
ZOOM = 1.006              # scale per frame
WALK = (1.6, -0.5, 0.25)  # the object clip: px per frame (x, y) and degrees per frame, at 384 px (a visitor moving
                          # in front of a 30-fps webcam; the real clips, at 10-12.5 fps, move 3× as far a frame)
TEXTURE_EVERY = 4


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ clips
def frame_size(side: int) -> tuple[int, int]:
    """(height, width) of the synthetic clips' frames: 4:3, `side` px wide, as a webcam's."""
    return round(side * 3 / 4), side


def camera_canvas(photo: Path, side: int) -> np.ndarray:
    """`photo` scaled so that a `side`-px frame sees 70 % of it (room for the camera to move)."""
    big = np.asarray(load_image(photo).convert("RGB"))
    h, w = frame_size(side)
    shrink = min(big.shape[0] / h, big.shape[1] / w) * 0.7
    return cv2.resize(big, (round(big.shape[1] / shrink), round(big.shape[0] / shrink)), interpolation=cv2.INTER_AREA)


def film(canvas: np.ndarray, kind: str, frames: int, side: int, noise: float = NOISE, seed: int = 0,
         double: np.ndarray | None = None):
    """Frames of a camera moving over `canvas`, and for each frame t ≥ 1 the exact flow t → t−1 and the mask of
    pixels that were inside frame t−1. Frame t shows the canvas point A_t(p) = c + s_t · (p − centre) + o_t.
    `double`: the canvas's band-limited double (`fastnst.temporal.band_limited_double`) to sample the frames from
    instead, as the shipped glued canvas does, so that sub-pixel moves do not soften a painting's strokes."""
    h, w = frame_size(side)
    H, W = canvas.shape[:2]
    rng = np.random.default_rng(seed)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    start = np.array([W / 2, H / 2]) - np.array(PAN) * frames / 2

    def affine(t):
        s = 1.0 / (ZOOM ** t if kind == "zoom" else 1.0)
        o = start + np.array(PAN) * t if kind == "pan" else np.array([W / 2, H / 2])
        return s, o

    clip, flows, masks = [], [None], [None]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float64)
    for t in range(frames):
        s, o = affine(t)
        m = np.array([[s, 0, o[0] - s * centre[0]], [0, s, o[1] - s * centre[1]]])
        if double is not None:  # canvas pixel q sits at 2q + 0.5 on its double
            m = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5]]) @ np.vstack([m, [0, 0, 1]])
        frame = cv2.warpAffine(canvas if double is None else double, m, (w, h),
                               flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        noisy = frame.astype(np.float32) + (rng.normal(0, noise, frame.shape) if noise else 0)
        clip.append(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
        if t:
            s0, o0 = affine(t - 1)
            there = (s * (grid - centre) + o - o0) / s0 + centre  # p in frame t-1 showing what p shows in t
            flows.append((there - grid).astype(np.float32))
            masks.append((there[..., 0] >= 0) & (there[..., 0] <= w - 1) & (there[..., 1] >= 0)
                         & (there[..., 1] <= h - 1))
    return clip, flows, masks


def sprite(photo: Path, side: int) -> np.ndarray:
    """An elliptical cut-out (RGBA float32, alpha feathered over ~2 px) of `photo`'s centre, 45 % of a `side`-px
    frame's height: the moving thing of the object clip (the astronaut's head and shoulders by default)."""
    rgb = np.asarray(load_image(photo).convert("RGB"))
    h = round(frame_size(side)[0] * 0.45)
    w = round(h * 0.8)
    scale = max(h / rgb.shape[0], w / rgb.shape[1]) * 1.6  # the middle of the photo, enlarged
    big = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    top, left = (big.shape[0] - h) // 3, (big.shape[1] - w) // 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xs - (w - 1) / 2) / (w / 2 - 2), (ys - (h - 1) / 2) / (h / 2 - 2))
    alpha = np.clip((1 - r) * (min(h, w) / 4) + 0.5, 0, 1)  # 1 inside, 0 outside, a ramp of ~2 px at the rim
    return np.dstack([big[top:top + h, left:left + w].astype(np.float32), alpha])


def film_object(canvas: np.ndarray, thing: np.ndarray, frames: int, side: int, noise: float = NOISE,
                seed: int = 0):
    """A still camera and `thing` (RGBA, `sprite`) moving across it by WALK a frame, turning as it goes: the frames,
    the exact flow t → t−1 (the thing's motion on it, none elsewhere) and the mask of the pixels seen in both frames
    (not what the thing uncovers, nor its feathered rim)."""
    h, w = frame_size(side)
    top, left = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
    background = canvas[top:top + h, left:left + w].astype(np.float32)
    th, tw = thing.shape[:2]
    thing = np.dstack([thing[..., :3] * thing[..., 3:], thing[..., 3:]])  # premultiplied: no dark fringe at the rim
    rng = np.random.default_rng(seed)
    step = np.array(WALK[:2]) * side / 384

    def placed(t):  # 2×3: thing px → frame px
        centre = np.array([w / 2, h * 0.55]) + (t - frames / 2) * step
        m = cv2.getRotationMatrix2D(((tw - 1) / 2, (th - 1) / 2), WALK[2] * (t - frames / 2), 1.0)
        m[:, 2] += centre - np.array([(tw - 1) / 2, (th - 1) / 2])
        return m

    clip, flows, masks, alphas = [], [None], [None], []
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float64)
    for t in range(frames):
        layer = cv2.warpAffine(thing, placed(t), (w, h), flags=cv2.INTER_CUBIC, borderValue=0)
        alpha = np.clip(layer[..., 3:], 0, 1)
        frame = background * (1 - alpha) + np.clip(layer[..., :3], 0, 255)
        noisy = frame + (rng.normal(0, noise, frame.shape) if noise else 0)
        clip.append(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
        alphas.append(alpha[..., 0])
        if t:  # p on the thing in frame t shows thing point placed(t)⁻¹ p, which frame t−1 shows at placed(t−1) of it
            now, before = np.vstack([placed(t), [0, 0, 1]]), np.vstack([placed(t - 1), [0, 0, 1]])
            there = cv2.transform(grid.reshape(-1, 1, 2), (before @ np.linalg.inv(now))[:2]).reshape(h, w, 2)
            on_thing = alphas[t] > 0.999
            flows.append(np.where(on_thing[..., None], there - grid, 0).astype(np.float32))
            inside = (there >= 0).all(-1) & (there[..., 0] <= w - 1) & (there[..., 1] <= h - 1)
            masks.append((on_thing & inside) | ((alphas[t] < 0.001) & (alphas[t - 1] < 0.001)))
    return clip, flows, masks


def synthetic_clip(photo: Path, kind: str, frames: int, side: int, seed: int = 0):
    """A camera pan or zoom over `photo` with sensor noise: (frames, exact flows t → t−1, masks)."""
    return film(camera_canvas(photo, side), kind, frames, side, seed=seed)


def or_still(back: np.ndarray, frame: np.ndarray, last: np.ndarray) -> np.ndarray:
    """`back` (flow `frame` → `last`), per pixel, or no motion where that explains `frame` better (mean absolute
    difference, blurred σ 2 px). Why: at the key frames of a tripod clip the input changes by compression alone, DIS
    fits up to 3 px of motion to it, and warping along that flow a painted frame that did not change at all scored
    4.75 levels of "flicker" (one-by-one-person-detection, frames 10 and 20; bench/RESULTS.md). Chosen on the input
    only, so both paths are measured along the same motion, and the input's own error can only fall."""
    moved = cv2.GaussianBlur(np.abs(frame.astype(np.float32) - warp(last, back)).mean(-1), (0, 0), 2)
    unmoved = cv2.GaussianBlur(np.abs(frame.astype(np.float32) - last).mean(-1), (0, 0), 2)
    return np.where((unmoved < moved)[..., None], np.float32(0), back)


def real_clip(path: Path, frames: int, side: int, dis_only: bool = False, start: int = 0):
    """`frames` frames from frame `start`, scaled to `side`, with flow t → t−1 (DIS, `or_still`) and a
    forward-backward mask."""
    import av
    clip = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            scale = side / max(rgb.shape[:2])
            clip.append(cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                                   interpolation=cv2.INTER_AREA))
            if len(clip) == frames:
                break
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # slower and better than the shipped one
    flows, masks = [None], [None]
    for t in range(1, len(clip)):
        back, fwd = flow_between(grey[t], grey[t - 1], dis), flow_between(grey[t - 1], grey[t], dis)
        flows.append(back if dis_only else or_still(back, clip[t], clip[t - 1]))
        masks.append(consistent(fwd, back))
    return clip, flows, masks


def moving_thing(clip_name: str, flows, masks):
    """For the object clip, the masks of the pixels on the moving thing (its flow is not 0), else None. Why: the
    thing is a tenth of the frame, and a path that steadies only the still background passes the whole frame's
    goal while painting the thing afresh every frame (bench/RESULTS.md, 2026-12-06 third session)."""
    if clip_name != "object":
        return None
    return [None] + [m & (f != 0).any(-1) for f, m in zip(flows[1:], masks[1:])]


def warping_error(frames, flows, masks) -> float:
    errors = []
    for t in range(1, len(frames)):
        carried = warp(frames[t - 1], flows[t]).astype(np.float32)
        diff = np.abs(frames[t].astype(np.float32) - carried).mean(-1)
        errors.append(float(diff[masks[t]].mean()))
    return statistics.mean(errors)


# ----------------------------------------------------------------------------------------------- painting
def glued(painted_canvas, double, kind: str, clip) -> list:
    """A painting glued to the scene: the whole canvas painted once and filmed by the clip's camera without noise,
    sampled from its band-limited `double` as the shipped canvas is. Its warping error's ratio to per-frame painting
    is the floor of the bench's ratio for a painting of its texture (not 0: the metric resamples strokes), which
    the bench prints beside it: the whole canvas is painted with other strokes than a frame of it (texture up to
    2.5× per-frame painting's over the rocket, bench/RESULTS.md)."""
    return film(painted_canvas, kind, len(clip), clip[0].shape[1], noise=0, double=double)[0]


def paint_clip(clip, style, smooth: float, carry: float, features: float, device, glue: float = 0.0,
               still_fresh: float = 1.0):
    smoother, out = Smoother(smooth=smooth, carry=carry, features=features, glue=glue, still_fresh=still_fresh), []
    t0 = time.perf_counter()
    for frame in clip:
        out.append(smoother(frame, lambda x, carried: paint_frame(x, style, device=device, features=carried)))
    return out, len(clip) / (time.perf_counter() - t0)


def texture_of(loss_fn, clip, painted, device) -> float:
    ratios = []
    for t in range(TEXTURE_EVERY, len(clip), TEXTURE_EVERY):
        x = torch.from_numpy(clip[t]).permute(2, 0, 1)[None].float().div(255).to(device)
        y = torch.from_numpy(painted[t]).permute(2, 0, 1)[None].float().div(255).to(device)
        ratios.append(terms_of(loss_fn, y, loss_fn.content_targets(x))["style"]
                      / terms_of(loss_fn, x, loss_fn.content_targets(x))["style"])
    return statistics.median(ratios)


def write_strip(path: Path, clip, plain, shipped, columns: int = 4, width: int = 256) -> None:
    """Rows: the input, per-frame painting, the shipped path; `columns` frames spread over the clip."""
    picks = [round(i * (len(clip) - 1) / (columns - 1)) for i in range(columns)]
    h = round(clip[0].shape[0] * width / clip[0].shape[1])
    rows = [np.concatenate([cv2.resize(frames[t], (width, h), interpolation=cv2.INTER_AREA) for t in picks], 1)
            for frames in (clip, plain, shipped)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    log(f"strip: {path} (frames {', '.join(map(str, picks))}; rows: input, per-frame, shipped)")


def parse_setting(text: str) -> tuple:
    """"smooth:carry:features:glue:still_fresh" → five floats; values left out are 0, still_fresh 1 (each shorter
    form is the path before the next value was added)."""
    values = [float(v) for v in text.split(":")]
    return (*values[:4], *[0.0] * (4 - len(values[:4])), values[4] if len(values) > 4 else 1.0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", default="starry-night,the-scream,great-wave")
    p.add_argument("--clips", default="pan,zoom,car-detection",
                   help="pan, zoom, object (synthetic, over --photo; object: a still camera and a cut-out of "
                        "--thing moving across) and/or names of files in ../shared/data/video, each "
                        "from its first frame or, as NAME@N, from frame N (where people walk: "
                        "one-by-one-person-detection@60, cars drive: car-detection@180)")
    p.add_argument("--photo", default=str(REPO / "examples" / "rocket.jpg"))
    p.add_argument("--thing", default=str(REPO / "examples" / "astronaut.jpg"),
                   help="the photo whose middle moves across --photo in the object clip")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--side", type=int, default=384)
    p.add_argument("--settings", default=f"{SMOOTH}:{CARRY}:{FEATURES}:{GLUE}:{STILL_FRESH}",
                   help="comma-separated smooth:carry:features:glue:still_fresh of fastnst.temporal.Smoother "
                        "(values left out are 0, still_fresh 1; default: the shipped one)")
    p.add_argument("--dis-only", action="store_true",
                   help="the real clips' motion: DIS flow alone, never no motion (the bench's before 2026-12-05)")
    p.add_argument("--variant", default="light")
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights-dir", default=str(SHARED / "weights"))
    p.add_argument("--paintings-dir", default=str(SHARED / "styles"))
    p.add_argument("--save-frames", type=Path, default=None, help="write the painted frames here as JPEGs")
    p.add_argument("--strip", type=Path, default=None,
                   help="write a JPEG of 4 frames of the first style and clip: the input, painted frame by frame, "
                        "and by the first --settings")
    return p


def load_clips(args) -> tuple[dict, np.ndarray | None]:
    """{name: (frames, flows, masks, synthetic)} for --clips, and the canvas the synthetic ones film."""
    clips, canvas = {}, None
    for name in filter(None, args.clips.split(",")):
        if name in ("pan", "zoom", "object"):
            canvas = camera_canvas(Path(args.photo), args.side) if canvas is None else canvas
            filmed = (film_object(canvas, sprite(Path(args.thing), args.side), args.frames, args.side)
                      if name == "object" else film(canvas, name, args.frames, args.side))
            clips[name] = (*filmed, name != "object")  # a pan or zoom has an ideal: one painting filmed by the camera
        else:
            file, _, start = name.partition("@")
            path = VIDEOS / (file if file.endswith(".mp4") else f"{file}.mp4")
            if not path.is_file():
                log(f"{name}: skipped: {path} is not here")
                continue
            clips[name] = (*real_clip(path, args.frames, args.side, args.dis_only, int(start or 0)), False)
    return clips, canvas


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    keep_freed_memory()
    device = pick_device(args.device)
    settings = [parse_setting(one) for one in args.settings.split(",")]
    clips, canvas = load_clips(args)
    print(f"device {device}, {args.frames} frames at {args.side} px, {args.variant} networks; "
          f"per setting (smooth:carry:features:glue:still_fresh): warping error, ratio to per-frame, texture, "
          f"frames per second")
    wide, named = max(map(len, clips), default=4) + 2, max(map(len, args.styles.split(","))) + 2
    print(f"{'style':<{named}}{'clip':<{wide}}{'input':>7}{'per-frame':>10}{'texture':>9}{'ideal':>7}{'texture':>9}"
          + "".join(f"{':'.join(f'{v:g}' for v in setting):>18}{'ratio':>7}{'thing':>7}{'texture':>9}{'fps':>6}"
                    for setting in settings))
    worst, strip_done = 0.0, False
    for name in filter(None, args.styles.split(",")):
        try:
            style = load_style(name, device=device, variant=args.variant)
            recipe = find_recipe(style, name)
            loss_fn = build_loss(recipe, resolve_loss_weights(recipe, None, Path(args.weights_dir)),
                                 find_painting(style, recipe, Path(args.paintings_dir)), device)
        except FastNSTError as err:
            log(f"{name}: skipped: {err}")
            continue
        painted_canvas = double = None  # painted once per style
        if canvas is not None:
            painted_canvas = paint_frame(canvas, style, device=device)
            double = band_limited_double(painted_canvas)
        for clip_name, (clip, flows, masks, synthetic) in clips.items():
            plain, _ = paint_clip(clip, style, 0.0, 0.0, 0.0, device)
            base, base_texture = warping_error(plain, flows, masks), texture_of(loss_fn, clip, plain, device)
            ideal = ideal_texture = "—"
            if synthetic:
                ideal_frames = glued(painted_canvas, double, clip_name, clip)
                ideal = f"{warping_error(ideal_frames, flows, masks) / base:.2f}"
                ideal_texture = f"{texture_of(loss_fn, clip, ideal_frames, device):.3f}"
            thing = moving_thing(clip_name, flows, masks)
            thing_base = warping_error(plain, flows, thing) if thing else None
            row = (f"{name:<{named}}{clip_name:<{wide}}{warping_error(clip, flows, masks):>7.2f}{base:>10.2f}"
                   f"{base_texture:>9.3f}{ideal:>7}{ideal_texture:>9}")
            for smooth, carry, features, glue, still_fresh in settings:
                shipped, fps = paint_clip(clip, style, smooth, carry, features, device, glue, still_fresh)
                err = warping_error(shipped, flows, masks)
                on_thing = warping_error(shipped, flows, thing) / thing_base if thing else None
                worst = max(worst, err / base, on_thing or 0.0)
                row += (f"{err:>18.2f}{err / base:>7.2f}{'—' if on_thing is None else f'{on_thing:.2f}':>7}"
                        f"{texture_of(loss_fn, clip, shipped, device):>9.3f}{fps:>6.1f}")
                if args.strip and not strip_done:
                    write_strip(args.strip, clip, plain, shipped)
                    strip_done = True
                if args.save_frames:
                    values = "-".join(f"{v:g}" for v in (smooth, carry, features, glue, still_fresh))
                    folder = args.save_frames / f"{name}-{clip_name}-{values}"
                    folder.mkdir(parents=True, exist_ok=True)
                    for t, frame in enumerate(shipped):
                        cv2.imwrite(str(folder / f"{t:03d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            print(row, flush=True)
    print(f"worst ratio {worst:.2f} (goal ≤ 0.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
