"""The image transformation networks. `build_model(config)` turns a config.json dict back into a network,
`load_network(folder)` a style folder (config.json + model.safetensors) into a checked, loaded one."""
from pathlib import Path

from ..errors import StyleNotFoundError, WeightsMismatchError
from ..formats import CONFIG_FILE, WEIGHTS_FILE, current_config, has_network, read_config
from .base import check_state_dict, load_weights
from .norms import NORMS
from .texture_net import TextureNet
from .transformer_net import TransformerNet

ARCHITECTURES = {cls.arch: cls for cls in (TransformerNet, TextureNet)}


def build_model(config: dict):
    """A fresh (untrained) network from a config.json dict; `arch` defaults to the Johnson TransformerNet."""
    config = current_config(config)
    arch = config.pop("arch", TransformerNet.arch)
    if arch not in ARCHITECTURES:
        raise WeightsMismatchError(f"Unknown network architecture {arch!r}; fastnst knows {sorted(ARCHITECTURES)}.")
    try:
        return ARCHITECTURES[arch](**config)
    except (TypeError, ValueError) as err:
        raise WeightsMismatchError(f"The config does not describe a valid {arch} network: {err}.") from err


def load_network(folder, device="cpu"):
    """The network saved in `folder` (config.json + model.safetensors), weights checked, in eval mode on `device`."""
    if not has_network(folder):
        raise StyleNotFoundError(f"{folder} has no fastnst style ({CONFIG_FILE} and {WEIGHTS_FILE}).")
    network = load_weights(build_model(read_config(folder)), Path(folder) / WEIGHTS_FILE)
    return network.to(device).eval().requires_grad_(False)


__all__ = ["ARCHITECTURES", "NORMS", "TextureNet", "TransformerNet", "build_model", "check_state_dict",
           "load_network", "load_weights"]
