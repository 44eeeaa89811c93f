"""Shared test setup: a hermetic Hugging Face environment pointed at a local Hub stand-in, and small fixtures.

`huggingface_hub` reads HF_ENDPOINT / HF_HOME when it is first imported, so they are set here, before any test
module imports fastnst. The endpoint's port is reserved now; the `hub` fixture starts a fresh server on it.
"""
import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.hub_server import HubServer, free_port

HUB_PORT = free_port()
_HF_HOME = tempfile.mkdtemp(prefix="fastnst-hf-home-")
os.environ.update({
    "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}",
    "HF_HOME": _HF_HOME,
    "HF_HUB_DISABLE_XET": "1",
    "HF_TOKEN": "hf_local_test_token",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_ETAG_TIMEOUT": "2",
    "HF_HUB_DOWNLOAD_TIMEOUT": "5",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TORCH_HOME": os.path.join(_HF_HOME, "torch"),  # torchvision never finds a cached VGG by accident
})
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("FASTNST_VGG_WEIGHTS", None)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VGG16_FILE = SHARED_DATA / "weights" / "vgg16_hed_bsds500_features_to_relu4_3_fp16.safetensors"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a clean skip where it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def hub():
    """A fresh local Hub stand-in on the port HF_ENDPOINT names; stopped afterwards."""
    server = HubServer(port=HUB_PORT).start()
    yield server
    server.stop()


def make_style_dir(folder: Path, *, seed: int = 0, width: float = 0.25, blocks: int = 1, title="Test Style",
                   light=False) -> Path:
    """A gallery-style folder with a tiny random TransformerNet (fp16, as shipped) and its style.json."""
    import torch

    from fastnst.models import TransformerNet

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for sub, w in [(folder, width)] + ([(folder / "light", width / 2)] if light else []):
        net = TransformerNet(width=w, residual_blocks=blocks)
        with torch.no_grad():  # move away from the identity-ish init so the output differs from grey
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
        net.half().save_pretrained(sub)
    (folder / "style.json").write_text(json.dumps({
        "title": title, "artist": "Test Artist", "year": 2026, "license": "CC0-1.0", "hub_repo": None}))
    return folder


@pytest.fixture
def style_dir(tmp_path) -> Path:
    return make_style_dir(tmp_path / "styles" / "test-style", light=True)


@pytest.fixture
def gallery_dir(style_dir, monkeypatch):
    """Point fastnst's gallery at a temporary styles/ folder holding one generated style."""
    import fastnst.styles

    monkeypatch.setattr(fastnst.styles, "STYLES_DIR", style_dir.parent)
    fastnst.styles.clear_cache()
    yield style_dir.parent
    fastnst.styles.clear_cache()
