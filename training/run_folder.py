"""A training run's folder: every file name in it, and the one reader of its CSV rows.

    RUN/checkpoint.pt        model, optimizer, step, RNG states and the flat config (resumable; our own file)
    RUN/history.csv          one row per log interval: step, images, loss terms, images/s, elapsed s
    RUN/heldout.csv          one row per sample grid: the fp32 loss terms on the held-out photos
    RUN/samples/step_*.jpg   sample grids (held-out photos, then each painting's output)
    RUN/recipe.json          the recipe as run (every default filled in) and what it ran on
    RUN/metrics.json         final held-out losses, speed, device
    RUN/export/ export-fp16/ the fp32 and fp16 style folders (a family: one subfolder per painting)
    RUN/family/              a family network itself, fp16, for --from and for continuing
    RUN/preview/             the network as it is now (--preview-every), for a live preview
    RUN/fit-recipe.json      a fit's recipe, written by training.fit and passed as --recipe
    RUN/fit.log              a fit's stdout and stderr
    RUN/failure.txt          why a run stopped with an error: the one sentence `python -m training` printed

The style folders inside (export/, family/, preview/) are fastnst.formats's; the run folder around them is
training's, and only this module spells its names.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from fastnst.formats import WEIGHTS_FILE

LOSS_TERMS = ("total", "content", "style", "tv", "palette", "gamut")
HISTORY_COLUMNS = ("step", "images", *LOSS_TERMS, "images_per_s", "elapsed_s")
HELDOUT_COLUMNS = ("step", "images", *(f"heldout_{k}" for k in LOSS_TERMS))
_COUNTS = ("step", "images")  # integer columns; the others are floats


class RunFolder:
    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    # ------------------------------------------------------------------------------------------ the names
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    history = property(lambda self: self.root / "history.csv")
    heldout = property(lambda self: self.root / "heldout.csv")
    samples = property(lambda self: self.root / "samples")
    recipe = property(lambda self: self.root / "recipe.json")
    metrics = property(lambda self: self.root / "metrics.json")
    family = property(lambda self: self.root / "family")
    preview = property(lambda self: self.root / "preview")
    fit_recipe = property(lambda self: self.root / "fit-recipe.json")
    fit_log = property(lambda self: self.root / "fit.log")
    failure = property(lambda self: self.root / "failure.txt")

    def export(self, subfolder: str = "", *, fp16: bool = True) -> Path:
        """The fp16 style folder (what is pushed and copied into the gallery), or the fp32 one; a family's
        painting is `subfolder`."""
        return self.root / ("export-fp16" if fp16 else "export") / subfolder

    def sample(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.jpg"

    def temp_checkpoint(self) -> Path:
        """Where a checkpoint is written before it replaces the last one (a crash never truncates it)."""
        return self.checkpoint.with_name(f".{self.checkpoint.name}.tmp{os.getpid()}")

    def exported_styles(self) -> list[str]:
        """The subfolders of a family run's fp16 export (one per painting); [""] for a one-style run."""
        folder = self.export()
        if (folder / WEIGHTS_FILE).is_file() or not folder.is_dir():
            return [""]
        return sorted(p.name for p in folder.iterdir() if (p / WEIGHTS_FILE).is_file())

    # ------------------------------------------------------------------------------------------ the rows
    def history_rows(self) -> list[dict]:
        return read_rows(self.history)

    def heldout_rows(self) -> list[dict]:
        return read_rows(self.heldout)

    # --------------------------------------------------------------------------------------- the summaries
    def write_summary(self, recipe: dict, metrics: dict) -> None:
        _write_json(self.recipe, recipe)
        _write_json(self.metrics, metrics)

    def read_recipe(self) -> dict:
        return json.loads(self.recipe.read_text(encoding="utf-8")) if self.recipe.is_file() else {}

    def read_metrics(self) -> dict:
        return json.loads(self.metrics.read_text(encoding="utf-8")) if self.metrics.is_file() else {}

    def write_failure(self, reason: str) -> None:
        """Why the run stopped (one sentence), for whoever started it as a child process (training.fit); swapped
        in whole, so a reader never sees half a sentence."""
        tmp = self.failure.with_name(f".{self.failure.name}.tmp{os.getpid()}")
        tmp.write_text(reason.strip() + "\n", encoding="utf-8")
        os.replace(tmp, self.failure)

    def read_failure(self) -> str | None:
        try:
            return self.failure.read_text(encoding="utf-8", errors="replace").strip() or None
        except OSError:
            return None


def read_rows(path) -> list[dict]:
    """A run's CSV as dicts of numbers (step and images as int, the rest float, empty cells None); [] when the
    file is not there yet. A row still being written (a reader racing the trainer) is left out."""
    try:
        with open(path, newline="") as f:
            raw = list(csv.DictReader(f))
    except OSError:
        return []
    rows = []
    for r in raw:
        try:
            rows.append({k: (None if v in (None, "") else int(v) if k in _COUNTS else float(v)) for k, v in r.items()
                         if k is not None})
        except ValueError:
            continue
        if rows[-1].get("step") is None:
            rows.pop()
    return rows


class CsvLog:
    """Appends rows to history.csv or heldout.csv; on a resume the rows past the checkpoint's step are dropped
    (the steps after it are trained again)."""

    def __init__(self, path: Path, start_step: int, columns=HISTORY_COLUMNS):
        self.path, self.columns = Path(path), tuple(columns)
        rows = []
        if self.path.is_file() and start_step:
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= start_step]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
