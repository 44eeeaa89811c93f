"""Normalisation layers of the style networks: instance norm (Ulyanov et al. 2017), batch norm (for the IN-vs-BN
comparison) and conditional instance norm (Dumoulin, Shlens, Kudlur 2017: one network, many styles).

A conditional instance norm holds one row of scale and shift per style, under the same names (`weight`, `bias`)
as an affine InstanceNorm2d's single row. So row k of every conditional layer, dropped into a plain network of the
same width, *is* style k's standalone network (`TransformerNet.style_network`), and a plain network's scale/shift
can seed every row of a family (`training.start`).
"""
import torch
from torch import nn

from ..errors import InvalidOptionError

NORMS = ("instance", "batch")


def make_norm(kind: str, channels: int, num_styles: int = 0) -> nn.Module:
    """Instance norm with affine scale/shift, batch norm, or (num_styles > 0) a conditional instance norm.

    InstanceNorm keeps no running statistics, so it normalises each image by its own statistics in train and
    eval mode alike: a photo's output does not depend on what else is in the batch.
    """
    if kind not in NORMS:
        raise InvalidOptionError(f"norm must be one of {', '.join(NORMS)}, not {kind!r}.")
    if num_styles:
        if kind != "instance":
            raise InvalidOptionError("A network with several styles needs norm 'instance' (conditional instance "
                                     "norm).")
        return ConditionalInstanceNorm2d(channels, num_styles)
    return InstanceNorm2d(channels, affine=True) if kind == "instance" else nn.BatchNorm2d(channels)


class InstanceNorm2d(nn.InstanceNorm2d):
    """nn.InstanceNorm2d that, at inference on a CPU, runs as group norm with one group per channel: the same
    numbers (one mean and variance per image and channel), but ATen's group norm works on channels_last bf16
    tensors as they are, where instance_norm reshapes them through copies (bench/inference.py: the light
    network's bf16 1-MP pass about a third faster). Training keeps instance_norm, whose backward is faster."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or x.device.type != "cpu":
            return super().forward(x)
        return nn.functional.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose scale and shift are picked per image from one row per style (or mixed from several).

    `mix` is set by the owning network before each forward pass (`select_styles`): an nn.Sequential passes one
    tensor from layer to layer, so the style choice travels beside it rather than through it.
    """

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.normalize = nn.InstanceNorm2d(channels, affine=False)
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))
        self.mix: torch.Tensor | None = None  # (B, num_styles) weights, one-hot for a single style per image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mix is None:
            raise RuntimeError("select_styles(...) must be called before a conditional instance norm runs")
        mix = self.mix.to(self.weight)
        scale, shift = (mix @ self.weight)[:, :, None, None], (mix @ self.bias)[:, :, None, None]
        return self.normalize(x) * scale.to(x.dtype) + shift.to(x.dtype)


def select_styles(network: nn.Module, style, batch: int) -> None:
    """Tell every conditional norm of `network` which style(s) to paint: an int (all images), a (B,) tensor of
    style indices, or a (B, S) / (S,) tensor of mixing weights (Dumoulin et al.'s style interpolation)."""
    layers = [m for m in network.modules() if isinstance(m, ConditionalInstanceNorm2d)]
    num_styles = layers[0].weight.shape[0]
    if style is None:
        raise InvalidOptionError(f"This network paints {num_styles} styles: pass style=<index> (or mixing weights).")
    # Indices given on a GPU (the trainer's, made in range there) are not read back: that would stall every
    # forward on a host sync; one_hot's own device-side check still catches a bad one. Others are checked here.
    on_gpu = isinstance(style, torch.Tensor) and style.device.type != "cpu"
    style = torch.as_tensor(style)
    if not style.is_floating_point() and not on_gpu and (int(style.min()) < 0 or int(style.max()) >= num_styles):
        raise InvalidOptionError(f"Style index out of range: this network paints styles 0..{num_styles - 1}.")
    style = style.to(layers[0].weight.device)
    if style.is_floating_point():
        mix = style.expand(batch, num_styles)
    else:
        mix = nn.functional.one_hot(style.expand(batch), num_styles).float()
    for layer in layers:
        layer.mix = mix
