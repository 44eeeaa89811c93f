"""TransformerNet: the feed-forward image transformation network of Johnson et al. 2016.

    9×9 conv 32 → 3×3 stride-2 convs 64, 128 → 5 residual blocks (128)
    → 2 × (nearest-upsample ×2 + 3×3 conv) 64, 32 → 9×9 conv to 3

with reflection padding everywhere (zero padding draws dark frames around the output) and instance
normalisation (Ulyanov et al. 2017) by default, the same at train and test time. `norm="batch"` reproduces the
IN paper's comparison. `width` scales every channel count (0.5 gives the light CPU network) and
`residual_blocks` sets the depth.

Output: RGB in [0, 1]. The last conv's output goes through a sigmoid, so the range is bounded by construction
and every pixel keeps a gradient (a clamp would silence saturated pixels; Johnson's scaled tanh overshoots the
range and still needs a clamp at test time).

Any H×W works: the input is reflection-padded to a multiple of 4 (two stride-2 stages) and the output cropped
back, so odd sizes come back at exactly their input size.

CPU inference computes the full-resolution decoder layers in an exactly equivalent, cheaper form (see
`upsample_conv` and `last_conv`): same weights, same output to float rounding, less arithmetic (bench/inference.py
mode `textbook` measures what it buys). Training, GPUs and ONNX export keep the textbook
form (see `textbook`).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .base import FastNSTHubMixin
from .norms import ConditionalInstanceNorm2d, make_norm, select_styles

# Defaults as published (Johnson et al. 2016, supplementary Table 1).
BASE_CHANNELS = (32, 64, 128)
MIN_SIDE = 8  # smaller inputs are padded up to this (a 9×9 reflection pad needs at least 5 pixels)


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier, kept a multiple of 8 (tensor-core and SIMD friendly)."""
    return max(8, int(round(channels * width / 8)) * 8)


class ConvLayer(nn.Sequential):
    """Reflection pad + conv (+ norm + ReLU): the building block of every stage."""

    def __init__(self, in_ch, out_ch, kernel_size, *, stride=1, norm="instance", relu=True, num_styles=0):
        layers = [nn.ReflectionPad2d(kernel_size // 2), nn.Conv2d(in_ch, out_ch, kernel_size, stride)]
        if norm is not None:
            layers.append(make_norm(norm, out_ch, num_styles))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3×3 conv-norm layers with an identity skip (no ReLU after the sum, as in Johnson's supplement)."""

    def __init__(self, channels, *, norm="instance", num_styles=0):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3, norm=norm, num_styles=num_styles),
            ConvLayer(channels, channels, 3, norm=norm, relu=False, num_styles=num_styles),
        )

    def forward(self, x):
        return x + self.body(x)


# Row (and column) p of a nearest-×2-upsampled image seen by a 3×3 kernel's taps, in low-resolution rows:
# output row 2i takes upsampled rows 2i-1, 2i, 2i+1 = low-res rows i-1, i, i (taps 1 and 2 coincide), row 2i+1
# takes i, i, i+1. So each output phase is a 2×2 kernel on the low-res image, with summed taps.
_PHASE_TAPS = torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1.0, 1, 0], [0, 0, 1]]])  # (phase, 2 taps, 3 taps)


def upsample_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """conv(reflection_pad_1(nearest_upsample_×2(x))) without the upsampled image: the four output phases as
    one 3×3 conv on the low-res input (a 2×2 kernel each, placed at the phase's offset), then pixel_shuffle.
    4 instead of 9 taps per output pixel; reflecting the upsampled image by 1 = replicating the low-res one."""
    taps = _PHASE_TAPS.to(conv.weight)
    phases = [F.pad(torch.einsum("ri,ocij,sj->ocrs", taps[p], conv.weight, taps[q]), (q, 1 - q, p, 1 - p))
              for p in (0, 1) for q in (0, 1)]
    weight = torch.stack(phases, 1).flatten(0, 1)  # (out·4, in, 3, 3), pixel_shuffle's channel order
    y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, conv.bias.repeat_interleave(4))
    return F.pixel_shuffle(y, 2)


def last_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """conv(x) for the final k×k conv to 3 channels (x already padded, even output size), as one stride-2 conv
    with 4·3 outputs (the kernel shifted to each output phase) then pixel_shuffle. Same arithmetic, but oneDNN
    runs a conv with 3 output channels ~3× below its speed for 12."""
    phases = [F.pad(conv.weight, (q, 1 - q, p, 1 - p)) for p in (0, 1) for q in (0, 1)]
    weight = torch.stack(phases, 1).flatten(0, 1)  # (out·4, in, k+1, k+1)
    return F.pixel_shuffle(F.conv2d(x, weight, conv.bias.repeat_interleave(4), stride=2), 2)


def textbook(module: nn.Module, x: torch.Tensor) -> bool:
    """`upsample_conv` / `last_conv` serve CPU inference, where they were measured (bench/inference.py). Training,
    GPUs (cuDNN handles 3-channel convs well; the GPU timings are for the textbook form) and ONNX export (its
    exporter needs static kernels; onnxruntime picks its own) use the textbook layers."""
    return module.training or x.device.type != "cpu" or torch.onnx.is_in_onnx_export()


class UpsampleConv(nn.Module):
    """Nearest-neighbour ×2 upsampling then a 3×3 conv: avoids the checkerboards of transposed convolutions
    (Odena et al. 2016), which is why pytorch/examples and most reimplementations do the same."""

    def __init__(self, in_ch, out_ch, *, norm="instance", num_styles=0):
        super().__init__()
        self.conv = ConvLayer(in_ch, out_ch, 3, norm=norm, num_styles=num_styles)

    def forward(self, x):
        if textbook(self, x):
            return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        _, conv, *norm_relu = self.conv  # its reflection pad is replaced by upsample_conv's replicate pad
        y = upsample_conv(x, conv)
        for layer in norm_relu:  # the layer's own norm and ReLU, unchanged
            y = layer(y)
        return y


class TransformerNet(nn.Module, FastNSTHubMixin):
    """Johnson et al. 2016 transformation network. Input and output: (B, 3, H, W) RGB in [0, 1].

    `styles` (a list of names) makes it a *family* (Dumoulin et al. 2017): the convolutions are shared and every
    instance norm holds one scale/shift row per style; `forward(x, style=k)` paints style k, and
    `style_network(k)` returns style k as a standalone network (the format the library and the Hub use).
    """

    arch = "transformer"
    tileable = True  # a 54-px receptive field: fastnst.inference can paint huge images tile by tile

    def __init__(self, *, width: float = 1.0, residual_blocks: int = 5, norm: str = "instance",
                 styles: list[str] | None = None):
        super().__init__()
        self.styles = list(styles or [])
        c1, c2, c3 = (scaled(c, width) for c in BASE_CHANNELS)
        kw = {"norm": norm, "num_styles": len(self.styles)}
        self.encoder = nn.Sequential(
            ConvLayer(3, c1, 9, **kw),
            ConvLayer(c1, c2, 3, stride=2, **kw),
            ConvLayer(c2, c3, 3, stride=2, **kw),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(c3, **kw) for _ in range(residual_blocks)))
        self.decoder = nn.Sequential(
            UpsampleConv(c3, c2, **kw),
            UpsampleConv(c2, c1, **kw),
            ConvLayer(c1, 3, 9, norm=None, relu=False),
        )
        self.width, self.residual_blocks, self.norm = width, residual_blocks, norm

    def forward(self, x: torch.Tensor, style=None, between=None) -> torch.Tensor:
        """`style` (families only): an index, a (B,) tensor of indices or (B, S) mixing weights. `between`: a function
        of the features after the residual blocks (1/4 size), applied before the decoder paints them (video:
        fastnst.temporal carries the last frame's features along the motion)."""
        if self.styles:
            select_styles(self, style, x.shape[0])
        h, w = x.shape[-2:]
        # Pad up to a multiple of 4 and at least MIN_SIDE, so the 9×9 reflection pads always fit.
        pad_h, pad_w = max(MIN_SIDE, h + -h % 4) - h, max(MIN_SIDE, w + -w % 4) - w
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.residuals(self.encoder(x))
        if between is not None:
            y = between(y)
        y = self.decoder[:-1](y)
        pad, conv = self.decoder[-1]
        y = conv(pad(y)) if textbook(self, y) else last_conv(pad(y), conv)
        return torch.sigmoid(y)[..., :h, :w]

    def style_network(self, style) -> "TransformerNet":
        """Style `style` of a family as a standalone one-style network: shared convolutions, that style's row of
        every conditional norm as the instance norm's scale/shift. `style` is an index, or mixing weights (one per
        style, summing to 1) whose blend of the rows is taken (Dumoulin et al.'s interpolation of styles). It
        paints exactly what `forward(x, style)` does."""
        single = TransformerNet(width=self.width, residual_blocks=self.residual_blocks, norm=self.norm)
        state = self.state_dict()
        for name, module in self.named_modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                if isinstance(style, int):
                    row_w, row_b = module.weight[style], module.bias[style]
                else:
                    mix = torch.as_tensor(style, dtype=module.weight.dtype, device=module.weight.device)
                    row_w, row_b = mix @ module.weight, mix @ module.bias
                state[f"{name}.weight"], state[f"{name}.bias"] = row_w, row_b
        single.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return single.to(next(self.parameters()).device)
