"""A crowd at the Space: N clients at once through /stylize, counted by what each one got, with the server's memory.

    python -m bench.load --clients 200                  # starts `python app.py` on the gallery, then the crowd
    python -m bench.load --clients 200 --rounds 3       # the same crowd three times over (memory over a long run)
    python -m bench.load --hostile --clients 40 --rounds 10   # hostile files instead of photos (see HOSTILE)
    python -m bench.load --url http://127.0.0.1:7860/ --clients 50   # an app that is already running

Each client does what the page does, over Gradio's HTTP API: upload the file, join the queue (POST
/gradio_api/call/stylize), follow the event stream, then download the painted PNG. Every client ends as one of
  painted   the whole PNG came back (its length as declared, and it decodes)
  retry     told in one sentence to try again (Gradio's "Queue is full", HTTP 503)
  refused   (hostile files) the app's one-sentence refusal
  other     anything else: a time-out, a cut connection, a truncated download, an error that is not a sentence
and the goal is no "other" at all. Also printed: latency of the painted (median, 95th percentile, max), the
server's resident memory (before, peak, after), files left in Gradio's cache, and any error lines in its log.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "examples" / "coffee.jpg"
LOG_PROBLEMS = ("Traceback", "ERROR", "Too little data", "Exception in ASGI")


# ------------------------------------------------------------------------------------------------- hostile files


def _encode(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_claiming(w, h) -> bytes:
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg_claiming(w, h) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (64, 64), (128, 128, 128)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def hostile_files() -> dict[str, bytes]:
    """Small generated files that each once cost the app time, memory or a traceback; and two honest large ones."""
    photo = PHOTO.read_bytes()
    return {
        "looping.eps.png": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n{ } loop\n%%EOF\n",
        "header-lies.jpg": _jpeg_claiming(5000, 7000),
        "bomb.png": _png_claiming(30000, 30000),
        "just-over.png": _png_claiming(6001, 6000),
        "truncated.jpg": photo[: len(photo) // 3],
        "random.jpg": random.Random(0).randbytes(4096),
        "icon.ico": _encode(Image.new("RGB", (32, 32), (200, 0, 0)), "ICO"),
        "flat-30mp.png": _encode(Image.new("RGB", (6000, 5000), (90, 120, 200)), "PNG"),  # honest, 30 MP
        "flat-30mp.jpg": _encode(Image.new("RGB", (6000, 5000), (200, 120, 90)), "JPEG"),  # honest, 30 MP
        "photo.jpg": photo,
    }


# --------------------------------------------------------------------------------------------------- the server


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
           "GRADIO_TEMP_DIR": str(tmp / "gradio"), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "PYTHONUNBUFFERED": "1", "FASTNST_FITS_DIR": str(tmp / "fits")}
    log = tmp / "app.log"
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"app.py exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2):
                return proc, url, log
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit(f"app.py did not answer in 120 s:\n{log.read_text()}")


class Memory:
    """The server's resident memory, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int | None):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def now(self) -> int:
        if self.pid is None:
            return 0
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self):
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.2)

    def stop(self):
        self.running = False
        self.thread.join()


# --------------------------------------------------------------------------------------------------- the clients


def _sentence(text: str) -> bool:
    text = text.strip()
    return bool(text) and "Traceback" not in text and "\n" not in text and len(text) < 400


async def one_client(http: httpx.AsyncClient, url: str, name: str, data: bytes, style: str, side: int,
                     patience: float) -> tuple[str, float, str]:
    """(outcome, seconds, detail) for one visitor."""
    t0 = time.perf_counter()

    async def visit():
        r = await http.post(url + "gradio_api/upload", files={"files": (name, data)})
        r.raise_for_status()
        path = r.json()[0]
        brush = 1.0  # the numbers in RESULTS were measured before the brush existed, i.e. at brush 1
        payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, style, 1.0, False, side, brush]}
        r = await http.post(url + "gradio_api/call/stylize", json=payload)
        if r.status_code == 503:
            detail = r.json().get("detail", "")
            return ("retry", detail) if "full" in detail.lower() else ("other", f"503 {detail}")
        r.raise_for_status()
        event_id = r.json()["event_id"]
        event = None
        async with http.stream("GET", url + f"gradio_api/call/stylize/{event_id}") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    body = json.loads(line.partition(":")[2]) if line.partition(":")[2].strip() else None
                    if event == "error":
                        message = body.get("error") if isinstance(body, dict) else body
                        message = str(message or "")
                        if "queue is full" in message.lower():
                            return "retry", message
                        return ("refused", message) if _sentence(message) else ("other", message[:200])
                    file_url = body[0]["url"]
                    r = await http.get(file_url)
                    r.raise_for_status()
                    declared = int(r.headers.get("content-length", len(r.content)))
                    if len(r.content) != declared:
                        return "other", f"download cut: {len(r.content)} of {declared} bytes"
                    Image.open(io.BytesIO(r.content)).load()
                    return "painted", ""
        return "other", "the event stream ended without a result"

    try:
        outcome, detail = await asyncio.wait_for(visit(), patience)
    except asyncio.TimeoutError:
        outcome, detail = "other", f"no answer in {patience:.0f} s"
    except Exception as err:  # a cut connection, a refused upload, an unreadable PNG
        outcome, detail = "other", f"{type(err).__name__}: {err}"[:200]
    return outcome, time.perf_counter() - t0, detail


async def crowd(url: str, files: list[tuple[str, bytes]], style: str, side: int, patience: float):
    limits = httpx.Limits(max_connections=len(files) + 8, max_keepalive_connections=len(files) + 8)
    timeout = httpx.Timeout(patience, connect=30.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        return await asyncio.gather(*(one_client(http, url, n, d, style, side, patience) for n, d in files))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50, help="clients at once (default 50)")
    p.add_argument("--rounds", type=int, default=1, help="how many times the crowd comes (default 1)")
    p.add_argument("--hostile", action="store_true", help="send the hostile files in turn instead of a photo")
    p.add_argument("--style", default="starry-night")
    p.add_argument("--side", type=int, default=512, help="output's longer side (default 512)")
    p.add_argument("--patience", type=float, default=180.0, help="seconds a client waits before it gives up")
    p.add_argument("--url", help="an app already running (default: start app.py here)")
    p.add_argument("--json", type=Path, help="also write the summary here")
    a = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fastnst-load-") as tmp:
        tmp = Path(tmp)
        proc, url, log = (None, a.url, None) if a.url else start_app(tmp)
        memory = Memory(proc.pid if proc else None)
        before = memory.now()
        files = list(hostile_files().items()) if a.hostile else [(PHOTO.name, PHOTO.read_bytes())]
        counts = {"painted": 0, "retry": 0, "refused": 0, "other": 0}
        latencies, details, per_file = [], {}, {}
        t0 = time.perf_counter()
        try:
            for r in range(a.rounds):
                batch = [files[(r * a.clients + i) % len(files)] for i in range(a.clients)]
                results = asyncio.run(crowd(url, batch, a.style, a.side, a.patience))
                for (name, _), (outcome, seconds, detail) in zip(batch, results):
                    counts[outcome] += 1
                    per_file.setdefault(name, {}).setdefault(outcome, 0)
                    per_file[name][outcome] += 1
                    if outcome == "painted":
                        latencies.append(seconds)
                    if outcome in ("other", "refused", "retry"):
                        details.setdefault((outcome, detail[:120]), 0)
                        details[(outcome, detail[:120])] += 1
                print(f"round {r + 1}/{a.rounds}: {counts}  rss {memory.now() / 2**20:,.0f} MB", flush=True)
            wall = time.perf_counter() - t0
            time.sleep(1.0)
            after = memory.now()
        finally:
            memory.stop()
            if proc:
                proc.terminate()
                proc.wait(20)
        cache = sum(1 for f in (tmp / "gradio").rglob("*") if f.is_file()) if not a.url else None
        problems = [line for line in log.read_text(errors="replace").splitlines()
                    if any(k in line for k in LOG_PROBLEMS)] if log else []

    total = a.clients * a.rounds
    print(f"\n{total} clients ({a.clients} at once x {a.rounds}), {'hostile files' if a.hostile else PHOTO.name}, "
          f"style {a.style}, side {a.side}, patience {a.patience:.0f} s; {wall:.1f} s in all")
    print("outcome   " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    if latencies:
        print(f"painted latency  median {statistics.median(latencies):.1f} s  p95 {pct(latencies, 0.95):.1f} s  "
              f"max {max(latencies):.1f} s")
    if a.hostile:
        for name, outcome in per_file.items():
            print(f"  {name:18s} {outcome}")
    for (outcome, detail), n in sorted(details.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {n:4d} x {outcome}: {detail}")
    if proc:
        print(f"server memory (RSS)  before {before / 2**20:,.0f} MB  peak {memory.peak / 2**20:,.0f} MB  "
              f"after {after / 2**20:,.0f} MB")
        print(f"files left in Gradio's cache: {cache}; error lines in the server's log: {len(problems)}")
        for line in problems[:10]:
            print(f"  log: {line[:200]}")
    if a.json:
        summary = {"clients": a.clients, "rounds": a.rounds, "hostile": a.hostile, "counts": counts,
                   "latency_s": {"median": statistics.median(latencies) if latencies else None,
                                 "p95": pct(latencies, 0.95) if latencies else None},
                   "rss_mb": {"before": before / 2**20, "peak": memory.peak / 2**20, "after": after / 2**20}
                   if proc else None, "log_problems": len(problems)}
        a.json.write_text(json.dumps(summary, indent=2))
    return 0 if counts["other"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
