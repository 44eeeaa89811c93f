"""Which device to run on, and how the CPU is asked to run fast: the one place that decides."""
import ctypes
import functools
import os
import sys
import time
from dataclasses import dataclass

import torch

from .errors import InvalidOptionError
from .tiling import MARGIN


def pick_device(device=None) -> torch.device:
    """None / "" / "auto" → the GPU if there is one, else the CPU; otherwise the named device, checked."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidOptionError(f"Unknown device {device!r}; use cpu, cuda or cuda:N.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("A CUDA device was asked for, but this machine has no usable GPU.")
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), asked of torch. Only then does bf16 autocast
    speed a CPU up; elsewhere oneDNN emulates it and it is slower than fp32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


@functools.cache
def cpu_bf16_is_faster() -> bool:
    """Whether bf16 autocast really beats fp32 on this CPU: timed once per process (~0.2 s) on the convolution the
    light network spends its time in (64 channels, 3×3, channels-last). The CPU flag alone is not enough: CPUs with
    the same flag paint bf16 faster on some and slower on others (bench/RESULTS.md). bf16 must win by 10 % to be
    chosen, since fp32 is the exact one."""
    if not cpu_has_bf16():
        return False
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(1, 64, 128, 128).contiguous(memory_format=torch.channels_last)

    def best_of(bf16: bool, repeats: int = 3) -> float:
        times = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            conv(conv(x))  # warm-up: oneDNN builds its kernel and reorders the weights once
            for _ in range(repeats):
                start = time.perf_counter()
                conv(conv(x))
                times.append(time.perf_counter() - start)
        return min(times)

    fp32, bf16 = best_of(False), best_of(True)
    return bf16 < 0.9 * fp32


PRECISIONS = ("auto", "bf16", "fp16", "fp32")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # the precisions that run under autocast
BF16_CAPABILITY = 8  # CUDA compute capability (major) from which tensor cores compute bf16: Ampere on


def cuda_has_bf16(device: torch.device) -> bool:
    """Whether this GPU computes bf16 natively. A T4 (sm 7.5) or V100 (7.0) has fp16 tensor cores only and runs
    bf16 emulated, slower than fp32, so there fp16 is the fast half precision."""
    return torch.cuda.get_device_capability(device)[0] >= BF16_CAPABILITY


def pick_precision(precision: str, device: torch.device) -> str:
    """"auto" → on a GPU bf16 autocast where it is native (`cuda_has_bf16`), else fp16 (training adds a GradScaler);
    on a CPU bf16 where it is measurably faster (`cpu_bf16_is_faster`), else fp32. Anything else as given."""
    if precision not in PRECISIONS:
        raise InvalidOptionError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16(device) else "fp16"
    return "bf16" if device.type == "cpu" and cpu_bf16_is_faster() else "fp32"


# --- sizing work to a GPU's memory -------------------------------------------------------------------------------
# Peak GPU memory of painting one pixel with the full TransformerNet in fp32 eager (the fallback every mode must
# fit): the decoder's last stage holds a 64-channel upsampled copy, its padded copy and a 32-channel output at full
# resolution, with the caller's framed input and output beside them. An estimate with headroom; bench/gpu_check.py
# prints the measured figure.
BYTES_PER_PIXEL = 1024
MEMORY_SHARE = 0.8  # of the free memory: cuDNN workspaces and the caching allocator's fragmentation need the rest
LARGEST_PICTURE = 3840 * 2160  # what the Space offers at most (4K)
MAX_UNTILED_PIXELS = 16_000_000  # above this a picture is tiled however large the card
TILE_RANGE = (256, 1024)  # tile core sides
MAX_CONCURRENCY = 4


@dataclass(frozen=True)
class MemoryPlan:
    """How a card of `free_bytes` free memory is used: paintings at once, the largest painted untiled, tile side."""
    concurrency: int
    untiled_pixels: int
    tile: int


def plan_for_memory(free_bytes: int, *, bytes_per_pixel: int = BYTES_PER_PIXEL,
                    max_concurrency: int = MAX_CONCURRENCY) -> MemoryPlan:
    """As many paintings at once as fit with a 4K picture each (at least one), then the largest picture each may
    paint untiled in its share, and a tile (with its margins) that fits that share too. Fixed numbers were right for
    an 80 GB card only: a 15 GB T4 would run out of memory painting four 16 MP pictures untiled."""
    usable = free_bytes * MEMORY_SHARE / bytes_per_pixel  # pixels in flight
    concurrency = max(1, min(max_concurrency, int(usable // LARGEST_PICTURE)))
    share = usable / concurrency
    untiled = int(min(MAX_UNTILED_PIXELS, share))
    tile = int(min(TILE_RANGE[1], max(TILE_RANGE[0], share ** 0.5 - 2 * MARGIN))) // 4 * 4
    return MemoryPlan(concurrency, untiled, tile)


@functools.cache
def memory_plan(device: torch.device) -> MemoryPlan:
    """`plan_for_memory` for this GPU's free memory, read once per device (by the first painting on it, when the
    process holds little of it)."""
    free, _total = torch.cuda.mem_get_info(device)
    return plan_for_memory(free)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the kernel; True if it did.

    PyTorch's CPU tensors come from plain malloc, and glibc serves every large block with a fresh mmap and unmaps it
    on free, so every activation of every call is zero-filled by the kernel page by page on first touch — at a
    megapixel that costs about as much time as the network's arithmetic. With mmap and trimming off and one arena
    (Gradio paints in worker threads, whose own arenas would map fresh memory again) freed blocks are reused, as
    onnxruntime's arena reuses them. The price is that the process keeps its peak memory. It changes the whole
    process, so entry points (the app, the CLIs, the benches) call it, not the library. Linux with glibc only."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_ARENA_MAX, 1))
    return all(mallopt(option, value) == 1 for option, value in settings)


def resident_bytes() -> int | None:
    """This process's resident memory (RSS) in bytes, from /proc; None where there is no /proc."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def trim_freed_memory(ceiling_bytes: int) -> bool:
    """Hand the memory keep_freed_memory keeps back to the kernel, but only once the process holds more than
    `ceiling_bytes`; True if it did. Called after each request by a server: the usual pictures keep reusing their
    memory (no page faults), while a rare huge one (a 36 MP decode) does not stay resident for good."""
    rss = resident_bytes()
    if rss is None or rss <= ceiling_bytes or not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
