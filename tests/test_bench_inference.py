"""bench/inference.py runs end to end and prints one row per network × size × mode."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_inference_bench_prints_a_row_per_network_size_and_mode():
    r = subprocess.run([sys.executable, "-m", "bench.inference", "--device", "cpu", "--threads", "1", "--widths",
                        "0.25,0.5", "--sizes", "32x48,20x20", "--repeats", "1"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("TransformerNet")]
    assert [(row[1], row[2], row[3]) for row in rows] == [
        (w, size, mode) for w in ("w=0.25", "w=0.5") for size in ("32x48", "20x20")
        for mode in ("fp32", "bf16", "textbook")]
    assert all(float(row[4]) > 0 for row in rows)
