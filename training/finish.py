"""The end of a run, and what it leaves: its metrics, the recipe as run (recipe.json and the model card's), and
the trained network exported through training.publish (one standalone network per painting of a family); also the
preview a run in progress keeps up to date. Apart from the loop because none of it runs per step.
"""
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torchvision.utils import make_grid

from fastnst.formats import DATA_FOLDER, DEVICE, HELDOUT_PREFIX, SPEED, STYLE_IMAGE, WALL_TIME
from fastnst.models import build_model

from .publish import export_family, export_preview, export_run
from .runtime import device_name

if TYPE_CHECKING:
    from .trainer import Run


def finish(run: "Run", status: str, step: int) -> dict:
    """A stopped run says how to continue; a finished one is measured on the held-out photos, recorded and
    exported (by the main process)."""
    result = {"status": status, "run_dir": run.run_dir, "step": step, "total_steps": run.total_steps}
    if status != "finished":
        run.say(f"{'got ' + run.signal + ': ' if run.signal else ''}stopped at step {step}/"
                f"{run.total_steps}; checkpoint saved in {run.folder.checkpoint}. Continue with the same "
                f"command plus --resume.")
        run.env.barrier()
        return result
    if run.env.main:
        outputs, per_style = run.paint_heldout()
        metrics = final_metrics(run, step, per_style)
        recipe = recipe_record(run)
        run.folder.write_summary(recipe, metrics)
        result.update(metrics=metrics, recipe=recipe, export=export(run, recipe, metrics, outputs))
        run.say(f"done: {step} steps, {metrics[SPEED]} img/s, held-out total loss "
                f"{metrics[HELDOUT_PREFIX + 'total']:.4g}; exported to {result['export']}")
    run.env.barrier()
    return result


def final_metrics(run: "Run", step: int, per_style: dict) -> dict:
    ips = (step - run.start_step) * run.g / run.loop_s if step > run.start_step else None
    metrics = {**mean_terms(per_style), "steps": step, "images_seen": step * run.g,
               WALL_TIME: round(run.loop_s, 2), SPEED: round(ips, 2) if ips else None,
               DEVICE: device_name(run.device), "world_size": run.env.world, "heldout_images": int(run.n_held)}
    if run.family:
        metrics["per_style"] = per_style
    return metrics


def recipe_record(run: "Run") -> dict:
    """recipe.json and the card's recipe: the recipe as run, with what it ran on (file names only: absolute
    local paths say nothing on a model card)."""
    r, first = run.recipe, run.paintings[0]
    record = {**{k: v for k, v in asdict(r).items() if k not in ("style", "data")},
              STYLE_IMAGE: Path(first.path).name, DATA_FOLDER: Path(r.data).name, "images": run.cache.count,
              "skipped": len(run.cache.skipped), "loss_network": Path(run.loss_fn.vgg.source).name,
              "content_layers": list(run.loss_fn.content_layers), "style_layers": list(run.loss_fn.style_layers),
              "model": r.model_config(), "global_batch": run.g, "total_steps": run.total_steps,
              "optimizer": "Adam", "style_weight": run.style_weight(first), "style_size": run.style_size(first)}
    if run.family:
        record["paintings"] = [{"slug": p.slug, STYLE_IMAGE: Path(p.path).name,
                                "style_weight": run.style_weight(p), "style_size": run.style_size(p)}
                               for p in run.paintings]
    return record


def exportable(run: "Run") -> torch.nn.Module:
    """A plain fp32 CPU copy of the network in eval mode (no DDP/compile wrapper, no channels_last)."""
    model = build_model(run.recipe.model_config())
    model.load_state_dict({k: v.float().cpu() for k, v in run.net.state_dict().items()})
    return model.eval()


def preview(run: "Run") -> None:
    """RUN/preview: the (first painting's) network as it is now, for a live preview of a run in progress."""
    model = exportable(run)
    export_preview(model.style_network(0) if run.family else model, run.run_dir)


def export(run: "Run", recipe: dict, metrics: dict, outputs: list[torch.Tensor]) -> Path:
    """fp32 + fp16 Hub folders per painting (weights, config.json, model card, painting, samples) via
    training.publish; a family also keeps itself in RUN/family (for --from and for continuing)."""
    model = exportable(run)
    if not run.family:
        return Path(export_run(model, run.run_dir, style_image_path=Path(run.paintings[0].path),
                               recipe=recipe, metrics=metrics))
    heldout = run.heldout.float().cpu()
    styles = []
    for k, (p, y) in enumerate(zip(run.paintings, outputs)):
        own = {key: recipe["paintings"][k][key] for key in (STYLE_IMAGE, "style_weight", "style_size")}
        styles.append({"slug": p.slug, "painting": Path(p.path), "recipe": {**recipe, **own, "family_index": k},
                       "metrics": {**{m: v for m, v in metrics.items() if m != "per_style"},
                                   **metrics["per_style"][p.slug]},
                       "samples": [make_grid(torch.cat([heldout, y.cpu()]), nrow=len(heldout))]})
    return Path(export_family(model, run.run_dir, styles=styles, recipe=recipe, metrics=metrics))


def mean_terms(per_style: dict[str, dict]) -> dict:
    """The loss terms averaged over a family's paintings (one painting: its own terms)."""
    rows = list(per_style.values())
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
