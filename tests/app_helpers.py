"""Shared by test_app.py and test_browser.py: a tiny generated style gallery, and app.py in a subprocess.

The networks are random, width 0.25 with one residual block (a few thousand weights), so painting a small photo
takes milliseconds on two CPU cores; what the tests check is the app's plumbing, not the art.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
STYLES = {"test-style": ("Test Style", "Nobody", 1), "second-style": ("Second Style", "Somebody", 2)}


def make_style(out: Path, seed: int, title: str, artist: str, order: int = 1, network=None) -> Path:
    """A style folder: a tiny TransformerNet (`network`, else a random one; config.json + model.safetensors + the
    mixin's README.md, tagged `fastnst`), style.json and tile.jpg (the network painting the example cat, like a
    real thumbnail)."""
    import torch

    from fastnst import stylize
    from fastnst.models import TransformerNet

    torch.manual_seed(seed)
    (network or TransformerNet(width=0.25, residual_blocks=1)).save_pretrained(out)
    meta = {"title": title, "artist": artist, "year": 2026, "license": "CC0", "hub_repo": None,
            "order": order}
    (out / "style.json").write_text(json.dumps(meta))
    stylize(ROOT / "examples" / "cat.jpg", str(out), max_side=160, device="cpu").save(out / "tile.jpg")
    return out


def make_gallery(folder: Path, entries: dict = STYLES) -> Path:
    """`folder/styles/<slug>/` for each of `entries` ({slug: (title, artist, order)}, default STYLES): the rows of
    a tiny random family in `styles/family`, as the real gallery's light networks are, so that they mix."""
    import torch

    from fastnst.models import TransformerNet

    styles = folder / "styles"
    torch.manual_seed(0)
    family = TransformerNet(width=0.25, residual_blocks=1, styles=list(entries))
    with torch.no_grad():  # rows far apart, so that each style and their mixes paint visibly differently
        for m in family.modules():
            if hasattr(m, "mix"):
                m.weight.normal_(1, 0.5)
                m.bias.normal_(0, 0.5)
    family.save_pretrained(styles / "family")
    for k, (slug, (title, artist, order)) in enumerate(entries.items()):
        make_style(styles / slug, k, title, artist, order, network=family.style_network(k))
    return styles


FIT_RECIPE = {"crop": 32, "batch_size": 2, "style_size": 32, "loss_arch": "vgg16", "loss_weights": "random",
              "content_weight": 1.0, "style_weight": 1e3, "lr": 1e-3}  # tiny: a fit step takes milliseconds


def make_fit_recipe(path: Path) -> Path:
    """A fit recipe that leaves the loss settings to the tiny family's (FASTNST_FIT_RECIPE names it)."""
    path.write_text(json.dumps({"image_steps": 2000, "norm_only_images": 1000, "seed": 0}))
    return path


def make_family(folder: Path, paintings=("first", "second")) -> Path:
    """A tiny random family network (what `training.fit` starts from) with a recipe, like a run's family/."""
    import torch

    from fastnst.formats import write_info
    from fastnst.models import TransformerNet

    torch.manual_seed(0)
    TransformerNet(width=0.25, residual_blocks=1, styles=list(paintings)).save_pretrained(folder)
    write_info(folder, {"format": 1, "recipe": FIT_RECIPE})
    return folder


def make_photos(folder: Path, count: int = 12, size=(48, 40)) -> Path:
    """`count` small photo-like pictures (shifted gradients) to train on."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        make_photo(folder / f"photo_{i:02d}.png", size, shift=17 * i)
    return folder


def make_photo(path: Path, size=(300, 200), shift: int = 0) -> Path:
    """A small photo-like picture: a colour gradient with a dark square."""
    w, h = size
    img = Image.new("RGB", size)
    img.putdata([((255 * x // w + shift) % 256, 255 * y // h, 128) for y in range(h) for x in range(w)])
    img.paste((20, 20, 20), (w // 4, h // 4, w // 2, h // 2))
    img.save(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(styles: Path, tmp: Path) -> dict:
    return {**os.environ, "FASTNST_STYLES_DIR": str(styles), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf"),
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
            "GRADIO_TEMP_DIR": str(tmp / "gradio"), "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}


@contextmanager
def running_app(styles: Path, tmp: Path, extra_env: dict | None = None, timeout: float = 90.0):
    """Start `python app.py` against `styles`; yield its URL; stop it (and show its log if it never came up).

    `extra_env` overrides the environment; a None value removes the variable.
    """
    env = app_env(styles, tmp)
    for key, value in (extra_env or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    log_path = tmp / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def client_tempdir(folder: Path):
    """gradio_client downloads each output through a fresh folder in tempfile.gettempdir() and leaves it there
    (empty); point that at `folder` so tests leave nothing behind in /tmp."""
    folder.mkdir(parents=True, exist_ok=True)
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved


def log_of(tmp: Path) -> str:
    path = tmp / "app.log"
    return path.read_text() if path.exists() else ""
