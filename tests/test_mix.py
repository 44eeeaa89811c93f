"""Mixing gallery styles: the weighted mean of their networks, siblings fine-tuned from the gallery's family."""
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fastnst import load_style, stylize
from fastnst.errors import InvalidOptionError, StyleNotFoundError
from fastnst.models import TransformerNet
from fastnst.styles import STYLES_DIR, available_styles, parse_style

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "cat.jpg"
pytestmark = pytest.mark.skipif(not (STYLES_DIR / "family" / "config.json").is_file(),
                                reason="the gallery's family network is not here")


def painted(style, side=96):
    return np.asarray(stylize(PHOTO, style, max_side=side, device="cpu"), dtype=int)


def weights(network):
    return {name: value.float() for name, value in network.state_dict().items()}


def test_a_mix_is_the_weighted_mean_of_the_networks_and_all_its_weight_on_one_style_is_that_style():
    assert np.array_equal(painted({"starry-night": 1.0, "the-scream": 0.0}), painted("starry-night"))
    first, second = (weights(load_style(n, device="cpu", variant="light").network)
                     for n in ("starry-night", "the-scream"))
    mix = load_style({"starry-night": 3, "the-scream": 1}, device="cpu")  # weights are normalised: 0.75 / 0.25
    assert mix.title == "The Starry Night 75% · The Scream 25%"
    for name, weight in weights(mix.network).items():
        assert torch.allclose(weight, 0.75 * first[name] + 0.25 * second[name], atol=1e-3)
    between = painted(mix)
    assert 0 < np.abs(between - painted("starry-night")).mean() and 0 < np.abs(between - painted("the-scream")).mean()


def test_every_gallery_style_mixes_and_one_outside_the_family_would_be_refused_by_name():
    mixable, refused = [], {}
    for name in available_styles():
        try:
            load_style({"starry-night": 0.5, name: 0.5}, device="cpu")
            mixable.append(name)
        except InvalidOptionError as err:
            refused[name] = str(err)
    assert mixable == available_styles()  # every gallery light network is fine-tuned from styles/family
    for name, sentence in refused.items():
        title = load_style(name, device="cpu", variant="light").title
        assert sentence == (f"{title} is not fine-tuned from the gallery's family network, so it cannot be mixed; "
                            f"these styles can: {', '.join(mixable)}.")
    assert load_style({name: 1 for name in mixable}, device="cpu").title.count("·") == len(mixable) - 1


def test_the_text_spelling_is_the_same_mix():
    assert parse_style("starry-night=0.6, the-scream=0.4") == {"starry-night": 0.6, "the-scream": 0.4}
    assert parse_style("starry-night") == "starry-night"
    assert np.array_equal(painted("starry-night=0.6,the-scream=0.4"),
                          painted({"starry-night": 0.6, "the-scream": 0.4}))


@pytest.mark.parametrize("mix, message", [
    ("starry-night=lots,the-scream=1", "has no number for its weight"),
    ({"starry-night": -1, "the-scream": 1}, "must be a number of at least 0"),
    ({"starry-night": 0, "the-scream": 0}, "add up to 0"),
    ({}, "needs at least one style"),
])
def test_bad_mixes_get_one_sentence(mix, message):
    with pytest.raises(InvalidOptionError, match=message):
        load_style(mix, device="cpu")


def test_a_network_fine_tuned_whole_from_a_gallery_style_mixes_with_the_others(tmp_path):
    tuned = copy.deepcopy(load_style("starry-night", device="cpu", variant="light").network)
    torch.manual_seed(0)
    with torch.no_grad():  # a small step off the family, as the look campaign's fine-tuning takes
        for p in tuned.parameters():
            p.add_(0.05 * p.abs().mean() * torch.randn_like(p))
    tuned.save_pretrained(tmp_path / "tuned")
    mix = load_style({str(tmp_path / "tuned"): 0.5, "the-scream": 0.5}, device="cpu")
    scream = weights(load_style("the-scream", device="cpu", variant="light").network)
    for name, weight in weights(mix.network).items():
        assert torch.allclose(weight, 0.5 * tuned.state_dict()[name].float() + 0.5 * scream[name], atol=1e-3)


def test_styles_outside_the_family_cannot_be_mixed(tmp_path):
    TransformerNet(width=0.5).save_pretrained(tmp_path / "mine")
    with pytest.raises(InvalidOptionError, match="mine is not fine-tuned from the gallery's family network, so it "
                                                 "cannot be mixed; these styles can: starry-night, "):
        load_style({"starry-night": 0.5, str(tmp_path / "mine"): 0.5}, device="cpu")
    with pytest.raises(StyleNotFoundError):
        load_style({"starry-night": 0.5, "no-such-style": 0.5}, device="cpu")


def test_the_cli_paints_a_mix(tmp_path):
    out = tmp_path / "mix.jpg"
    run = subprocess.run([sys.executable, "-m", "fastnst.cli", "stylize", str(PHOTO), "--style",
                          "starry-night=0.6,the-scream=0.4", "-o", str(out), "--max-side", "64", "--device", "cpu"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "style The Starry Night 60% · The Scream 40%" in run.stdout and out.is_file()
