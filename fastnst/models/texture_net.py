"""TextureNet: the multi-scale generator of Ulyanov et al. 2016 (Texture Networks).

K scales, finest first. At scale i (resolution H/2^i) the input is noise, concatenated with the content image
downsampled to that scale when stylising (`texture_only=False`). Each scale has a conv block (3×3, 3×3, 1×1,
each norm + LeakyReLU). Starting from the coarsest, the running features are upsampled ×2, normalised and
concatenated with the next finer scale's block output, then pass through another conv block; channels grow by
`channels` per join (8, 16, 24, ... in the paper). A final 1×1 conv maps to RGB, through a sigmoid to [0, 1].

Fully convolutional: any output size works. Inputs are padded to a multiple of 2^(K-1) (at least 2 pixels at
the coarsest scale) and the output cropped back. For texture synthesis the content tensor only gives the output
shape; its pixel values are ignored.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .base import FastNSTHubMixin
from .norms import make_norm


class ConvBlock(nn.Sequential):
    """3×3, 3×3, 1×1 convolutions, each followed by norm and LeakyReLU (the paper's block)."""

    def __init__(self, in_ch, out_ch, *, norm="instance"):
        layers = []
        for k, c_in in ((3, in_ch), (3, out_ch), (1, out_ch)):
            layers += [nn.Conv2d(c_in, out_ch, k, padding=k // 2, padding_mode="reflect"),
                       make_norm(norm, out_ch), nn.LeakyReLU(0.2, inplace=True)]
        super().__init__(*layers)


class TextureNet(nn.Module, FastNSTHubMixin, tags=["texture-synthesis"]):
    """Ulyanov et al. 2016 multi-scale generator. Input: (B, 3, H, W) content in [0, 1]; output: same shape."""

    arch = "texture"
    tileable = False  # its noise and its image-wide receptive field do not tile

    def __init__(self, *, scales: int = 5, channels: int = 8, noise_channels: int = 3,
                 texture_only: bool = False, norm: str = "instance"):
        super().__init__()
        self.scales, self.noise_channels, self.texture_only = scales, noise_channels, texture_only
        in_ch = noise_channels + (0 if texture_only else 3)
        self.blocks = nn.ModuleList(ConvBlock(in_ch, channels, norm=norm) for _ in range(scales))
        self.up_norms, self.skip_norms, self.joins = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        width = channels
        for _ in range(scales - 1):  # coarse → fine
            self.up_norms.append(make_norm(norm, width))
            self.skip_norms.append(make_norm(norm, channels))
            self.joins.append(ConvBlock(width + channels, width + channels, norm=norm))
            width += channels
        self.to_rgb = nn.Conv2d(width, 3, 1)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        m = 2 ** self.scales  # coarsest scale keeps ≥ 2 pixels, so its reflection pads fit
        pad_h, pad_w = max(m, h + -h % m) - h, max(m, w + -w % m) - w
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        feats = []
        for i, block in enumerate(self.blocks):
            size = (x.shape[-2] >> i, x.shape[-1] >> i)
            noise = torch.rand((b, self.noise_channels, *size), generator=generator, device=x.device,
                               dtype=x.dtype)
            if self.texture_only:
                inp = noise
            else:  # area downsampling = the mean of each 2^i × 2^i cell, no aliasing
                inp = torch.cat([F.adaptive_avg_pool2d(x, size) if i else x, noise], dim=1)
            feats.append(block(inp))
        y = feats[-1]
        for j, i in enumerate(range(self.scales - 2, -1, -1)):
            up = F.interpolate(y, scale_factor=2, mode="nearest")
            y = self.joins[j](torch.cat([self.up_norms[j](up), self.skip_norms[j](feats[i])], dim=1))
        return torch.sigmoid(self.to_rgb(y))[..., :h, :w]
