"""bench/train_speed.py end to end on generated photos with a random VGG: both loops train, the table prints, and
--compare-quality scores both networks on the same held-out photos."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_train_speed_bench_runs_both_loops_and_compares_quality(tmp_path):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(60):  # every 50th is held out: photos 0 and 50
        small = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((48, 40), Image.BICUBIC).save(photos / f"p{i:02d}.jpg")
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    cmd = [sys.executable, "-m", "bench.train_speed", "--device", "cpu", "--data", str(photos), "--style",
           str(tmp_path / "style.png"), "--loss-weights", "random", "--crop", "32", "--style-size", "32",
           "--compare-quality", "--images", "16", "--step-breakdown"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "58 photos" in out
    ref = re.search(r"reference \(pytorch/examples\)\s+4\s+16\s+([\d.]+)", out)
    ours = re.search(r"^ours\s+4\s+16\s+([\d.]+)\s+([\d.]+)x", out, re.M)
    assert ref and ours and float(ref.group(1)) > 0 and float(ours.group(1)) > 0, out
    totals = re.findall(r"^  (reference|ours)\s+style [\d.e+]+\s+content [\d.e+]+\s+total ([\d.e+]+)", out, re.M)
    assert [name for name, _ in totals] == ["reference", "ours"] and all(float(t) > 0 for _, t in totals), out
    assert "held-out losses on 2 photos" in out
    bare = re.search(r"^bare step \(no loop around it\)\s+4\s+([\d.]+).*content targets \d+, network forward \d+, "
                     r"loss forward \d+, backward \d+, Adam \d+$", out, re.M)
    assert bare and float(bare.group(1)) > 0, out
