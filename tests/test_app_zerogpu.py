"""The Space's settings, checked on a CPU: on a dedicated GPU as many paintings at once as its free memory holds
(faked), on ZeroGPU a constant and no CUDA touched. CPU-only."""
import pytest
import torch

from fastnst import device as D

GB = 10**9


@pytest.mark.parametrize("free, concurrency", [(14.5 * GB, 1), (79 * GB, D.MAX_CONCURRENCY)])
def test_a_dedicated_gpu_paints_as_many_at_once_as_its_free_memory_holds(monkeypatch, free, concurrency):
    from space import settings

    D.memory_plan.cache_clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(free), 80 * GB))
    try:
        read = settings.Settings.from_env({})
    finally:
        D.memory_plan.cache_clear()
    assert (read.concurrency, read.live_concurrency) == (concurrency, concurrency)


def test_zero_gpu_settings_touch_no_cuda(monkeypatch):
    from space import settings

    def touched(*args, **kwargs):
        raise AssertionError("CUDA was touched in the main process")
    for name in ("is_available", "mem_get_info", "current_device", "init"):
        monkeypatch.setattr(torch.cuda, name, touched)
    read = settings.Settings.from_env({"SPACES_ZERO_GPU": "true"})
    assert read.on_gpu and read.concurrency == read.live_concurrency == settings.ZERO_GPU_CONCURRENCY
