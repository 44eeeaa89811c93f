"""Run-time plumbing of a training run: DDP ranks, signals, the running loss log, where messages go.

None of it changes what is learned; it is what lets the same loop run in one process or under torchrun, stop
cleanly on a signal, and log without a host sync per step.
"""
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from fastnst.device import pick_device


def training_memory_format(precision: str, device: torch.device) -> torch.memory_format:
    """channels_last is what bf16 convolutions run fastest in, on a GPU and in oneDNN on a CPU alike."""
    return torch.channels_last if device.type == "cuda" or precision == "bf16" else torch.contiguous_format


class Dist:
    """Rank/world from torchrun's environment; a single process otherwise."""

    def __init__(self, device_arg: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank, self.local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(device_arg)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.local_rank)  # one GPU per torchrun process
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a collective: call it at the same step everywhere)."""
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, values: dict) -> dict:
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.stack([values[k].float() for k in keys])
        dist.all_reduce(t)
        return dict(zip(keys, t / self.world))

    def close(self):
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


class StopSignal:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next step boundary and returns cleanly. SIGUSR1
    ("that looks right") finishes the run early instead: held-out losses and the export, at the step reached."""

    def __init__(self):
        self.received = None
        self.finish_early = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a notebook worker): no handler
                pass

    def _handle(self, signum, frame):
        if signum == signal.SIGUSR1:
            self.finish_early = True
        else:
            self.received = signal.Signals(signum).name

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class RunningLog:
    """Loss terms summed on the device between log lines (no host sync per step) and the timing of each line."""

    def __init__(self, step: int):
        self.sums, self.keys, self.step_log = {}, [], step
        self.t_start = self.t_log = time.perf_counter()

    def add(self, terms: dict) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
        self.keys = list(terms)

    def row(self, step: int, g: int, env: Dist) -> dict:
        avg = env.mean({k: v / (step - self.step_log) for k, v in self.sums.items()})
        now = time.perf_counter()
        row = {"step": step, "images": step * g, "elapsed_s": round(now - self.t_start, 3),
               "images_per_s": round((step - self.step_log) * g / (now - self.t_log), 2),
               **{k: f"{float(v):.6g}" for k, v in avg.items()}}
        self.sums, self.t_log, self.step_log = {}, now, step
        return row


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def printer(enabled: bool):
    def say(msg: str):
        if enabled:
            tqdm.write(msg, file=sys.stderr)  # stderr, like the bar: stdout stays clean for scripts
    return say
