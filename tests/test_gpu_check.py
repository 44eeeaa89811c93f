"""bench.gpu_check on a machine without CUDA. CPU-only: CUDA is hidden from it (CUDA_VISIBLE_DEVICES=""), so
on a GPU host too it takes the no-GPU path; what it checks on a GPU is its own business (run it there)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_without_a_gpu_it_says_so_and_exits_cleanly():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # runs as a user would, from the checkout
    run = subprocess.run([sys.executable, "-m", "bench.gpu_check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "CUDA_VISIBLE_DEVICES": ""})
    assert run.returncode == 0, run.stderr
    assert "no GPU" in run.stdout and "Traceback" not in run.stderr
