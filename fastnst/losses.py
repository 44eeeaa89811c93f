"""Perceptual losses (Johnson et al. 2016), shared by the trainer and by Gatys-style optimisation.

The loss layers of each loss network (`LOSS_LAYERS`) and the weights that fit a network's activation scale
(`default_weights`) are defined here once; a training recipe (`training.recipe.Recipe`) picks the network and may
override the weights, and is what the trainer and the benches build their loss from.

The weights follow pytorch/examples' fast_neural_style (content 1e5, style 1e10, MSE, Gram / (C·H·W)) on VGG
input normalised from [0, 1]. That is exactly what our networks see, so the published balance carries over.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGGFeatures

CONTENT_LAYERS = ("relu2_2",)  # VGG16: Johnson et al.
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
# (content, style) layers per loss network. VGG19 gets Gatys et al.'s choice: style relu1_1..relu5_1, content relu4_2.
LOSS_LAYERS = {
    "vgg16": (CONTENT_LAYERS, STYLE_LAYERS),
    "vgg19": (("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")),
}
CONTENT_WEIGHT = 1e5  # for torchvision's own VGG16 (pytorch/examples)
STYLE_WEIGHT = 1e10
# Caffe-converted VGG weights (Johnson's original Torch code) were trained on 0-255 inputs: their activations are
# ~50x larger, so the Gram (4th power) and feature (2nd power) terms shift by orders of magnitude. How the two
# (content, style) pairs below were chosen is in bench/RESULTS.md and docs/gallery.md.
CAFFE_WEIGHTS = {"vgg16": (1.0, 1.5), "vgg19": (1.0, 3.0)}
TV_WEIGHT = 0.0  # Johnson et al. used a little TV; nearest-upsample + reflection padding rarely need it


def default_weights(vgg: VGGFeatures) -> tuple[float, float]:
    """(content, style) weights that fit this loss network's activation scale, by measurement: on a fixed
    noise image the mean relu1_1 activation is a few at most for torchvision-style VGGs and ~26 for the Caffe ones."""
    with torch.no_grad():
        probe = torch.rand((1, 3, 32, 32), generator=torch.Generator().manual_seed(0)).to(vgg.mean.device)
        scale = float(vgg.features[:2]((probe - vgg.mean) / vgg.std).mean())  # conv1_1 + relu1_1
    return CAFFE_WEIGHTS[vgg.arch] if scale > 5 else (CONTENT_WEIGHT, STYLE_WEIGHT)


class _Gram(torch.autograd.Function):
    """G = F·Fᵀ of features F (B, C, N) — or Fᵀ·F of (B, N, C), the free view of channels-last features, so that no
    transposed copy of the largest activation is ever made. The product is fp32 even under autocast (which would run
    it in bf16, whose 8-bit mantissa loses the style). The backward is one product, dF = (dG + dGᵀ)·F, where autograd
    would make two; it runs in F's own precision, which is what F's gradient is cast to anyway."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, channels_first: bool) -> torch.Tensor:
        ctx.save_for_backward(f)
        ctx.channels_first = channels_first
        f32 = f.to(torch.promote_types(f.dtype, torch.float32))
        return torch.bmm(f32, f32.transpose(1, 2)) if channels_first else torch.bmm(f32.transpose(1, 2), f32)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (f,) = ctx.saved_tensors
        sym = (grad + grad.transpose(1, 2)).to(f.dtype)
        return (torch.bmm(sym, f) if ctx.channels_first else torch.bmm(f, sym)), None


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C, C) Gram matrix normalised by C·H·W, in fp32 (also under autocast)."""
    b, c, h, w = features.shape
    channels_first = not features.is_contiguous(memory_format=torch.channels_last) or features.is_contiguous()
    f = features.reshape(b, c, h * w) if channels_first else features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    with torch.autocast(features.device.type, enabled=False):
        return _Gram.apply(f, channels_first) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss: mean squared error between activations."""
    return F.mse_loss(features.float(), target.float())


def style_loss(features: dict, target_grams: dict, style_ids: torch.Tensor | None = None,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over layers of the MSE between Gram matrices, averaged over the batch. Targets are (S, C, C), one per
    style: image b is compared with style `style_ids[b]` and weighted by `weights[b]` (a family), or with the
    single style (S = 1) when no ids are given."""
    per_image = 0.0
    for name, target in target_grams.items():
        gram = gram_matrix(features[name])
        target = target[style_ids] if style_ids is not None else target.expand_as(gram)
        per_image = per_image + (gram - target).pow(2).mean(dim=(1, 2))
    return (per_image if weights is None else weights * per_image).mean()


PALETTE_SIDE = 64        # colours are compared on a small copy: the palette does not need every pixel
PALETTE_PROJECTIONS = 32


GAMUT_SIDE, GAMUT_SHARE = 64, 0.05  # the gamut term looks at the picture's 5 % most stray colours of a 64-px copy


def colours(image: torch.Tensor, side: int = PALETTE_SIDE) -> torch.Tensor:
    """(B, 3, H, W) → (B, N, 3): the colours of a small copy of each picture."""
    small = F.adaptive_avg_pool2d(image.float(), side) if min(image.shape[-2:]) > side else image
    return small.float().flatten(2).transpose(1, 2)


def palette_loss(image: torch.Tensor, targets: torch.Tensor, style_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Sliced Wasserstein-2 distance between each picture's colours and its painting's (`targets` (S, N, 3) from
    `colours`). The Gram of relu1_1 ties colour to texture; this moves the palette without asking for more strokes.
    Directions are drawn anew each call so that no fixed few of them become the target."""
    ours = colours(image)
    theirs = targets[style_ids] if style_ids is not None else targets.expand(len(ours), -1, -1)
    directions = F.normalize(torch.randn(3, PALETTE_PROJECTIONS, device=image.device), dim=0)
    a = torch.sort(ours @ directions, dim=1).values
    b = torch.sort(theirs @ directions, dim=1).values
    if b.shape[1] != a.shape[1]:  # the painting's quantiles at the picture's count
        b = F.interpolate(b.transpose(1, 2), size=a.shape[1], mode="linear", align_corners=True).transpose(1, 2)
    return (a - b).pow(2).mean()


def gamut_loss(image: torch.Tensor, targets: torch.Tensor, style_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared distance from the picture's most stray colours to the nearest of its painting's (`targets` as in
    palette_loss, every fourth of them: a subset keeps the painting's extremes, where averaging would not). The
    palette term matches the colours' distribution, which a few stray ones hardly move: a cat's green eyes stay
    green in an etching. Only the worst GAMUT_SHARE count, so that the eyes are not averaged away either."""
    ours = colours(image, GAMUT_SIDE)
    theirs = (targets[style_ids] if style_ids is not None else targets.expand(len(ours), -1, -1))[:, ::4]
    nearest = torch.cdist(ours, theirs).min(dim=2).values
    return nearest.topk(max(1, int(GAMUT_SHARE * nearest.shape[1])), dim=1).values.pow(2).mean()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smoothness prior)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.float().pow(2).mean() + dy.float().pow(2).mean()


class PerceptualLoss(nn.Module):
    """Weighted content + style + TV loss against one style image (or several: a family), on a frozen VGG.

    `set_style(image)` stores the style's Gram matrices once (`set_styles(images, weights)` for a family, each
    painting at its own size and with its own style weight); `forward(output, content, style_ids)` returns a dict
    of weighted terms and their sum under "total". The content image only runs through VGG as deep as the content
    layers, which saves part of its forward pass.
    """

    def __init__(self, *, vgg: VGGFeatures | None = None, arch: str = "vgg16", weights=None,
                 content_layers=None, style_layers=None, content_weight: float = CONTENT_WEIGHT,
                 style_weight: float = STYLE_WEIGHT, tv_weight: float = TV_WEIGHT, palette_weight: float = 0.0,
                 gamut_weight: float = 0.0):
        super().__init__()
        arch = vgg.arch if vgg is not None else arch
        content_layers = LOSS_LAYERS[arch][0] if content_layers is None else content_layers  # the network's own
        style_layers = LOSS_LAYERS[arch][1] if style_layers is None else style_layers
        layers = tuple(dict.fromkeys((*style_layers, *content_layers)))
        self.vgg = vgg if vgg is not None else VGGFeatures(arch, layers=layers, weights=weights)
        self.content_layers, self.style_layers = tuple(content_layers), tuple(style_layers)
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.palette_weight, self.gamut_weight = palette_weight, gamut_weight
        self.target_colours: torch.Tensor | None = None    # (S, N, 3), one palette per style
        self.target_grams: dict[str, torch.Tensor] = {}  # layer → (S, C, C), one Gram matrix per style
        self.style_weights: torch.Tensor | None = None      # (S,) per-style weights of a family

    def set_style(self, style: torch.Tensor) -> None:
        """Compute the style targets from a (1, 3, H, W) image in [0, 1]."""
        self.set_styles([style])
        self.style_weights = None

    @torch.no_grad()
    def set_styles(self, styles: list[torch.Tensor], weights: list[float] | None = None) -> None:
        """Style targets of several paintings, each (1, 3, H, W) at its own size; `weights` replace style_weight
        per painting (default: style_weight for all)."""
        grams = [self.vgg(image, layers=self.style_layers) for image in styles]
        self.target_grams = {name: torch.cat([gram_matrix(g[name]) for g in grams]) for name in self.style_layers}
        # Resized (not only pooled) so that a painting smaller than PALETTE_SIDE stacks with a family's others.
        self.target_colours = torch.cat([colours(F.interpolate(image, size=PALETTE_SIDE, mode="area"))
                                         for image in styles])
        weights = [self.style_weight] * len(styles) if weights is None else weights
        self.style_weights = torch.tensor(weights, dtype=torch.float32, device=styles[0].device)

    def content_targets(self, content: torch.Tensor) -> dict:
        with torch.no_grad():
            return {k: v.detach() for k, v in self.vgg(content, layers=self.content_layers).items()}

    def forward(self, output: torch.Tensor, content: torch.Tensor | dict | None,
                style_ids: torch.Tensor | None = None, *, features: dict | None = None) -> dict:
        """Weighted loss terms. `content` is the content image or precomputed `content_targets(...)`;
        None means texture synthesis (no content term). `style_ids` (B,): each image's painting in a family.
        `features`: `self.vgg(output)` if already computed (a bench scoring one photo against many styles)."""
        if not self.target_grams:
            raise RuntimeError("call set_style(style_image) before computing the loss")
        feats = self.vgg(output) if features is None else features
        if style_ids is None:
            terms = {"style": self.style_weight * style_loss(feats, self.target_grams)}
        else:
            terms = {"style": style_loss(feats, self.target_grams, style_ids, self.style_weights[style_ids])}
        if content is not None:
            targets = content if isinstance(content, dict) else self.content_targets(content)
            terms["content"] = self.content_weight * sum(content_loss(feats[k], targets[k]) for k in targets)
        if self.palette_weight:
            terms["palette"] = self.palette_weight * palette_loss(output, self.target_colours, style_ids)
        if self.gamut_weight:
            terms["gamut"] = self.gamut_weight * gamut_loss(output, self.target_colours, style_ids)
        if self.tv_weight:
            terms["tv"] = self.tv_weight * total_variation(output)
        terms["total"] = sum(terms.values())
        return terms
