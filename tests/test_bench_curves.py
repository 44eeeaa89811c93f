"""bench/curves.py reads finished runs' held-out losses and says when each reaches the reference (a run or a number)."""
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def fake_run(folder: Path, totals: list[float], seconds_per_step: float) -> Path:
    """A run folder as the trainer leaves it: history.csv every 50 steps, heldout.csv every 125 (4 images a step)."""
    folder.mkdir()
    history = ["step,images,total,images_per_s,elapsed_s"]
    history += [f"{s},{4 * s},1,1,{s * seconds_per_step}" for s in range(50, 125 * len(totals) + 1, 50)]
    heldout = ["step,images,heldout_total,heldout_content,heldout_style,heldout_tv"]
    heldout += [f"{125 * (i + 1)},{500 * (i + 1)},{t},0,0," for i, t in enumerate(totals)]
    (folder / "history.csv").write_text("\n".join(history) + "\n")
    (folder / "heldout.csv").write_text("\n".join(heldout) + "\n")
    return folder


def run_bench(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "bench.curves", *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_each_run_is_compared_with_the_first_run_or_with_a_given_target(tmp_path):
    slow = fake_run(tmp_path / "slow", [9.0, 7.0, 6.0, 5.0], seconds_per_step=0.3)
    fast = fake_run(tmp_path / "fast", [8.0, 5.5, 4.5, 4.0], seconds_per_step=0.2)
    out = run_bench(slow, fast)
    assert "reference slow: held-out total 5 after 2,000 image-steps" in out
    assert "fast: reaches it after 1,500 image-steps, 1.2 min" in out  # 375 steps × 0.2 s

    plot = tmp_path / "curves.png"
    out = run_bench(slow, fast, "--target", "6.5", "--plot", plot)
    assert "slow: reaches it after 1,500 image-steps" in out
    assert "fast: reaches it after 1,000 image-steps" in out
    assert Image.open(plot).size == (900, 520)
    out = run_bench(slow, "--target", "3")
    assert "slow: does not reach it (best 5 at 2,000 image-steps)" in out
