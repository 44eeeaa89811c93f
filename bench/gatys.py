"""The reference: Gatys et al.'s optimisation of the photo itself, under exactly the style's training loss."""
import json
import math
import time
from pathlib import Path

import torch

from bench.report import log

LR = {"lbfgs": 1.0, "adam": 0.05}  # adam's step is in z (sigmoid) space
EPS = 0.5 / 255


def terms_of(loss_fn, image, targets, features=None) -> dict:
    with torch.no_grad():
        return {k: float(v) for k, v in loss_fn(image, targets, features=features).items()}


def gatys(loss_fn, content, targets, checkpoints, *, optimizer="lbfgs", lr=None, param="sigmoid") -> dict:
    """Optimise the image from the photo; loss terms at iteration 0 and at each checkpoint."""
    if param == "sigmoid":
        z, to_image = torch.logit(content.clamp(EPS, 1 - EPS)), torch.sigmoid
    else:
        z, to_image = content.clone(), (lambda t: t.clamp(0, 1))
    z = z.contiguous().requires_grad_(True)  # L-BFGS views the gradient flat
    lr = LR[optimizer] if lr is None else lr
    results = {0: terms_of(loss_fn, to_image(z), targets)}
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([z], lr=lr, line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    else:
        opt = torch.optim.Adam([z], lr=lr)

    def closure():
        opt.zero_grad(set_to_none=True)
        total = loss_fn(to_image(z), targets)["total"]
        total.backward()
        return total

    done, t0 = 0, time.perf_counter()
    for n in sorted(set(checkpoints) - {0}):
        if optimizer == "lbfgs":  # one call runs n - done iterations, keeping the curvature history
            opt.param_groups[0].update(max_iter=n - done, max_eval=10 * (n - done))
            opt.step(closure)
        else:
            for _ in range(n - done):
                opt.step(closure)
        done = n
        results[n] = terms_of(loss_fn, to_image(z), targets)
        state = opt.state[z] if optimizer == "lbfgs" else {}
        results[n].update(seconds=round(time.perf_counter() - t0, 2), evals=state.get("func_evals", n))
        log(f"    gatys {n:>4} it: total {results[n]['total']:.4g} ({results[n]['seconds']:.1f} s)")
    return results


def earlier_gatys(path) -> dict:
    """(style, photo, size) → Gatys terms by iteration, from an earlier run's --json."""
    if not path:
        return {}
    rows = json.loads(Path(path).read_text())["rows"]
    return {(r["style"], r["photo"], r["size"]): {int(k): v for k, v in r["gatys"].items()} for r in rows}


def gatys_once(loss_fn, content, targets, iters, earlier: dict | None, **options) -> dict:
    """`gatys`, or an earlier run's numbers for the same photo, size and iterations when the loss is the same one
    (checked: the photo's own loss, iteration 0, must agree): a wider network of the same recipe needs no rerun."""
    if earlier and set(iters) <= set(earlier):
        start = gatys(loss_fn, content, targets, [0], **options)[0]
        if math.isclose(start["total"], earlier[0]["total"], rel_tol=1e-4):
            log("    gatys: the earlier run's numbers (same loss)")
            return {k: earlier[k] for k in {0, *iters}}
    return gatys(loss_fn, content, targets, iters, **options)
