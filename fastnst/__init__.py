"""fastnst: real-time neural style transfer (Johnson et al. 2016 + instance norm + texture networks).

    from fastnst import stylize
    stylize("photo.jpg", "starry-night").save("out.jpg")
"""
from .errors import (FastNSTError, HubError, ImageTooLargeError, InvalidImageError, InvalidOptionError,
                     LossNetworkUnavailableError, StyleNotFoundError, WeightsMismatchError)
from .imageio import load_image
from .inference import pick_device, preserve_colors, stylize, stylize_tensor, tiled_forward
from .losses import PerceptualLoss, content_loss, gram_matrix, style_loss, total_variation
from .models import TextureNet, TransformerNet, build_model
from .styles import DEFAULT_STYLE, Style, available_styles, gallery, load_style
from .vgg import VGGFeatures

__version__ = "0.1.0"
