"""Which device to run on: the one place that decides."""
import torch

from .errors import InvalidOptionError


def pick_device(device=None) -> torch.device:
    """None / "" / "auto" → the GPU if there is one, else the CPU; otherwise the named device, checked."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidOptionError(f"Unknown device {device!r}; use cpu, cuda or cuda:N.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("A CUDA device was asked for, but this machine has no usable GPU.")
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), asked of torch. Only then does bf16 autocast
    speed a CPU up; elsewhere oneDNN emulates it and it is slower than fp32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def pick_precision(precision: str, device: torch.device) -> str:
    """"auto" → bf16 autocast on a GPU and on a CPU with native bf16, fp32 elsewhere; "bf16"/"fp32" as given."""
    if precision not in ("auto", "bf16", "fp32"):
        raise InvalidOptionError(f"precision must be auto, bf16 or fp32, not {precision!r}.")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()) else "fp32"
