"""Paint a video file: decode, paint each frame, carry strokes along the motion (fastnst.temporal), encode mp4.

    from fastnst import stylize_video
    stylize_video("clip.mov", "starry-night", "painted.mp4", max_side=640)

PyAV decodes and encodes: its wheels carry FFmpeg (H.264 by x264, AAC), so a Space needs no system package and
nothing is started as a separate program. What comes back is H.264 in mp4 with every frame's own timestamp (a
variable frame rate stays as it was), the rotation a phone recorded applied to the pixels, and the audio copied
as it was (re-encoded to AAC only when mp4 cannot hold its codec).

Only mp4/mov and Matroska/WebM files are opened, told apart by their first bytes and handed to that one
demuxer, as fastnst.imageio does for pictures: FFmpeg's other demuxers (playlists that fetch URLs, image
sequences, ...) never see user files. The painted file is written next to `dst` under a temporary name and
renamed when complete, so a failure or a cancel leaves nothing behind.
"""
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .device import pick_device
from .errors import FastNSTError, InvalidOptionError
from .inference import _check_options as check_stills_options
from .inference import stylize_tensor
from .styles import Style, load_style
from .temporal import FEATURES, GLUE, SMOOTH, Smoother

MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac"}  # copied as they are; anything else (Opus, Vorbis) becomes AAC
DEMUXERS = {"mov": "mp4, mov", "matroska": "mkv, webm"}
SUPPORTED = "mp4, mov, mkv or webm"
CRF, PRESET = "18", "veryfast"  # x264: visually lossless enough for paint, fast to encode


class InvalidVideoError(FastNSTError, ValueError):
    """The file could not be read as a video (not a video, no picture, damaged, no frames)."""


class VideoTooLargeError(InvalidVideoError):
    """The video is longer, larger or has more pixels to paint than the limits allow."""


class Cancelled(FastNSTError):
    """The painting was cancelled; nothing was kept."""


@dataclass(frozen=True)
class VideoLimits:
    """What one painting may cost. The defaults suit a CPU (a few minutes at most); GPU_LIMITS a GPU."""
    max_input_side: int = 4096          # larger frames are refused before decoding (8K decodes to 100 MB a frame)
    max_seconds: float = 60.0
    max_pixels: int = 600_000_000       # painted pixels over the whole clip: frames × width × height


GPU_LIMITS = VideoLimits(max_input_side=8192, max_seconds=600.0, max_pixels=20_000_000_000)


@dataclass
class VideoResult:
    path: Path
    frames: int
    width: int
    height: int
    fps: float            # the clip's average frame rate
    seconds: float        # wall time to paint it
    audio: bool


def sniff(path: Path) -> str:
    """The one FFmpeg demuxer allowed to read `path`, from its first bytes; refuses anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as err:
        raise InvalidVideoError(f"The video file could not be read ({err.strerror or err}).") from err
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if not head:
        raise InvalidVideoError("The video file is empty.")
    raise InvalidVideoError(f"This file is not a video fastnst reads; send {SUPPORTED}.")


def _check_options(strength, max_side, smooth, brush):
    check_stills_options(strength, None, None, brush)  # strength and brush as for a photo
    if max_side is not None and (not isinstance(max_side, int) or max_side < 16):
        raise InvalidOptionError(f"max_side must be a whole number of pixels, at least 16, not {max_side!r}.")
    if not isinstance(smooth, (int, float)) or not 0.0 <= smooth < 1.0:
        raise InvalidOptionError(f"smooth must be a number from 0 (paint each frame alone) to below 1, "
                                 f"not {smooth!r}.")


def _output_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    """Scaled so the longer side is at most max_side, then even (H.264's 4:2:0 needs even sides)."""
    scale = min(1.0, max_side / max(w, h)) if max_side else 1.0
    return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)


def paint_frame(frame: np.ndarray, style: Style, *, strength: float = 1.0, preserve_color: bool = False,
                brush: float = 1.0, device=None, features=None) -> np.ndarray:
    """One uint8 H×W×3 RGB frame painted, same size and type (`features`: a Smoother's, see stylize_tensor)."""
    x = torch.from_numpy(np.require(frame, np.uint8, ["C", "W"])).permute(2, 0, 1)[None]  # uint8: converted on device
    y = stylize_tensor(x, style, strength=strength, preserve_color=preserve_color, brush=brush, device=device,
                       features=features)
    return y[0].mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _upright(frame, size, turns: int) -> np.ndarray:
    """The decoded frame as uint8 RGB at the output size, turned `turns` × 90° counter-clockwise (as recorded)."""
    w, h = size
    if turns % 2:  # the size is of the upright picture; the stored one is its transpose
        w, h = h, w
    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _open(src: Path):
    import av
    demuxer = sniff(src)
    try:
        container = av.open(str(src), format=demuxer, metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise InvalidVideoError(f"The video file is damaged or cut short, so it cannot be opened "
                                f"({DEMUXERS[demuxer]}).") from err
    if not container.streams.video:
        container.close()
        raise InvalidVideoError("The file holds no video picture (only sound or data).")
    return container


def probe(src, limits: VideoLimits = VideoLimits()) -> dict:
    """Size (upright, after the recorded rotation), frame rate, duration and estimated frames of a video, checked
    against `limits`."""
    src = Path(src)
    with _open(src) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        w, h = cc.width, cc.height
        if not w or not h:
            raise InvalidVideoError("The video's picture size is missing, so the file is damaged.")
        if max(w, h) > limits.max_input_side:
            raise VideoTooLargeError(f"The video is {w}×{h} pixels; the largest side fastnst paints is "
                                     f"{limits.max_input_side} pixels.")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = container.duration / 1_000_000
        else:
            seconds = 0.0
        frames = stream.frames or round(seconds * float(rate))
        if seconds > limits.max_seconds:
            raise VideoTooLargeError(f"The video lasts {seconds:.0f} s; the longest fastnst paints here is "
                                     f"{limits.max_seconds:.0f} s. Cut it shorter and try again.")
        first = next(_decode_all(container, stream), None)  # the rotation is in the frames' side data
        turns = round(getattr(first, "rotation", 0) or 0) // 90 % 4 if first is not None else 0
        return {"width": h if turns % 2 else w, "height": w if turns % 2 else h, "turns": turns, "fps": float(rate),
                "rate": rate, "seconds": seconds, "frames": frames, "audio": bool(container.streams.audio),
                "decodable": first is not None}


def paint_frames(frames, style, smoother: Smoother, *, strength: float = 1.0, preserve_color: bool = False,
                 brush: float = 1.0, device=None) -> tuple[list[np.ndarray], Smoother]:
    """Consecutive uint8 H×W×3 frames painted in order through `smoother`; returns (the paintings, the smoother).
    What a ZeroGPU Space runs inside its `spaces.GPU` function: the smoother comes back with the call's result,
    because what the worker changes is lost with it (fastnst.zerogpu)."""
    device = pick_device(device)
    style = style if isinstance(style, Style) else load_style(style, device=device)

    def paint(rgb, features):
        return paint_frame(rgb, style, strength=strength, preserve_color=preserve_color, brush=brush,
                           device=device, features=features)
    return [smoother(frame, paint) for frame in frames], smoother


def stylize_video(src, style, dst, *, strength: float = 1.0, preserve_color: bool = False, brush: float = 1.0,
                  max_side: int | None = 640, smooth: float = SMOOTH, device=None,
                  limits: VideoLimits = VideoLimits(), progress=None, cancelled=None, painter=None,
                  frames_per_call: int | None = None) -> VideoResult:
    """Paint the video at `src` in `style` and write H.264 mp4 to `dst` (audio kept); returns a VideoResult.

    `brush`: stroke size as for a photo (fastnst.inference.brushed); `max_side`: the painted frames' longer side
    (None: the video's own); `smooth`: fastnst.temporal's `smooth` (0 paints every frame as it is, flickering);
    `progress(done, total, elapsed_s)` is called after each frame (`total` is an estimate, 0 when the file does not
    say); `cancelled()` is asked before each frame and True stops the painting (Cancelled is raised). Errors are FastNSTError subclasses with one sentence; on any error
    nothing is left at `dst` or beside it.

    `painter(frames, smoother)` → (paintings, smoother) paints chunks of `frames_per_call` frames elsewhere (on
    ZeroGPU, a `spaces.GPU` function around `paint_frames`; the chunk size by default fits one call's time,
    fastnst.zerogpu.frames_per_call); without it every frame is painted here (and `style` loaded here).
    """
    import av
    _check_options(strength, max_side, smooth, brush)
    src, dst = Path(src), Path(dst)
    if painter is None:
        device = pick_device(device)
        style = style if isinstance(style, Style) else load_style(style, device=device)
    info, size = _plan(src, max_side, limits)
    if painter is None:
        per_call = 1
    else:
        from .zerogpu import frames_per_call as fitting
        per_call = frames_per_call or fitting(*size)
    part = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    t0 = time.perf_counter()
    smoother = Smoother(smooth=smooth, features=FEATURES if smooth > 0 else 0.0,  # smooth 0: each frame alone
                        glue=GLUE if smooth > 0 else 0.0)

    def paint_here(frames, smoother):
        return paint_frames(frames, style, smoother, strength=strength, preserve_color=preserve_color, brush=brush,
                            device=device)

    try:
        with _open(src) as container, av.open(str(part), "w", format="mp4") as out:
            done, audio = _transcode(container, out, info, size, paint=painter or paint_here, smoother=smoother,
                                     per_call=per_call, progress=progress, cancelled=cancelled, t0=t0)
        os.replace(part, dst)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return VideoResult(dst, done, size[0], size[1], info["fps"], time.perf_counter() - t0, audio)


def _plan(src: Path, max_side: int | None, limits: VideoLimits) -> tuple[dict, tuple[int, int]]:
    """The video's probe and the painted frames' size, refused before any painting when it exceeds `limits`."""
    info = probe(src, limits)
    if not info["decodable"]:
        raise InvalidVideoError("The video holds no frames.")
    size = _output_size(info["width"], info["height"], max_side)
    total = info["frames"] * size[0] * size[1]
    if total > limits.max_pixels:
        raise VideoTooLargeError(f"Painting this video means {total / 1e6:,.0f} million pixels ({info['frames']} "
                                 f"frames of {size[0]}×{size[1]}); the limit here is {limits.max_pixels / 1e6:,.0f} "
                                 f"million. Choose a smaller size or a shorter clip.")
    return info, size


def _transcode(container, out, info: dict, size: tuple[int, int], *, paint, smoother: Smoother, per_call: int,
               progress, cancelled, t0: float) -> tuple[int, bool]:
    """Decode `container`, paint its frames in chunks of `per_call` through `paint`, encode them into `out` with
    the audio; returns (frames painted, whether there was audio). The chunks are what one ZeroGPU call paints."""
    import av
    done, last_pts, pending = 0, -1, []
    vin = container.streams.video[0]
    vin.thread_type = "AUTO"
    ain = container.streams.audio[0] if container.streams.audio else None
    # every output stream exists before the first packet is written (the mp4 header lists them)
    vout = out.add_stream("libx264", rate=info["rate"])
    vout.width, vout.height, vout.pix_fmt = size[0], size[1], "yuv420p"
    vout.time_base = vout.codec_context.time_base = vin.time_base  # each frame keeps its own timestamp
    vout.options = {"crf": CRF, "preset": PRESET}
    aout, resample = _audio_stream(out, ain) if ain is not None else (None, None)

    def flush():  # paint what is pending (one chunk), then encode it
        nonlocal smoother, done
        if not pending:
            return
        painted, smoother = paint([frame for frame, _ in pending], smoother)
        for rgb, (_, pts) in zip(painted, pending):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            picture.pts, picture.time_base = pts, vin.time_base
            out.mux(vout.encode(picture))
            done += 1
            if progress is not None:
                progress(done, max(done, info["frames"]), time.perf_counter() - t0)
        pending.clear()
    for packet in container.demux(*([vin] + ([ain] if ain is not None else []))):
        if packet.stream is ain:
            _mux_audio(out, aout, resample, packet)
            continue
        for frame in _decode(packet, done + len(pending)):
            if cancelled is not None and cancelled():
                raise Cancelled("The painting was cancelled; nothing was kept.")
            # a damaged file may repeat or omit a timestamp; the muxer needs them increasing
            last_pts = frame.pts if frame.pts is not None and frame.pts > last_pts else last_pts + 1
            pending.append((_upright(frame, size, info["turns"]), last_pts))
            if len(pending) >= per_call:
                flush()
    flush()
    if not done:
        raise InvalidVideoError("The video holds no frames.")
    out.mux(vout.encode(None))
    if resample is not None:
        for frame in resample.resample(None) or []:
            out.mux(aout.encode(frame))
        out.mux(aout.encode(None))
    return done, ain is not None


def _decode_all(container, stream):
    import av
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError:
        return


def _decode(packet, done: int):
    import av
    try:
        yield from packet.decode()
    except av.error.FFmpegError as err:
        raise InvalidVideoError(f"The video is damaged after {done} frames, so it cannot be painted.") from err


def _audio_stream(out, ain):
    """An mp4 audio stream for `ain`: a copy of it where mp4 holds its codec, else AAC (with a resampler)."""
    import av
    if ain.codec_context.name in MP4_AUDIO:
        return out.add_stream_from_template(ain), None
    aout = out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
    return aout, av.AudioResampler(format="fltp", layout=aout.codec_context.layout, rate=aout.codec_context.rate)


def _mux_audio(out, aout, resample, packet):
    import av
    if packet.dts is None:  # a flush packet
        return
    if resample is None:
        packet.stream = aout
        out.mux(packet)
        return
    try:
        frames = packet.decode()
    except av.error.FFmpegError:
        return  # a damaged sound packet is dropped, the picture goes on
    for frame in frames:
        for piece in resample.resample(frame):
            out.mux(aout.encode(piece))
