"""Fit a visitor's painting from the gallery's family network, in a child process the app watches, and publish it.

    job = FitJob.start("my_painting.png", out="fits/abc", title="My Painting")  # fit.json's budget
    job.progress()        # images done / total, images per second, seconds left (from the run's history)
    job.preview_dir()     # the network as it is now (the run's preview), or None before the first one
    job.finish_early()    # "that looks right": export at the step reached (SIGUSR1 to the trainer)
    job.cancel()          # kill it at once and delete its folder
    job.wait_result()     # the exported fp16 style folder, or FitError with the trainer's sentence (which
                          # `python -m training` leaves in the run's failure file); a failed fit deletes its folder
    publish(job.out, "my-style", token)  # the same push as `python -m training ... --push-to-hub`

Why a child process (`python -m training --recipe RUN/fit-recipe.json`): cancelling must free the CPU at once (a
thread cannot be killed), a crash must not take the Space down, and a niced process lets visitors' paintings go
first. The fit's recipe is training/recipes/fit.json: the look campaign's recipe (training/recipes/look.json:
crops and painting at the scale the page paints, the palette term, the style weight most gallery styles met the
line with) after a short scale/shift-only phase that places the new painting among the family's. The family's
recorded recipe fills in what fit.json leaves out (FAMILY_KEYS: batch, loss network, learning rate). It is written
into the run folder, so a fit can be rerun by hand from what it left.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.utils import HFValidationError, validate_repo_id

from fastnst.errors import FastNSTError, HubError
from fastnst.formats import WEIGHTS_FILE, has_network, read_info, read_metadata, recipe_of
from fastnst.imageio import load_image
from fastnst.styles import STYLES_DIR
from fastnst.vgg import WEIGHTS_ENV

from .paintings import check_painting
from .publish import hub_reason, push_run
from .recipe import Recipe, shipped_recipe
from .run_folder import RunFolder

# Defaults, in one place.
FAMILY = STYLES_DIR / "family"        # the gallery family every fit starts from
PHOTOS_REPO = "fastnst/fit-photos"    # Hub dataset of CC0 photos a Space trains on (cached after first use)
PHOTOS_ENV = "FASTNST_FIT_PHOTOS"     # a local folder of photos instead (or another dataset id)
REPO_ROOT = Path(__file__).resolve().parent.parent
FIT_RECIPE_ENV = "FASTNST_FIT_RECIPE"  # another fit recipe file: a quicker fit on a slow Space, a tiny one in tests
FAMILY_KEYS = ("crop", "batch_size", "style_size", "loss_arch", "content_weight", "style_weight", "lr")
PREVIEW_EVERY = 20                    # steps between preview networks (80 images: a few seconds on 2 cores)
LOG_EVERY = 5                         # steps between progress rows
NICENESS = 10                         # visitors' paintings come first


class FitError(FastNSTError, RuntimeError):
    """A fit cannot start, or stopped without a network."""


@dataclass(frozen=True)
class Progress:
    images: int          # image-steps done (0 while the photos are being prepared)
    total: int
    images_per_s: float | None
    seconds_left: float | None

    def describe(self) -> str:
        if not self.images:
            return "Preparing the training photos…"
        left = f", about {_duration(self.seconds_left)} left" if self.seconds_left is not None else ""
        return f"Trained on {self.images:,} of {self.total:,} images{left}."


def training_photos(source: str | None = None) -> Path:
    """The photos a fit trains on: `source` or $FASTNST_FIT_PHOTOS when it is a folder, else that Hub dataset (or
    PHOTOS_REPO), downloaded once into the Hugging Face cache. A development machine points $FASTNST_FIT_PHOTOS at
    its own photos: library code guesses no local path."""
    source = str(source or os.environ.get(PHOTOS_ENV) or PHOTOS_REPO)
    if Path(source).expanduser().is_dir():
        return Path(source).expanduser()
    try:
        return Path(snapshot_download(source, repo_type="dataset"))
    except Exception as err:  # offline, no such dataset, Hub down
        raise FitError(f"The training photos (Hub dataset {source}) are not available ({hub_reason(err, None)}); "
                       f"set {PHOTOS_ENV} to a folder of photos.") from err


def family_recipe(family=FAMILY) -> dict:
    """The family's training recipe (its fastnst.json); {} when it has none (the trainer's defaults apply)."""
    if not has_network(family):
        raise FitError("This machine has no gallery family network to start from, so new styles cannot be fitted.")
    return recipe_of(read_metadata(family), read_info(family), "full") or {}  # no need to load its weights


def fit_recipe_file() -> Path:
    """training/recipes/fit.json, or the recipe file $FASTNST_FIT_RECIPE names."""
    return Path(os.environ.get(FIT_RECIPE_ENV) or shipped_recipe("fit"))


def default_image_steps() -> int:
    return Recipe.from_json(fit_recipe_file()).image_steps


def fit_settings(family=FAMILY) -> dict:
    """The fit recipe's keys, and the family's own for the FAMILY_KEYS it leaves out."""
    path = fit_recipe_file()
    ours = Recipe.read_json(path)
    Recipe.from_dict(ours, f"The recipe {path}")  # one sentence if it names what a recipe has not
    theirs = family_recipe(family)
    return {**{k: theirs[k] for k in FAMILY_KEYS if theirs.get(k) is not None}, **ours,
            "loss_weights": loss_network(theirs)}


def fit_recipe(painting: Path, *, photos: Path, image_steps: int, title: str, family=FAMILY) -> Recipe:
    """One painting from the family, by the fit recipe."""
    return replace(Recipe.from_dict(fit_settings(family)), style=[str(painting)], data=str(photos),
                   from_network=str(family), image_steps=image_steps, title=title)


def train_command(painting: Path, out: Path, *, photos: Path, image_steps: int, title: str, family=FAMILY) -> list:
    """`python -m training --recipe OUT/fit-recipe.json ...`: the recipe written into the run folder, and the run
    options of a fit on the command line."""
    run = RunFolder(out)
    run.fit_recipe.write_text(fit_recipe(painting, photos=photos, image_steps=image_steps, title=title,
                                         family=family).to_json(), encoding="utf-8")
    return [sys.executable, "-m", "training", "--recipe", str(run.fit_recipe), "--out", str(out), "--no-progress",
            "--log-every", str(LOG_EVERY), "--preview-every", str(PREVIEW_EVERY),
            "--sample-every", str(10**9), "--checkpoint-every", str(10**9)]  # a fit is short: no mid-run copies


def loss_network(recipe: dict) -> str:
    """The loss network the family was trained with: $FASTNST_VGG_WEIGHTS, else the recipe's file (paths are
    relative to the repository). Another VGG would need another style weight, so none is guessed."""
    weights = os.environ.get(WEIGHTS_ENV) or recipe.get("loss_weights") or "imagenet"
    if weights in ("imagenet", "random") or (REPO_ROOT / weights).is_file():
        return weights
    raise FitError(f"The loss network the gallery family was trained with ({Path(weights).name}) is not on this "
                   f"machine; set {WEIGHTS_ENV} to that file.")


class FitJob:
    """One fit: a niced `python -m training` in its own process group, writing into `out`."""

    def __init__(self, process: subprocess.Popen, out: Path, total: int):
        self.process, self.out, self.total = process, out, total
        self.cancelled = False

    @classmethod
    def start(cls, painting, *, out, image_steps: int | None = None, title: str, photos=None, family=FAMILY):
        """Check the painting and the family, then start the trainer (for the fit recipe's image_steps unless
        given); on any failure nothing is left in `out`."""
        check_fit_painting(load_image(painting), family)
        image_steps = image_steps or default_image_steps()
        out = Path(out)
        existed = out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            command = train_command(Path(painting), out, photos=Path(photos or training_photos()),
                                    image_steps=image_steps, title=title, family=family)
            with open(RunFolder(out).fit_log, "wb") as log:
                process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, preexec_fn=lambda: os.nice(NICENESS))
        except BaseException:
            if not existed:
                shutil.rmtree(out, ignore_errors=True)
            raise
        return cls(process, out, image_steps)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def progress(self) -> Progress:
        rows = RunFolder(self.out).history_rows()
        if not rows:
            return Progress(0, self.total, None, None)
        last = rows[-1]
        images, speed = last["images"] or 0, last.get("images_per_s") or None
        return Progress(images, self.total, speed, (self.total - images) / speed if speed else None)

    def preview_dir(self) -> Path | None:
        folder = RunFolder(self.out).preview
        return folder if has_network(folder) else None

    def finish_early(self) -> bool:
        """Ask the trainer to export the network as it is now; False when training has not started yet."""
        if not self.running or not self.progress().images:
            return False
        os.kill(self.process.pid, signal.SIGUSR1)
        return True

    def cancel(self) -> None:
        """Stop at once (the whole process group) and delete everything the fit wrote."""
        self.cancelled = True
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had already finished
            pass
        self.process.wait()
        shutil.rmtree(self.out, ignore_errors=True)

    def wait_result(self, timeout: float | None = None) -> Path:
        """The exported style folder once the trainer has finished; FitError with its own sentence otherwise."""
        self.process.wait(timeout)
        export = RunFolder(self.out).export()
        if self.process.returncode == 0 and (export / WEIGHTS_FILE).is_file():
            return export
        reason = self.failure()
        shutil.rmtree(self.out, ignore_errors=True)  # a failed fit has nothing worth keeping
        raise FitError(reason)

    def failure(self) -> str:
        """The trainer's own sentence (it writes the run's failure file on a user error), else the exit code: a
        crash says nothing a visitor could act on, and its traceback stays in the fit's log."""
        said = RunFolder(self.out).read_failure()
        return said or f"The fit stopped unexpectedly (exit code {self.process.returncode})."


def check_fit_painting(image, family=None) -> None:
    """A painting a fit can learn from: at least one training crop on its shorter side (a smaller one holds less
    texture than a single training step looks at), and not a strip."""
    check_painting(image.size, smallest_side=int(fit_settings(family or FAMILY).get("crop") or 128))


def check_repo(name: str, token: str | None) -> str:
    """The full repo id a style will be published to, checked before any work: a valid name, a token the Hub
    accepts, and no repo of that name yet. `name` may omit the user ("my-style" → "<you>/my-style")."""
    name = (name or "").strip()
    if not name:
        raise HubError("Type a name for the new Hub repo, e.g. my-painting-style.")
    if not token:
        raise HubError("Sign in with Hugging Face (or paste a write token) to publish.")
    api = HfApi(token=token)
    try:
        repo_id = name if "/" in name else f"{api.whoami()['name']}/{name}"
        validate_repo_id(repo_id)
        taken = api.repo_exists(repo_id)
    except HFValidationError:
        raise HubError(f"{name!r} is not a valid repo name: use letters, digits, '-', '_' and '.'.") from None
    except Exception as err:
        raise HubError(f"Could not check the repo name ({hub_reason(err, token)}).") from err
    if taken:
        raise HubError(f"{repo_id} already exists on the Hub; pick another name.")
    return repo_id


def publish(run_dir, repo_id: str, token: str) -> str:
    """Push a finished fit (the same export `python -m training --push-to-hub` pushes); returns the repo URL.
    On failure nothing local changes, so the same call can simply be retried."""
    try:
        push_run(run_dir, repo_id, token=token)
    except HubError as err:
        reason = hub_reason(err.__cause__, token) if err.__cause__ else str(err)
        raise HubError(f"Could not publish to {repo_id} ({reason}); your style is kept, so try again.") from err
    return f"{HfApi(token=token).endpoint}/{repo_id}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"

