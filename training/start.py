"""`--from`: start a run from a trained network instead of from random weights.

The source is a run directory (its family, else its export), a style folder, a gallery name or a Hub id, loaded
through `fastnst.styles.load_style` like any style. Its convolutions are copied as they are; each painting of the
new run takes the source's scale/shift row of the same name (a family continued on another day), else the mean
of the source's rows (a new painting starts from the family's average style).

A narrower source can start a wider network (`widen`, Chen, Goodfellow, Shlens 2016, *Net2Net*): every channel
of the wider network copies one of the source's, and the layer after divides its input weights by the number of
copies, so the wider network paints what the narrow one did. Instance norm treats each channel on its own, so
the copies stay exact copies through every norm, ReLU and residual sum.
"""
from pathlib import Path

import torch

from fastnst.errors import FastNSTError
from fastnst.models import TransformerNet
from fastnst.models.norms import ConditionalInstanceNorm2d
from fastnst.styles import load_style

from .run_folder import RunFolder


class StartError(FastNSTError, ValueError):
    """--from names something that cannot start this run."""


def load_source(ref: str) -> TransformerNet:
    """The network --from names (fp32, CPU, eval mode)."""
    folder = Path(ref).expanduser()
    run = RunFolder(folder)
    for sub in (run.family, run.export(fp16=False)):  # a run directory: its family (several paintings) or export
        if sub.is_dir():
            folder = sub
            break
    network = load_style(str(folder) if folder.is_dir() else ref, device="cpu").network
    if not isinstance(network, TransformerNet) or network.norm != "instance":
        raise StartError(f"--from {ref} is not a TransformerNet with instance norm, so its weights cannot start "
                         f"this run.")
    return network


WIDEN_NOISE = 1e-2  # × each layer's weight std, on the copies' input weights: identical copies would learn alike


@torch.no_grad()
def widen(source: TransformerNet, width: float, *, noise: float = WIDEN_NOISE, seed: int = 0) -> TransformerNet:
    """`source` as a network of `width` (wider, same depth and paintings) that paints the same pictures (exactly
    with noise=0; `noise` breaks the copies' symmetry so they can learn different things)."""
    wide = TransformerNet(width=width, residual_blocks=source.residual_blocks, norm=source.norm,
                          styles=source.styles)
    generator = torch.Generator().manual_seed(seed)
    shapes = {key: value.shape for key, value in wide.state_dict().items()}
    state = {}
    for key, narrow in source.state_dict().items():
        shape = shapes[key]
        copy_of = [torch.arange(new) % old for new, old in zip(shape, narrow.shape)]  # channel j copies j mod C
        if narrow.ndim == 4:  # conv (out, in, k, k): copy rows and columns, share each input among its copies
            copies = torch.bincount(copy_of[1], minlength=narrow.shape[1])[copy_of[1]]
            weight = narrow[copy_of[0]][:, copy_of[1]] / copies[None, :, None, None]
            new_rows = weight[narrow.shape[0]:]
            new_rows += noise * narrow.std() * torch.randn(new_rows.shape, generator=generator)
            state[key] = weight
        else:  # bias (out,), norm scale/shift (C,) or (styles, C): the channel axis is the last
            state[key] = narrow[..., copy_of[-1]]
    wide.load_state_dict(state)
    return wide.eval()


def norm_rows(network: TransformerNet) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every instance norm's (S, C) scale and shift (S = 1 for a one-style network), by module name."""
    rows = {}
    for name, module in network.named_modules():
        if isinstance(module, ConditionalInstanceNorm2d):
            rows[name] = (module.weight, module.bias)
        elif isinstance(module, torch.nn.InstanceNorm2d) and module.affine:
            rows[name] = (module.weight[None], module.bias[None])
    return rows


@torch.no_grad()
def initial_weights(net: TransformerNet, source: TransformerNet, slugs: list[str]) -> str:
    """Copy `source` into `net` (same width and depth, checked by the trainer); returns a line saying what
    each painting started from."""
    theirs, ours = norm_rows(source), norm_rows(net)
    norms = set(theirs)
    state = {k: v for k, v in source.state_dict().items() if k.rpartition(".")[0] not in norms}
    missing = [k for k in net.state_dict() if k.rpartition(".")[0] not in norms and k not in state]
    if missing or set(ours) != norms:
        raise StartError(f"The --from network's layers do not match this network's (e.g. {(missing or ['norms'])[0]}).")
    net.load_state_dict(state, strict=False)  # the convolutions; the norms follow, row by row
    index = {slug: i for i, slug in enumerate(source.styles)}
    for name, (weight, bias) in ours.items():
        their_weight, their_bias = theirs[name]
        for k, slug in enumerate(slugs):
            i = index.get(slug)
            weight[k] = their_weight[i] if i is not None else their_weight.mean(0)
            bias[k] = their_bias[i] if i is not None else their_bias.mean(0)
    kept = [s for s in slugs if s in index]
    return (f"from {len(source.styles) or 1}-style network: convolutions copied; "
            f"{len(kept)} painting(s) continue their own scale/shift, {len(slugs) - len(kept)} start from the mean")
