"""Visitors' files: reading uploads as Gradio hands them over (`preprocess=False`), and deleting what the Space
wrote (fits, painted videos) when its time is up. Gradio's own cache of uploads and results is swept by Gradio
(`delete_cache=UPLOADS_KEPT`)."""
from __future__ import annotations

import base64
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from fastnst.errors import InvalidImageError

from .settings import UPLOADS_KEPT, Settings

FIT_KEEP_S = 2 * 3600  # a finished fit stays this long for its visitor to paint with and publish
FITS_MAX_BYTES = 500 * 2**20  # and all fits together never hold more: the oldest finished go first
_made_fits: set[Path] = set()  # every fit folder this process made, deleted when it exits


def photo_source(image):
    """What fastnst.load_image reads: Gradio's raw upload payload or a plain path.

    Bytes rather than the path, so an error says "The file ..." instead of naming a server temp file.
    """
    if isinstance(image, dict):
        url = image.get("url") or ""
        if not image.get("path") and url.startswith("data:"):  # pasted/webcam images may arrive as data URLs
            try:
                return base64.b64decode(url.partition(",")[2])
            except ValueError as err:
                raise InvalidImageError("The pasted image could not be decoded; try uploading it as a file.") from err
        image = image.get("path")
    if image is None:
        return None
    try:
        return Path(image).read_bytes()
    except OSError as err:
        raise InvalidImageError("The uploaded file could not be read; please upload it again.") from err


def video_source(video) -> str | None:
    """The uploaded video's path from Gradio's raw payload or a plain path."""
    if isinstance(video, dict):
        video = (video.get("video") or video) if "video" in video else video
        video = video.get("path") if isinstance(video, dict) else video
    return str(video) if video else None


def upload_name(upload) -> str:
    """The name the visitor's file had on their machine."""
    return (upload.get("orig_name") or "") if isinstance(upload, dict) else Path(str(upload or "")).name


def new_fit_folder(settings: Settings, running=()) -> Path:
    """A fresh folder for a fit, after deleting fits past their time (`running` ones stay)."""
    sweep(settings.fits_dir, keep=running)
    out = settings.fits_dir / uuid.uuid4().hex[:12]
    _made_fits.add(out)
    return out


def delete(folder) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def delete_made_fits() -> None:
    for folder in _made_fits:
        delete(folder)


def new_video_folder(settings: Settings) -> Path:
    """A fresh folder for a painted video, after deleting those older than Gradio keeps its uploads."""
    sweep_videos(settings)
    settings.videos_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=settings.videos_dir))


def sweep_videos(settings: Settings, max_age_s: float = UPLOADS_KEPT[1]) -> None:
    """Delete painted videos older than `max_age_s` (all of them at exit: 0)."""
    sweep(settings.videos_dir, max_age_s=max_age_s, max_bytes=float("inf"))


def sweep(folder, *, keep=(), max_age_s: float = FIT_KEEP_S, max_bytes: int = FITS_MAX_BYTES) -> list[Path]:
    """Delete the folders in `folder` older than `max_age_s`, then the oldest until the rest fit in `max_bytes`;
    the folders in `keep` (running fits) stay whatever their age. Returns what was deleted."""
    keep = {Path(k).resolve() for k in keep}
    try:
        made = [p for p in Path(folder).iterdir() if p.is_dir() and p.resolve() not in keep]
    except OSError:
        return []
    made.sort(key=_mtime)
    total = sum(_size(p) for p in made) + sum(_size(p) for p in keep)
    now, deleted = time.time(), []
    for path in made:
        if now - _mtime(path) > max_age_s or total > max_bytes:
            total -= _size(path)
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
    return deleted


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # deleted meanwhile
                pass
    return total
