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
uploaded with the real repo id filled into its usage snippets; the local files are only ever read.

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
from pathlib import Path

import torch
from PIL import Image

from fastnst.errors import FastNSTError, HubError, InvalidImageError

# Defaults, visible in one place.
EXPORT_DIR, EXPORT_FP16_DIR = "export", "export-fp16"
STYLE_FILE, INFO_FILE, CARD_FILE, META_FILE = "style.jpg", "fastnst.json", "README.md", "style.json"
WEIGHTS_FILE, FP32_REPO_FILE = "model.safetensors", "model_fp32.safetensors"
JPEG_QUALITY = 95
STYLE_MAX_SIDE = 1024
SAMPLE_MAX_SIDE = 1024
MAX_SAMPLES = 12
DEFAULT_LICENSE = "mit"  # licence of the *weights*; the artwork's own licence is stated in the card text
PLACEHOLDER_REPO = "your-username/your-style"  # replaced by the real repo id when pushed
TAGS = ["style-transfer", "fastnst", "image-to-image", "neural-style-transfer"]
PAPERS = [
    "Johnson, Alahi, Fei-Fei. *Perceptual Losses for Real-Time Style Transfer and Super-Resolution.* ECCV 2016. "
    "[arXiv:1603.08155](https://arxiv.org/abs/1603.08155)",
    "Ulyanov, Vedaldi, Lempitsky. *Improved Texture Networks: Maximizing Quality and Diversity in Feed-forward "
    "Stylization and Texture Synthesis.* CVPR 2017. [arXiv:1701.02096](https://arxiv.org/abs/1701.02096) "
    "(instance normalisation; first as [arXiv:1607.08022](https://arxiv.org/abs/1607.08022))",
    "Ulyanov, Lebedev, Vedaldi, Lempitsky. *Texture Networks: Feed-forward Synthesis of Textures and Stylized "
    "Images.* ICML 2016. [arXiv:1603.03417](https://arxiv.org/abs/1603.03417)",
]
_TOKEN_LIKE = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")  # the shape of a real Hub access token
_SECRET_KEY = re.compile(r"token|secret|passw|api[_-]?key|^auth$|authori[sz]ation|credential", re.IGNORECASE)
# The headline numbers, under the names training/trainer.py writes them.
_TIME_KEYS = ("wall_time_s",)
# Loss terms: training/trainer.py reports them as heldout_{content,style,tv,total} on the held-out photos.
_LOSS_KEY = re.compile(r"loss|^(heldout_)?(content|style|tv|total)$", re.IGNORECASE)
_SPEED_KEYS = ("images_per_s",)
_DATA_KEYS = ("data_folder",)


# ------------------------------------------------------------------------------------------------------ export


def export_run(model, run_dir, *, style_image_path, recipe: dict, metrics: dict,
               samples: list[Image.Image] | None = None) -> Path:
    """Write run_dir/export (fp32) and run_dir/export-fp16; return the fp16 folder (what gets pushed)."""
    run_dir = Path(run_dir)
    datasets = _datasets(recipe or {})  # before _clean shortens paths (/data/coco/train2014 -> coco/train2014)
    recipe, metrics = _clean(dict(recipe or {})), _clean(dict(metrics or {}))
    style = _read_image(style_image_path, "style image")
    samples = _collect_samples(run_dir, samples)
    net = _unwrap(model)
    fp32 = copy.deepcopy(net).to(device="cpu", dtype=torch.float32).eval()
    # InstanceNorm's affine scale/shift survive fp16 fine; loading casts back to fp32 (load_state_dict copies).
    fp16 = copy.deepcopy(fp32).half()
    for folder, net_copy, dtype in ((EXPORT_DIR, fp32, "float32"), (EXPORT_FP16_DIR, fp16, "float16")):
        _write_folder(run_dir / folder, net_copy, dtype=dtype, style=style, samples=samples,
                      recipe=recipe, metrics=metrics, datasets=datasets, run_name=run_dir.resolve().name)
    return run_dir / EXPORT_FP16_DIR


def _write_folder(dest: Path, net, *, dtype, style, samples, recipe, metrics, datasets, run_name) -> None:
    """Build the folder next to `dest` and swap it in, so a crash never leaves half an export behind."""
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(tmp)  # model.safetensors + config.json (+ the mixin's generic card, replaced below)
    config = json.loads((tmp / "config.json").read_text())
    _save_jpeg(style, tmp / STYLE_FILE, STYLE_MAX_SIDE)
    sample_files = []
    for i, img in enumerate(samples):
        sample_files.append(f"samples/sample_{i:02d}.jpg")
        _save_jpeg(img, tmp / sample_files[-1], SAMPLE_MAX_SIDE)
    info = {
        "format": 1,
        "name": _style_name(recipe, run_name),
        "arch": config.get("arch"),
        "config": config,
        "dtype": dtype,
        "style_image": STYLE_FILE,
        "samples": sample_files,
        "license": _license(recipe),
        "style_license": recipe.get("style_license"),
        "datasets": datasets,
        "recipe": recipe,
        "metrics": metrics,
    }
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=False, default=str) + "\n")
    # style.json: what `fastnst.load_style(folder)` and the gallery show (same keys as styles/<slug>/style.json).
    meta = {"title": info["name"], "artist": recipe.get("artist", ""), "license": info["license"],
            "style_license": info["style_license"], "tile": STYLE_FILE}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    build_model_card(info, repo_id=recipe.get("repo_id")).save(tmp / CARD_FILE)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def _unwrap(model):
    """The bare network under torch.compile (`_orig_mod`) or DataParallel/DDP (`module`) wrappers."""
    for attr in ("_orig_mod", "module"):
        while hasattr(model, attr) and isinstance(getattr(model, attr), torch.nn.Module):
            model = getattr(model, attr)
    if not hasattr(model, "save_pretrained"):
        raise FastNSTError(f"Cannot export a {type(model).__name__}: it is not a fastnst network.")
    return model


def _read_image(source, what: str) -> Image.Image:
    from fastnst.imageio import load_image  # one safe door for pictures (EXIF, modes, size budget)

    try:
        return load_image(source)
    except InvalidImageError as err:
        raise InvalidImageError(f"The {what} {source} could not be used: {err}") from err


def _save_jpeg(image, path: Path, max_side: int) -> None:
    from fastnst.imageio import resize_max_side, tensor_to_image

    if isinstance(image, torch.Tensor):
        image = tensor_to_image(image)
    image = resize_max_side(image if image.mode == "RGB" else image.convert("RGB"), max_side)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=JPEG_QUALITY)


def _collect_samples(run_dir: Path, samples) -> list:
    """The given samples, else the trainer's last sample grid in run_dir/samples/ (a 'final*' file if any)."""
    if samples:
        return list(samples)[:MAX_SAMPLES]
    folder = run_dir / "samples"
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
        from huggingface_hub import get_token

        return get_token()
    except Exception:
        return None


# ------------------------------------------------------------------------------------------------- model card


def _style_name(recipe: dict, fallback: str) -> str:
    """The painting's file name without extension (the trainer records it as style_image), else the run's name."""
    return Path(recipe["style_image"]).stem if recipe.get("style_image") else fallback


def _license(recipe: dict) -> str:
    return str(recipe.get("license") or DEFAULT_LICENSE)


def _dataset(recipe: dict) -> str | None:
    for key in _DATA_KEYS:
        if recipe.get(key):
            return str(recipe[key])
    return None


def _datasets(recipe: dict) -> list[str] | None:
    """Hub dataset ids for the card metadata: only COCO is recognised; other folders are named in the text."""
    dataset = _dataset(recipe)
    return ["coco"] if dataset and "coco" in dataset.lower() else None


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


def _table(rows, head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    lines += [f"| `{k}` | {_fmt(v)} |" for k, v in rows]
    return "\n".join(lines)


def _first(data: dict, keys) -> object:
    flat = dict(_flatten(data))
    return next((flat[k] for k in keys if flat.get(k) is not None), None)


def build_model_card(info: dict, *, repo_id: str | None = None):
    """A `huggingface_hub.ModelCard` (YAML metadata + Markdown) from a fastnst.json dict."""
    from huggingface_hub import ModelCard, ModelCardData

    repo = repo_id or PLACEHOLDER_REPO
    recipe, metrics = info.get("recipe") or {}, info.get("metrics") or {}
    dataset = _dataset(recipe)
    data = ModelCardData(
        library_name="fastnst", license=info.get("license") or DEFAULT_LICENSE, tags=list(TAGS),
        pipeline_tag="image-to-image", datasets=info.get("datasets"),
        model_name=info.get("name"),
    )
    name = info.get("name") or "fastnst style"
    samples = "\n".join(f"![sample {i}]({s})" for i, s in enumerate(info.get("samples") or [])) \
        or "_No sample outputs were saved for this run._"
    losses = [(k, v) for k, v in _flatten(metrics) if _LOSS_KEY.search(k.rsplit(".", 1)[-1]) or "loss" in k]
    shown = set(_TIME_KEYS) | set(_SPEED_KEYS) | {"device"}  # already in the summary lines
    others = [(k, v) for k, v in _flatten(metrics) if (k, v) not in losses and k not in shown]
    seconds, speed, device = _first(metrics, _TIME_KEYS), _first(metrics, _SPEED_KEYS), _first(metrics, ("device",))
    summary = [
        f"- Training time: {_fmt(seconds)} s" if seconds is not None else "- Training time: not recorded",
        f"- Throughput: {_fmt(speed)} images/s" if speed is not None else "- Throughput: not recorded",
        f"- Device: {_fmt(device or recipe.get('device') or 'not recorded')}",
        f"- Content images: {_fmt(dataset)}" if dataset else "- Content images: not recorded",
    ]
    style_license = info.get("style_license") or recipe.get("style_license")
    body = f"""
# {name} — fastnst style

A real-time neural style transfer network (`{info.get('arch')}`, {info.get('dtype')} weights) trained with
[fastnst](https://github.com/fastnst/fastnst): one forward pass paints any photo in the style below.

## Style image

![style image]({STYLE_FILE})

Style artwork licence: {style_license or "not stated — check the artwork's own licence before reusing it"}.
The network weights are released under `{info.get('license') or DEFAULT_LICENSE}`.

## Samples

{samples}

## How to use

```bash
pip install fastnst
fastnst stylize photo.jpg --style {repo} -o out.jpg
```

```python
from fastnst import load_style, stylize

style = load_style("{repo}")
stylize("photo.jpg", style).save("out.jpg")
```

## Files

- `{WEIGHTS_FILE}` ({info.get('dtype')}) and `config.json` (network architecture; `"arch"` names the class)
- `{FP32_REPO_FILE}`: the same weights in float32, when pushed with `python -m training push`
- `{STYLE_FILE}`, `samples/`, and `{INFO_FILE}` (this recipe and these metrics, machine-readable)

## Training recipe

{_table(_flatten(recipe), ("hyper-parameter", "value")) if recipe else "_Not recorded._"}

## Results

{_table(losses, ("final loss", "value")) if losses else "_No losses recorded._"}

{chr(10).join(summary)}

{_table(others, ("metric", "value")) if others else ""}

## References

{chr(10).join(f"- {p}" for p in PAPERS)}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


# ------------------------------------------------------------------------------------------------------ push


def retry_command(run_dir, repo_id, *, private=False, revision=None) -> str:
    """The shell command that pushes this run again (never contains a token)."""
    parts = ["python", "-m", "training", "push", str(run_dir), "--repo", str(repo_id)]
    if private:
        parts.append("--private")
    if revision:
        parts += ["--revision", str(revision)]
    return " ".join(shlex.quote(p) for p in parts)


def push_run(run_dir, repo_id, *, private=False, revision=None, token=None) -> str:
    """Upload run_dir/export-fp16 (+ fp32 weights as model_fp32.safetensors) to `repo_id` in one commit.

    Returns the commit URL. Any failure raises HubError naming the retry command; local files are only read.
    """
    run_dir = Path(run_dir)
    retry = retry_command(run_dir, repo_id, private=private, revision=revision)
    folder = run_dir / EXPORT_FP16_DIR
    if not (folder / WEIGHTS_FILE).is_file():
        raise HubError(f"There is no exported model in {folder} to push; export the run first, then retry with "
                       f"`{retry}`.")
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(repo_id)
        operations = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            content = path
            if name == CARD_FILE:  # usage snippets get the real repo id; the local card stays as it is
                repo_ref = f"{repo_id}@{revision}" if revision and revision != "main" else repo_id
                content = path.read_text(encoding="utf-8").replace(PLACEHOLDER_REPO, repo_ref).encode("utf-8")
            operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=content))
        fp32 = run_dir / EXPORT_DIR / WEIGHTS_FILE
        if fp32.is_file():
            operations.append(CommitOperationAdd(path_in_repo=FP32_REPO_FILE, path_or_fileobj=fp32))

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(repo_id, operations=operations, revision=revision,
                                 commit_message=f"Upload fastnst style from {run_dir.resolve().name}")
    except Exception as err:  # network, auth, invalid id, server errors: all become one sentence
        raise HubError(f"Could not push {run_dir} to the Hugging Face Hub repo {repo_id} ({_reason(err, token)}); "
                       f"your local files are untouched, so retry with `{retry}`.") from err
    return str(info.commit_url)


def _reason(err: Exception, token: str | None) -> str:
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
