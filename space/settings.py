"""What the Space may do on this machine: sizes, waits and concurrency, read once from the hardware and the
environment by `main()` (or on first use, for tests that call the handlers directly)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SMALLEST_SIDE = 64
# Strokes × the network's own: at the default 1024 px, 1.5 reads as brushwork and keeps faces (2 starts to lose
# them with The Scream), chosen by eye on the CC0 photos in examples/.
DEFAULT_BRUSH = 1.5
QUEUE_SIZE = 64  # waiting paintings; one more is told "Queue is full! Please try again." at once
UPLOADS_KEPT = (600, 3600)  # Gradio's cache: every 10 min, delete uploads and results older than an hour
ZERO_GPU_CONCURRENCY = 4  # calls at once may get GPUs of their own; none can be read here (no CUDA in this process)
CPU_CONCURRENCY = 2  # 2 CPU threads keep the cores busy; more only share them


@dataclass(frozen=True)
class Settings:
    on_gpu: bool
    zero_gpu: bool  # ZeroGPU lends a GPU per call (`spaces.GPU`), so there is none at start-up
    on_space: bool  # Hugging Face login works on a Space; elsewhere a token field
    default_side: int
    largest_side: int
    concurrency: int  # paintings at once: on a dedicated GPU as many as its free memory holds
    memory_ceiling: int  # bytes of freed memory kept after a painting (fastnst.device.trim_freed_memory)
    fits_dir: Path
    videos_dir: Path
    live_side: int  # webcam frames are painted at most this large
    live_smallest: int  # a slow CPU paints smaller frames, not fewer (live.LiveSession.keep_up)
    live_seconds: int  # a stream ends after this
    live_concurrency: int
    video_side: int  # painted video frames' longer side

    @classmethod
    def from_env(cls, environ=os.environ) -> Settings:
        from fastnst.device import pick_device

        zero_gpu = environ.get("SPACES_ZERO_GPU") == "true"  # what Gradio itself checks (gradio.utils)
        gpu = zero_gpu or pick_device().type == "cuda"  # ZeroGPU first: CUDA may not be touched in this process
        concurrency = ZERO_GPU_CONCURRENCY if zero_gpu else gpu_concurrency() if gpu else CPU_CONCURRENCY
        temp = Path(tempfile.gettempdir())
        return cls(
            on_gpu=gpu, zero_gpu=zero_gpu, on_space=bool(environ.get("SPACE_ID")),
            default_side=3840 if gpu else 1024,  # 4K on a GPU; ~1 MP on a CPU, well under a second
            largest_side=3840 if gpu else 2048,  # beyond this a CPU keeps people waiting (and the queue behind)
            concurrency=concurrency,
            memory_ceiling=int(float(environ.get("FASTNST_MEMORY_CEILING_MB", 1536)) * 2**20),
            fits_dir=Path(environ.get("FASTNST_FITS_DIR") or temp / "fastnst-fits"),
            videos_dir=temp / "fastnst-videos",
            live_side=640 if gpu else 320,  # the light network on 2 cores keeps up at 320 px
            live_smallest=640 if gpu else 160,
            live_seconds=600 if gpu else 180,
            live_concurrency=concurrency,
            video_side=1280 if gpu else 640,
        )


def gpu_concurrency() -> int:
    """Paintings at once on this dedicated GPU, from its free memory (1 on a 15 GB T4, 4 on an 80 GB card)."""
    import torch

    from fastnst.device import memory_plan

    return memory_plan(torch.device("cuda", torch.cuda.current_device())).concurrency


_current: Settings | None = None


def current() -> Settings:
    """The settings `configure` was given, else read now from this machine and kept."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def configure(settings: Settings) -> Settings:
    global _current
    _current = settings
    return settings
