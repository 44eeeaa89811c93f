"""fastnst: real-time neural style transfer (Johnson et al. 2016 + instance norm + texture networks).

    from fastnst import stylize
    stylize("photo.jpg", "starry-night").save("out.jpg")

The loss network and losses (`VGGFeatures`, `PerceptualLoss`, ...) and video (`stylize_video`: PyAV, OpenCV) are
imported on first use: painting a photo needs neither torchvision, whose import is most of a cold start, nor them.
"""
import importlib

from .device import pick_device
from .errors import (
    FastNSTError,
    HubError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidOptionError,
    LossNetworkUnavailableError,
    StyleNotFoundError,
    WeightsMismatchError,
)
from .imageio import load_image
from .inference import preserve_colors, stylize, stylize_tensor
from .models import TextureNet, TransformerNet, build_model, load_network
from .styles import DEFAULT_STYLE, Style, available_styles, gallery, load_style
from .tiling import tiled_forward

__version__ = "0.1.0"
__all__ = ["DEFAULT_STYLE", "FastNSTError", "HubError", "ImageTooLargeError", "InvalidImageError",
           "InvalidOptionError", "LossNetworkUnavailableError", "PerceptualLoss", "Style", "StyleNotFoundError",
           "TextureNet", "TransformerNet", "VGGFeatures", "WeightsMismatchError", "available_styles", "build_model",
           "content_loss", "gallery", "gram_matrix", "load_image", "load_network", "load_style", "pick_device",
           "preserve_colors", "style_loss", "stylize", "stylize_tensor", "stylize_video", "tiled_forward",
           "total_variation"]

_ON_FIRST_USE = {"PerceptualLoss": "losses", "content_loss": "losses", "gram_matrix": "losses",
                  "style_loss": "losses", "total_variation": "losses", "VGGFeatures": "vgg",
                  "stylize_video": "video"}


def __getattr__(name):
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(f".{_ON_FIRST_USE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
