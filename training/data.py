"""Training photos: find them, decode them once into a memory-mapped uint8 cache, sample augmented batches.

Why a cache: decoding a 640×480 JPEG costs a few milliseconds of CPU, which on a GPU is longer than a whole
training step. So every photo is decoded once, its shorter side resized to `prep_side` (S) and the centre S×S
square kept, and all of them are stored as one (N, S, S, 3) uint8 `.npy` file. Training then only slices
random `crop`×`crop` windows (+ horizontal flips) out of that array: from the memory map on CPU, or from a copy
resident in GPU memory when it fits. Steps never wait on JPEG decoding.

The cache file is named by a hash of (file paths, sizes, mtimes, S, cache format), so every style trained on the
same photos at the same size reuses it, and editing a photo invalidates it.

Sampling is a pure function of (seed, step, rank): the permutation of epoch e comes from seed e, the crop
offsets of step t from seed t. A resumed run therefore needs no sampler state beyond the step count, and under
DDP rank r takes slice r of the same global batch a single process would draw (same images, same crops).
"""
import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from fastnst.errors import FastNSTError
from fastnst.imageio import FORMATS, load_image

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
CACHE_DIR = Path(os.environ.get("FASTNST_DATA_CACHE", Path.home() / ".cache" / "fastnst" / "data"))
# The cache keeps the most recently used photo sets up to this size (a 700-photo set at 148 px is ~46 MB).
CACHE_MAX_BYTES = int(float(os.environ.get("FASTNST_DATA_CACHE_MAX_MB", 1024)) * 2**20)
CACHE_VERSION = 2       # bump when the stored layout or the resizing changes
PREP_FACTOR = 1.15      # default prep side = crop × this: a little room around each random crop
MIN_SIDE_FACTOR = 0.5   # photos whose shorter side is below crop × this are skipped (upscaling them is mush)
GPU_FRACTION = 0.5      # keep the cache on the GPU only if it takes at most this share of free GPU memory


class DataError(FastNSTError, ValueError):
    """The training data cannot be used (no such folder, no images, too few usable images)."""


def min_side(crop: int) -> int:
    """The shorter side below which a photo is skipped for `crop`-px training crops (`MIN_SIDE_FACTOR`)."""
    return math.ceil(crop * MIN_SIDE_FACTOR)


def default_prep_side(crop: int) -> int:
    return int(round(crop * PREP_FACTOR / 2)) * 2


def list_images(source) -> list[Path]:
    """Image paths under a folder (recursive, sorted) or listed in a text file (one per line, relative to it)."""
    source = Path(source).expanduser()
    if source.is_dir():
        paths = [p for p in source.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    elif source.is_file():
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        paths = [source.parent / line.strip() for line in lines if line.strip() and not line.startswith("#")]
    else:
        raise DataError(f"Training data {source} does not exist (give a folder of photos or a text file listing them).")
    if not paths:
        raise DataError(f"No images ({', '.join(EXTENSIONS)}) found in {source}.")
    return sorted(paths)


def heldout_indices(count: int, heldout: int) -> np.ndarray:
    """Which of `count` usable photos a run keeps out of training: `heldout` of them, evenly spaced, so the held-out
    set spans every source folder (sorted order) and never changes with the seed."""
    return np.unique(np.linspace(0, count - 1, max(heldout, 1)).round().astype(int))


def heldout_photos(source, heldout: int, min_side: int) -> list[Path]:
    """The photo files a run on `source` keeps out of training (`heldout_indices` over the usable photos; the
    sizes are read from the headers, with `_decode`'s rule), so benches can measure on photos no network saw."""
    usable = []
    for path in list_images(source):
        try:
            with Image.open(path, formats=FORMATS) as im:  # the header only, through our allow-list
                if min(im.size) >= min_side:
                    usable.append(path)
        except (OSError, ValueError):
            continue
    return [usable[i] for i in heldout_indices(len(usable), heldout)] if usable else []


def cache_key(paths: list[Path], prep_side: int) -> str:
    """Hash of everything the cached pixels depend on; a missing listed file hashes as such (it will be skipped)."""
    h = hashlib.sha256(f"fastnst-data v{CACHE_VERSION} side={prep_side}\n".encode())
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p.resolve()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\tmissing\n".encode())
    return h.hexdigest()[:24]


def _decode(path: Path, side: int, min_side: int):
    """One photo → (side, side, 3) uint8 centre square, or None if it is unreadable, truncated or too small."""
    try:  # through the same allow-list and budget as every other picture; JPEGs decode at 1/2, 1/4... ≥ side
        im = load_image(path, draft=(side, side))
    except FastNSTError:  # not an image, truncated, decompression bomb, unsupported format: skip, never fatal
        return None
    w, h = im.size
    if min(w, h) < min_side:
        return None
    scale = side / min(w, h)
    nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
    im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    left, top = (nw - side) // 2, (nh - side) // 2
    return np.asarray(im.crop((left, top, left + side, top + side)), dtype=np.uint8)


@dataclass
class PhotoCache:
    """The decoded photos: `array` is (count, side, side, 3) uint8, memory-mapped read-only."""

    path: Path
    array: np.ndarray
    side: int
    sources: list[str]                      # file of each stored image, in order
    skipped: list[str] = field(default_factory=list)
    reused: bool = False

    @property
    def count(self) -> int:
        return len(self.sources)


def build_cache(source, *, prep_side: int, min_side: int, cache_dir=None, workers: int | None = None,
                progress: bool = True) -> PhotoCache:
    """Decode every photo once into `cache_dir/<key>.npy` (+ `<key>.json`), or reuse the file if it exists."""
    paths = list_images(source)
    cache_dir = Path(cache_dir).expanduser() if cache_dir else CACHE_DIR
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(paths, prep_side)
    npy, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if meta_path.is_file() and npy.is_file():  # the .json is written last: its presence means "complete"
        meta_path.touch()  # most recently used: the last to be pruned
        return _open(npy, meta_path, reused=True)

    tmp = cache_dir / f"{key}.npy.tmp{os.getpid()}"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), prep_side, prep_side, 3))
    stored, skipped = [], []
    workers = workers or min(16, os.cpu_count() or 1)
    # Threads, not processes: Pillow releases the GIL while decoding and resizing, and threads are safe to start
    # inside torchrun workers and pytest alike. Chunked map keeps the file order and bounds memory.
    bar = tqdm(total=len(paths), desc="preparing photos", unit="img", disable=not progress, leave=False)
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(paths), 256):
            chunk = paths[start:start + 256]
            for path, img in zip(chunk, pool.map(lambda p: _decode(p, prep_side, min_side), chunk)):
                if img is None:
                    skipped.append(str(path))
                else:  # valid images are packed at the front; the tail stays unused (count is in the .json)
                    out[len(stored)] = img
                    stored.append(str(path))
            bar.update(len(chunk))
    bar.close()
    out.flush()
    del out
    os.replace(tmp, npy)
    meta = {"version": CACHE_VERSION, "side": prep_side, "source": str(source), "sources": stored,
            "skipped": skipped}
    tmp_meta = meta_path.with_suffix(f".json.tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)
    prune_cache(cache_dir, keep=key)
    return _open(npy, meta_path, reused=False)


def prune_cache(cache_dir: Path, *, keep: str, max_bytes: int | None = None) -> None:
    """Delete the least recently used photo sets until the cache holds at most `max_bytes` (CACHE_MAX_BYTES),
    never the set `keep`, and the half-written files of processes that were killed while writing one.
    A set deleted while a training run still reads it stays readable to that run (its memory map holds it)."""
    max_bytes = CACHE_MAX_BYTES if max_bytes is None else max_bytes
    for tmp in cache_dir.glob("*.tmp*"):
        pid = tmp.name.rpartition(".tmp")[2]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
    sets = []
    for meta in cache_dir.glob("*.json"):
        npy = meta.with_suffix(".npy")
        try:
            sets.append((meta.stat().st_mtime, meta.stem, meta, npy, npy.stat().st_size if npy.exists() else 0))
        except OSError:
            continue
    total = sum(entry[-1] for entry in sets)
    for _, stem, meta, npy, size in sorted(sets):
        if total <= max_bytes:
            break
        if stem != keep:
            meta.unlink(missing_ok=True)
            npy.unlink(missing_ok=True)
            total -= size


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open(npy: Path, meta_path: Path, *, reused: bool) -> PhotoCache:
    meta = json.loads(meta_path.read_text())
    # mode "c" (copy-on-write) gives a writeable view that never writes back: torch.from_numpy wants writeable.
    array = np.load(npy, mmap_mode="c")[: len(meta["sources"])]
    return PhotoCache(npy, array, meta["side"], meta["sources"], meta["skipped"], reused)


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (seed, step, stream...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class BatchSampler:
    """Random crops + flips of the cached photos, drawn as a pure function of (seed, step).

    `pool` are the cache indices used for training (the held-out photos are left out). Each epoch is a fresh
    permutation of the pool; step t takes global positions [t·G, (t+1)·G) with G = batch × world, and rank r
    keeps its own slice of that global batch. Everything is drawn on the data's device (permutations are made
    once per epoch and copied there, crops come from a generator on that device), so a GPU step never waits
    for a host-to-device copy of indices.
    """

    def __init__(self, data: torch.Tensor, pool, *, batch_size: int, crop: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.data = data  # (N, S, S, 3) uint8, CPU (memmap) or GPU
        self.pool = torch.as_tensor(np.asarray(pool), dtype=torch.long).to(data.device)
        self.batch_size, self.crop, self.seed = batch_size, crop, seed
        self.rank, self.world_size = rank, world_size
        self.side = data.shape[1]
        if crop > self.side:
            raise DataError(f"Crop {crop} is larger than the prepared photos ({self.side} px).")
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        """Cache indices in the order epoch `epoch` visits them (numpy RNG: identical on every device)."""
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}  # keep at most 2 epochs
            order = np.random.default_rng(derive_seed(self.seed, epoch, 0xDA7A)).permutation(len(self.pool))
            self._perms[epoch] = self.pool[torch.from_numpy(order).to(self.pool.device)]
        return self._perms[epoch]

    def global_indices(self, step: int) -> torch.Tensor:
        """Cache indices of the whole global batch (all ranks) at `step`."""
        m, left = len(self.pool), self.batch_size * self.world_size
        pos, parts = step * left, []
        while left:  # a batch may straddle an epoch boundary (or several, for tiny data sets)
            epoch, off = divmod(pos, m)
            take = min(left, m - off)
            parts.append(self._perm(epoch)[off:off + take])
            pos, left = pos + take, left - take
        return torch.cat(parts)

    def indices(self, step: int) -> torch.Tensor:
        """Cache indices of this rank's images at `step`."""
        lo = self.rank * self.batch_size
        return self.global_indices(step)[lo:lo + self.batch_size]

    def batch(self, step: int, device=None) -> torch.Tensor:
        """(B, 3, crop, crop) float in [0, 1] on `device` (default: the data's); channels_last by construction (NHWC
        storage). Photos cached on the host travel to a GPU as uint8 through pinned memory, converted there."""
        pixels = self.pixels(step)
        if device is not None and torch.device(device).type == "cuda" and pixels.device.type == "cpu":
            pixels = pixels.pin_memory().to(device, non_blocking=True)
        elif device is not None:
            pixels = pixels.to(device)
        return pixels.permute(0, 3, 1, 2).float().div_(255)

    def pixels(self, step: int) -> torch.Tensor:
        """This rank's crops at `step`: (B, crop, crop, 3) uint8 on the data's device."""
        g, b, c, dev = self.batch_size * self.world_size, self.batch_size, self.crop, self.data.device
        gen = torch.Generator(dev).manual_seed(derive_seed(self.seed, step, 0xC409))
        offsets = torch.randint(0, self.side - c + 1, (g, 2), generator=gen, device=dev)
        flips = torch.rand(g, generator=gen, device=dev) < 0.5
        lo = self.rank * b
        offsets, flips = offsets[lo:lo + b], flips[lo:lo + b]
        ramp = torch.arange(c, device=dev)
        rows = offsets[:, :1] + ramp                                             # (B, c)
        cols = offsets[:, 1:] + torch.where(flips[:, None], c - 1 - ramp, ramp)  # a flip reads right to left
        idx = self.indices(step)
        return self.data[idx[:, None, None], rows[:, :, None], cols[:, None, :]]


def centre_crops(data: torch.Tensor, indices, crop: int) -> torch.Tensor:
    """Fixed (len(indices), 3, crop, crop) float views of some cached photos: the held-out sample set."""
    side = data.shape[1]
    o = (side - crop) // 2
    pixels = data[torch.as_tensor(np.asarray(indices), dtype=torch.long, device=data.device), o:o + crop, o:o + crop]
    return pixels.permute(0, 3, 1, 2).float().div(255).contiguous()


def to_device(cache: PhotoCache, device: torch.device) -> torch.Tensor:
    """The cache as a uint8 tensor: resident on the GPU if it fits comfortably, else the CPU memory map."""
    cpu = torch.from_numpy(cache.array)
    if device.type != "cuda":
        return cpu
    free, _ = torch.cuda.mem_get_info(device)
    if cache.array.nbytes > GPU_FRACTION * free:
        return cpu  # sampled on the host, then copied: slower but never out of memory
    gpu = torch.empty(cpu.shape, dtype=torch.uint8, device=device)
    for i in range(0, len(cpu), 1024):  # chunked so host memory never holds a second full copy
        gpu[i:i + 1024].copy_(cpu[i:i + 1024])
    return gpu
