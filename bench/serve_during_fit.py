"""Does the Space keep painting while it fits a new style? /stylize latency with and without a fit running.

    FASTNST_FIT_PHOTOS=../shared/data/content python -m bench.serve_during_fit --requests 20

Starts `python app.py` (the embedded gallery and styles/family), sends `--requests` /stylize calls one after
another on an example photo (quiet), then starts a fit through /fit_style and sends the same calls while it
trains, then cancels the fit. Prints p50/p95 of both, and the fit's progress when the second series ended.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from training.run_folder import RunFolder

REPO = Path(__file__).resolve().parents[1]

PHOTO = REPO / "examples" / "astronaut.jpg"
PAINTING = REPO / "examples" / "rocket.jpg"  # any picture will do: this measures the machine, not the look


def start_app(port: int, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "FASTNST_FITS_DIR": str(tmp / "fits"),
           "GRADIO_TEMP_DIR": str(tmp / "gradio")}
    app = subprocess.Popen([sys.executable, str(REPO / "app.py")], env=env, cwd=tmp, stdout=open(tmp / "app.log", "wb"),
                           stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=1)
            return app
        except OSError:
            time.sleep(0.5)
    app.kill()
    raise SystemExit(f"app.py did not start:\n{(tmp / 'app.log').read_text()}")


def series(client, n: int, style: str, max_side: int) -> list[float]:
    from gradio_client import handle_file

    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.predict(handle_file(str(PHOTO)), style, 1.0, False, max_side, 1.0, api_name="/stylize")  # brush 1
        seconds.append(time.perf_counter() - t0)
    return seconds


def describe(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{name:<16} n={len(seconds):>3}  p50 {statistics.median(seconds) * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--style", default="starry-night")
    p.add_argument("--max-side", type=int, default=512, help="the painted photo's longer side (its own: 512)")
    p.add_argument("--port", type=int, default=7871)
    args = p.parse_args(argv)
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="fastnst-bench-") as tmp:
        app = start_app(args.port, Path(tmp))
        try:
            client = Client(f"http://127.0.0.1:{args.port}/", verbose=False, download_files=str(Path(tmp) / "dl"))
            series(client, 2, args.style, args.max_side)  # warm-up: loading, first-call allocations
            quiet = series(client, args.requests, args.style, args.max_side)
            fitting = client.submit(handle_file(str(PAINTING)), None, "Bench", 8000, "", "", api_name="/fit_style")
            while not any(RunFolder(f).history_rows() for f in (Path(tmp) / "fits").glob("*/")):
                time.sleep(0.5)  # until it really trains (past loading the photos and the loss network)
            busy = series(client, args.requests, args.style, args.max_side)
            status = fitting.status()
            fitting.cancel()
        finally:
            app.send_signal(signal.SIGINT)  # Gradio closes and the app's atexit cancels any fit left
            app.wait(30)
    print(describe("/stylize quiet", quiet))
    print(describe("/stylize + fit", busy))
    print(f"fit: {status.code.name} {status.progress_data[-1].desc if status.progress_data else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
