"""What both networks share: the one weight check, and their Hub identity and model card.

`PyTorchModelHubMixin` gives `save_pretrained` / `from_pretrained` / `push_to_hub` (model.safetensors +
config.json + model card) from the keyword-only constructor arguments, and renders the card from the template
and card data declared once on `FastNSTHubMixin`. Its loader defaults to strict=False, which would silently keep
random weights for any tensor the file lacks; `load_weights` checks every key and shape first and raises an error
naming the file and what is wrong.
"""
import os
from pathlib import Path

import safetensors.torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..errors import WeightsMismatchError
from ..formats import (
    CONFIG_FILE,
    FP32_REPO_FILE,
    INFO_FILE,
    PAINTING_FILE,
    RENAMED_CONFIG_KEYS,
    WEIGHTS_FILE,
    current_config,
)
from ..hub import INSTALL_COMMAND, PLACEHOLDER_REPO, SPACE_URL, TAGS, fetch_style

PAPERS = [
    "Johnson, Alahi, Fei-Fei. *Perceptual Losses for Real-Time Style Transfer and Super-Resolution.* ECCV 2016. "
    "[arXiv:1603.08155](https://arxiv.org/abs/1603.08155)",
    "Ulyanov, Vedaldi, Lempitsky. *Improved Texture Networks: Maximizing Quality and Diversity in Feed-forward "
    "Stylization and Texture Synthesis.* CVPR 2017. [arXiv:1701.02096](https://arxiv.org/abs/1701.02096) "
    "(instance normalisation; first as [arXiv:1607.08022](https://arxiv.org/abs/1607.08022))",
    "Ulyanov, Lebedev, Vedaldi, Lempitsky. *Texture Networks: Feed-forward Synthesis of Textures and Stylized "
    "Images.* ICML 2016. [arXiv:1603.03417](https://arxiv.org/abs/1603.03417)",
]

# The model card (Jinja). `save_pretrained(..., model_card_kwargs=...)` fills it; training.publish passes the run's
# title, artist, samples and tables. Without them (a bare save_pretrained) it still says what the files are.
CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title | default("A fastnst style", true) }}{% if artist %} ({{ artist }}){% endif %}

A real-time neural style transfer network (`{{ arch }}`{% if dtype %}, {{ dtype }} weights{% endif %}) made with
[fastnst]({{ repo_url }}): one forward pass paints any photo in this style.
{% if painting %}
## Style image

![style image]({{ painting }})

Style artwork licence: {{ style_license | default("not stated — check the artwork's own licence before reusing it", true) }}.
The network weights are released under `{{ weights_license }}`.
{% endif %}{% if samples is defined %}
## Samples

{% for sample in samples %}![sample {{ loop.index0 }}]({{ sample }})
{% else %}_No sample outputs were saved for this run._
{% endfor %}{% endif %}
## How to use

```bash
{{ install }}
fastnst stylize photo.jpg --style {{ repo }} -o out.jpg
```

```python
from fastnst import load_style, stylize

style = load_style("{{ repo }}")
stylize("photo.jpg", style).save("out.jpg")
```

Or try it in the browser: [the fastnst Space]({{ repo_url }}) (paste `{{ repo }}` under "More styles").

## Files

- `{{ weights_file }}`{% if dtype %} ({{ dtype }}){% endif %} and `{{ config_file }}` (network architecture; `"arch"` names the class)
- `{{ fp32_file }}`: the same weights in float32, when pushed with `python -m training push`
- `{{ painting_file }}`, `samples/`, and `{{ info_file }}` (the recipe and metrics, machine-readable), when trained with fastnst
{% if recipe is defined %}
## Training recipe

{% for key, value in recipe %}{% if loop.first %}| hyper-parameter | value |
| --- | --- |
{% endif %}| `{{ key }}` | {{ value }} |
{% else %}_Not recorded._
{% endfor %}
## Results

{% for key, value in losses %}{% if loop.first %}| final loss | value |
| --- | --- |
{% endif %}| `{{ key }}` | {{ value }} |
{% else %}_No losses recorded._
{% endfor %}
{% for line in summary %}- {{ line }}
{% endfor %}
{% for key, value in metrics %}{% if loop.first %}| metric | value |
| --- | --- |
{% endif %}| `{{ key }}` | {{ value }} |
{% endfor %}{% endif %}
## References

{% for paper in papers %}- {{ paper }}
{% endfor %}"""


def check_state_dict(model: nn.Module, state: dict, source: str, *, what: str | None = None,
                     error=WeightsMismatchError, allow_unexpected: bool = False, hint: str = "") -> None:
    """Raise `error` unless `state` has every one of the model's keys with exactly its shape (and, unless
    `allow_unexpected`, nothing else). The message names the source and the first few problems."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = [] if allow_unexpected else sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} vs {expected[k]}" for k in sorted(set(state) & set(expected))
             if tuple(state[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s) (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) of the wrong shape (e.g. {'; '.join(wrong[:3])})")
    if problems:
        what = what or f"{type(model).__name__}({getattr(model, '_hub_mixin_config', '')})"
        raise error(f"The weights in {source} do not fit {what}: " + "; ".join(problems) + (hint and f"; {hint}")
                    + ".")


def load_weights(model: nn.Module, path, *, device="cpu", what: str | None = None, error=WeightsMismatchError,
                 allow_unexpected: bool = False, hint: str = "") -> nn.Module:
    """Load a safetensors file into `model` after `check_state_dict` (dtype is cast, e.g. fp16 → fp32)."""
    if not Path(path).is_file():
        raise error(f"The weights file {path} does not exist.")
    try:
        state = safetensors.torch.load_file(str(path), device=str(device))
    except Exception as err:  # a truncated or non-safetensors file: say which one
        raise error(f"Could not read weights from {path}: {err}.") from err
    check_state_dict(model, state, str(path), what=what, error=error, allow_unexpected=allow_unexpected, hint=hint)
    model.load_state_dict({k: state[k] for k in model.state_dict()}, strict=True)
    return model


class FastNSTHubMixin(
    PyTorchModelHubMixin,
    library_name="fastnst",
    tags=list(TAGS),  # a copy: the mixin appends its own tags to the list it is given
    pipeline_tag="image-to-image",
    repo_url=SPACE_URL,
    model_card_template=CARD_TEMPLATE,
):
    """PyTorchModelHubMixin with fastnst's card and tags, the architecture name in config.json, strict loading.

    - config.json gets an `"arch"` key (the class attribute `arch`) so a style folder or Hub repo says which
      network it holds; `fastnst.models.build_model` reads it back.
    - Loading reads model.safetensors only (the mixin would fall back to a pickled pytorch_model.bin, and
      nothing a user or the Hub supplies is ever unpickled here), through fastnst's downloader and weight check.
    - `generate_model_card(license=..., datasets=..., **template_values)`: per-style card data on top of the
      class's (library, tags, pipeline), the rest fills CARD_TEMPLATE.
    """

    arch: str = ""

    def save_pretrained(self, save_directory, *, config=None, **kwargs):
        config = config if config is not None else self._hub_mixin_config or {}
        # An option left at None is not written: a one-style network's config.json stays as it always was.
        config = {"arch": self.arch, **{k: v for k, v in config.items() if v is not None}}
        return super().save_pretrained(save_directory, config=config, **kwargs)

    def generate_model_card(self, *, license=None, datasets=None, repo=None, **values):
        defaults = dict(arch=self.arch, repo=repo or PLACEHOLDER_REPO, install=INSTALL_COMMAND,
                        papers=PAPERS, weights_file=WEIGHTS_FILE, config_file=CONFIG_FILE,
                        fp32_file=FP32_REPO_FILE, painting_file=PAINTING_FILE, info_file=INFO_FILE)
        card = super().generate_model_card(**{**defaults, **values})
        card.data.license = license or card.data.license
        card.data.datasets = datasets or card.data.datasets
        card.data.model_name = values.get("title") or card.data.model_name
        return card

    @classmethod
    def _from_pretrained(cls, *, model_id, revision, cache_dir, force_download, local_files_only, token,
                         map_location="cpu", strict=True, config=None, **model_kwargs):
        renamed = current_config(config or {})  # a config.json of an earlier version: its renamed keys still load
        model_kwargs = {**{new: renamed[new] for new in RENAMED_CONFIG_KEYS.values()
                           if new in renamed and new in cls._hub_mixin_init_parameters}, **model_kwargs}
        folder = Path(model_id) if os.path.isdir(model_id) else fetch_style(
            model_id, revision, cache_dir=cache_dir, force_download=force_download,
            local_files_only=local_files_only, token=token)
        return load_weights(cls(**model_kwargs), folder / WEIGHTS_FILE, device=map_location).eval()


__all__ = ["FastNSTHubMixin", "check_state_dict", "load_weights"]
