"""training.recipe (what a run learns, in and out of JSON), training.run_folder (every run file's name, its rows),
a failed child's reason read by training.fit, and the model card rendered once, at export."""
import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from fastnst.formats import read_config
from fastnst.losses import CONTENT_LAYERS, LOSS_LAYERS, STYLE_LAYERS, PerceptualLoss
from fastnst.vgg import VGGFeatures
from training import fit
from training.cli import main, parse_train_args
from training.recipe import Recipe, TrainConfig, TrainingError, shipped_recipe
from training.run_folder import CsvLog, RunFolder, read_rows

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ Recipe
def test_json_round_trip(tmp_path):
    recipe = Recipe(style=["a.jpg", "b.jpg:weight=2"], data="photos", width=0.5, crop=128, lr=3e-4,
                    lr_schedule="cosine", style_weight=3.0, loss_arch="vgg19", title="Night")
    path = tmp_path / "r.json"
    path.write_text(recipe.to_json())
    assert Recipe.from_json(path) == recipe
    assert json.loads(path.read_text())["style"] == ["a.jpg", "b.jpg:weight=2"]


def test_unknown_keys_and_run_options_are_refused_with_one_sentence(tmp_path):
    for values, names in (({"crop": 64, "colour": "red"}, "'colour'"), ({"log_every": 5}, "'log_every'")):
        path = tmp_path / "r.json"
        path.write_text(json.dumps(values))
        with pytest.raises(TrainingError) as err:
            Recipe.from_json(path)
        message = str(err.value)
        assert f"unknown key(s) {names}" in message and message.endswith(".") and "\n" not in message
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TrainingError, match="not valid JSON"):
        Recipe.from_json(tmp_path / "bad.json")
    with pytest.raises(TrainingError, match="Cannot read the recipe"):
        Recipe.from_json(tmp_path / "absent.json")


def test_a_float_field_written_as_an_integer_is_a_float(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"style_weight": 3, "lr": 1, "crop": 64}))
    recipe = Recipe.from_json(tmp_path / "r.json")
    assert (type(recipe.style_weight), type(recipe.lr), type(recipe.crop)) == (float, float, int)


def test_flags_override_the_file_and_nothing_else_does(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(Recipe(style=["a.jpg"], data="photos", crop=64, lr=5e-4, texture_only=True).to_json())
    cfg, hub = parse_train_args(["--recipe", str(path), "--out", str(tmp_path / "run"), "--crop", "96",
                                 "--log-every", "7"])
    assert (cfg.recipe.crop, cfg.recipe.lr, cfg.recipe.texture_only, cfg.recipe.style) == (96, 5e-4, True, ["a.jpg"])
    assert (cfg.options.log_every, cfg.options.out, hub["push_to_hub"]) == (7, str(tmp_path / "run"), None)
    cfg, _ = parse_train_args(["--recipe", str(path), "--out", "o", "--style", "b.jpg", "--style", "c.jpg"])
    assert cfg.recipe.style == ["b.jpg", "c.jpg"]  # given paintings replace the file's, they are not appended
    plain, _ = parse_train_args(["--style", "a.jpg", "--data", "photos", "--out", "o"])
    assert asdict(plain.recipe) == asdict(Recipe(style=["a.jpg"], data="photos"))  # no file: the defaults


def test_train_config_splits_flat_keywords():
    cfg = TrainConfig.of(style="a.jpg", data="d", out="o", crop=32, log_every=3)
    assert (cfg.recipe.style, cfg.recipe.crop, cfg.options.out, cfg.options.log_every) == (["a.jpg"], 32, "o", 3)
    assert set(cfg.flat()) == set(asdict(cfg.recipe)) | set(asdict(cfg.options))  # what a checkpoint stores
    with pytest.raises(TrainingError, match="'colour'"):
        TrainConfig.of(style="a.jpg", out="o", colour=1)


def test_the_shipped_recipes_load_and_the_gallery_one_builds_the_familys_config():
    from training.start import load_source

    gallery = Recipe.from_json(shipped_recipe("gallery"))
    assert len(gallery.style) == 26 and gallery.loss_arch == "vgg19" and gallery.from_network == "styles/family"
    resolved = replace(gallery, data="photos").resolved(torch.device("cpu"), load_source(str(ROOT / "styles/family")))
    config = resolved.model_config()
    family = read_config(ROOT / "styles" / "family")  # written before residual_blocks had its name: it still reads
    assert {k: config[k] for k in ("arch", "width", "residual_blocks", "styles")} == \
        {k: family[k] for k in ("arch", "width", "residual_blocks", "styles")}
    fitted = Recipe.from_json(fit.fit_recipe_file())  # a fit follows the look campaign's recipe
    assert fitted.image_steps == fit.default_image_steps()
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "training" / "recipes").glob("*.json")} == \
        {"training/recipes/gallery.json", "training/recipes/fit.json", "training/recipes/look.json"}
    look = Recipe.from_json(shipped_recipe("look"))  # the look campaign: one painting and --from per run
    assert (look.crop, look.style_size, look.palette_weight, look.lr_schedule) == (256, 384, 1e7, "cosine")
    assert (fitted.crop, fitted.style_size, fitted.palette_weight, fitted.lr_schedule, fitted.loss_arch) == \
        (look.crop, look.style_size, look.palette_weight, look.lr_schedule, look.loss_arch)


def test_the_loss_is_built_from_the_recipe_and_the_library_defaults_agree():
    torch.manual_seed(0)
    loss = Recipe(loss_arch="vgg19", loss_weights="random", content_weight=1.0, style_weight=3.0).perceptual_loss()
    assert (loss.content_layers, loss.style_layers) == LOSS_LAYERS["vgg19"]
    assert (loss.content_weight, loss.style_weight) == (1.0, 3.0)
    again = Recipe(loss_arch="vgg19", content_weight=2.0).perceptual_loss(vgg=loss.vgg)  # a loss network reused
    assert again.vgg is loss.vgg and again.content_weight == 2.0
    assert LOSS_LAYERS["vgg16"] == (CONTENT_LAYERS, STYLE_LAYERS)
    more = Recipe(loss_arch="vgg19", content_layers=["relu2_2", "relu4_2"], palette_weight=5.0).perceptual_loss(
        vgg=VGGFeatures("vgg19", layers=("relu2_2", *LOSS_LAYERS["vgg19"][1], "relu4_2"), weights="random"))
    assert more.content_layers == ("relu2_2", "relu4_2") and more.palette_weight == 5.0
    library = PerceptualLoss(vgg=loss.vgg)  # the library's own default layers are the loss network's
    assert (library.content_layers, library.style_layers) == LOSS_LAYERS["vgg19"]
    with pytest.raises(TrainingError, match="--loss-arch"):
        Recipe(loss_arch="resnet").perceptual_loss()


def test_recipe_from_a_runs_record_keeps_only_recipe_keys():
    record = json.loads((ROOT / "styles" / "family" / "fastnst.json").read_text())["recipe"]
    recipe = Recipe.from_record(record)
    assert (recipe.crop, recipe.loss_arch, recipe.style) == (record["crop"], record["loss_arch"], [])


# ------------------------------------------------------------------------------------------------ RunFolder
def test_run_folder_names_every_file(tmp_path):
    run = RunFolder(tmp_path)
    names = {"checkpoint": "checkpoint.pt", "history": "history.csv", "heldout": "heldout.csv",
             "samples": "samples", "recipe": "recipe.json", "metrics": "metrics.json", "family": "family",
             "preview": "preview", "fit_log": "fit.log", "fit_recipe": "fit-recipe.json", "failure": "failure.txt"}
    assert {k: getattr(run, k).relative_to(tmp_path).as_posix() for k in names} == names
    assert run.export().relative_to(tmp_path).as_posix() == "export-fp16"
    assert run.export("night", fp16=False).relative_to(tmp_path).as_posix() == "export/night"
    assert run.sample(6).name == "step_0000006.jpg"
    assert run.exported_styles() == [""]


def test_rows_are_read_in_one_place_as_numbers(tmp_path):
    run = RunFolder(tmp_path)
    assert run.history_rows() == [] and run.heldout_rows() == []  # not written yet
    log = CsvLog(run.history, 0)
    for step in (1, 2, 3):
        log.append({"step": step, "images": 4 * step, "total": "0.5", "images_per_s": 2.5, "elapsed_s": step})
    with run.history.open("a") as f:
        f.write("4,1x\n")  # a row another process is still writing, or garbage
    rows = run.history_rows()
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[0]["images"] == 4 and rows[0]["total"] == 0.5
    assert rows[0]["content"] is None and isinstance(rows[0]["images_per_s"], float)
    CsvLog(run.history, 2)  # a resume at step 2 keeps the rows up to it
    assert [r["step"] for r in read_rows(run.history)] == [1, 2]


def test_summaries_and_failure_round_trip(tmp_path):
    run = RunFolder(tmp_path)
    run.write_summary({"crop": 32}, {"heldout_total": 1.5})
    assert run.read_recipe() == {"crop": 32} and run.read_metrics() == {"heldout_total": 1.5}
    assert run.read_failure() is None
    run.write_failure("No images in /x.\n")
    assert run.read_failure() == "No images in /x."


# ------------------------------------------------------------------------------------------- failed child
def test_the_cli_writes_its_sentence_to_the_failure_file(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    assert main(["--style", str(tmp_path / "missing.jpg"), "--data", str(tmp_path), "--out", str(out)]) == 2
    said = capsys.readouterr().err
    assert said.startswith("error: ") and RunFolder(out).read_failure() == said.removeprefix("error: ").strip()
    assert main(["--style", "x.jpg", "--data", str(tmp_path), "--out", str(tmp_path / "absent")]) == 2
    assert not (tmp_path / "absent").exists()  # no folder is made just to hold the reason


def test_fit_reports_the_failure_file_not_the_log(tmp_path):
    out = tmp_path / "fit"
    out.mkdir()
    run = RunFolder(out)
    run.fit_log.write_text("error: a line some library printed\nTraceback (most recent call last):\n")
    run.write_failure("The painting could not be used.")
    job = fit.FitJob(subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"]), out, 100)
    with pytest.raises(fit.FitError, match=r"^The painting could not be used\.$"):
        job.wait_result(timeout=30)
    assert not out.exists()
    out.mkdir()
    RunFolder(out).fit_log.write_text("error: not the trainer's\n")  # a crash: no failure file
    job = fit.FitJob(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]), out, 100)
    with pytest.raises(fit.FitError, match=r"stopped unexpectedly \(exit code 3\)"):
        job.wait_result(timeout=30)


# ------------------------------------------------------------------------------------------ card rendered once
def test_push_uploads_the_card_rendered_at_export_without_rendering_again(tmp_path, hub, monkeypatch):
    from huggingface_hub import ModelCard

    import fastnst.models
    import training.publish as P
    from fastnst.formats import CARD_FILE, read_info
    from fastnst.models import TransformerNet
    from fastnst.models.base import FastNSTHubMixin

    torch.manual_seed(0)
    net = TransformerNet(width=0.25, residual_blocks=1).eval()
    Image.new("RGB", (64, 48), "green").save(tmp_path / "painting.png")
    run = RunFolder(tmp_path / "run")
    P.export_run(net, run.root, style_image_path=tmp_path / "painting.png", recipe={"style_image": "painting.png"},
                 metrics={"heldout_total": 1.0})
    exported = (run.export() / CARD_FILE).read_text()
    repo = f"{hub.username}/once"
    rendered_with_repo = net.generate_model_card(**P.card_values(read_info(run.export()), repo=repo))

    def refuse(*args, **kwargs):
        raise AssertionError("push rendered the card or built a network")

    for owner, name in ((P, "card_values"), (FastNSTHubMixin, "generate_model_card"), (fastnst.models, "build_model"),
                        (fastnst.models, "load_network")):
        monkeypatch.setattr(owner, name, refuse)
    P.push_run(run.root, repo, token="hf_local_test_token")
    pushed = hub.repos[("model", repo)]
    card = pushed.commits[pushed.branches["main"]].files[CARD_FILE].data.decode()
    assert f"--style {repo} -o out.jpg" in card and P.PLACEHOLDER_REPO not in card
    assert card == P.card_for_repo(exported, repo) and ModelCard(card).text == rendered_with_repo.text
    assert (run.export() / CARD_FILE).read_text() == exported  # the local card is untouched
