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
