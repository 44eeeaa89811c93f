"""Turn a finished training run into a Hugging Face Hub repo folder, and push it.

    export_run(model, run_dir, style_image_path=..., recipe=..., metrics=...)   ->  run_dir/export-fp16
    push_run(run_dir, "user/my-style")                                          ->  commit URL

`export_run` writes two complete repo folders, each loadable with `TransformerNet.from_pretrained(folder)` or
`fastnst.load_style(folder)`:

    run_dir/export/        fp32 weights (for fine-tuning / exact reproduction)
    run_dir/export-fp16/   fp16 weights (what the gallery and the Hub ship: half the download, same pictures)
        model.safetensors  config.json (with "arch")  README.md (model card)  style.jpg
        samples/sample_XX.jpg  fastnst.json (recipe + metrics, machine-readable)  style.json (title etc.)

`push_run` uploads export-fp16 plus the fp32 weights as `model_fp32.safetensors` in ONE commit (so a failed push
never leaves a half-updated repo, and loaders, which read model.safetensors only, get fp16). The model card is
rendered once, at export, by the network's own `save_pretrained(model_card_kwargs=...)` (PyTorchModelHubMixin);
before a repo exists its usage snippets name PLACEHOLDER_REPO, which the push replaces with the real repo id, so
pushing never rebuilds a network or renders the template again. The local files are only ever read.

Secrets: the token goes to huggingface_hub and nowhere else. Recipe keys that look like credentials are dropped
before anything is written, and token values are scrubbed from error messages. Absolute paths in the recipe are
reduced to their last two components: a public repo should not carry the trainer's home directory.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import shlex
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from huggingface_hub import HfApi, get_token
from huggingface_hub.utils import validate_repo_id
from PIL import Image

from fastnst.errors import FastNSTError, HubError, InvalidImageError
from fastnst.formats import (
    ARTIST,
    CARD_FILE,
    DATA_FOLDER,
    DEVICE,
    FP32_REPO_FILE,
    HELDOUT_PREFIX,
    LICENSE,
    PAINTING_FILE,
    SPEED,
    STYLE_IMAGE,
    STYLE_LICENSE,
    TITLE,
    WALL_TIME,
    WEIGHTS_FILE,
    read_config,
    readable_title,
    write_info,
    write_metadata,
)
from fastnst.imageio import load_image, resize_max_side, tensor_to_image
from fastnst.hub import PLACEHOLDER_REPO

from .run_folder import RunFolder

# Defaults, visible in one place.
JPEG_QUALITY = 95
STYLE_MAX_SIDE = 1024
SAMPLE_MAX_SIDE = 1024
MAX_SAMPLES = 12
DEFAULT_LICENSE = "mit"  # licence of the *weights*; the artwork's own licence is stated in the card text
_TOKEN_LIKE = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")  # the shape of a real Hub access token
_SECRET_KEY = re.compile(r"token|secret|passw|api[_-]?key|^auth$|authori[sz]ation|credential", re.IGNORECASE)
_SUMMARY_KEYS = (WALL_TIME, SPEED, DEVICE)  # metrics the card states in words rather than in the table


# ------------------------------------------------------------------------------------------------------ export


def export_run(model, run_dir, *, style_image_path, recipe: dict, metrics: dict,
               samples: list[Image.Image] | None = None, subfolder: str = "") -> Path:
    """Write run_dir/export (fp32) and run_dir/export-fp16 (each /subfolder, for a family's paintings); return
    the fp16 folder (what gets pushed)."""
    run = RunFolder(run_dir)
    datasets = _datasets(recipe or {})  # before _clean shortens paths (/data/coco/train2014 -> coco/train2014)
    recipe, metrics = _clean(dict(recipe or {})), _clean(dict(metrics or {}))
    style = _read_image(style_image_path, "style image")
    samples = _collect_samples(run, samples)
    net = _unwrap(model)
    fp32 = copy.deepcopy(net).to(device="cpu", dtype=torch.float32).eval()
    # InstanceNorm's affine scale/shift survive fp16 fine; loading casts back to fp32 (load_state_dict copies).
    fp16 = copy.deepcopy(fp32).half()
    for fp16_folder, net_copy, dtype in ((False, fp32, "float32"), (True, fp16, "float16")):
        _write_folder(run.export(subfolder, fp16=fp16_folder), net_copy, dtype=dtype, style=style, samples=samples,
                      recipe=recipe, metrics=metrics, datasets=datasets, run_name=run.root.resolve().name)
    return run.export(subfolder)


def export_family(family, run_dir, *, styles: list[dict], recipe: dict, metrics: dict) -> Path:
    """A family run's export: each painting's standalone network as export_run(subfolder=slug) (`styles`: one
    dict per painting with slug, painting, recipe, metrics, samples), and the family itself in fp16 under
    run_dir/family (config.json + model.safetensors + fastnst.json), which `--from` continues or builds on."""
    run = RunFolder(run_dir)
    for k, style in enumerate(styles):
        export_run(family.style_network(k), run_dir, style_image_path=style["painting"], recipe=style["recipe"],
                   metrics=style["metrics"], samples=style["samples"], subfolder=style["slug"])
    with _building(run.family) as tmp:
        copy.deepcopy(_unwrap(family)).to(device="cpu", dtype=torch.float16).save_pretrained(tmp)
        write_info(tmp, {"format": 1, "name": f"{len(styles)}-painting family", "arch": family.arch,
                         "dtype": "float16", "recipe": _clean(dict(recipe)), "metrics": _clean(dict(metrics)),
                         "config": read_config(tmp)})
    return run.export()


def export_preview(network, run_dir) -> Path:
    """The network as it is now, fp32, in run_dir/preview (config.json + model.safetensors): what a live preview
    loads while training goes on. Swapped in whole, so a reader never sees half a file."""
    preview = RunFolder(run_dir).preview
    with _building(preview) as tmp:
        copy.deepcopy(_unwrap(network)).to(device="cpu", dtype=torch.float32).save_pretrained(tmp)
    return preview


@contextmanager
def _building(dest: Path):
    """A fresh folder next to `dest` to build in, swapped in for `dest` only once the block has finished: a crash
    never leaves half an export behind."""
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def _write_folder(dest: Path, net, *, dtype, style, samples, recipe, metrics, datasets, run_name) -> None:
    with _building(dest) as tmp:
        _fill_folder(tmp, net, dtype=dtype, style=style, samples=samples, recipe=recipe, metrics=metrics,
                     datasets=datasets, run_name=run_name)


def _fill_folder(tmp: Path, net, *, dtype, style, samples, recipe, metrics, datasets, run_name) -> None:
    _save_jpeg(style, tmp / PAINTING_FILE, STYLE_MAX_SIDE)
    sample_files = []
    for i, img in enumerate(samples):
        sample_files.append(f"samples/sample_{i:02d}.jpg")
        _save_jpeg(img, tmp / sample_files[-1], SAMPLE_MAX_SIDE)
    info = {
        "format": 1,
        "name": recipe.get(TITLE) or _title_from_file(recipe, run_name),
        "artist": recipe.get(ARTIST) or "",
        "arch": net.arch,
        "dtype": dtype,
        "style_image": PAINTING_FILE,
        "samples": sample_files,
        "license": str(recipe.get(LICENSE) or DEFAULT_LICENSE),
        "style_license": recipe.get(STYLE_LICENSE),
        "datasets": datasets,
        "recipe": recipe,
        "metrics": metrics,
    }
    # weights, config.json and README.md: the one rendering of the card (push only fills in the repo id)
    net.save_pretrained(tmp, model_card_kwargs=card_values(info))
    write_info(tmp, {**info, "config": read_config(tmp)})
    # style.json: what `fastnst.load_style(folder)` and the gallery show (same keys as styles/<slug>/style.json).
    write_metadata(tmp, {"title": info["name"], "artist": info["artist"], "license": info["license"],
                         "style_license": info["style_license"], "tile": PAINTING_FILE})


def _title_from_file(recipe: dict, fallback: str) -> str:
    """A readable title from the painting's file name ("starry_night.jpg" → "Starry Night"), else the run's."""
    return readable_title(str(recipe[STYLE_IMAGE])) if recipe.get(STYLE_IMAGE) else fallback


def _unwrap(model):
    """The bare network under torch.compile (`_orig_mod`) or DataParallel/DDP (`module`) wrappers."""
    for attr in ("_orig_mod", "module"):
        while hasattr(model, attr) and isinstance(getattr(model, attr), torch.nn.Module):
            model = getattr(model, attr)
    if not hasattr(model, "save_pretrained"):
        raise FastNSTError(f"Cannot export a {type(model).__name__}: it is not a fastnst network.")
    return model


def _read_image(source, what: str) -> Image.Image:
    try:  # fastnst's one safe door for pictures (EXIF, modes, size budget)
        return load_image(source)
    except InvalidImageError as err:
        raise InvalidImageError(f"The {what} {source} could not be used: {err}") from err


def _save_jpeg(image, path: Path, max_side: int) -> None:
    if isinstance(image, torch.Tensor):
        image = tensor_to_image(image)
    image = resize_max_side(image if image.mode == "RGB" else image.convert("RGB"), max_side)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=JPEG_QUALITY)


def _collect_samples(run: RunFolder, samples) -> list:
    """The given samples, else the trainer's last sample grid in RUN/samples/ (a 'final*' file if any)."""
    if samples:
        return list(samples)[:MAX_SAMPLES]
    folder = run.samples
    found = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}) \
        if folder.is_dir() else []
    if not found:
        return []
    final = [p for p in found if p.stem.lower().startswith("final")]
    return [_read_image((final or found)[-1], "sample grid")]


def _clean(data, secrets=None):
    """JSON-ready copy: credential-like keys dropped, token values and absolute paths neutralised."""
    if secrets is None:
        secrets = {s for s in (os.environ.get("HF_TOKEN"), _stored_token()) if s}
    if isinstance(data, dict):
        return {str(k): _clean(v, secrets) for k, v in data.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(data, (list, tuple)):
        return [_clean(v, secrets) for v in data]
    if isinstance(data, torch.Tensor) and data.numel() == 1:
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)  # JSON has no NaN/inf; a diverged loss should still be visible
    if isinstance(data, Path) or (isinstance(data, str) and os.path.isabs(data) and len(data) > 1):
        return "/".join(Path(data).parts[-2:]).lstrip("/") or str(data)  # e.g. coco2017/train
    if isinstance(data, str) and (data in secrets or _TOKEN_LIKE.search(data)):
        return "***"
    if isinstance(data, (str, int, float, bool)) or data is None:
        return data
    return str(data)


def _stored_token() -> str | None:
    try:
        return get_token()
    except Exception:
        return None


# ------------------------------------------------------------------------------------------------- model card


def _datasets(recipe: dict) -> list[str] | None:
    """Hub dataset ids for the card metadata: only COCO is recognised; other folders are named in the text."""
    dataset = recipe.get(DATA_FOLDER)
    return ["coco"] if dataset and "coco" in str(dataset).lower() else None


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        value = json.dumps(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def card_values(info: dict, repo: str | None = None) -> dict:
    """What the model card template (fastnst.models.base.CARD_TEMPLATE) is filled with, from a fastnst.json dict."""
    recipe, metrics = info.get("recipe") or {}, info.get("metrics") or {}
    rows = [(k, _fmt(v)) for k, v in _flatten(metrics)]
    losses = [(k, v) for k, v in rows if k.startswith(HELDOUT_PREFIX) or "loss" in k]
    seconds, speed, device = (metrics.get(k) for k in _SUMMARY_KEYS)
    dataset = recipe.get(DATA_FOLDER)
    summary = [
        f"Training time: {_fmt(seconds)} s" if seconds is not None else "Training time: not recorded",
        f"Throughput: {_fmt(speed)} images/s" if speed is not None else "Throughput: not recorded",
        f"Device: {_fmt(device or recipe.get(DEVICE) or 'not recorded')}",
        f"Content images: {_fmt(dataset)}" if dataset else "Content images: not recorded",
    ]
    return dict(
        repo=repo, title=info.get("name"), artist=info.get("artist"), dtype=info.get("dtype"),
        painting=info.get("style_image"), samples=info.get("samples") or [], style_license=info.get("style_license"),
        weights_license=info.get("license") or DEFAULT_LICENSE, license=info.get("license") or DEFAULT_LICENSE,
        datasets=info.get("datasets"), recipe=[(k, _fmt(v)) for k, v in _flatten(recipe)], losses=losses,
        summary=summary, metrics=[(k, v) for k, v in rows if (k, v) not in losses and k not in _SUMMARY_KEYS])


# ------------------------------------------------------------------------------------------------------ push


def retry_command(run_dir, repo_id, *, private=False, revision=None) -> str:
    """The shell command that pushes this run again (never contains a token)."""
    parts = ["python", "-m", "training", "push", str(run_dir), "--repo", str(repo_id)]
    if private:
        parts.append("--private")
    if revision:
        parts += ["--revision", str(revision)]
    return " ".join(shlex.quote(p) for p in parts)


def push_run(run_dir, repo_id, *, private=False, revision=None, token=None, subfolder: str = "") -> str:
    """Upload run_dir/export-fp16 (+ fp32 weights as model_fp32.safetensors) to `repo_id` in one commit; a
    family's painting `subfolder` goes to `repo_id-subfolder` (`repo_for`).

    Returns the commit URL. Any failure raises HubError naming the retry command; local files are only read.
    """
    run_dir = Path(run_dir)
    retry = retry_command(run_dir, repo_id, private=private, revision=revision)
    repo_id, folder = repo_for(repo_id, subfolder), RunFolder(run_dir).export(subfolder)
    if not (folder / WEIGHTS_FILE).is_file():
        raise HubError(f"There is no exported model in {folder} to push; export the run first, then retry with "
                       f"`{retry}`.")
    try:
        validate_repo_id(repo_id)
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="fastnst-push-") as staging:
            _stage(run_dir, Path(staging), f"{repo_id}@{revision}" if revision and revision != "main" else repo_id,
                   subfolder)
            info = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision,
                                     commit_message=f"Upload fastnst style from {run_dir.resolve().name}")
    except Exception as err:  # network, auth, invalid id, server errors: all become one sentence
        raise HubError(f"Could not push {run_dir} to the Hugging Face Hub repo {repo_id} ({hub_reason(err, token)}); "
                       f"your local files are untouched, so retry with `{retry}`.") from err
    return str(info.commit_url)


def repo_for(repo_id: str, subfolder: str = "") -> str:
    """Where a run's export goes: `repo_id` itself, or `repo_id-<slug>` for each painting of a family."""
    return f"{repo_id}-{subfolder}" if subfolder else repo_id


def _stage(run_dir: Path, staging: Path, repo_ref: str, subfolder: str = "") -> None:
    """The repo as it will be: the fp16 export (linked, not copied), its card naming the real repo, and the fp32
    weights as FP32_REPO_FILE."""
    run = RunFolder(run_dir)
    export = run.export(subfolder)
    shutil.copytree(export, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
    card = staging / CARD_FILE
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        card.unlink()  # a link to the local card: never write through it
        card.write_text(card_for_repo(text, repo_ref), encoding="utf-8")
    fp32 = run.export(subfolder, fp16=False) / WEIGHTS_FILE
    if fp32.is_file():
        _link_or_copy(fp32, staging / FP32_REPO_FILE)


def card_for_repo(card: str, repo_ref: str) -> str:
    """The exported card with its usage snippets naming `repo_ref` instead of PLACEHOLDER_REPO: the card was
    rendered once at export, and the repo id is the only thing a push knows that the export did not."""
    return card.replace(PLACEHOLDER_REPO, repo_ref)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def hub_reason(err: Exception, token: str | None) -> str:
    """A short, token-free description of why a Hub call failed."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    name = type(err).__name__
    if name == "HFValidationError":
        reason = "that is not a valid repo id; use the form user/name"
    elif name == "OfflineModeIsEnabled":
        reason = "HF_HUB_OFFLINE is set, so the Hub cannot be reached"
    elif status in (401, 403):
        reason = "the Hub refused the token; log in with `hf auth login` or set HF_TOKEN to a token with write access"
    elif status is not None:
        reason = f"the Hub answered HTTP {status}: {str(err).splitlines()[0] if str(err) else name}"
    elif isinstance(err, (ConnectionError, TimeoutError)) or "connect" in name.lower() or "timeout" in name.lower():
        reason = f"the Hub could not be reached: {str(err).splitlines()[0] if str(err) else name}"
    else:
        reason = f"{name}: {str(err).splitlines()[0] if str(err) else 'no details'}"
    for secret in {token, os.environ.get("HF_TOKEN"), _stored_token()} - {None, ""}:
        reason = reason.replace(secret, "***")
    reason = _TOKEN_LIKE.sub("***", reason)
    return reason[:300].rstrip(".")
