"""One command that checks fastnst's GPU paths on a CUDA machine and prints pass/fail with numbers (< 8 minutes).

    python -m bench.gpu_check
    python -m bench.gpu_check --json out.json

What it runs: the card and what fastnst chooses for it (precision, memory plan); painting 512², 1080p and 4K in
fp32, the card's half precision and compiled (time, peak memory, difference from fp32, bytes a pixel against the
estimate the memory plan uses); a short video, painted here and in ZeroGPU-style chunks whose Smoother is pickled
across; a short fit from the gallery's family, stopped and resumed, in the card's precision and in fp16 (the
GradScaler); a 2-process DDP step where there are two GPUs. On a machine without CUDA it says so and exits 0.
Exit status 1 if any check failed. The networks are the gallery's; the fit's loss network is the shared VGG file
where ../shared/data has it, else random weights (the check is of the plumbing, not of the art).
"""
import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

SIZES = {"512²": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}
STYLE = "starry-night"
REPEATS = 3
HALF_LEVELS = 2.0  # a half-precision painting's mean difference from fp32, in 8-bit levels, at most
CLIP = (48, 640, 360)  # frames, width, height of the generated video
FIT_IMAGES, FIT_STOP = 64, 2  # image-steps of the short fit, and the step it is stopped at before resuming
VGG_FILE = ROOT.parent / "shared" / "data" / "weights" / "vgg16_hed_bsds500_features_to_relu4_3_fp16.safetensors"


class Checks:
    """Runs each check, catching its failure, and keeps a line and a record per check."""

    def __init__(self):
        self.records = []

    def run(self, name, fn, *args):
        start = time.perf_counter()
        try:
            ok, numbers = fn(*args)
        except Exception as err:  # a failed check is reported and the others still run
            ok, numbers = False, {"error": f"{type(err).__name__}: {err}"}
            traceback.print_exc(limit=3, file=sys.stderr)
        numbers["check_s"] = round(time.perf_counter() - start, 1)
        self.records.append({"check": name, "pass": ok, **numbers})
        shown = ", ".join(f"{k} {v}" for k, v in numbers.items())
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {shown}", flush=True)
        return ok, numbers


def card() -> tuple[bool, dict]:
    from fastnst.device import memory_plan, pick_precision
    device = torch.device("cuda", 0)
    free, total = torch.cuda.mem_get_info(device)
    plan = memory_plan(device)
    return True, {"name": torch.cuda.get_device_name(device), "capability": torch.cuda.get_device_capability(device),
                  "gpus": torch.cuda.device_count(), "free_GB": round(free / 1e9, 1), "total_GB": round(total / 1e9, 1),
                  "auto_precision": pick_precision("auto", device), "concurrency": plan.concurrency,
                  "untiled_MP": round(plan.untiled_pixels / 1e6, 1), "tile": plan.tile, "torch": torch.__version__}


def paint(size: str, mode: str, reference: dict) -> tuple[bool, dict]:
    """One size in one mode: median time of REPEATS after a warm-up, peak memory, difference from fp32."""
    from fastnst import inference
    from fastnst.device import BYTES_PER_PIXEL
    from fastnst.styles import load_style
    device = torch.device("cuda", 0)
    style = load_style(STYLE, device=device, variant="full")
    h, w = SIZES[size]
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    y = inference.stylize_tensor(x, style, device=device, mode=mode)  # warm-up (and the compile)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        y = inference.stylize_tensor(x, style, device=device, mode=mode)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) - base
    out = y.float().cpu()
    numbers = {"ms": round(1000 * statistics.median(times), 1), "peak_MB": round(peak / 2**20),
               "bytes_per_px": round(peak / (h * w)), "tiled": h * w > inference.auto_tiling(device)[0]}
    ok = bool(torch.isfinite(out).all()) and float(out.min()) >= 0 and float(out.max()) <= 1
    if mode == "fp32":
        reference[size] = out
        ok = ok and (numbers["tiled"] or numbers["bytes_per_px"] <= BYTES_PER_PIXEL)  # the memory plan's estimate
    elif size in reference:
        numbers["levels_from_fp32"] = round(float((out - reference[size]).abs().mean()) * 255, 2)
        ok = ok and numbers["levels_from_fp32"] <= HALF_LEVELS
    return ok, numbers


def write_clip(path: Path) -> Path:
    import av
    import numpy as np
    frames, w, h = CLIP
    y, x = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(frames):  # a bright square moving over a gradient
            rgb = np.stack([(x * 255 // w), (y * 255 // h), np.full_like(x, 90)], -1).astype(np.uint8)
            rgb[40:120, 20 + 6 * t:100 + 6 * t] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def video(tmp: Path) -> tuple[bool, dict]:
    """The clip painted here, then in chunks whose arguments and results are pickled as ZeroGPU's are."""
    from fastnst import stylize_video, zerogpu
    from fastnst.video import paint_frames
    src = write_clip(tmp / "clip.mp4")
    here = stylize_video(src, STYLE, tmp / "here.mp4", max_side=CLIP[1], device="cuda")
    calls = []

    def painter(frames, smoother):  # what a spaces.GPU function sees: copies, there and back
        frames, smoother = pickle.loads(pickle.dumps((frames, smoother)))
        calls.append(zerogpu.video_call_seconds(frames))
        return pickle.loads(pickle.dumps(paint_frames(frames, STYLE, smoother, device="cuda")))

    start = time.perf_counter()
    chunked = stylize_video(src, STYLE, tmp / "chunked.mp4", max_side=CLIP[1], painter=painter, frames_per_call=16)
    chunked_s = time.perf_counter() - start
    ok = here.frames == chunked.frames == CLIP[0] and len(calls) == 3
    return ok, {"frames": here.frames, "fps": round(here.frames / here.seconds, 1),
                "chunked_fps": round(chunked.frames / chunked_s, 1), "calls_s": calls}


def fit(tmp: Path, precision: str) -> tuple[bool, dict]:
    """A short fit from the family: stopped, resumed, finished; the checkpoint's precision and step."""
    from training.cli import main
    out = tmp / f"fit-{precision}"
    weights = str(VGG_FILE) if VGG_FILE.is_file() else "random"
    args = ["--style", str(ROOT / "examples" / "rocket.jpg"), "--from", str(ROOT / "styles" / "family"),
            "--data", str(ROOT / "examples"), "--out", str(out), "--loss-weights", weights, "--device", "cuda",
            "--precision", precision, "--image-steps", str(FIT_IMAGES), "--batch-size", "4", "--log-every", "2",
            "--checkpoint-every", "4", "--sample-every", "1000", "--cache-dir", str(tmp / "cache"), "--no-progress"]
    start = time.perf_counter()
    stopped = main(args + ["--stop-at", str(FIT_STOP)])
    resumed = main(args + ["--resume"])
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
    ok = stopped == resumed == 0 and state["step"] == FIT_IMAGES // 4 and (out / "export").is_dir()
    numbers = {"precision": state["config"]["precision"], "steps": state["step"],
               "s": round(time.perf_counter() - start, 1), "img_per_s": metrics.get("images_per_s"),
               "heldout_total": metrics.get("heldout_total")}
    if precision == "fp16":
        numbers["grad_scale"] = state.get("scaler", {}).get("scale")
        ok = ok and bool(numbers["grad_scale"])
    return ok, numbers


def ddp(tmp: Path) -> tuple[bool, dict]:
    """Two ranks on two GPUs (NCCL), a few steps of a small run."""
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp / "ddp"
    weights = str(VGG_FILE) if VGG_FILE.is_file() else "random"
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "training",
           "--style", str(ROOT / "examples" / "rocket.jpg"), "--data", str(ROOT / "examples"), "--out", str(out),
           "--loss-weights", weights, "--width", "0.5", "--crop", "128", "--batch-size", "2", "--image-steps", "16",
           "--log-every", "2", "--sample-every", "1000", "--cache-dir", str(tmp / "cache-ddp"), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    ok = proc.returncode == 0 and (out / "export").is_dir()
    numbers = {"s": round(time.perf_counter() - start, 1), "rc": proc.returncode}
    if not ok:
        numbers["stderr"] = proc.stderr[-500:]
    return ok, numbers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="also write every check's numbers to this file")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU: CUDA is not available on this machine, so there is nothing to check (exit 0).")
        return 0
    from fastnst.device import pick_precision
    from fastnst.inference import MODES
    checks, reference = Checks(), {}
    checks.run("card", card)
    half = pick_precision("auto", torch.device("cuda", 0))
    for mode in [m for m in MODES if m in ("fp32", half, "compile")]:
        for size in SIZES:
            checks.run(f"paint {size} {mode}", paint, size, mode, reference)
    with tempfile.TemporaryDirectory(prefix="fastnst-gpu-check-") as tmp:
        tmp = Path(tmp)
        checks.run("video", video, tmp)
        for precision in dict.fromkeys([half, "fp16"]):
            checks.run(f"fit from the family, stop and resume, {precision}", fit, tmp, precision)
        if torch.cuda.device_count() >= 2:
            checks.run("DDP, 2 processes", ddp, tmp)
        else:
            print("SKIP  DDP: one GPU")
    failed = [r["check"] for r in checks.records if not r["pass"]]
    print(f"{len(checks.records) - len(failed)} of {len(checks.records)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(checks.records, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
