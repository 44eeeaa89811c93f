"""bench/load.py end to end on a few clients: photos are painted, hostile files refused, nothing else happens."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_small_hostile_crowd_gets_only_paintings_and_refusals(tmp_path):
    out = tmp_path / "load.json"
    run = subprocess.run([sys.executable, "-m", "bench.load", "--hostile", "--clients", "10", "--side", "128",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(out.read_text())
    assert summary["counts"] == {"painted": 3, "retry": 0, "refused": 7, "other": 0}, run.stdout
    assert summary["log_problems"] == 0 and summary["rss_mb"]["peak"] > 0
    assert "looping.eps.png    {'refused': 1}" in run.stdout
