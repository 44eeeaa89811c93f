"""Exceptions that reach users. Each carries one human sentence; the CLI prints it and the app shows it.

Everything a user can get wrong (a bad photo, an unknown style, weights that do not fit) raises a subclass of
`FastNSTError`, so callers can catch one type and show `str(err)` without a traceback.
"""


class FastNSTError(Exception):
    """Base class: `str(err)` is a complete sentence meant for the person using fastnst."""


class InvalidImageError(FastNSTError, ValueError):
    """The input could not be read as an image (empty, truncated, not an image, unsupported)."""


class ImageTooLargeError(InvalidImageError):
    """The image exceeds the pixel budget or trips Pillow's decompression-bomb guard."""


class StyleNotFoundError(FastNSTError, LookupError):
    """No style with that name in the gallery, the Hugging Face cache, the Hub or on disk."""


class WeightsMismatchError(FastNSTError, ValueError):
    """A weights file does not fit the network its config describes (missing, extra or mis-shaped tensors)."""


class LossNetworkUnavailableError(FastNSTError, RuntimeError):
    """No VGG weights could be had: neither a local safetensors file nor torchvision's download."""


class HubError(FastNSTError, RuntimeError):
    """Talking to the Hugging Face Hub failed (no network, no such repo or revision, no permission)."""


class InvalidOptionError(FastNSTError, ValueError):
    """An option is out of range (strength outside 0..1, a negative size, an unknown device)."""
