"""A run's checkpoint: what is saved every `checkpoint_every` steps and on a signal (weights, Adam's moments, the
GradScaler, the step and the RNG states), and how `--resume` takes it back.

Written to a temp file and renamed, so a crash mid-write never leaves a truncated checkpoint; read with
weights_only, because it is the trainer's own file of tensors. A checkpoint continues only under the recipe it was
trained with.
"""
import os
from dataclasses import asdict
from pathlib import Path

import torch

from .recipe import Recipe, TrainingError
from .run_folder import RunFolder

COMPUTED_AS = ("precision",)  # recipe fields a resumed run may change


def save_checkpoint(folder: RunFolder, state: dict) -> None:
    """torch.save to a temp file, then rename: a crash mid-write never leaves a truncated checkpoint."""
    tmp = folder.temp_checkpoint()
    torch.save(state, tmp)
    os.replace(tmp, folder.checkpoint)


def read_checkpoint(folder: RunFolder, resume: bool) -> dict | None:
    """The run's checkpoint when resuming; a folder that already holds a run is refused without --resume."""
    if not folder.checkpoint.is_file():
        return None
    if not resume:
        raise TrainingError(f"{folder.root} already holds a training run; pass --resume to continue it or "
                            f"choose another --out.")
    return torch.load(folder.checkpoint, map_location="cpu", weights_only=True)  # our own file, tensors only


def snapshot(net: torch.nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, step: int,
             config: dict, cache, device: torch.device) -> dict:
    """What a checkpoint holds: with batches and noise functions of (seed, step), all a run needs to go on."""
    rng = {"torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    return {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step, "config": config, "rng": rng,
            "scaler": scaler.state_dict(), "data": {"count": cache.count, "cache": cache.path.stem}}


def restore(ckpt: dict, net: torch.nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
            device: torch.device) -> int:
    """Load a checkpoint into the network, optimizer and scaler and restore its RNG states; returns its step."""
    net.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    restore_rng(ckpt["rng"], device)
    return ckpt["step"]


def restore_rng(rng: dict, device: torch.device) -> None:
    """The checkpoint's RNG states, as far as this machine has their devices. The CUDA state is this process's
    device's alone (older checkpoints hold one per GPU of the saving machine): a run on fewer GPUs skips the
    rest, which costs nothing, because batches and noise come from their own seeded generators and nothing
    draws from the default CUDA generator."""
    torch.set_rng_state(rng["torch"])
    states = rng.get("cuda")
    if device.type != "cuda" or states is None or len(states) == 0:
        return
    if isinstance(states, torch.Tensor):
        torch.cuda.set_rng_state(states, device)
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index < len(states):
        torch.cuda.set_rng_state(states[index], device)


def check_same_recipe(then: dict, recipe: Recipe, run_dir: Path) -> None:
    """A checkpoint continues only under the recipe it was trained with (what the weights learned depends on
    every field of it); keys a newer version added compare as their defaults. The precision is how the arithmetic
    is done, chosen per machine (and on a CPU by timing): a run may continue in another one, on another card."""
    defaults = asdict(Recipe())
    changed = [f"{name} ({then.get(name, defaults[name])!r} → {now!r})" for name, now in recipe.learned().items()
               if name not in COMPUTED_AS and then.get(name, defaults[name]) != now]
    if changed:
        raise TrainingError(f"Cannot resume {run_dir} with a different recipe: {', '.join(changed)}.")
