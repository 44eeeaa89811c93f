"""The GPU code paths, checked on a CPU: precision by capability, the prepared-network cache, memory sizing and the
ZeroGPU helpers. CPU-only: CUDA is faked where a choice depends on it (capability, free memory); what really runs
on a GPU is `bench/gpu_check.py`'s job."""
import pytest
import torch

from fastnst import device as D
from fastnst import inference, tiling
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
    return Style(f"tiny-{seed}", TransformerNet(width=0.25, residual_blocks=1).eval(), {})


def test_fp16_paints_close_to_fp32():
    """fp16 autocast (a T4's half precision) runs on a CPU too, which is what lets this check its plumbing."""
    style, x = _style(), torch.rand(1, 3, 40, 48)
    fp32 = inference.stylize_tensor(x, style, device="cpu", mode="fp32")
    fp16 = inference.stylize_tensor(x, style, device="cpu", mode="fp16")
    assert fp16.dtype == torch.float32 and 0 < float((fp32 - fp16).abs().mean()) < 2 / 255


# --- the prepared-network cache ---------------------------------------------------------------------------------
@pytest.fixture
def empty_cache():
    inference.clear_prepared()
    yield inference._prepared
    inference.clear_prepared()


def test_prepared_networks_are_keyed_by_network_device_and_precision(empty_cache, monkeypatch):
    from fastnst.models import TransformerNet
    net, cpu = TransformerNet(width=0.25, residual_blocks=1), torch.device("cpu")
    bf16 = inference._runner(net, cpu, "bf16")
    assert inference._runner(net, cpu, "bf16") is bf16 and inference._runner(net, cpu, "fp16") is not bf16
    assert inference._runner(net, cpu, "fp32") is net and len(empty_cache) == 2  # fp32 is the network itself
    fake_cuda(monkeypatch, CARDS["T4"])
    monkeypatch.setattr(inference, "_make_runner", lambda network, device, mode: ("prepared", str(device), mode))
    assert inference._runner(net, CUDA, "compile") == ("prepared", "cuda:0", "compile")
    assert set(empty_cache) == {(id(net), "cpu", "bf16", torch.bfloat16), (id(net), "cpu", "fp16", torch.float16),
                                (id(net), "cuda:0", "compile", torch.float16)}


def test_the_cache_keeps_a_few_networks_and_frees_what_it_evicts(empty_cache, monkeypatch):
    import gc
    import weakref

    from fastnst.models import TransformerNet
    monkeypatch.setattr(inference, "PREPARED_MAX", 2)
    nets = [TransformerNet(width=0.25, residual_blocks=1) for _ in range(3)]
    x = torch.rand(1, 3, 16, 16)
    for net in nets:
        inference.forward(net, x, "bf16")
    inference.forward(nets[1], x, "bf16")  # used again: nets[2] is now the least recently used
    inference.forward(nets[0], x, "bf16")
    assert [key[0] for key in empty_cache] == [id(nets[1]), id(nets[0])]
    gone = weakref.ref(nets[2])
    del nets[2], net
    gc.collect()
    assert gone() is None  # nothing of the cache holds an evicted network


def test_a_failed_mode_is_remembered_and_not_tried_again(empty_cache, monkeypatch):
    from fastnst.models import TransformerNet
    net, x, tries = TransformerNet(width=0.25, residual_blocks=1).eval(), torch.rand(1, 3, 16, 16), []

    def failing_runner(network, device, mode):
        def run(x, **kw):
            tries.append(mode)
            raise torch.OutOfMemoryError("CUDA out of memory while compiling")
        return run

    monkeypatch.setattr(inference, "_make_runner", failing_runner)
    with pytest.warns(UserWarning, match="OutOfMemoryError"):
        first = inference.forward(net, x, "compile")
    with torch.no_grad():
        assert torch.equal(first, net(x)) and torch.equal(inference.forward(net, x, "compile"), net(x))
    assert tries == ["compile"]  # the second request went straight to fp32 eager
    assert isinstance(empty_cache[inference.cache_key(net, x.device, "compile")], inference.Failed)


# --- sizing work to the card's memory ---------------------------------------------------------------------------
GB = 10**9


def test_a_t4_paints_one_picture_at_a_time_and_tiles_what_an_a100_paints_whole():
    t4, a100 = D.plan_for_memory(14.5 * GB), D.plan_for_memory(79 * GB)  # free memory of a 15 GB and an 80 GB card
    assert t4.concurrency == 1 and a100.concurrency == D.MAX_CONCURRENCY
    assert t4.untiled_pixels >= D.LARGEST_PICTURE  # 4K still untiled on a T4
    assert t4.untiled_pixels < 16_000_000 <= a100.untiled_pixels + 1_000_000  # 16 MP tiled on a T4 only
    for plan, free in ((t4, 14.5 * GB), (a100, 79 * GB)):  # what runs at once fits, with its tiles' margins
        assert plan.concurrency * plan.untiled_pixels * D.BYTES_PER_PIXEL <= free
        assert plan.concurrency * (plan.tile + 2 * tiling.MARGIN) ** 2 * D.BYTES_PER_PIXEL <= free
        assert plan.tile % 4 == 0
    small = D.plan_for_memory(2 * GB)  # a card mostly taken by something else still paints, one at a time
    assert small.concurrency == 1 and small.tile >= D.TILE_RANGE[0] and small.untiled_pixels < 2_000_000


def test_painting_on_a_gpu_tiles_by_its_free_memory(monkeypatch):
    D.memory_plan.cache_clear()
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(14.5 * GB), 15 * GB))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    untiled, tile = inference.auto_tiling(torch.device("cuda"))
    assert (untiled, tile) == (D.plan_for_memory(14.5 * GB).untiled_pixels, inference.DEFAULT_TILE["cuda"])
    assert inference.auto_tiling(torch.device("cpu")) == (inference.AUTO_TILE_PIXELS["cpu"],
                                                          inference.DEFAULT_TILE["cpu"])
    D.memory_plan.cache_clear()
