"""Styles: gallery, local folders and the Hub (through the local stand-in), caching and clear errors."""
import json
import subprocess
import sys

import pytest
import torch

import fastnst.styles as styles
from fastnst.errors import HubError, StyleNotFoundError, WeightsMismatchError
from fastnst.models import TransformerNet
from tests.conftest import make_style_dir


def test_gallery_lists_generated_style_and_auto_picks_the_light_network(gallery_dir):
    (entry,) = styles.gallery()
    assert entry["slug"] == "test-style" and entry["variants"] == ["full", "light"]
    assert styles.load_style("test-style", device="cpu").variant == "light"
    # one size on every device: only the light networks were retrained for the look
    assert styles._pick_variant("auto", ["full", "light"]) == "light" and styles._pick_variant("auto", ["full"]) == "full"
    full = styles.load_style("test-style", device="cpu", variant="full")
    assert full.variant == "full" and full.title == "Test Style"
    assert next(full.network.parameters()).dtype == torch.float32  # fp16 on disk, fp32 in memory
    assert styles.load_style("test-style", device="cpu", variant="full") is full  # LRU hit


def test_unknown_style_lists_what_is_available(gallery_dir):
    with pytest.raises(StyleNotFoundError, match="Unknown style 'nope'.*test-style"):
        styles.load_style("nope")


def test_local_folder_and_corrupt_folder(tmp_path, gallery_dir):
    folder = make_style_dir(tmp_path / "mine")
    assert styles.load_style(str(folder)).network is not None
    (folder / "model.safetensors").write_bytes(b"garbage")
    styles.clear_cache()
    with pytest.raises(WeightsMismatchError, match="Could not read weights"):
        styles.load_style(str(folder))


def push(hub_url, folder, repo_id, branch=None):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_url)
    api.create_repo(repo_id, exist_ok=True)
    if branch:
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=branch).oid


def test_hub_round_trip_by_repo_id_revision_and_offline(tmp_path, hub):
    first = make_style_dir(tmp_path / "v1", seed=1)
    sha1 = push(hub.url, first, "artist/my-style")
    second = make_style_dir(tmp_path / "v2", seed=2, title="Second")
    push(hub.url, second, "artist/my-style")

    latest = styles.load_style("artist/my-style", device="cpu")
    pinned = styles.load_style(f"artist/my-style@{sha1}", device="cpu")
    assert latest.title == "Second" and pinned.title == "Test Style"
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        expected = TransformerNet.from_pretrained("artist/my-style", revision=sha1)(x)
        assert torch.allclose(pinned.network(x), expected)
        assert not torch.allclose(latest.network(x), expected)

    hub.stop()  # the Hub goes away: what is cached still loads, what is not gives a clear error
    styles.clear_cache()
    assert styles.load_style(f"artist/my-style@{sha1}", device="cpu").title == "Test Style"
    with pytest.raises(HubError, match="not in the local cache"):
        styles.load_style("artist/never-downloaded", device="cpu")


def test_hub_errors_and_mismatched_weights(tmp_path, hub):
    with pytest.raises(StyleNotFoundError, match="no Hub repo"):
        styles.load_style("nobody/missing", device="cpu")
    folder = make_style_dir(tmp_path / "bad")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "residual_blocks": 3}))
    push(hub.url, folder, "artist/broken")
    with pytest.raises(WeightsMismatchError, match="missing"):
        styles.load_style("artist/broken", device="cpu")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    push(hub.url, tmp_path / "empty", "artist/not-a-style")
    with pytest.raises(StyleNotFoundError, match="has no fastnst style"):
        styles.load_style("artist/not-a-style", device="cpu")
    with pytest.raises(StyleNotFoundError, match="no revision"):
        styles.load_style("artist/broken@does-not-exist", device="cpu")


def test_offline_mode_uses_the_cache(tmp_path, hub):
    """HF_HUB_OFFLINE=1 (read at import, so in a fresh process): cached styles load, others fail clearly."""
    push(hub.url, make_style_dir(tmp_path / "s"), "artist/cached")
    styles.load_style("artist/cached", device="cpu")  # fills the cache
    hub.stop()
    code = ("import fastnst.styles as s\n"
            "print(s.load_style('artist/cached', device='cpu').title)\n"
            "try:\n    s.load_style('artist/other', device='cpu')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Test Style" and lines[1].startswith("HubError") and "offline" in lines[1]


def test_a_style_knows_its_training_recipe(tmp_path, gallery_dir):
    """The gallery's networks.<variant>.recipe, else an export's fastnst.json; None when nothing recorded one."""
    meta = json.loads((gallery_dir / "test-style" / "style.json").read_text())
    meta["networks"] = {"light": {"recipe": {"style_weight": 3.0}}}
    (gallery_dir / "test-style" / "style.json").write_text(json.dumps(meta))
    assert styles.load_style("test-style", device="cpu", variant="light").recipe == {"style_weight": 3.0}
    assert styles.load_style("test-style", device="cpu", variant="full").recipe is None
    folder = make_style_dir(tmp_path / "export")
    (folder / "fastnst.json").write_text(json.dumps({"recipe": {"style_weight": 2.0}}))
    assert styles.load_style(str(folder), device="cpu").recipe == {"style_weight": 2.0}
