"""bench/brush.py: its stroke meter reads known stroke sizes right, and the bench prints its table end to end."""
import json

import pytest


@pytest.fixture
def bench(monkeypatch):
    """bench/brush.py, with no loss network kept from an earlier test (it shares bench.quality's)."""
    from bench import brush, quality

    monkeypatch.setattr(quality, "_vggs", {})
    return brush


def test_the_stroke_meter_reads_tiled_and_enlarged_paintings_right(bench, shared_data):
    """The painting at s tiled into a picture reads s; enlarged from s (its strokes those of the painting at the
    picture's size, only blurred) reads the largest size: blur does not pass for fine strokes."""
    import torch

    from fastnst.styles import load_style

    style = load_style("starry-night", device="cpu")
    recipe = bench.find_recipe(style, "starry-night")
    painting = bench.find_painting(style, recipe, shared_data / "styles")
    loss = bench.build_loss(recipe, bench.resolve_loss_weights(recipe, None, shared_data / "weights"), painting,
                            torch.device("cpu"))
    checks = bench.StrokeMeter(loss, painting, "cpu").self_check(512)
    assert [(want, read) for _, want, read in checks] == [(want, want) for _, want, _ in checks]


def test_brush_bench_prints_the_table(bench, shared_data, tmp_path, capsys):
    out = tmp_path / "brush.json"
    assert bench.main(["--styles", "the-scream", "--brushes", "1,4", "--size", "256", "--num-photos", "1",
                       "--weights-dir", str(shared_data / "weights"), "--paintings-dir", str(shared_data / "styles"),
                       "--device", "cpu", "--json", str(out), "--contact-sheet", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out
    assert "brush vs matched painting size" in printed and "the-scream" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [r["brush"] for r in rows] == [1.0, 4.0]
    assert rows[0]["content"] == 1.0 and all(r["matched"] in bench.SIZES for r in rows)
    assert (tmp_path / "s.png").is_file()
    assert bench.main(["--styles", "the-scream", "--brushes", "one"]) == 2
