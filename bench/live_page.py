"""The frame rate the page's Live section really shows: Chromium's fake camera streamed through the app.

    python -m bench.live_page                        # 640×480 camera, starry-night, 30 s
    python -m bench.live_page --camera 320x240 --style the-scream --seconds 20

Starts `app.py` on the embedded gallery (as bench/load.py does), opens it in headless Chromium whose fake camera
plays a pan over a CC0 photo of examples/ (a YUV4MPEG2 clip, looped), presses Record in the Live section and, after
a warm-up, counts the painted frames that arrive in the page (distinct images in the Live output) over `--seconds`,
next to the rate the page itself prints. Goal (issue 20): ≥ 10 frames a second on a CPU. The app paints live frames
at most LIVE_SIDE (320 px on a CPU, 640 on a GPU; smaller on a CPU too slow for that, down to LIVE_SMALLEST),
whatever the camera sends; the painted size is printed. Needs /usr/bin/chromium and playwright.
"""
import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.load import start_app
from fastnst.imageio import load_image
from fastnst.styles import gallery

REPO = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pan_y4m(path: Path, size: tuple[int, int], frames: int = 90, fps: int = 30) -> Path:
    """A camera panning over examples/cat.jpg (CC0), 2 px a frame, as a raw YUV4MPEG2 clip."""
    w, h = size
    photo = np.asarray(load_image(REPO / "examples" / "cat.jpg").convert("RGB"))
    scale = max((w + 2 * frames) / photo.shape[1], h / photo.shape[0])
    photo = cv2.resize(photo, (round(photo.shape[1] * scale) + 1, round(photo.shape[0] * scale) + 1))
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for t in range(frames):
            frame = np.ascontiguousarray(photo[:h, 2 * t:2 * t + w])
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camera", default="640x480", help="the fake camera's frame size, WxH")
    p.add_argument("--style", default="starry-night", help="a gallery style (its tile is clicked)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to count, after a 10-s warm-up")
    args = p.parse_args(argv)
    if not shutil.which(CHROMIUM):
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    size = tuple(int(v) for v in args.camera.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="fastnst-live-"))
    proc, url, log = start_app(tmp)
    try:
        camera = pan_y4m(tmp / "camera.y4m", size)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [
                f"--use-file-for-fake-video-capture={camera}", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_selector("#photo input[type=file]", state="attached")
            order = [m["slug"] for m in gallery()].index(args.style)
            page.locator("#styles button.thumbnail-item").nth(order).click()
            page.get_by_text("Live: your webcam, painted").click()
            page.get_by_text("Click to Access Webcam").click()
            page.get_by_role("button", name="capture photo").click()  # Gradio's label for the Record button
            page.wait_for_selector("#live-out img")

            def count(seconds: float) -> tuple[int, list[str]]:
                seen, rates, end = set(), [], time.monotonic() + seconds
                while time.monotonic() < end:
                    src = page.locator("#live-out img").get_attribute("src")
                    seen.add(src)
                    rates.append(page.locator("#live-rate").inner_text())
                    page.wait_for_timeout(50)  # often enough for 20 frames a second, light on the CPU
                return len(seen), rates

            count(10.0)  # warm-up: the first frames, the flow, the page
            frames, rates = count(args.seconds)
            shown = [float(m.group(1)) for m in (re.search(r"([0-9.]+) frames a second", r) for r in rates) if m]
            natural = page.eval_on_selector("#live-out img", "img => [img.naturalWidth, img.naturalHeight]")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"camera {size[0]}×{size[1]}, painted {natural[0]}×{natural[1]}, style {args.style}: "
          f"{frames / args.seconds:.1f} painted frames a second arrived in the page over {args.seconds:g} s; "
          f"the page showed {min(shown):.1f}–{max(shown):.1f} (last {shown[-1]:.1f})" if shown else
          f"no rate shown; {frames} frames arrived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
