"""Small generated clips for the video, API and browser tests: a bright square moving over a gradient."""
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def scene(t: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A bright square moving right over a gradient: frame t."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)
    rgb[8:20, 4 + 2 * t:16 + 2 * t] = 255
    return rgb


def make_clip(path: Path, frames: int = 10, fps: int = 10, audio: bool = True, fmt: str = "mp4",
              codec: str = "libx264", audio_codec: str = "aac", pts=None, size=(64, 48)) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        if pts is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream(audio_codec, rate=48000) if audio else None
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(t, *size), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[t], Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = sound.codec_context.frame_size or 1024
            n = int(48000 * frames / fps)
            for start in range(0, n, samples):
                tone = np.sin(2 * np.pi * 440 * (start + np.arange(samples)) / 48000).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def make_y4m(path: Path, frames: int = 30, size=(320, 240), fps: int = 15) -> Path:
    """A raw YUV4MPEG2 clip, what Chromium's fake camera plays (--use-file-for-fake-video-capture), in a loop."""
    w, h = size
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for t in range(frames):
            f.write(b"FRAME\n" + cv2.cvtColor(scene(t, w, h), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
