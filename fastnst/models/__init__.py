"""The image transformation networks. `build_model(config)` turns a config.json dict back into a network."""
from .hub import NORMS, check_state_dict, load_weights
from .texture_net import TextureNet
from .transformer_net import TransformerNet

ARCHITECTURES = {cls.arch: cls for cls in (TransformerNet, TextureNet)}


def build_model(config: dict):
    """A fresh (untrained) network from a config.json dict; `arch` defaults to the Johnson TransformerNet."""
    from ..errors import WeightsMismatchError

    config = dict(config)
    arch = config.pop("arch", TransformerNet.arch)
    if arch not in ARCHITECTURES:
        raise WeightsMismatchError(f"Unknown network architecture {arch!r}; fastnst knows {sorted(ARCHITECTURES)}.")
    try:
        return ARCHITECTURES[arch](**config)
    except (TypeError, ValueError) as err:
        raise WeightsMismatchError(f"The config does not describe a valid {arch} network: {err}.") from err


__all__ = ["ARCHITECTURES", "NORMS", "TextureNet", "TransformerNet", "build_model", "check_state_dict",
           "load_weights"]
