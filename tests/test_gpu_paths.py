"""The GPU code paths, checked on a CPU: precision by capability, the prepared-network cache, memory sizing and the
ZeroGPU helpers. CPU-only: CUDA is faked where a choice depends on it (capability, free memory); what really runs
on a GPU is `bench/gpu_check.py`'s job."""
import pytest
import torch

from fastnst import device as D
from fastnst import inference
from fastnst.errors import InvalidOptionError

CUDA = torch.device("cuda", 0)
CARDS = {"T4": (7, 5), "V100": (7, 0), "A100": (8, 0), "L4": (8, 9), "H100": (9, 0)}


def fake_cuda(monkeypatch, capability):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)


@pytest.mark.parametrize("card", CARDS)
def test_auto_precision_is_bf16_where_native_and_fp16_before(monkeypatch, card):
    fake_cuda(monkeypatch, CARDS[card])
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.delenv("FASTNST_MODE", raising=False)
    half = "bf16" if CARDS[card] >= (8, 0) else "fp16"
    assert D.pick_precision("auto", CUDA) == half
    assert D.pick_precision("fp32", CUDA) == "fp32" and D.pick_precision("fp16", CUDA) == "fp16"
    assert inference.default_mode(CUDA) == "compile"
    assert inference.autocast_dtype("compile", CUDA) == D.AUTOCAST_DTYPES[half]
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # no torch.compile on ZeroGPU: fp32 eager beats eager half
    assert inference.default_mode(CUDA) == "fp32"


def test_training_resolves_the_precision_of_the_card(monkeypatch):
    from training.recipe import Recipe
    fake_cuda(monkeypatch, CARDS["T4"])
    assert Recipe(style="x.jpg", data="photos").resolved(CUDA).precision == "fp16"
    fake_cuda(monkeypatch, CARDS["A100"])
    assert Recipe(style="x.jpg", data="photos").resolved(CUDA).precision == "bf16"
    assert Recipe(style="x.jpg", data="photos", precision="fp32").resolved(CUDA).precision == "fp32"


def test_unknown_precision_and_mode_are_one_sentence():
    with pytest.raises(InvalidOptionError, match="precision must be one of auto, bf16, fp16, fp32"):
        D.pick_precision("fp8", torch.device("cpu"))
    with pytest.raises(InvalidOptionError, match="mode must be one of"):
        inference.stylize_tensor(torch.rand(1, 3, 16, 16), _style(), device="cpu", mode="int8")


def _style(seed=0):
    from fastnst.models import TransformerNet
    from fastnst.styles import Style
    torch.manual_seed(seed)
    return Style(f"tiny-{seed}", TransformerNet(width=0.25, num_residual_blocks=1).eval(), {})


def test_fp16_paints_close_to_fp32():
    """fp16 autocast (a T4's half precision) runs on a CPU too, which is what lets this check its plumbing."""
    style, x = _style(), torch.rand(1, 3, 40, 48)
    fp32 = inference.stylize_tensor(x, style, device="cpu", mode="fp32")
    fp16 = inference.stylize_tensor(x, style, device="cpu", mode="fp16")
    assert fp16.dtype == torch.float32 and 0 < float((fp32 - fp16).abs().mean()) < 2 / 255
