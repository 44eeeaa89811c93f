"""Every way a user can hand us a picture, read safely, plus the PIL <-> tensor conversions.

`load_image` is the one door pictures come through (CLI paths, Gradio uploads, bytes from an API, PIL images,
NumPy arrays; photos, paintings and training photos alike). Whatever arrives, it returns a fully decoded 8-bit RGB
`PIL.Image` the right way up, or raises `InvalidImageError` / `ImageTooLargeError` with one sentence a person can
act on. No raw PIL, OS or NumPy error escapes, because the app and the CLI show `str(err)` and nothing else.

Files are opened only with the decoders in `FORMATS` (Pillow's `formats=`): Pillow would otherwise hand an EPS or
PDF renamed `.jpg` to Ghostscript, an external program that can run for ever, and try some forty readers of
formats nobody paints from. What a decode may cost is checked before it runs: the pixel budget against the size
the header declares, and, for the formats whose compression has a known limit, that the file's bytes can hold
that many pixels at all (a 700-byte JPEG can declare 5000×7000 and would decode to 35 MP of grey).
"""

from __future__ import annotations

import io
import os
import stat
import warnings

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError, features

from fastnst.errors import FastNSTError, ImageTooLargeError, InvalidImageError, InvalidOptionError

# ~36 MP covers 8K-ish photos (7680x4320 = 33 MP) while keeping one decoded float tensor under ~0.5 GB.
DEFAULT_MAX_PIXELS: int = 36_000_000
MAX_PIXELS_ENV = "FASTNST_MAX_PIXELS"
BACKGROUND = (255, 255, 255)  # transparent areas become white: what a viewer shows and what paintings expect
RESAMPLE = Image.Resampling.LANCZOS


def _decoders() -> tuple[str, ...]:
    """The formats we open: the six every browser and phone writes, plus AVIF/HEIF where a plugin reads them."""
    Image.init()
    optional = [f for f in ("AVIF", "HEIF") if f in Image.OPEN and (f != "AVIF" or features.check("avif"))]
    return ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", *optional)


FORMATS: tuple[str, ...] = _decoders()
FORMAT_NAMES = ", ".join(FORMATS[:-1]).replace("WEBP", "WebP") + f" or {FORMATS[-1].replace('WEBP', 'WebP')}"
# Fewest bytes a file of each format needs per pixel, from its codec's best possible compression: a JPEG codes
# at least one bit per 8×8 block in its DC scan (1/512 byte a pixel; we ask half that), GIF's LZW at most 4,096
# pixels per 12-bit code. PNG is checked against deflate's limit of 1,032:1 on its raw rows (`_png_floor`).
# WebP, TIFF, BMP (RLE), AVIF and HEIF can code a flat area in almost nothing, so only the pixel budget bounds them.
MIN_BYTES_PER_PIXEL = {"JPEG": 1 / 1024, "MPO": 1 / 1024, "GIF": 1 / 4096}
MAX_JPEG_SCANS = 64  # each progressive scan re-reads every block; encoders write about 10, a hostile file thousands

# Modes whose samples are wider than 8 bits; they are scaled with NumPy rather than Pillow's convert(), which
# clips I;16/I values at 255 (turning a 16-bit photo almost white).
_WIDE_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SUPPORTED_ARRAYS = "H×W, H×W×1, H×W×3 or H×W×4"


def load_image(source, *, max_pixels: int | None = None, draft: tuple[int, int] | None = None) -> Image.Image:
    """Read `source` into a new, fully loaded 8-bit RGB image with EXIF orientation applied.

    `source` may be a path (str or os.PathLike), bytes/bytearray/memoryview, a binary file object, a PIL image
    or a NumPy array (H×W, H×W×1, H×W×3, H×W×4 of uint8, uint16, bool or float in [0, 1]). The pixel budget is
    `max_pixels`, else $FASTNST_MAX_PIXELS, else DEFAULT_MAX_PIXELS. `draft=(w, h)` lets a JPEG decode at 1/2,
    1/4 or 1/8 of its size where that still covers w×h (the budget then applies to that smaller size).
    """
    budget = _budget(max_pixels)
    if source is None:
        raise InvalidImageError("No image was given; choose or upload a photo first.")
    if isinstance(source, np.ndarray):
        return _from_array(source, budget)
    if isinstance(source, Image.Image):
        return _decode(source, budget, label="The image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source) if isinstance(source, memoryview) else source
        return _open_and_decode(lambda: io.BytesIO(data), len(data), budget, draft=draft)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(source, budget, draft)
    if hasattr(source, "read"):
        # Read a stream whole: it may not be seekable (sockets, uploads), it may be text-mode, and we must not
        # close or move a file object that belongs to the caller more than reading it already does.
        try:
            data = source.read()
        except Exception as err:
            raise InvalidImageError("The image could not be read from the file object it was given in.") from err
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidImageError("The file was opened as text; open it in binary mode ('rb') to read an image.")
        return _open_and_decode(lambda: io.BytesIO(data), len(data), budget, draft=draft)
    raise InvalidImageError(
        f"An image cannot be read from a {type(source).__name__}; "
        "pass a file path, bytes, a binary file, a PIL image or a NumPy array."
    )


def quiet_decoder_warnings() -> None:
    """Silence Pillow's warnings about files it reads anyway (corrupt EXIF, odd chunks, its bomb warning, which
    our own budget supersedes): they print Pillow's source paths to stderr, and the person is shown our sentence
    or their picture instead. It changes the whole process, so entry points (the app, the CLIs) call it."""
    warnings.filterwarnings("ignore", module=r"PIL\.")


def image_to_tensor(image) -> torch.Tensor:
    """Anything `load_image` accepts -> float32 tensor (1, 3, H, W) in [0, 1]. RGB PIL images are used as is."""
    if not (isinstance(image, Image.Image) and image.mode == "RGB"):
        image = load_image(image)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> RGB PIL image; out-of-range values are clamped."""
    if not isinstance(tensor, torch.Tensor):
        raise InvalidImageError(f"Expected a torch tensor, not a {type(tensor).__name__}.")
    t = tensor.detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise InvalidImageError(f"Expected a tensor of shape (1, 3, H, W) or (3, H, W), not {tuple(tensor.shape)}.")
    if t.dtype != torch.uint8:
        # Round rather than truncate: truncation darkens every pixel by half a level on average, and breaks the
        # exact uint8 -> float -> uint8 round trip. NaN (a diverged model) becomes black instead of garbage.
        t = t.float().nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return Image.fromarray(t.cpu().permute(1, 2, 0).contiguous().numpy())  # uint8 H×W×3: RGB


def resize_max_side(image: Image.Image, max_side: int | None) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most `max_side`, keeping the aspect ratio."""
    if max_side is None:
        return image
    if max_side < 1:
        raise InvalidOptionError(f"max_side must be a positive number of pixels or None, not {max_side!r}.")
    w, h = image.size
    if max(w, h) <= max_side:
        return image
    scale = max_side / max(w, h)
    # max(1, ...) keeps very thin images (e.g. 10000×3) from collapsing to zero pixels.
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: a cheap box pre-shrink before LANCZOS; visually identical at >= 3 and much faster on 8K input.
    return image.resize(size, RESAMPLE, reducing_gap=3.0)


# ---------------------------------------------------------------------------------------------------------- helpers


def _budget(max_pixels: int | None) -> int:
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw)
        except ValueError:
            raise FastNSTError(f"{MAX_PIXELS_ENV} must be a whole number of pixels, not {raw!r}.") from None
    if max_pixels < 1:
        raise InvalidOptionError(f"max_pixels must be a positive number of pixels, not {max_pixels!r}.")
    return int(max_pixels)


def _mp(pixels: int, digits: int = 1) -> str:
    if pixels < 100_000:
        return f"{pixels:,} pixels"
    return f"{pixels / 1e6:,.{digits}f}".rstrip("0").rstrip(".") + " MP"


def _too_large(size: tuple[int, int], limit: int) -> ImageTooLargeError:
    w, h = size
    if w * h > 1000 * limit:  # no camera makes this: a damaged or made-up header, not a big photo
        return ImageTooLargeError(f"The file declares an impossible size ({w}×{h} pixels), so it is damaged or "
                                  f"not a real picture.")
    digits = 1  # as many decimals as it takes for the image and the limit to read differently
    while digits < 6 and _mp(w * h, digits) == _mp(limit, digits):
        digits += 1
    return ImageTooLargeError(f"The image is {w}×{h} pixels ({_mp(w * h, digits)}), over the limit of "
                              f"{_mp(limit, digits)}; resize it and try again.")


def _limit(budget: int) -> int:
    """Our budget, or Pillow's own decompression-bomb limit where that is lower (it is process-wide)."""
    return min(budget, Image.MAX_IMAGE_PIXELS or budget)


def _check_size(size: tuple[int, int], budget: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise InvalidImageError(f"The image has no pixels ({w}×{h}).")
    if w * h > _limit(budget):
        raise _too_large(size, _limit(budget))


def _png_floor(mode: str, size: tuple[int, int]) -> float:
    bits = {"1": 1, "L": 8, "P": 8, "LA": 16, "RGB": 24, "RGBA": 32, "I;16": 16, "I;16B": 16, "I": 32}
    w, h = size
    return h * (1 + w * bits.get(mode, 1) / 8) / 1032  # P is counted at 1 bit: PNG palettes go down to 1


def _check_bytes(img: Image.Image, declared: tuple[int, int], nbytes: int, label: str) -> None:
    """Refuse a header that declares more pixels than the file's bytes could hold in its format."""
    w, h = declared
    floor = _png_floor(img.mode if img.mode != "P" else "1", declared) if img.format == "PNG" \
        else w * h * MIN_BYTES_PER_PIXEL.get(img.format, 0)
    if nbytes < floor:
        raise InvalidImageError(f"{label} declares {w}×{h} pixels but holds only {nbytes:,} bytes, too few for "
                                f"that picture, so it is damaged or incomplete.")


def _check_scans(fp, label: str) -> None:
    """Refuse a JPEG with more scans than any encoder writes (each one costs a pass over every block)."""
    fp.seek(0)
    scans, tail = 0, b""
    while chunk := fp.read(1 << 20):
        scans += (tail + chunk).count(b"\xff\xda")  # start-of-scan; entropy data escapes every 0xFF
        tail = chunk[-1:]
        if scans > MAX_JPEG_SCANS:
            raise InvalidImageError(f"{label} is a JPEG of more than {MAX_JPEG_SCANS} scans, which no camera or "
                                    f"editor writes, so it is not decoded.")
    fp.seek(0)


def _from_path(path, budget: int, draft=None) -> Image.Image:
    name = os.fspath(path)
    shown = name if isinstance(name, str) else os.fsdecode(name)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise InvalidImageError(f"There is no file at '{shown}'.") from None
    except (OSError, ValueError) as err:  # ValueError: embedded NUL byte in the path
        raise InvalidImageError(f"The path '{shown}' cannot be read as a file.") from err
    if stat.S_ISDIR(st.st_mode):
        raise InvalidImageError(f"'{shown}' is a folder, not an image file.")
    return _open_and_decode(lambda: open(name, "rb"), st.st_size, budget, label=f"'{shown}'", draft=draft)


def _open_and_decode(open_fp, nbytes: int, budget: int, label: str = "The file", draft=None) -> Image.Image:
    """Open with an allowed decoder (header only), check what decoding will cost, then decode, all guarded."""
    if not nbytes:
        raise InvalidImageError(f"{label} is empty (0 bytes), so there is no image to read.")
    try:
        with open_fp() as fp, Image.open(fp, formats=FORMATS) as img:
            declared = img.size  # from the header: no pixel has been decoded yet
            if draft and img.format in ("JPEG", "MPO"):
                img.draft("RGB", draft)  # from here img.size is what load() will allocate
            _check_size(img.size, budget)
            _check_bytes(img, declared, nbytes, label)
            if img.format in ("JPEG", "MPO"):
                _check_scans(fp, label)
            return _decode(img, budget, label=label)
    except Image.DecompressionBombError:  # Pillow refuses > 2x its limit inside open(), before we see the size
        size = _header_size(open_fp)
        if size is None:
            raise ImageTooLargeError(f"{label} declares more than {_mp(_limit(budget))}, over the limit; "
                                     f"resize it and try again.") from None
        raise _too_large(size, _limit(budget)) from None
    except FastNSTError:
        raise
    except PermissionError:
        raise InvalidImageError(f"{label} cannot be opened: permission denied.") from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{label} is not an image fastnst reads; use a {FORMAT_NAMES} file.") from None
    except MemoryError:
        raise ImageTooLargeError("There is not enough memory to decode this image; try a smaller one.") from None
    except Exception as err:  # SyntaxError, struct.error, EOFError, zlib.error... from Pillow's plugins
        raise InvalidImageError(f"{label} is damaged or incomplete, so it could not be decoded.") from err


def _header_size(open_fp) -> tuple[int, int] | None:
    """Width and height from the header of an allowed format, past Pillow's bomb check; only to word the error."""
    try:
        with open_fp() as fp:
            prefix = fp.read(16)
            for fmt in FORMATS:
                factory, accept = Image.OPEN[fmt]
                ok = accept(prefix) if accept else True
                if not ok or isinstance(ok, str):
                    continue
                fp.seek(0)
                try:
                    return tuple(factory(fp, "").size)
                except Exception:
                    continue
    except Exception:
        pass
    return None


def _decode(img: Image.Image, budget: int, label: str) -> Image.Image:
    """Fully decode `img` (current frame only) and return a *new* RGB image; never mutates or returns `img`."""
    if isinstance(img, ImageFile.ImageFile) and img.tile and img.format not in FORMATS:
        # A PIL image the caller opened but has not decoded yet: decoding it could start Ghostscript (EPS).
        raise InvalidImageError(f"{label} is a {img.format} picture, which fastnst does not decode; use a "
                                f"{FORMAT_NAMES} file.")
    try:
        _check_size(img.size, budget)
        img.load()  # lazy decoders fail here (truncated data), so this must be inside the guard
        try:
            upright = ImageOps.exif_transpose(img)  # always a copy, so the caller's image is untouched
        except Exception:
            upright = img.copy()  # broken EXIF must not make a good picture unreadable
        _check_size(upright.size, budget)
        return _to_rgb(upright)
    except FastNSTError:
        raise
    except Image.DecompressionBombError:
        raise _too_large(img.size, _limit(budget)) from None
    except MemoryError:
        raise ImageTooLargeError("There is not enough memory to decode this image; try a smaller one.") from None
    except Exception as err:
        raise InvalidImageError(f"{label} is damaged or incomplete, so it could not be decoded.") from err


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _WIDE_MODES:
        img = Image.fromarray(_to_uint8(np.asarray(img), strict=False))
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        # P/L/RGB + tRNS, PA, LA, RGBA (and premultiplied RGBa/La) all go through straight RGBA, then are
        # composited on white so transparent areas do not turn into whatever colour the hidden pixels hold.
        try:
            rgba = img.convert("RGBA")
        except ValueError:
            rgba = None
        if rgba is not None:
            background = Image.new("RGBA", img.size, BACKGROUND + (255,))
            return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img.copy() if img.readonly else img  # fromarray() images share (read-only) the caller's array
    try:
        return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, L, 1, P, RGBX...
    except ValueError:
        raise InvalidImageError(f"The image uses colour mode {img.mode}, which fastnst cannot convert to RGB.") \
            from None


def _to_uint8(arr: np.ndarray, *, strict: bool) -> np.ndarray:
    """Scale samples to uint8. `strict` (user arrays) refuses ambiguous ranges; PIL's wide modes are guessed."""
    kind, dtype = arr.dtype.kind, arr.dtype
    if kind == "b":
        return arr.astype(np.uint8) * 255
    if dtype == np.uint8:
        return arr
    if kind == "u" and dtype.itemsize == 2:
        # 16-bit full scale 0..65535 -> 0..255, rounded: v/257 (65535 / 255 = 257 exactly).
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if kind == "f":
        if not np.isfinite(arr).all():
            what = "The image array contains" if strict else "The image holds"
            raise InvalidImageError(f"{what} NaN or infinite values, so it is not a picture fastnst can paint.")
        lo, hi = float(arr.min()), float(arr.max())
        if strict and (lo < -0.05 or hi > 1.05):
            raise InvalidImageError(
                f"Float image arrays must hold values from 0 to 1; this one ranges from {lo:g} to {hi:g}."
            )
        scale = 255.0 if hi <= 1.05 else 1.0  # PIL "F" images from TIFFs are usually 0..1 or 0..255
        return np.clip(np.rint(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    if kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if strict:
            if lo < 0 or hi > 255:
                raise InvalidImageError(
                    f"Integer image arrays must hold values from 0 to 255 (or be uint16); this one ranges "
                    f"from {lo} to {hi}."
                )
            return arr.astype(np.uint8)
        # PIL mode "I" (32-bit): 8-bit or 16-bit data stored wide, or a full 32-bit range; pick the smallest fit.
        full = 255 if hi <= 255 else 65535 if hi <= 65535 else hi
        return np.rint(np.clip(arr, 0, None).astype(np.float64) * (255.0 / full)).astype(np.uint8)
    raise InvalidImageError(f"Image arrays must hold uint8, uint16, bool or float values, not {dtype}.")


def _from_array(arr: np.ndarray, budget: int) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise InvalidImageError(f"An image array must be {_SUPPORTED_ARRAYS}; this one has shape {arr.shape}.")
    _check_size((arr.shape[1], arr.shape[0]), budget)  # before any conversion allocates a copy
    try:
        img = Image.fromarray(np.ascontiguousarray(_to_uint8(arr, strict=True)))
        return _to_rgb(img)
    except FastNSTError:
        raise
    except MemoryError:
        raise ImageTooLargeError("There is not enough memory to convert this image; try a smaller one.") from None
    except Exception as err:
        raise InvalidImageError(f"The image array (shape {arr.shape}, {arr.dtype}) could not be converted.") from err
