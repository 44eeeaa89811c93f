"""The fastnst command line end to end on a generated style: output files, one-line errors, exit codes."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastnst.imageio import FORMATS
from tests.conftest import make_style_dir

ROOT = Path(__file__).resolve().parents[1]


def fastnst(*args, styles_dir, cwd):
    env = {**os.environ, "FASTNST_STYLES_DIR": str(styles_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fastnst", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    make_style_dir(tmp / "styles" / "tiny-style")
    photo = tmp / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype("uint8")).save(photo)
    return tmp, tmp / "styles", photo


def test_stylize_writes_the_output(setup):
    tmp, styles_dir, photo = setup
    r = fastnst("stylize", photo, "--style", "tiny-style", "-o", tmp / "out" / "x.jpg", "--max-side", 40,
                "--strength", 0.7, "--preserve-color", "--brush", 2.5, styles_dir=styles_dir, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp / "out" / "x.jpg").size == (40, 29)
    listed = fastnst("styles", styles_dir=styles_dir, cwd=tmp)
    assert "tiny-style" in listed.stdout and "Test Style" in listed.stdout


@pytest.mark.parametrize("args, message", [
    (["stylize", "missing.jpg", "--style", "tiny-style", "-o", "o.jpg"], "missing.jpg"),
    (["stylize", "text.jpg", "--style", "tiny-style", "-o", "o.jpg"], "not an image"),
    (["stylize", "photo.png", "--style", "no-such-style", "-o", "o.jpg"], "Unknown style"),
    (["stylize", "photo.png", "--style", "tiny-style", "-o", "o.gif"], "Output must end"),
    (["stylize", "photo.png", "--style", "tiny-style", "-o", "o.jpg", "--strength", "2"], "strength"),
    (["stylize", "photo.png", "--style", "tiny-style", "-o", "o.jpg", "--brush", "8"], "brush must be a number"),
])
def test_errors_are_one_line_without_traceback(setup, args, message):
    tmp, styles_dir, photo = setup
    (tmp / "text.jpg").write_text("hello, I am text")
    r = fastnst(*args, styles_dir=styles_dir, cwd=tmp)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert message.lower() in r.stderr.lower(), r.stderr
    assert not (tmp / "o.jpg").exists()


def test_export_onnx_checked_with_onnxruntime(setup):
    pytest.importorskip("onnxruntime")
    tmp, styles_dir, _ = setup
    r = fastnst("export-onnx", "--style", "tiny-style", "-o", tmp / "m.onnx", "--size", 64,
                styles_dir=styles_dir, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert "checked with onnxruntime" in r.stdout and (tmp / "m.onnx").stat().st_size > 10_000


def test_the_cli_does_not_import_the_loss_network():
    """torchvision (VGG, only for training) is most of a cold start; painting a photo must not import it."""
    code = "import sys, fastnst.cli; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_hostile_files_get_one_line_and_no_library_warnings(setup):
    import struct

    tmp, styles_dir, _ = setup
    eps = tmp / "holiday.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n{ } loop\n%%EOF\n")
    ifd = struct.pack("<IHHHII", 8, 1, 0x010E, 2, 100, 1000) + struct.pack("<I", 0)  # EXIF pointing past its end
    corrupt_exif = tmp / "corrupt-exif.jpg"
    Image.new("RGB", (32, 24), (200, 30, 30)).save(corrupt_exif, exif=b"Exif\x00\x00II*\x00" + ifd)
    r = fastnst("stylize", eps, "--style", "tiny-style", "-o", tmp / "eps.png", styles_dir=styles_dir, cwd=tmp)
    assert r.returncode == 2 and not (tmp / "eps.png").exists()
    assert r.stderr.strip().splitlines() == [f"fastnst: '{eps}' is not an image fastnst reads; use a JPEG, PNG, "
                                             f"WebP, {', '.join(FORMATS[3:-1])} or {FORMATS[-1]} file."]
    r = fastnst("stylize", corrupt_exif, "--style", "tiny-style", "-o", tmp / "exif.png", styles_dir=styles_dir,
                cwd=tmp)
    assert r.returncode == 0 and r.stderr == "", r.stderr
