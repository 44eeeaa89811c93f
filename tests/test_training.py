"""Training: photo cache, resume after stop/SIGTERM/SIGKILL, texture runs, DDP, CLI errors.

Everything is tiny (32 px crops of ~56 px generated photos, a width-0.25 net with one residual block, a random
VGG), so the whole file runs in well under two minutes on two CPU cores.

CPU-only: every run here is on `--device cpu`, also on a GPU host. The bitwise-resume checks hold only on a CPU
(cudnn.benchmark and atomic-add backwards make CUDA runs close, not equal), and the DDP test is meant for two
gloo ranks on one machine (with CUDA, rank 1 would need a second GPU and NCCL). `bench/gpu_check.py` covers CUDA.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training import data as D
from training.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
       "PYTHONPATH": str(ROOT)}
N_PHOTOS = 20


def _photo(rng, h, w) -> Image.Image:
    """A smooth random colour field (upsampled noise): photo-like enough for the plumbing."""
    small = (rng.random((h // 8 + 2, w // 8 + 2, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BICUBIC)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions gain nothing from threads, and on a busy 2-core machine spinning OpenMP threads make
    them ~5× slower; subprocesses get OMP_NUM_THREADS=1 for the same reason."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    photos = root / "photos" / "sub"  # a nested folder: the search is recursive
    photos.mkdir(parents=True)
    for i in range(N_PHOTOS):
        h, w = (int(v) for v in rng.integers(44, 64, 2))
        _photo(rng, h, w).save(photos / f"p{i:02d}.{('jpg', 'png', 'webp', 'jpeg')[i % 4]}")
    style = root / "style.png"
    _photo(rng, 40, 56).save(style)
    return {"root": root, "photos": root / "photos", "style": style, "cache": root / "cache"}


def tiny(assets, out, *extra, steps=8, batch=2):
    """A tiny run's arguments, always on the CPU (see the module's docstring)."""
    return ["--device", "cpu", "--style", str(assets["style"]), "--data", str(assets["photos"]), "--out", str(out),
            "--loss-weights", "random", "--crop", "32", "--width", "0.25", "--residual-blocks", "1",
            "--batch-size", str(batch), "--image-steps", str(steps * batch), "--log-every", "1",
            "--checkpoint-every", "2", "--sample-every", "4", "--cache-dir", str(assets["cache"]),
            "--no-progress", *map(str, extra)]


def ckpt(run) -> dict:
    return torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def spawn(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "training", *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def wait_for_checkpoint(run: Path, proc, timeout=60):
    end = time.time() + timeout
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "no checkpoint appeared"
        time.sleep(0.01)


# ------------------------------------------------------------------------------------------------------- data
def test_corrupt_and_tiny_images_are_skipped_and_counted(tmp_path, assets):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        _photo(rng, 50, 60).save(folder / f"ok{i}.jpg")
    good = (folder / "ok0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "notes.jpg").write_text("not an image at all")
    Image.new("RGB", (4, 4)).save(folder / "tiny.png")
    (folder / "readme.txt").write_text("ignored: not an image extension")

    cache = D.build_cache(folder, prep_side=36, min_side=16, cache_dir=tmp_path / "c", progress=False)
    assert cache.count == 4 and cache.array.shape == (4, 36, 36, 3)
    assert sorted(Path(p).name for p in cache.skipped) == ["notes.jpg", "tiny.png", "truncated.jpg"]

    listing = tmp_path / "list.txt"  # the text-file form: paths relative to the file, missing ones skipped
    listing.write_text("mixed/ok1.jpg\nmixed/ok2.jpg\nmixed/gone.jpg\n")
    listed = D.build_cache(listing, prep_side=36, min_side=16, cache_dir=tmp_path / "c", progress=False)
    assert listed.count == 2 and [Path(p).name for p in listed.skipped] == ["gone.jpg"]


def test_cache_is_reused_without_decoding(tmp_path, assets, monkeypatch):
    first = D.build_cache(assets["photos"], prep_side=36, min_side=16, cache_dir=tmp_path, progress=False)
    assert not first.reused and first.count == N_PHOTOS

    def no_decoding(*args):
        raise AssertionError("decoded a photo although the cache was valid")

    monkeypatch.setattr(D, "_decode", no_decoding)
    again = D.build_cache(assets["photos"], prep_side=36, min_side=16, cache_dir=tmp_path, progress=False)
    assert again.reused and again.path == first.path and np.array_equal(again.array, first.array)


def test_sampler_is_a_function_of_step_and_ranks_split_the_global_batch(assets):
    cache = D.build_cache(assets["photos"], prep_side=36, min_side=16, cache_dir=assets["cache"], progress=False)
    data = torch.from_numpy(cache.array)
    pool = np.arange(3, N_PHOTOS)
    one = D.BatchSampler(data, pool, batch_size=4, crop=32, seed=7)
    ranks = [D.BatchSampler(data, pool, batch_size=2, crop=32, seed=7, rank=r, world_size=2) for r in range(2)]
    for step in (0, 5, 9):  # step 4 straddles the first epoch boundary (17 photos, 4 per step)
        assert torch.equal(torch.cat([r.batch(step) for r in ranks]), one.batch(step))
        a, b = (set(r.indices(step).tolist()) for r in ranks)
        assert not a & b and set(pool.tolist()) >= a | b
    assert torch.equal(one.batch(3), D.BatchSampler(data, pool, batch_size=4, crop=32, seed=7).batch(3))
    assert not torch.equal(one.batch(3), one.batch(4))
    seen = torch.cat([one.indices(s) for s in range(4)]).tolist()  # one epoch visits photos without repeats
    assert len(set(seen)) == len(seen)


# ------------------------------------------------------------------------------------------- train + resume
def test_run_writes_artifacts_and_stop_then_resume_is_bitwise_identical(tmp_path, assets, capsys):
    full, split = tmp_path / "full", tmp_path / "split"
    assert main(tiny(assets, full, steps=6)) == 0
    for name in ("checkpoint.pt", "history.csv", "recipe.json", "metrics.json", "samples/step_0000006.jpg",
                 "export/model.safetensors", "export/config.json"):
        assert (full / name).is_file(), name
    assert len((full / "history.csv").read_text().splitlines()) == 1 + 6

    assert main(tiny(assets, split, "--stop-at", 3, steps=6)) == 0
    assert ckpt(split)["step"] == 3 and not (split / "export").exists()
    assert "--resume" in capsys.readouterr().err
    assert main(tiny(assets, split, "--resume", steps=6)) == 0
    a, b = ckpt(full), ckpt(split)
    assert b["step"] == 6 and same_weights(a["model"], b["model"])
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg_sq"], b["optimizer"]["state"][0]["exp_avg_sq"])
    assert (full / "history.csv").read_text().count("\n") == (split / "history.csv").read_text().count("\n")

    import json
    metrics = json.loads((full / "metrics.json").read_text())
    assert {"heldout_content", "heldout_style", "heldout_total", "images_per_s", "device"} <= metrics.keys()
    recipe = json.loads((full / "recipe.json").read_text())
    assert recipe["images"] == N_PHOTOS and recipe["skipped"] == 0 and recipe["data_folder"] == "photos"


def test_resume_restores_only_the_cuda_rng_states_this_machine_has(monkeypatch):
    """CPU-only, with CUDA faked: a checkpoint written on an 8-GPU machine (one CUDA RNG state per GPU, as older
    checkpoints hold) resumes on one GPU, restoring its own device's state and skipping the others'."""
    from training import checkpoint
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]
    cpu_state = torch.get_rng_state()
    checkpoint.restore_rng({"torch": cpu_state, "cuda": states}, torch.device("cuda", 0))
    assert len(restored) == 1 and torch.equal(restored[0][0], states[0])
    assert torch.equal(torch.get_rng_state(), cpu_state)
    restored.clear()
    checkpoint.restore_rng({"torch": cpu_state, "cuda": states[:2]}, torch.device("cuda", 3))  # no state saved for it
    checkpoint.restore_rng({"torch": cpu_state, "cuda": states}, torch.device("cpu"))  # a CUDA run resumed on a CPU
    assert restored == []
    checkpoint.restore_rng({"torch": cpu_state, "cuda": states[5]}, torch.device("cuda", 0))  # what is saved now
    assert len(restored) == 1 and torch.equal(restored[0][0], states[5])


def test_a_checkpoint_from_a_many_gpu_machine_resumes_here(tmp_path, assets):
    """CPU-only: the CUDA RNG states of 8 GPUs in a checkpoint do not stop a resume on this machine."""
    run = tmp_path / "run"
    assert main(tiny(assets, run, "--stop-at", 2, steps=4)) == 0
    state = ckpt(run)
    state["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 8
    torch.save(state, run / "checkpoint.pt")
    assert main(tiny(assets, run, "--resume", steps=4)) == 0 and ckpt(run)["step"] == 4


def test_fp16_trains_with_a_grad_scaler_whose_state_resumes(tmp_path, assets):
    """CPU-only: fp16 autocast (a T4's precision) with its GradScaler; the scaler's state is checkpointed, so a
    stopped and resumed run still reaches the same weights."""
    full, split = tmp_path / "full", tmp_path / "split"
    assert main(tiny(assets, full, "--precision", "fp16", steps=4)) == 0
    assert main(tiny(assets, split, "--precision", "fp16", "--stop-at", 2, steps=4)) == 0
    assert ckpt(split)["scaler"]["scale"] > 1  # the loss is scaled up, so small gradients survive fp16
    assert main(tiny(assets, split, "--precision", "fp16", "--resume", steps=4)) == 0
    assert same_weights(ckpt(full)["model"], ckpt(split)["model"])
    assert ckpt(full)["scaler"] == ckpt(split)["scaler"]
    assert ckpt(tmp_path / "full")["config"]["precision"] == "fp16"
    # another machine's precision (a T4's run continued on an A100, or on a CPU) continues it
    other = tmp_path / "other"
    assert main(tiny(assets, other, "--precision", "fp16", "--stop-at", 2, steps=4)) == 0
    assert main(tiny(assets, other, "--precision", "fp32", "--resume", steps=4)) == 0 and ckpt(other)["step"] == 4


def test_cosine_schedule_ends_near_zero_and_resumes_exactly(tmp_path, assets):
    import math
    full, split = tmp_path / "full", tmp_path / "split"
    cosine = ("--lr-schedule", "cosine", "--lr", 0.01)
    assert main(tiny(assets, full, *cosine, steps=6)) == 0
    assert main(tiny(assets, split, *cosine, "--stop-at", 3, steps=6)) == 0
    assert main(tiny(assets, split, *cosine, "--resume", steps=6)) == 0
    a, b = ckpt(full), ckpt(split)
    assert same_weights(a["model"], b["model"])
    last_lr = a["optimizer"]["param_groups"][0]["lr"]  # that of the 6th step, from 0.01 down the half cosine
    assert last_lr == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path, assets):
    run = tmp_path / "run"
    proc = spawn(tiny(assets, run, "--checkpoint-every", 1000, steps=400))
    while not (run / "history.csv").is_file() or len((run / "history.csv").read_text().splitlines()) < 3:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and "--resume" in err and "Traceback" not in err
    assert 2 <= ckpt(run)["step"] < 400  # written on the signal, not by --checkpoint-every
    assert not list(run.glob(".checkpoint.pt.tmp*"))


def test_sigkilled_run_resumes_from_its_last_checkpoint_and_finishes(tmp_path, assets):
    run = tmp_path / "run"
    args = tiny(assets, run, "--checkpoint-every", 1, steps=24)
    proc = spawn(args)
    wait_for_checkpoint(run, proc)
    proc.kill()  # SIGKILL: no handler runs, the last atomic checkpoint is all there is
    proc.communicate()
    killed = ckpt(run)["step"]
    assert 0 < killed < 24
    assert main(args + ["--resume"]) == 0
    assert ckpt(run)["step"] == 24 and (run / "export" / "model.safetensors").is_file()
    steps = [int(line.split(",")[0]) for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 25))  # rows logged after the checkpoint were dropped, then re-logged


def test_texture_only_and_texture_net(tmp_path, assets):
    assert main(tiny(assets, tmp_path / "tex", "--texture-only", steps=2)) == 0
    assert main(tiny(assets, tmp_path / "stylise", "--arch", "texture", "--norm", "batch", steps=2)) == 0
    from fastnst.models import TextureNet
    model = TextureNet.from_pretrained(str(tmp_path / "tex" / "export"))
    assert model.texture_only
    assert "content" not in (tmp_path / "tex" / "metrics.json").read_text()


def test_ddp_two_processes_split_the_batch(tmp_path, assets):
    """CPU-only (gloo): 2 ranks × batch 2 see the two halves of the global batch a single process of batch 4 sees: the first
    logged loss (initial weights) must match, and only rank 0 writes."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    fp32 = ("--precision", "fp32")  # auto is timed per process on a CPU: this one and the ranks could differ
    assert main(tiny(assets, single, *fp32, steps=2, batch=4)) == 0
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "training",
           *tiny(assets, ddp, *fp32, steps=2, batch=2)]
    cmd[cmd.index("--image-steps") + 1] = "8"  # the same budget in images: 2 steps of 2 × 2
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import csv
    rows = {name: list(csv.DictReader((p / "history.csv").open())) for name, p in (("1", single), ("2", ddp))}
    assert len(rows["2"]) == 2 and rows["2"][-1]["images"] == "8"
    assert float(rows["2"][0]["total"]) == pytest.approx(float(rows["1"][0]["total"]), rel=1e-4)
    assert ckpt(ddp)["step"] == 2 and (ddp / "export" / "model.safetensors").is_file()
    assert proc.stderr.count("done: ") == 1  # rank 1 neither logs nor writes
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())


def test_loss_weights_default_to_the_loss_networks_scale(tmp_path, assets, shared_data):
    """Unset, the weights follow the loss network (pytorch/examples' 1e5/1e10 for torchvision-scale VGG, Johnson's
    Caffe-scale balance for the shared files); given, they are kept; the recipe records what was used."""
    import json

    from fastnst.losses import CAFFE_WEIGHTS, CONTENT_WEIGHT, STYLE_WEIGHT
    vgg16 = shared_data / "weights" / "vgg16_hed_bsds500_features_to_relu4_3_fp16.safetensors"
    runs = {"random": [], "caffe": ["--loss-weights", vgg16], "given": ["--loss-weights", vgg16,
                                                                         "--style-weight", 3]}
    for name, extra in runs.items():
        args = tiny(assets, tmp_path / name, steps=1)
        if extra:
            i = args.index("--loss-weights")
            del args[i:i + 2]
        assert main(args + list(map(str, extra))) == 0
    used = {name: json.loads((tmp_path / name / "recipe.json").read_text()) for name in runs}
    assert (used["random"]["content_weight"], used["random"]["style_weight"]) == (CONTENT_WEIGHT, STYLE_WEIGHT)
    assert (used["caffe"]["content_weight"], used["caffe"]["style_weight"]) == CAFFE_WEIGHTS["vgg16"]
    assert (used["given"]["content_weight"], used["given"]["style_weight"]) == (CAFFE_WEIGHTS["vgg16"][0], 3.0)
    # resuming without the options again resolves to the same recipe (no "different recipe" error)
    assert main(tiny(assets, tmp_path / "random", "--resume", steps=1)) == 0


# ------------------------------------------------------------------------------- a family of styles, --from
@pytest.fixture(scope="module")
def paintings(assets):
    """Three more generated paintings (a family of two, and a new one)."""
    rng = np.random.default_rng(1)
    paths = {}
    for name in ("wave", "night", "newcomer"):
        paths[name] = assets["root"] / f"{name}.png"
        _photo(rng, 48, 40).save(paths[name])
    return paths


def family_args(assets, paintings, out, *extra, steps=4):
    args = tiny(assets, out, *extra, steps=steps)
    i = args.index("--style")
    args[i:i + 2] = ["--style", str(paintings["wave"]), "--style", f"{paintings['night']}:weight=2,size=32"]
    return args


def test_family_exports_one_standalone_network_per_painting_that_paints_what_the_family_does(tmp_path, assets,
                                                                                               paintings):
    import json

    from fastnst.models import build_model, load_network
    run = tmp_path / "family"
    assert main(family_args(assets, paintings, run)) == 0
    state = ckpt(run)
    family = build_model({"arch": "transformer", "width": 0.25, "residual_blocks": 1,
                          "styles": ["wave", "night"]})
    family.load_state_dict(state["model"])
    family.eval()
    x = torch.rand(2, 3, 36, 44)
    for index, slug in enumerate(("wave", "night")):
        single = load_network(run / "export" / slug)  # config.json + model.safetensors, as any style
        assert json.loads((run / "export" / slug / "config.json").read_text()).keys() == {
            "arch", "width", "residual_blocks", "norm"}
        with torch.no_grad():
            assert torch.allclose(single(x), family(x, index), atol=1e-6)
        assert (run / "export-fp16" / slug / "model.safetensors").is_file()
    recipes = {slug: json.loads((run / "export" / slug / "fastnst.json").read_text())["recipe"]
               for slug in ("wave", "night")}
    assert recipes["night"]["style_weight"] == 2.0 and recipes["night"]["style_size"] == 32
    assert recipes["wave"]["style_weight"] == 1e10 and recipes["wave"]["style_image"] == "wave.png"
    assert load_network(run / "family").styles == ["wave", "night"]  # kept for --from and for continuing
    # every batch mixes the paintings: the loss of a 2-image batch covers both
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_style"]) == {"wave", "night"}


def test_from_family_fits_the_new_scale_and_shift_first_then_all_weights(tmp_path, assets, paintings):
    from fastnst.models import load_network
    from fastnst.models.norms import ConditionalInstanceNorm2d
    family_run = tmp_path / "family"
    assert main(family_args(assets, paintings, family_run, steps=2)) == 0
    family = load_network(family_run / "family")
    runs = {}
    for name, norm_only in (("norms", 8), ("all", 2)):  # 4 steps of 2 images: all of them, or just the first
        runs[name] = tmp_path / name
        args = tiny(assets, runs[name], "--from", family_run, "--norm-only-images", norm_only, steps=4)
        i = args.index("--style")
        args[i + 1] = str(paintings["newcomer"])
        for option in ("--width", "--residual-blocks"):  # taken from --from's network
            j = args.index(option)
            del args[j:j + 2]
        assert main(list(map(str, args))) == 0
    convs = [k for k, v in family.state_dict().items() if v.ndim == 4]
    norms = {n: m for n, m in family.named_modules() if isinstance(m, ConditionalInstanceNorm2d)}
    norms_only = load_network(runs["norms"] / "export").state_dict()
    everything = load_network(runs["all"] / "export").state_dict()
    assert all(torch.equal(norms_only[k], family.state_dict()[k].float()) for k in convs)
    assert not all(torch.equal(everything[k], family.state_dict()[k].float()) for k in convs)
    # the new painting started from the family's mean scale/shift, and learnt its own
    name = next(iter(norms))
    assert not torch.allclose(norms_only[f"{name}.weight"], norms[name].weight.float().mean(0))


def test_widening_keeps_what_the_network_paints_and_a_wider_run_starts_from_it(tmp_path, assets, paintings):
    from fastnst.models import TransformerNet, load_network
    from training.start import widen
    torch.manual_seed(0)
    narrow = TransformerNet(width=0.25, residual_blocks=2, styles=["a", "b"]).eval()
    with torch.no_grad():  # a trained network's norms are not the identity: give every layer its own scale/shift
        for p in narrow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.rand(2, 3, 40, 36)
    exact, noisy = widen(narrow, 0.5, noise=0), widen(narrow, 0.5)
    assert exact.width == 0.5 and exact.encoder[0][1].out_channels == 2 * narrow.encoder[0][1].out_channels
    with torch.no_grad():
        for style in (0, 1):
            assert torch.allclose(exact(x, style=style), narrow(x, style=style), atol=1e-5)
            difference = (noisy(x, style=style) - narrow(x, style=style)).abs()
            assert 0 < difference.mean() < 0.02  # the copies differ a little (a few levels), so they can learn apart
    family_run = tmp_path / "family"
    assert main(family_args(assets, paintings, family_run, steps=1)) == 0
    args = family_args(assets, paintings, tmp_path / "wide", steps=1)
    args[args.index("--width") + 1] = "0.5"
    assert main([*args, "--from", str(family_run), "--norm-only-images", "0"]) == 0
    assert load_network(tmp_path / "wide" / "family").width == 0.5


def test_family_and_from_mistakes_are_one_line_with_status_2(tmp_path, assets, paintings, capsys):
    assert main(family_args(assets, paintings, tmp_path / "fam", steps=1)) == 0
    capsys.readouterr()
    again = tiny(assets, tmp_path / "fam", "--resume")  # the same run with other paintings
    same_name = family_args(assets, paintings, tmp_path / "dup")
    same_name[same_name.index("--style") + 1] = str(paintings["night"])  # night.png twice
    unreadable = tmp_path / "painting.jpg"
    unreadable.write_bytes(b"not an image")
    narrower = tiny(assets, tmp_path / "narrow", "--from", tmp_path / "fam", "--width", 0.125)
    for argv in (again, same_name, tiny(assets, tmp_path / "x", "--from", tmp_path / "nothing-here"), narrower,
                 tiny(assets, tmp_path / "bad", "--style", unreadable),
                 tiny(assets, tmp_path / "opt", "--style", f"{paintings['wave']}:weight=heavy")):
        assert main(list(map(str, argv))) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


# ------------------------------------------------------------------------------------------------------- CLI
def test_cli_errors_are_one_line_with_status_2(tmp_path, assets, capsys):
    assert main(tiny(assets, tmp_path / "r", "--stop-at", 1)) == 0
    capsys.readouterr()
    for argv in (tiny(assets, tmp_path / "r"),  # an existing run without --resume
                 tiny(assets, tmp_path / "r", "--resume", "--lr", "0.5"),  # resuming with another recipe
                 ["--style", str(tmp_path / "missing.jpg"), "--data", str(assets["photos"]), "--out", "x"],
                 tiny(assets, tmp_path / "w", "--loss-weights", tmp_path / "none.safetensors"),
                 tiny(assets, tmp_path / "s", "--sample-every", 0),  # was a ZeroDivisionError at the first step
                 ["push", str(tmp_path / "nowhere"), "--repo", "me/style"]):
        assert main(list(map(str, argv))) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_help_documents_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for fragment in ("--image-steps", "160000", "--loss-weights", "--push-to-hub", "--resume", "python -m training push"):
        assert fragment in text


def test_stability_loss_trains_is_recorded_and_resumes_exactly(tmp_path, assets):
    import json

    from training.stability import move, moved_pair, stability_loss
    x = torch.rand(2, 3, 24, 30)
    shift = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    assert torch.allclose(move(x, shift)[0, :, 4:-4, 4:-4], torch.roll(x[0], (-1, 2), (1, 2))[:, 4:-4, 4:-4],
                          atol=1e-5)  # out(p) = x(p - shift): integer shifts move exactly
    moved, motion = moved_pair(x, torch.Generator().manual_seed(0))
    assert float(stability_loss(x, moved, motion)) < 1e-3  # painting with the identity is perfectly stable
    blocky = lambda t: torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(t, 4), scale_factor=4)  # noqa
    assert float(stability_loss(blocky(x), blocky(moved), motion)) > 10 * float(stability_loss(x, moved, motion))

    full, split = tmp_path / "full", tmp_path / "split"
    stable = ("--stability-weight", 1e3)
    assert main(tiny(assets, full, *stable, steps=4)) == 0
    assert json.loads((full / "recipe.json").read_text())["stability_weight"] == 1e3
    assert main(tiny(assets, split, *stable, "--stop-at", 2, steps=4)) == 0
    assert main(tiny(assets, split, *stable, "--resume", steps=4)) == 0
    assert same_weights(ckpt(full)["model"], ckpt(split)["model"])
