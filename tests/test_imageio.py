"""fastnst.imageio: hostile and odd inputs. Every image is generated here, tiny, in memory or in tmp_path."""

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from fastnst.errors import ImageTooLargeError, InvalidImageError
from fastnst.imageio import (
    DEFAULT_MAX_PIXELS,
    image_to_tensor,
    load_image,
    resize_max_side,
    tensor_to_image,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def encode(img, fmt, **kwargs):
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def raises(exc_type, source, **kwargs):
    """Call load_image, require exactly `exc_type` and a message fit to show a person."""
    with pytest.raises(exc_type) as info:
        load_image(source, **kwargs)
    assert type(info.value) is exc_type
    msg = str(info.value)
    assert msg and msg.endswith("."), msg
    assert "\n" not in msg and "Traceback" not in msg and "Errno" not in msg and "<" not in msg, msg
    assert msg[0].isupper() or msg[0] == "'", msg
    return msg


def close(a, b, tol=6):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def checked(img):
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    return img


def noise_jpeg(size=64):
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), "JPEG", quality=95)


def png_claiming(width, height):
    """A valid 1×1 PNG whose IHDR (with a correct CRC) claims width×height: a decompression bomb header."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# ------------------------------------------------------------------------------------------------- hostile input


def test_empty_inputs(tmp_path):
    assert "empty" in raises(InvalidImageError, b"")
    assert "empty" in raises(InvalidImageError, bytearray())
    assert "empty" in raises(InvalidImageError, io.BytesIO())
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in raises(InvalidImageError, tmp_path / "empty.png")
    raises(InvalidImageError, None)


def test_truncated_jpeg_is_an_error_not_a_grey_half_image():
    data = noise_jpeg()
    assert checked(load_image(data)).size == (64, 64)
    assert "damaged" in raises(InvalidImageError, data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_text_file_with_jpg_extension(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_text("this is not a picture, just some words\n" * 20)
    msg = raises(InvalidImageError, str(path))
    assert "not an image" in msg and "holiday.jpg" in msg
    raises(InvalidImageError, b"%PDF-1.7 not really")


def test_missing_path_and_folder(tmp_path):
    assert "no file" in raises(InvalidImageError, str(tmp_path / "nope.png"))
    assert "folder" in raises(InvalidImageError, tmp_path)


def test_text_mode_stream_and_unsupported_type(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(encode(Image.new("RGB", (2, 2), RED), "PNG"))
    with open(path, encoding="latin-1") as fh:
        assert "binary" in raises(InvalidImageError, fh)
    raises(InvalidImageError, {"not": "an image"})


def test_decompression_bomb_header():
    bomb = png_claiming(30000, 30000)
    msg = raises(ImageTooLargeError, bomb)  # Pillow's DecompressionBombError, reworded
    assert "30000×30000" in msg and "900 MP" in msg and "36 MP" in msg
    # Above our budget but below Pillow's error threshold: our own header check refuses it before decoding.
    assert "20000×20000" in raises(ImageTooLargeError, png_claiming(20000, 20000))
    assert isinstance(ImageTooLargeError("x"), InvalidImageError)  # callers may catch the parent


def test_decompression_bomb_warning_becomes_error_without_global_changes():
    before_limit, before_filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    # 10000×10000 = 100 MP is only a *warning* in Pillow (limit ~89 MP); a huge budget leaves Pillow's guard.
    msg = raises(ImageTooLargeError, png_claiming(10000, 10000), max_pixels=10**9)
    assert "10000×10000" in msg
    assert Image.MAX_IMAGE_PIXELS == before_limit
    assert warnings.filters == before_filters
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pixel_budget(monkeypatch):
    data = encode(Image.new("RGB", (20, 20), RED), "PNG")
    assert checked(load_image(data, max_pixels=400)).size == (20, 20)
    msg = raises(ImageTooLargeError, data, max_pixels=399)
    assert "20×20" in msg and "399" in msg
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "100")
    raises(ImageTooLargeError, data)
    assert load_image(data, max_pixels=1000).size == (20, 20)  # the argument beats the environment
    raises(ImageTooLargeError, np.zeros((20, 20, 3), np.uint8))  # arrays obey the budget too
    monkeypatch.delenv("FASTNST_MAX_PIXELS")
    assert DEFAULT_MAX_PIXELS == 36_000_000


def test_zero_size_image():
    raises(InvalidImageError, Image.new("RGB", (0, 5)))
    raises(InvalidImageError, np.zeros((0, 4, 3), np.uint8))


# --------------------------------------------------------------------------------------------- odd but valid input


def test_one_pixel_image_and_sources(tmp_path):
    data = encode(Image.new("RGB", (1, 1), GREEN), "PNG")
    path = tmp_path / "one.png"
    path.write_bytes(data)
    for source in (data, bytearray(data), memoryview(data), io.BytesIO(data), path, str(path)):
        img = checked(load_image(source))
        assert img.size == (1, 1) and img.getpixel((0, 0)) == GREEN


def test_pil_input_is_not_mutated():
    original = Image.new("RGBA", (3, 3), (0, 0, 255, 0))
    out = checked(load_image(original))
    assert out is not original and original.mode == "RGBA" and out.getpixel((1, 1)) == WHITE
    rgb = Image.new("RGB", (2, 2), BLUE)
    assert load_image(rgb) is not rgb


def test_cmyk_jpeg():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red in CMYK
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert close(checked(load_image(data)).getpixel((8, 8)), RED, tol=10)


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV", "P", "L", "1", "RGBX"])
def test_other_colour_modes(mode):
    colour = WHITE if mode == "1" else (200, 30, 40) if mode != "L" else (90, 90, 90)
    src = Image.new("RGB", (4, 4), colour)
    src = src.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else src.convert(mode)
    assert close(checked(load_image(src)).getpixel((1, 1)), colour, tol=12)


def test_16bit_grayscale_png_is_scaled_not_clipped():
    gradient = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))
    data = encode(Image.fromarray(gradient), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = np.asarray(checked(load_image(data)))
    row = out[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and abs(int(row[128]) - 128) <= 1
    assert np.all(np.diff(row.astype(int)) >= 0) and (row == 255).sum() == 1
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_wide_pil_modes():
    i32 = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert i32.mode == "I" and load_image(i32).getpixel((1, 0)) == WHITE
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert f.mode == "F" and [load_image(f).getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_animated_gif_and_apng_give_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, GREEN, BLUE)]
    for fmt in ("GIF", "PNG", "WEBP"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3, fmt
        assert close(checked(load_image(data)).getpixel((4, 4)), RED, tol=8), fmt


def test_palette_with_transparency_becomes_white():
    img = Image.new("P", (4, 2), 1)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    for x in range(2):
        for y in range(2):
            img.putpixel((x, y), 0)
    data = encode(img, "PNG", transparency=0)
    out = checked(load_image(data))
    assert out.getpixel((0, 0)) == WHITE and out.getpixel((3, 1)) == BLUE


def test_rgba_half_transparent_on_white():
    img = Image.new("RGBA", (2, 1), (255, 0, 0, 128))
    img.putpixel((1, 0), (0, 0, 0, 0))
    out = checked(load_image(encode(img, "PNG")))
    assert close(out.getpixel((0, 0)), (255, 127, 127), tol=1)
    assert out.getpixel((1, 0)) == WHITE


def test_la_and_rgb_trns():
    la = Image.new("LA", (2, 1), (100, 255))
    la.putpixel((1, 0), (0, 0))
    out = checked(load_image(encode(la, "PNG")))
    assert out.getpixel((0, 0)) == (100, 100, 100) and out.getpixel((1, 0)) == WHITE
    rgb = Image.new("RGB", (2, 1), GREEN)
    rgb.putpixel((1, 0), BLUE)
    out = checked(load_image(encode(rgb, "PNG", transparency=BLUE)))  # tRNS chunk on an RGB PNG
    assert out.getpixel((0, 0)) == GREEN and out.getpixel((1, 0)) == WHITE


def test_exif_orientation_applied():
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = checked(load_image(encode(img, "JPEG", exif=exif, quality=95)))
    assert out.size == (20, 40)
    assert close(out.getpixel((10, 5)), RED, tol=12) and close(out.getpixel((10, 35)), BLUE, tol=12)


def test_numpy_arrays():
    u8 = np.zeros((3, 5, 3), np.uint8)
    u8[..., 0] = 255
    out = checked(load_image(u8))
    assert out.size == (5, 3) and out.getpixel((4, 2)) == RED
    u8[...] = 0  # the result must not share memory with the caller's array
    assert out.getpixel((4, 2)) == RED
    assert load_image(np.full((2, 2, 3), 0.5, np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.full((2, 2), 65535, np.uint16)).getpixel((0, 0)) == WHITE
    assert load_image(np.full((2, 2), 257 * 10, np.uint16)).getpixel((0, 0)) == (10, 10, 10)
    assert load_image(np.ones((2, 2, 1), bool)).getpixel((0, 0)) == WHITE
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent black -> white
    assert load_image(rgba).getpixel((0, 0)) == WHITE
    assert load_image(np.full((2, 2), 7, np.int64)).getpixel((0, 0)) == (7, 7, 7)
    assert load_image(np.zeros((4, 6, 3), np.uint8)[:, ::2]).size == (3, 4)  # non-contiguous view


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((1, 2, 2, 3), np.uint8),  # 4-D batch
        np.zeros((2, 2, 2), np.uint8),  # two channels
        np.zeros(5, np.uint8),  # 1-D
        np.full((2, 2, 3), np.nan, np.float32),
        np.full((2, 2, 3), np.inf, np.float64),
        np.full((2, 2, 3), 200.0),  # float in 0..255: ambiguous, refused
        np.full((2, 2), 300, np.int32),
        np.zeros((2, 2), np.complex64),
        np.array([["a", "b"]], dtype=object),
    ],
)
def test_bad_numpy_arrays(arr):
    raises(InvalidImageError, arr)


# ------------------------------------------------------------------------------------------------------- tensors


def test_tensor_round_trip_is_exact():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    t = image_to_tensor(Image.fromarray(arr))
    assert t.shape == (1, 3, 7, 9) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    back = tensor_to_image(t)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), arr)
    assert np.array_equal(np.asarray(tensor_to_image(t[0])), arr)
    assert image_to_tensor(arr).shape == (1, 3, 7, 9)  # anything load_image accepts
    assert image_to_tensor(encode(Image.new("L", (3, 2), 255), "PNG")).min() == 1.0


def test_tensor_to_image_clamps_and_rounds():
    t = torch.tensor([-1.0, 2.0, 0.6 / 255, float("nan")]).view(1, 1, 4).expand(3, 1, 4)
    assert [p[0] for p in np.asarray(tensor_to_image(t))[0]] == [0, 255, 1, 0]
    with pytest.raises(InvalidImageError):
        tensor_to_image(torch.zeros(1, 1, 4, 4))


def test_resize_max_side():
    img = Image.new("RGB", (400, 100), RED)
    assert resize_max_side(img, None) is img
    assert resize_max_side(img, 1000) is img  # never upscales
    small = resize_max_side(img, 100)
    assert small.size == (100, 25) and close(small.getpixel((50, 12)), RED, tol=1)
    assert resize_max_side(Image.new("RGB", (3000, 2), RED), 100).size == (100, 1)
    with pytest.raises(ValueError):
        resize_max_side(img, 0)


# ------------------------------------------------------------------------------------- the decoder allow-list


LOOPING_EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n{ } loop\n%%EOF\n"


def jpeg_claiming(width, height):
    """A valid 64×64 grey JPEG whose frame header claims width×height: ~700 bytes that decode to that many."""
    data = bytearray(encode(Image.new("RGB", (64, 64), (128, 128, 128)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_postscript_is_refused_without_starting_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    marker = tmp_path / "gs-ran"
    fake_gs = tmp_path / "bin" / "gs"
    fake_gs.parent.mkdir()
    fake_gs.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\n")
    fake_gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_gs.parent}:/usr/bin:/bin")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # look for gs again, on this PATH
    # The control: plain Pillow hands this file to whatever `gs` is installed, whatever its name says.
    try:
        Image.open(io.BytesIO(LOOPING_EPS)).load()
    except Exception:
        pass
    assert marker.exists()
    marker.unlink()
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)

    path = tmp_path / "holiday.png"
    path.write_bytes(LOOPING_EPS)
    for source in (LOOPING_EPS, path, io.BytesIO(LOOPING_EPS)):
        msg = raises(InvalidImageError, source)
        assert "JPEG, PNG, WebP, GIF, BMP, TIFF" in msg
    # A PIL image the caller opened but did not decode is refused too, before load() could start gs.
    msg = raises(InvalidImageError, Image.open(io.BytesIO(LOOPING_EPS)))
    assert "EPS" in msg
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["ICO", "PCX", "SGI", "PPM", "TGA", "XBM", "IM", "DDS", "QOI"])
def test_formats_outside_the_allow_list_are_refused(fmt):
    img = Image.new("1" if fmt == "XBM" else "RGB", (16, 16), 1 if fmt == "XBM" else RED)
    assert Image.open(io.BytesIO(encode(img, fmt))).format  # Pillow itself reads it
    msg = raises(InvalidImageError, encode(img, fmt))
    assert "is not an image fastnst reads" in msg


def test_allowed_formats_are_the_promised_ones():
    from fastnst.imageio import FORMATS

    assert FORMATS[:6] == ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
    assert set(FORMATS[6:]) <= {"AVIF", "HEIF"}
    for fmt in FORMATS:
        if fmt != "HEIF":
            assert checked(load_image(encode(Image.new("RGB", (16, 16), BLUE), fmt))).size == (16, 16), fmt


def test_a_header_that_the_bytes_cannot_hold_is_refused_before_decoding():
    lie = jpeg_claiming(5000, 7000)
    assert len(lie) < 2000 and Image.open(io.BytesIO(lie)).size == (5000, 7000)
    msg = raises(InvalidImageError, lie)
    assert "5000×7000" in msg and f"{len(lie):,} bytes" in msg
    assert "declares 3000×3000" in raises(InvalidImageError, png_claiming(3000, 3000))
    # Honest files as small as their content allows still load: a flat 2000×1500 JPEG and a 1-bit PNG.
    assert load_image(encode(Image.new("RGB", (2000, 1500), RED), "JPEG")).size == (2000, 1500)
    assert load_image(encode(Image.new("1", (3000, 2000), 1), "PNG", optimize=True)).size == (3000, 2000)
    assert load_image(encode(Image.new("P", (3000, 2000), 3), "GIF")).size == (3000, 2000)


def test_a_jpeg_of_thousands_of_scans_is_not_decoded():
    data = encode(Image.new("RGB", (16, 16), RED), "JPEG", progressive=True)
    eoi = data.rindex(b"\xff\xd9")
    empty_scan = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"  # header of a scan with no data
    msg = raises(InvalidImageError, data[:eoi] + empty_scan * 100 + data[eoi:])
    assert "more than 64 scans" in msg


def test_size_messages_use_true_numbers():
    msg = raises(ImageTooLargeError, png_claiming(6001, 6000))
    assert "36.01 MP" in msg and "limit of 36 MP" in msg
    msg = raises(ImageTooLargeError, png_claiming(2**31 - 1, 2**31 - 1))
    assert "impossible size" in msg and "MP" not in msg
    nan = Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32))
    assert "array" not in raises(InvalidImageError, encode(nan, "TIFF"))


def test_quiet_decoder_warnings_silences_pillow_only(tmp_path):
    import subprocess
    import sys

    # EXIF whose one tag points 1,000 bytes past the data: Pillow warns as it reads it (its file path included).
    ifd = struct.pack("<IHHHII", 8, 1, 0x010E, 2, 100, 1000) + struct.pack("<I", 0)
    data = encode(Image.new("RGB", (8, 8), RED), "JPEG", exif=b"Exif\x00\x00II*\x00" + ifd)
    path = tmp_path / "corrupt-exif.jpg"
    path.write_bytes(data)
    code = ("import sys, warnings; from fastnst.imageio import load_image, quiet_decoder_warnings\n"
            "if sys.argv[1] == 'quiet': quiet_decoder_warnings()\n"
            f"load_image({str(path)!r}); warnings.warn('ours')\n")
    loud = subprocess.run([sys.executable, "-c", code, "loud"], capture_output=True, text=True)
    quiet = subprocess.run([sys.executable, "-c", code, "quiet"], capture_output=True, text=True)
    assert "PIL" in loud.stderr and "ours" in loud.stderr
    assert "PIL" not in quiet.stderr and "ours" in quiet.stderr
