"""training/publish.py: export a run to Hub repo folders, push it to the local Hub stand-in, load it back.

The Hub client side of the round trip runs in a subprocess (huggingface_hub reads HF_ENDPOINT at import time);
failures are provoked in-process by pointing `huggingface_hub.constants.ENDPOINT` at a stopped server.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch
from PIL import Image

from fastnst.errors import HubError, InvalidImageError
from fastnst.formats import CARD_FILE, FP32_REPO_FILE
from fastnst.models import TransformerNet, build_model, load_weights
from fastnst.hub import INSTALL_COMMAND, PLACEHOLDER_REPO, TAGS
from training.publish import export_run, push_run, retry_command
from training.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_test_SECRET123"
EXPORT_DIR, EXPORT_FP16_DIR = (RunFolder("").export(fp16=fp16).name for fp16 in (False, True))
# Shaped like what training/trainer.py passes (plus a few keys that must be scrubbed or shortened).
RECIPE = {"style_image": "tiny-waves.png", "data_folder": "/data/coco2017/train", "total_steps": 3,
          "loss_weights": "/somewhere/private/vgg16.safetensors", "model": {"arch": "transformer", "width": 0.25},
          "batch_size": 2, "image_size": 32, "lr": 1e-3, "content_weight": 1.0, "style_weight": 1e5,
          "tv_weight": 1e-6, "width": 0.25, "residual_blocks": 1, "seed": 0, "license": "apache-2.0",
          "style_license": "CC0 (made up for this test)", "hub_token": SECRET, "notes": SECRET,
          "comment": "hf_" + "a1B2" * 9}
METRICS = {"heldout_content": 1.25, "heldout_style": 3.5, "heldout_tv": 0.01, "heldout_total": 4.76,
           "steps": 3, "wall_time_s": 2.5, "images_per_s": 12.0, "device": "cpu"}
EXPECTED_FILES = {"model.safetensors", "config.json", CARD_FILE, "style.jpg", "style.json", "fastnst.json",
                  "samples/sample_00.jpg", "samples/sample_01.jpg"}


def tiny_net(seed: int) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(width=0.25, residual_blocks=1)
    with torch.no_grad():  # non-trivial norm affine params, so a lost/misplaced tensor would show
        for name, p in net.named_parameters():
            if "weight" in name and p.ndim == 1:
                p.uniform_(0.5, 1.5)
    return net.eval()


def make_run(tmp_path: Path, name: str, seed: int, **recipe) -> tuple[TransformerNet, Path]:
    style = tmp_path / f"{name}-style.png"
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (700, 1300, 3), dtype=np.uint8)).save(style)  # wider than 1024
    net, run_dir = tiny_net(seed), tmp_path / name
    samples = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (30, 40), "blue")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", SECRET)  # as when a user trains with their token in the environment
        export_run(net, run_dir, style_image_path=style, recipe={**RECIPE, **recipe}, metrics=METRICS,
                   samples=samples)
    return net, run_dir


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("publish"), "run-a", seed=0)


# ------------------------------------------------------------------------------------------------------ export


def test_export_writes_two_complete_folders(run):
    net, run_dir = run
    for folder in (EXPORT_DIR, EXPORT_FP16_DIR):
        assert files_of(run_dir / folder) == EXPECTED_FILES
    assert not list(run_dir.glob(".*partial"))  # the temporary build folders are gone
    with Image.open(run_dir / EXPORT_FP16_DIR / "style.jpg") as style:
        assert style.format == "JPEG" and max(style.size) == 1024 and style.size[1] == round(700 * 1024 / 1300)


@pytest.mark.parametrize("folder, dtype", [(EXPORT_DIR, torch.float32), (EXPORT_FP16_DIR, torch.float16)])
def test_exported_weights_load_strictly_and_match(run, folder, dtype):
    net, run_dir = run
    path = run_dir / folder
    with safetensors.safe_open(str(path / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {dtype}
    config = json.loads((path / "config.json").read_text())
    assert config == {"arch": "transformer", "width": 0.25, "residual_blocks": 1, "norm": "instance"}
    loaded = TransformerNet.from_pretrained(path)
    rebuilt = load_weights(build_model(config), path / "model.safetensors").eval()
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net(x)
        for other in (loaded, rebuilt):
            assert isinstance(other, TransformerNet) and next(other.parameters()).dtype == torch.float32
            atol = 0 if dtype == torch.float32 else 2e-2
            torch.testing.assert_close(other(x), want, atol=atol, rtol=0)


def test_model_card_and_metadata(run):
    from huggingface_hub import ModelCard

    _, run_dir = run
    card = ModelCard.load(run_dir / EXPORT_FP16_DIR / CARD_FILE)
    assert card.data.library_name == "fastnst" and card.data.pipeline_tag == "image-to-image"
    assert set(TAGS) <= set(card.data.tags) and {"style-transfer", "neural-style-transfer"} <= set(card.data.tags)
    assert card.data.license == "apache-2.0" and card.data.datasets == ["coco"]
    text = card.text
    for needle in ("![style image](style.jpg)", "samples/sample_01.jpg", INSTALL_COMMAND,
                   f"fastnst stylize photo.jpg --style {PLACEHOLDER_REPO} -o out.jpg",
                   "from fastnst import load_style, stylize", "`style_weight` | 1e+05", "`lr` | 0.001",
                   "| `heldout_style` | 3.5 |", "| `model.width` | 0.25 |", "| `steps` | 3 |", "Training time: 2.5 s", "12 images/s", "Device: cpu",
                   "CC0 (made up for this test)", "1603.08155", "1701.02096", "1603.03417"):
        assert needle in text, needle
    assert "/somewhere" not in text and "hub_token" not in text and "coco2017/train" in text
    info = json.loads((run_dir / EXPORT_FP16_DIR / "fastnst.json").read_text())
    assert info["metrics"] == METRICS and info["recipe"]["loss_weights"] == "private/vgg16.safetensors"
    assert info["recipe"]["notes"] == info["recipe"]["comment"] == "***" and "hub_token" not in info["recipe"]
    assert info["dtype"] == "float16" and info["config"]["arch"] == "transformer"
    assert json.loads((run_dir / EXPORT_FP16_DIR / "style.json").read_text())["title"] == "Tiny Waves"
    assert "# Tiny Waves" in text and "pip install fastnst" not in text and "github.com" not in text


def test_export_falls_back_to_final_sample_grid(tmp_path):
    (tmp_path / "run" / "samples").mkdir(parents=True)
    Image.new("RGB", (64, 32), "green").save(tmp_path / "run" / "samples" / "step_000100.png")
    Image.new("RGB", (96, 48), "green").save(tmp_path / "run" / "samples" / "final.png")
    Image.new("RGB", (300, 200), "white").save(tmp_path / "style.png")
    out = export_run(tiny_net(0), tmp_path / "run", style_image_path=tmp_path / "style.png", recipe={}, metrics={})
    with Image.open(out / "samples" / "sample_00.jpg") as grid:
        assert grid.size == (96, 48)
    assert not (out / "samples" / "sample_01.jpg").exists()
    from huggingface_hub import ModelCard

    assert ModelCard.load(out / CARD_FILE).data.license == "mit"  # the default licence for the weights


def test_export_rejects_a_broken_style_image(tmp_path):
    (tmp_path / "style.jpg").write_bytes(b"not a picture")
    with pytest.raises(InvalidImageError, match="style image"):
        export_run(tiny_net(0), tmp_path / "run", style_image_path=tmp_path / "style.jpg", recipe={}, metrics={})
    assert not (tmp_path / "run" / EXPORT_FP16_DIR).exists()


# ------------------------------------------------------------------------------------------------------ push


def test_retry_command_is_a_copyable_shell_line():
    assert retry_command("runs/a", "me/s") == "python -m training push runs/a --repo me/s"
    assert retry_command("my runs/a", "me/s", private=True, revision="v 2") == \
        "python -m training push 'my runs/a' --repo me/s --private --revision 'v 2'"


@pytest.mark.parametrize("kwargs", [{}, {"private": True, "revision": "v2"}])
def test_failed_push_raises_hub_error_with_retry_command(run, monkeypatch, kwargs):
    from huggingface_hub import constants

    from tests.hub_server import HubServer

    _, run_dir = run
    dead = HubServer().start()
    dead.stop()  # a server that was there and is gone: connection refused
    monkeypatch.setattr(constants, "ENDPOINT", dead.url)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    before = digest(run_dir)
    with pytest.raises(HubError) as err:
        push_run(run_dir, "user/tiny-style", **kwargs)
    message = str(err.value)
    assert retry_command(run_dir, "user/tiny-style", **kwargs) in message and SECRET not in message
    assert ("--private --revision v2" in message) == bool(kwargs)
    assert digest(run_dir) == before


def test_push_rejects_bad_repo_id_and_missing_export(run, tmp_path):
    _, run_dir = run
    with pytest.raises(HubError, match="not a valid repo id.*python -m training push .* --repo bad//id"):
        push_run(run_dir, "bad//id", token=SECRET)
    with pytest.raises(HubError, match="export the run first.*python -m training push"):
        push_run(tmp_path / "nothing-here", "user/x")


CLIENT = """
import json, torch, safetensors.torch
from PIL import Image
from training.publish import push_run
import fastnst

urls = [push_run(ARGS["run_a"], "user/tiny-style"), push_run(ARGS["run_b"], "user/tiny-style", revision="v2")]
result = {"urls": urls}
for name, run in (("user/tiny-style", ARGS["run_a"]), ("user/tiny-style@v2", ARGS["run_b"])):
    style = fastnst.load_style(name, device="cpu")
    want = safetensors.torch.load_file(run + "/export-fp16/model.safetensors")
    got = style.network.state_dict()
    same = set(want) == set(got) and all(torch.equal(want[k].float(), got[k]) for k in want)
    out = fastnst.stylize(Image.new("RGB", (24, 20), "white"), style, device="cpu")
    result[name] = {"same_weights": same, "type": type(style.network).__name__, "size": list(out.size)}
print(json.dumps(result))
"""


def test_push_then_load_by_repo_id_and_branch(run, tmp_path):
    from huggingface_hub import ModelCard

    from tests.hub_server import HubServer, client_env

    _, run_a = run
    _, run_b = make_run(tmp_path, "run-b", seed=1)
    before = {r: digest(r) for r in (run_a, run_b)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    with HubServer() as hub:
        env.update(client_env(hub.url, str(tmp_path / "hf-home")), HF_TOKEN=SECRET)
        args = json.dumps({"run_a": str(run_a), "run_b": str(run_b)})
        proc = subprocess.run([sys.executable, "-c", f"ARGS = {args}\n" + textwrap.dedent(CLIENT)], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        repo = hub.repos[("model", "user/tiny-style")]
        main, v2 = (repo.commits[repo.branches[b]].files for b in ("main", "v2"))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("user/tiny-style", "user/tiny-style@v2"):
        assert result[name] == {"same_weights": True, "type": "TransformerNet", "size": [24, 20]}, name
    assert all("/user/tiny-style/commit/" in url for url in result["urls"])
    # What is on the Hub: the fp16 folder + fp32 weights, and a card whose usage names the real repo.
    assert set(main) == EXPECTED_FILES | {FP32_REPO_FILE, ".gitattributes"}
    assert main[FP32_REPO_FILE].data == (run_a / EXPORT_DIR / "model.safetensors").read_bytes()
    card_main, card_v2 = (ModelCard(files[CARD_FILE].data.decode()) for files in (main, v2))
    assert "--style user/tiny-style -o out.jpg" in card_main.text and PLACEHOLDER_REPO not in card_main.text
    assert 'load_style("user/tiny-style@v2")' in card_v2.text and card_v2.data.library_name == "fastnst"
    # The token is nowhere: not in the client's output, not on the Hub, not in any local file.
    assert SECRET not in proc.stdout + proc.stderr
    assert not [p for p, blob in {**main, **v2}.items() if SECRET.encode() in blob.data]
    for run_dir in (run_a, run_b):
        assert not [p for p in run_dir.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
        assert digest(run_dir) == before[run_dir]  # pushing only reads local files


def test_card_names_the_painting_and_painter_given_to_the_trainer(tmp_path):
    """--title / --artist reach the card and style.json; without them the title is the file name made readable."""
    from huggingface_hub import ModelCard

    from fastnst.formats import readable_title

    _, run_dir = make_run(tmp_path, "named", seed=2, title="The Starry Night", artist="Vincent van Gogh")
    card = ModelCard.load(run_dir / EXPORT_FP16_DIR / CARD_FILE)
    assert card.text.lstrip().startswith("# The Starry Night (Vincent van Gogh)")
    assert card.data.model_name == "The Starry Night"
    meta = json.loads((run_dir / EXPORT_FP16_DIR / "style.json").read_text())
    assert (meta["title"], meta["artist"]) == ("The Starry Night", "Vincent van Gogh")
    assert readable_title("starry_night.jpg") == "Starry Night"
    assert readable_title("great-wave_off kanagawa") == "Great Wave Off Kanagawa"


# ------------------------------------------------------------------------------------------------------ gallery


def test_the_gallery_thumbnail_is_the_light_networks_whichever_network_is_exported_last(tmp_path, monkeypatch):
    """`training.gallery`: a CPU paints with the light network, so the thumbnail shows what it paints."""
    import training.gallery as G
    from huggingface_hub.repocard import metadata_load

    monkeypatch.setattr(G, "STYLES_DIR", tmp_path / "styles")
    readme = tmp_path / "README.md"
    readme.write_text("---\ntitle: a Space\n---\n# A Space\n")
    monkeypatch.setattr(G, "README", readme)
    full_run, light_run = make_run(tmp_path, "full", seed=1)[1], make_run(tmp_path, "light", seed=2)[1]

    folder = G.add_to_gallery(full_run, "my-style", light=False, title="Mine", artist="Me", year="2026")
    full_tile = (folder / "tile.jpg").read_bytes()  # no light network yet: the full one paints it
    G.add_to_gallery(light_run, "my-style", light=True)
    light_tile = (folder / "tile.jpg").read_bytes()
    assert light_tile != full_tile
    G.add_to_gallery(full_run, "my-style", light=False)  # the full network exported again, last
    assert (folder / "tile.jpg").read_bytes() == light_tile
    G.add_to_gallery(light_run, "my-style", light=True)  # installed twice: its history says it once

    meta = json.loads((folder / "style.json").read_text())
    assert set(meta["networks"]) == {"full", "light"} and "max_side" not in meta
    assert (meta["title"], meta["artist"], meta["slug"]) == ("Mine", "Me", "my-style")
    assert len(meta["networks"]["full"]["lineage"]) == 1  # the same run installed again is not a second run
    assert [entry["run"] for entry in meta["networks"]["light"]["lineage"]] == [light_run.name]
    assert metadata_load(readme)["models"] == ["fastnst/my-style"]


def test_a_style_taken_out_of_the_gallery_leaves_no_folder_and_no_card_entry(tmp_path, monkeypatch, capsys):
    """`training.gallery --remove`: the style the look campaign could not bring over the line leaves cleanly."""
    import training.gallery as G
    from huggingface_hub.repocard import metadata_load

    monkeypatch.setattr(G, "STYLES_DIR", tmp_path / "styles")
    readme = tmp_path / "README.md"
    readme.write_text("---\ntitle: a Space\n---\n# A Space\n")
    monkeypatch.setattr(G, "README", readme)
    G.add_to_gallery(make_run(tmp_path, "light", seed=2)[1], "kept", light=True, title="Kept", artist="Me")
    G.add_to_gallery(make_run(tmp_path, "other", seed=3)[1], "gone", light=True, title="Gone", artist="Me")

    G.main(["--remove", "gone"])
    assert not (tmp_path / "styles" / "gone").exists() and (tmp_path / "styles" / "kept" / "style.json").is_file()
    assert metadata_load(readme)["models"] == ["fastnst/kept"]
    with pytest.raises(SystemExit, match="'gone' is not in the gallery"):
        G.main(["--remove", "gone"])
    with pytest.raises(SystemExit):
        G.main([])
    assert "give a run folder and --slug" in capsys.readouterr().err
