"""What both networks share: normalisation layers and Hub I/O that refuses weights that do not fit.

`PyTorchModelHubMixin` gives `save_pretrained` / `from_pretrained` / `push_to_hub` (model.safetensors +
config.json + model card) from the keyword-only constructor arguments. Its loader defaults to strict=False,
which would silently keep random weights for any tensor the file lacks; `StrictHubMixin` checks every key and
shape first and raises `WeightsMismatchError` naming the file and what is wrong.
"""
import os
from pathlib import Path

import safetensors.torch
from huggingface_hub import PyTorchModelHubMixin, constants, hf_hub_download
from torch import nn

from ..errors import WeightsMismatchError

NORMS = ("instance", "batch")


def make_norm(kind: str, channels: int) -> nn.Module:
    """Instance norm with affine scale/shift (Ulyanov et al. 2017) or batch norm (for the IN-vs-BN comparison).

    InstanceNorm keeps no running statistics, so it normalises each image by its own statistics in train and
    eval mode alike: a photo's output does not depend on what else is in the batch.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be one of {NORMS}, not {kind!r}")


def check_state_dict(model: nn.Module, state: dict, source: str) -> None:
    """Raise WeightsMismatchError unless `state` has exactly the model's keys with exactly its shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
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
        raise WeightsMismatchError(
            f"The weights in {source} do not fit {type(model).__name__}({getattr(model, '_hub_mixin_config', '')}): "
            + "; ".join(problems) + ".")


def load_weights(model: nn.Module, path, *, device="cpu") -> nn.Module:
    """Load a safetensors file into `model` after checking every key and shape (dtype is cast, e.g. fp16 → fp32)."""
    try:
        state = safetensors.torch.load_file(str(path), device=str(device))
    except Exception as err:  # a truncated or non-safetensors file: say which one
        raise WeightsMismatchError(f"Could not read weights from {path}: {err}.") from err
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)
    return model


class StrictHubMixin(PyTorchModelHubMixin):
    """PyTorchModelHubMixin that writes the architecture name into config.json and loads strictly.

    - config.json gets an `"arch"` key (the class attribute `arch`) so a style folder or Hub repo says which
      network it holds; `fastnst.models.build_model` reads it back.
    - Loading reads model.safetensors only: the mixin would fall back to a pickled pytorch_model.bin, and
      nothing a user or the Hub supplies is ever unpickled here.
    """

    arch: str = ""

    def save_pretrained(self, save_directory, *, config=None, **kwargs):
        config = {"arch": self.arch, **(config if config is not None else self._hub_mixin_config or {})}
        return super().save_pretrained(save_directory, config=config, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id, revision, cache_dir, force_download, local_files_only, token,
                         map_location="cpu", strict=True, **model_kwargs):
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            model_file = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE)
        else:
            model_file = hf_hub_download(
                repo_id=model_id, filename=constants.SAFETENSORS_SINGLE_FILE, revision=revision,
                cache_dir=cache_dir, force_download=force_download, token=token,
                local_files_only=local_files_only)
        if not os.path.isfile(model_file):
            raise WeightsMismatchError(f"{model_id} has no {constants.SAFETENSORS_SINGLE_FILE}.")
        return load_weights(model, model_file, device=map_location).eval()
