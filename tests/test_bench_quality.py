"""bench/quality.py end to end on a tiny generated style, random VGG weights, one 48 px photo, 3 and 5 iterations."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import report
from tests.conftest import make_style_dir


@pytest.fixture
def bench(monkeypatch):
    """bench/quality.py, with no loss network kept from an earlier test."""
    from bench import quality

    monkeypatch.setattr(quality, "_vggs", {})
    return quality


def _picture(path: Path, w: int, h: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 5.0)], axis=-1)  # smooth, with some structure
    noise = rng.normal(0, 0.08, (h, w, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(base + noise, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def test_quality_bench_end_to_end(bench, tmp_path, capsys):
    import torch

    torch.manual_seed(0)  # random VGG weights: the same every run
    style = make_style_dir(tmp_path / "tiny-style", title="Tiny Style")
    meta = json.loads((style / "style.json").read_text())
    recipe = {"content_weight": 1e5, "style_weight": 1e10, "tv_weight": 1.0, "style_size": 64, "loss_arch": "vgg16",
              "loss_weights": "not-here.safetensors", "crop": 256, "style_image": "painting.png"}
    meta["networks"] = {"full": {"recipe": recipe}}  # where training.gallery puts it
    (style / "style.json").write_text(json.dumps(meta))
    _picture(tmp_path / "paintings" / "painting.png", 80, 64, seed=1)
    photo = _picture(tmp_path / "photos" / "photo.png", 60, 40, seed=2)
    out_json, sheet = tmp_path / "q.json", tmp_path / "sheet.png"

    rc = bench.main(["--styles", str(style), "--photos", str(photo.parent), "--sizes", "48", "--iters", "3,5",
                     "--loss-weights", "random", "--paintings-dir", str(tmp_path / "paintings"), "--device", "cpu",
                     "--threads", "1", "--json", str(out_json), "--contact-sheet", str(sheet)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "net total" in printed and "G5 total" in printed and "Tiny Style" in printed and "photo.png" in printed

    result = json.loads(out_json.read_text())
    (row,) = result["rows"]
    assert (row["style"], row["photo"], row["size"]) == ("Tiny Style", "photo.png", 48)
    assert max(row["width"], row["height"]) == 48
    assert {"content", "style", "tv", "total"} <= set(row["net"])
    g0, g3, g5 = (row["gatys"][k]["total"] for k in ("0", "3", "5"))
    assert g5 <= g3 <= g0 and g5 < g0
    assert row["ratio"] == row["net"]["total"] / g5 > 0
    assert 0 <= row["seam_mad"] < 0.5  # one tile at 48 px: tiled equals untiled up to rounding
    assert result["summary"]["Tiny Style"]["rows"] == 1 and not result["errors"]
    # texture gate: the output's style loss over the photo's own (iteration 0 is the photo)
    assert row["texture"] == pytest.approx(row["net"]["style"] / row["gatys"]["0"]["style"])
    summary = result["summary"]["Tiny Style"]
    assert summary["texture_median"] == row["texture"]
    assert summary["texture_passes"] == (row["texture"] <= bench.TEXTURE_GATE)

    with Image.open(sheet) as img:
        assert img.size == (report.LABEL + report.CELL, 2 * report.CELL)  # a row of photos, a row per style

    # --gatys-from takes an earlier run's optimisation where the loss is the same one, and reruns it where not
    earlier = tmp_path / "earlier.json"
    for start, expected in ((g0, 123.0), (2 * g0, g5)):
        result["rows"][0]["gatys"]["0"]["total"], result["rows"][0]["gatys"]["5"]["total"] = start, 123.0
        earlier.write_text(json.dumps(result))
        torch.manual_seed(0)  # the same random VGG weights as the first run: the same loss
        assert bench.main(["--styles", str(style), "--photos", str(photo.parent), "--sizes", "48", "--iters", "3,5",
                           "--loss-weights", "random", "--paintings-dir", str(tmp_path / "paintings"), "--device",
                           "cpu", "--threads", "1", "--json", str(out_json), "--gatys-from", str(earlier)]) == 0
        (again,) = json.loads(out_json.read_text())["rows"]
        assert again["gatys"]["5"]["total"] == pytest.approx(expected)


def test_missing_recipe_is_reported_not_guessed(bench, tmp_path, capsys):
    style = make_style_dir(tmp_path / "no-recipe")
    photo = _picture(tmp_path / "photo.png", 40, 40, seed=3)
    rc = bench.main(["--styles", str(style), "--photos", str(photo), "--sizes", "32", "--iters", "1",
                     "--loss-weights", "random", "--device", "cpu", "--threads", "1"])
    assert rc == 1
    assert "no training recipe" in capsys.readouterr().out


def test_texture_gate_alone_skips_the_optimisation(bench, tmp_path, capsys):
    import torch

    torch.manual_seed(0)
    style = make_style_dir(tmp_path / "tiny-style", title="Tiny Style")
    meta = json.loads((style / "style.json").read_text())
    meta["networks"] = {"full": {"recipe": {"style_size": 64, "loss_arch": "vgg16", "style_image": "painting.png"}}}
    (style / "style.json").write_text(json.dumps(meta))
    _picture(tmp_path / "paintings" / "painting.png", 80, 64, seed=1)
    photo = _picture(tmp_path / "photos" / "photo.png", 60, 40, seed=2)
    out_json = tmp_path / "q.json"
    rc = bench.main(["--styles", str(style), "--photos", str(photo), "--sizes", "48", "--iters", "0",
                        "--loss-weights", "random", "--paintings-dir", str(tmp_path / "paintings"), "--device", "cpu",
                        "--threads", "1", "--json", str(out_json)])
    assert rc == 0
    assert "texture" in capsys.readouterr().out
    (row,) = json.loads(out_json.read_text())["rows"]
    assert list(row["gatys"]) == ["0"] and row["ratio"] is None and row["texture"] > 0
    # the gate scores the photo from its VGG features computed once for all styles: the same numbers as the
    # optimisation path, which scores the photo squeezed into [½, 254½]/255 (the module keeps its random VGG)
    assert bench.main(["--styles", str(style), "--photos", str(photo), "--sizes", "48", "--iters", "0,1",
                          "--loss-weights", "random", "--paintings-dir", str(tmp_path / "paintings"), "--device",
                          "cpu", "--threads", "1", "--json", str(out_json)]) == 0
    (full,) = json.loads(out_json.read_text())["rows"]
    assert full["gatys"]["0"]["style"] == pytest.approx(row["gatys"]["0"]["style"], rel=1e-3)
    assert full["texture"] == pytest.approx(row["texture"], rel=1e-3)


def test_record_writes_each_gallery_styles_numbers_into_its_style_json(bench, tmp_path, monkeypatch):
    style = make_style_dir(tmp_path / "styles" / "tiny")
    monkeypatch.setattr(bench, "STYLES_DIR", tmp_path / "styles")
    rows = [{"style": "tiny", "variant": "light", "photo": f"p{i}.jpg", "size": 256, "texture": t, "ratio": r,
             "seam_mad": None} for i, (t, r) in enumerate([(0.1, 2.0), (0.3, 8.0), (0.2, 4.0)])]
    rows.append({"style": "elsewhere", "variant": "full", "photo": "p.jpg", "size": 256, "texture": 1, "ratio": 1,
                 "seam_mad": None})
    result = {"rows": rows, "summary": bench.summarise(rows), "config": {"iters": [100]}}
    assert bench.record_in_gallery(result) == ["tiny"]  # a style outside the gallery is not written anywhere
    quality = json.loads((style / "style.json").read_text())["networks"]["light"]["quality"]
    assert quality["256px"] == {"photos": ["p0.jpg", "p1.jpg", "p2.jpg"], "texture_median": 0.2,
                                "ratio_to_gatys100": 4.0}
    assert quality["texture_gate"] == bench.TEXTURE_GATE


def test_texture_gate_holds_at_every_size(bench):
    """Strokes have a fixed size in pixels, so a style that paints at 256 px may only tint at 1024 px."""
    rows = [{"style": "s", "photo": f"p{i}", "size": size, "texture": t, "ratio": None, "seam_mad": None}
            for size, textures in ((256, (0.1, 0.2, 0.15)), (1024, (0.3, 0.5, 0.4))) for i, t in enumerate(textures)]
    summary = bench.summarise(rows)["s"]
    assert summary["texture_by_size"] == {256: 0.15, 1024: 0.4}
    assert summary["texture_median"] == 0.4 and not summary["texture_passes"]
    assert bench.summarise([r for r in rows if r["size"] == 256])["s"]["texture_passes"]


def test_photo_sets_a_and_b_are_disjoint_held_out_photos(bench, tmp_path):
    """Choose on A, confirm on B: both come from the photos a run on the folder holds out, never from its pool."""
    from training import data as D
    for i in range(40):
        _picture(tmp_path / "photos" / f"{i:02d}.png", 80, 72, seed=i)
    a, b = (bench.photo_set(name, tmp_path / "photos") for name in ("A", "B"))
    held = D.heldout_photos(tmp_path / "photos", bench.HELDOUT, bench.MIN_SIDE)
    assert len(a) == 8 and len(b) == 8 + bench.NUM_PHOTOS and not set(a) & set(b)
    assert set(a) | set(b[:8]) == set(held) and bench.PHOTOS in {p.parent for p in b}
    assert [Path(p) for p in D.list_images(tmp_path / "photos")][0] in a  # the trainer's first held-out photo
    for i in range(5):
        _picture(tmp_path / "few" / f"{i}.png", 80, 72, seed=i)
    with pytest.raises(bench.FastNSTError, match="needs the training photos"):
        bench.photo_set("A", tmp_path / "few")
