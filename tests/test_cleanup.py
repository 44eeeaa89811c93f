"""What the Space and training leave on disk: finished fits are swept by age and size, the photo cache is bounded."""
import os
import time

import numpy as np

from space.uploads import sweep
from training import data


def make_fit(folder, name, nbytes, age_s):
    run = folder / name
    (run / "export-fp16").mkdir(parents=True)
    (run / "export-fp16" / "model.safetensors").write_bytes(b"\0" * nbytes)
    then = time.time() - age_s
    os.utime(run, (then, then))
    return run


def test_fits_are_swept_by_age_then_by_total_size_but_running_ones_stay(tmp_path):
    old = make_fit(tmp_path, "old", 10, age_s=3 * 3600)
    running = make_fit(tmp_path, "running", 10, age_s=5 * 3600)
    fresh = [make_fit(tmp_path, f"fresh{i}", 1000, age_s=600 - i) for i in range(4)]
    deleted = sweep(tmp_path, keep=[running], max_age_s=2 * 3600, max_bytes=10**6)
    assert deleted == [old] and running.exists() and all(p.exists() for p in fresh)
    deleted = sweep(tmp_path, keep=[running], max_age_s=2 * 3600, max_bytes=2500)
    assert deleted == fresh[:2]  # the oldest go first, until the rest (the running one too) fit
    assert running.exists() and fresh[2].exists() and fresh[3].exists()
    assert sweep(tmp_path / "absent") == []


def test_the_photo_cache_keeps_the_recently_used_sets_within_its_size(tmp_path, monkeypatch):
    photos = []
    for i in range(3):
        folder = tmp_path / f"photos{i}"
        folder.mkdir()
        from PIL import Image

        Image.fromarray(np.full((40, 40, 3), 50 * i, np.uint8)).save(folder / "a.png")
        photos.append(folder)
    cache = tmp_path / "cache"
    one_set = data.build_cache(photos[0], prep_side=32, min_side=16, cache_dir=cache, progress=False)
    size = one_set.path.stat().st_size
    monkeypatch.setattr(data, "CACHE_MAX_BYTES", 2 * size)
    (cache / "dead.npy.tmp999999999").write_bytes(b"half written by a killed process")
    data.build_cache(photos[1], prep_side=32, min_side=16, cache_dir=cache, progress=False)
    time.sleep(0.01)
    data.build_cache(photos[0], prep_side=32, min_side=16, cache_dir=cache, progress=False)  # used again: kept
    data.build_cache(photos[2], prep_side=32, min_side=16, cache_dir=cache, progress=False)
    kept = sorted(p.name for p in cache.iterdir())
    assert len(kept) == 4 and not any("tmp" in name for name in kept)  # two sets of .npy + .json
    assert data.build_cache(photos[0], prep_side=32, min_side=16, cache_dir=cache, progress=False).reused
    assert not data.build_cache(photos[1], prep_side=32, min_side=16, cache_dir=cache, progress=False).reused
