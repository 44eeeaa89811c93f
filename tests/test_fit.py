"""training.fit: a new painting fitted from a family in a child process, watched, stopped, cancelled, published.

A tiny random family (width 0.25, one residual block, random VGG16 at 32 px) so that a fit takes seconds.
"""
import json
import time

import pytest

from fastnst.errors import HubError, InvalidImageError
from fastnst.formats import INFO_FILE, WEIGHTS_FILE
from fastnst.styles import load_style
from tests.app_helpers import FIT_RECIPE, make_family, make_fit_recipe, make_photo, make_photos
from training import fit
from training.paintings import PaintingError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fit.FIT_RECIPE_ENV, str(make_fit_recipe(tmp / "fit.json")))
        yield {"family": make_family(tmp / "family"), "photos": make_photos(tmp / "photos"),
               "painting": make_photo(tmp / "my_painting.png", (80, 64), shift=90), "tmp": tmp}


def start(setup, name, image_steps, **kwargs):
    return fit.FitJob.start(setup["painting"], out=setup["tmp"] / name, image_steps=image_steps, title="My Painting",
                            photos=setup["photos"], family=setup["family"], **kwargs)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_fit_previews_then_exports_under_the_family_recipe(setup):
    job = start(setup, "full", image_steps=120)
    export = job.wait_result(timeout=120)
    assert (export / WEIGHTS_FILE).is_file() and job.preview_dir() is not None
    now = job.progress()
    assert (now.images, now.total) == (120, 120) and now.seconds_left == 0
    recipe = json.loads((export / INFO_FILE).read_text())["recipe"]
    assert {k: recipe[k] for k in ("crop", "style_weight", "style_size", "loss_arch")} == \
        {k: FIT_RECIPE[k] for k in ("crop", "style_weight", "style_size", "loss_arch")}
    assert recipe["from_network"].endswith("family")  # paths are shortened in a published recipe
    style = load_style(str(export), device="cpu")
    assert style.title == "My Painting"


def test_finish_early_exports_the_network_as_it_is(setup):
    job = start(setup, "early", image_steps=100_000)
    assert not job.finish_early() or job.progress().images  # before training starts there is nothing to finish
    wait_for(lambda: job.progress().images > 0)
    assert job.finish_early()
    export = job.wait_result(timeout=60)
    metrics = json.loads((export / INFO_FILE).read_text())["metrics"]
    assert 0 < metrics["images_seen"] < 100_000


def test_cancel_stops_at_once_and_leaves_nothing(setup):
    job = start(setup, "cancelled", image_steps=100_000)
    wait_for(lambda: job.progress().images > 0)
    job.cancel()
    assert not job.running and not (setup["tmp"] / "cancelled").exists()


def test_a_fit_that_fails_reports_the_trainers_sentence_and_leaves_nothing(setup, tmp_path):
    (tmp_path / "no-photos").mkdir()
    job = fit.FitJob.start(setup["painting"], out=tmp_path / "run", image_steps=40, title="X",
                           photos=tmp_path / "no-photos", family=setup["family"])
    with pytest.raises(fit.FitError, match="No images"):
        job.wait_result(timeout=60)
    assert not (tmp_path / "run").exists()
    with pytest.raises(fit.FitError, match="no gallery family"):
        fit.FitJob.start(setup["painting"], out=tmp_path / "run2", title="X", photos=setup["photos"],
                         family=tmp_path / "nothing")
    assert not (tmp_path / "run2").exists()


@pytest.mark.parametrize("size, says", [((1, 1), "1×1 pixels; a style needs at least 32"),
                                        ((1, 10_000), "at least 32 pixels on its shorter side"),
                                        ((30, 200), "at least 32"), ((40, 200), "longer than 4:1")])
def test_a_painting_too_small_or_thin_is_refused_before_anything_starts(setup, tmp_path, size, says):
    from PIL import Image

    painting = tmp_path / "tiny.png"
    Image.new("RGB", size, (200, 40, 40)).save(painting)
    with pytest.raises(PaintingError, match=says):
        fit.FitJob.start(painting, out=tmp_path / "run", image_steps=40, title="X", photos=setup["photos"],
                         family=setup["family"])
    assert not (tmp_path / "run").exists()


def test_a_file_that_is_no_painting_is_refused_before_anything_starts(setup, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n{ } loop\n")
    with pytest.raises(InvalidImageError, match="broken.png' is not an image fastnst reads"):
        fit.FitJob.start(broken, out=tmp_path / "run", image_steps=40, title="Broken", photos=setup["photos"],
                         family=setup["family"])
    assert not (tmp_path / "run").exists()


def test_training_photos_from_a_folder_or_a_hub_dataset(setup, hub, monkeypatch):
    monkeypatch.setenv(fit.PHOTOS_ENV, str(setup["photos"]))
    assert fit.training_photos() == setup["photos"]
    hub.create_repo("someone/photos", "dataset")
    hub.commit("someone/photos", {"a.png": (setup["photos"] / "photo_00.png").read_bytes()}, repo_type="dataset")
    monkeypatch.setenv(fit.PHOTOS_ENV, "someone/photos")
    assert (fit.training_photos() / "a.png").is_file()
    monkeypatch.setenv(fit.PHOTOS_ENV, "someone/missing")
    with pytest.raises(fit.FitError, match="someone/missing"):
        fit.training_photos()
    # the Space's own dataset missing (not published, or offline): no local path is guessed, the sentence says
    # what to set; an explicit folder is used as it is
    monkeypatch.delenv(fit.PHOTOS_ENV)
    with pytest.raises(fit.FitError, match=f"{fit.PHOTOS_REPO}.*set {fit.PHOTOS_ENV}"):
        fit.training_photos()
    assert fit.training_photos(setup["photos"]) == setup["photos"]


def test_a_development_machine_points_fits_at_its_own_photos(shared_data, monkeypatch):
    """What a developer does: FASTNST_FIT_PHOTOS names ../shared/data/content (skipped where it is absent)."""
    photos = shared_data / "content"
    if not photos.is_dir():
        pytest.skip(f"{photos} is not present")
    monkeypatch.setenv(fit.PHOTOS_ENV, str(photos))
    assert fit.training_photos() == photos


def test_repo_name_is_checked_then_the_fit_is_published(setup, hub):
    token = "hf_local_test_token"
    with pytest.raises(HubError, match="Type a name"):
        fit.check_repo(" ", token)
    with pytest.raises(HubError, match="Sign in"):
        fit.check_repo("my-style", None)
    with pytest.raises(HubError, match="not a valid repo name"):
        fit.check_repo("bad name!", token)
    hub.create_repo(f"{hub.username}/taken")
    with pytest.raises(HubError, match="already exists"):
        fit.check_repo("taken", token)
    repo_id = fit.check_repo("my-style", token)
    assert repo_id == f"{hub.username}/my-style"

    run = setup["tmp"] / "full"  # the finished fit of the first test
    if not (run / "export-fp16" / WEIGHTS_FILE).is_file():
        start(setup, "full", image_steps=40).wait_result(timeout=120)
    url = fit.publish(run, repo_id, token)
    assert url.endswith(repo_id)
    assert load_style(repo_id, device="cpu").title == "My Painting"


def test_a_failed_publish_keeps_the_style(setup, monkeypatch):
    from huggingface_hub import constants

    from tests.hub_server import HubServer

    run = setup["tmp"] / "full"
    if not (run / "export-fp16" / WEIGHTS_FILE).is_file():
        start(setup, "full", image_steps=40).wait_result(timeout=120)
    dead = HubServer().start()
    dead.stop()  # a server that was there and is gone: connection refused
    monkeypatch.setattr(constants, "ENDPOINT", dead.url)
    with pytest.raises(HubError, match="your style is kept"):
        fit.publish(run, "someone/x", "hf_local_test_token")
    assert (run / "export-fp16" / WEIGHTS_FILE).is_file()
