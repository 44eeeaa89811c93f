"""The gallery as shipped in `styles/`: every style named, credited, gated on photos nobody tuned on, listed in the
Space's card, and fine-tuned from the family network (so every pair mixes)."""
import pytest
from huggingface_hub.repocard import metadata_load

from bench.report import TEXTURE_GATE  # the output's style loss over the photo's own, median over photos
from fastnst.formats import gallery_record
from fastnst.styles import STYLES_DIR, gallery

from .test_mix import ROOT

SIZES = ("256px", "512px", "1024px")
pytestmark = pytest.mark.skipif(STYLES_DIR != ROOT / "styles", reason="the gallery is not the checkout's")


def test_the_gallery_has_at_least_20_credited_styles_with_a_cpu_network_and_a_thumbnail():
    entries = gallery()
    assert len(entries) >= 20
    for meta in entries:
        assert meta.get("title") and meta.get("artist") and meta.get("year"), meta["slug"]
        assert "light" in meta["variants"] and meta["thumbnail_path"], meta["slug"]


def test_every_style_passed_the_texture_gate_on_photo_set_b_at_every_size():
    """Balances were chosen on photo set A; set B (`python -m bench.quality --photo-set B`) confirms them."""
    for meta in gallery():
        quality = gallery_record(meta, "light").get("quality", {}).get("set_B", {})
        assert set(SIZES) <= set(quality), f"{meta['slug']}: no set-B gate recorded"
        for size in SIZES:
            assert len(quality[size]["photos"]) == 12, (meta["slug"], size)
            assert quality[size]["texture_median"] <= TEXTURE_GATE, (meta["slug"], size, quality[size])


def test_every_style_paints_with_the_look_campaigns_network_that_met_the_line_on_set_b():
    """bench/look.py's line against the peer, as training/campaign/look/run.py logged it on the held-out set B: the
    gallery's light network is the very network that met it (a style that could not is no longer in the gallery)."""
    campaign = ROOT / "training" / "campaign" / "look"
    lines = (campaign / "log.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    last = {row["style"]: row for row in (dict(zip(header, line.split("\t"))) for line in lines[1:])}
    for meta in gallery():
        slug = meta["slug"]
        assert last[slug]["set_B"] == "meets", (slug, last[slug])
        shipped = STYLES_DIR / slug / "light" / "model.safetensors"
        assert shipped.read_bytes() == (campaign / slug / "model.safetensors").read_bytes(), slug


def test_the_space_card_lists_every_style_once():
    models = metadata_load(ROOT / "README.md")["models"]
    assert sorted(models) == sorted({m["hub_repo"] for m in gallery()})
