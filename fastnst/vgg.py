"""The fixed loss network: torchvision's VGG16/VGG19 `features`, cut after the deepest layer a loss reads.

Layers are named as in the papers (`relu2_2`), not by index. Inputs are RGB in [0, 1]; the ImageNet
normalisation torchvision's weights expect happens inside, so every caller works in [0, 1].

Weights, in this order:
1. `weights=` a path to a safetensors file holding the `features` state dict in torchvision's input convention
   (files cut after relu4_3 etc. work as long as they cover the layers used), or the environment variable
   `FASTNST_VGG_WEIGHTS` naming one;
2. `weights="imagenet"` (the default when neither is given): torchvision's `VGG16_Weights.IMAGENET1K_V1` /
   `VGG19_Weights.IMAGENET1K_V1`, downloaded once into the torch hub cache;
3. `weights="random"`: random initialisation, for tests that only need the plumbing.
When none can be had, `LossNetworkUnavailableError` says how to provide them.
"""
import os

import torch
import torchvision
from torch import nn

from .errors import InvalidOptionError, LossNetworkUnavailableError
from .models.base import load_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_ENV = "FASTNST_VGG_WEIGHTS"

# Convolutions per block: the only difference between the two architectures torchvision builds.
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


def layer_names(arch: str) -> list[str]:
    """Names of the modules of torchvision's `vggXX().features`, in order: conv1_1, relu1_1, ..., pool5."""
    names = []
    for block, convs in enumerate(_BLOCKS[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def _torchvision_features(arch: str, pretrained: bool) -> nn.Sequential:
    builder = getattr(torchvision.models, arch)
    if not pretrained:
        return builder(weights=None).features
    enum = getattr(torchvision.models, f"{arch.upper()}_Weights").IMAGENET1K_V1
    try:
        return builder(weights=enum).features
    except Exception as err:  # offline, proxy, corrupt cache: all mean "not available here"
        raise LossNetworkUnavailableError(
            f"Could not get torchvision's {enum} ({type(err).__name__}: {err}). Pass a local safetensors file of "
            f"VGG `features` weights (weights=PATH, --loss-weights PATH or ${WEIGHTS_ENV}).") from err


class VGGFeatures(nn.Module):
    """Frozen VGG feature extractor. `forward(x)` → {layer name: activation} for the requested layers."""

    def __init__(self, arch: str = "vgg16", layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"), weights=None):
        super().__init__()
        if arch not in _BLOCKS:
            raise InvalidOptionError(f"The loss network must be one of {', '.join(sorted(_BLOCKS))}, not {arch!r}.")
        names = layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise InvalidOptionError(f"{arch} has no layer named {', '.join(unknown)}; its layers are named like "
                                     f"{', '.join(names[:4])}.")
        self.arch, self.layers = arch, tuple(layers)
        self.index = {name: names.index(name) for name in self.layers}
        cut = max(self.index.values()) + 1

        weights = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or "imagenet"
        if weights in ("imagenet", "random"):
            self.features = _torchvision_features(arch, pretrained=weights == "imagenet")[:cut]
            self.source = weights
        else:
            self.features = _torchvision_features(arch, pretrained=False)[:cut]
            deepest = max(self.layers, key=self.index.get)
            load_weights(self.features, weights, what=f"{arch} `features` up to {deepest}",
                         error=LossNetworkUnavailableError, allow_unexpected=True,  # a deeper cut is fine
                         hint=f"is it a {arch} file cut before that layer?")
            self.source = str(weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: never leave eval mode

    def forward(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        """Activations for `layers` (default: all configured), running only as deep as the deepest one needs."""
        layers = self.layers if layers is None else tuple(layers)
        wanted = {self.index[name]: name for name in layers}
        last = max(wanted)
        out = {}
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out
