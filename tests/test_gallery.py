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


def test_the_gallery_has_at_least_24_credited_styles_with_a_cpu_network_and_a_thumbnail():
    entries = gallery()
    assert len(entries) >= 24
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


def test_the_space_card_lists_every_style_once():
    models = metadata_load(ROOT / "README.md")["models"]
    assert sorted(models) == sorted({m["hub_repo"] for m in gallery()})
