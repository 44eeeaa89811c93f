"""`fastnst` command line: stylize a photo, list styles, export a style to ONNX.

    fastnst stylize photo.jpg --style starry-night -o out.jpg [--strength 0.8 --brush 2 --max-side 1024]
    fastnst stylize-video clip.mp4 --style starry-night -o painted.mp4 [--max-side 640 --smooth 0.9]
    fastnst styles
    fastnst export-onnx --style starry-night -o starry.onnx

Every error prints one line to stderr and exits non-zero; no traceback.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .device import keep_freed_memory
from .errors import FastNSTError, InvalidOptionError
from .imageio import quiet_decoder_warnings
from .inference import stylize
from .styles import CHOICES, gallery, load_style

try:  # optional: checks an ONNX export when installed (pip install fastnst[onnx])
    import onnxruntime
except ImportError:
    onnxruntime = None

EXIT_ERROR = 2


def _stylize(args) -> None:
    out = Path(args.output)
    if out.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
        raise InvalidOptionError(f"Output must end in .jpg, .png or .webp, not {out.name!r}.")
    style = load_style(args.style, device=args.device, variant=args.variant)
    result = stylize(args.image, style, strength=args.strength, preserve_color=args.preserve_color,
                     brush=args.brush, max_side=args.max_side, tile=args.tile, device=args.device)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial{out.suffix}")  # never leave a half-written output behind
    result.save(tmp, quality=95)
    tmp.replace(out)
    print(f"{out} ({result.width}×{result.height}, style {style.title})")


def _stylize_video(args) -> None:
    from .video import GPU_LIMITS, VideoLimits, stylize_video  # PyAV and OpenCV load only for video

    out = Path(args.output)
    if out.suffix.lower() != ".mp4":
        raise InvalidOptionError(f"The painted video is written as mp4; name it .mp4, not {out.name!r}.")
    if not Path(args.video).is_file():
        raise InvalidOptionError(f"There is no file at {args.video!r}.")
    style = load_style(args.style, device=args.device, variant=args.variant)
    on_gpu = next(style.network.parameters()).device.type == "cuda"
    limits = GPU_LIMITS if on_gpu else VideoLimits()
    out.parent.mkdir(parents=True, exist_ok=True)

    def progress(done, total, elapsed):
        if sys.stderr.isatty() and (done % 10 == 0 or done == total):
            left = elapsed / done * (total - done)
            print(f"\r{done}/{total} frames, about {left:.0f} s left ", end="", file=sys.stderr, flush=True)

    result = stylize_video(args.video, style, out, strength=args.strength, preserve_color=args.preserve_color,
                           brush=args.brush,
                           max_side=args.max_side or None, device=args.device, limits=limits, progress=progress,
                           **({} if args.smooth is None else {"smooth": args.smooth}))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    sound = "with its sound" if result.audio else "no sound"
    print(f"{out} ({result.frames} frames of {result.width}×{result.height} at {result.fps:g} fps, {sound}, "
          f"style {style.title}, painted in {result.seconds:.0f} s)")


def _styles(args) -> None:
    entries = gallery()
    if not entries:
        print("No gallery styles are embedded; use a Hub repo id (user/repo) or a local folder.")
    for meta in entries:
        variants = ", ".join(meta["variants"]) or f"on the Hub: {meta.get('hub_repo')}"
        print(f"{meta['slug']:<28} {meta.get('title', '')} — {meta.get('artist', '')} ({variants})")


def _export_onnx(args) -> None:
    style = load_style(args.style, device="cpu", variant=args.variant)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, args.size, args.size)
    torch.onnx.export(style.network, (example,), str(out), input_names=["image"], output_names=["stylized"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    "stylized": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=args.opset, dynamo=False)
    message = f"{out}: input 'image' and output 'stylized', (B, 3, H, W) RGB in [0, 1]"
    if onnxruntime is None:
        print(message + " (install onnxruntime to have it checked)")
        return
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    check = torch.rand(1, 3, 68, 92)  # a different, odd-ish size: dynamic axes must work
    got = session.run(None, {"image": check.numpy()})[0]
    with torch.no_grad():
        want = style.network(check).numpy()
    err = float(np.abs(got - want).max())
    if err > 1e-3:
        raise FastNSTError(f"The ONNX export of {args.style} disagrees with PyTorch (max difference {err:.2g}).")
    print(message + f"; checked with onnxruntime (max difference {err:.1e})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastnst", description="Real-time neural style transfer.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def painting(name, summary, source, what, output):
        """A subcommand that paints `what` (photo or video): the options both kinds share."""
        p = commands.add_parser(name, help=summary, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument(source[0], help=source[1])
        p.add_argument("--style", required=True, help="gallery name, Hub repo id (user/repo[@revision]), folder, "
                       "or a mix of gallery styles: starry-night=0.6,the-scream=0.4")
        p.add_argument("-o", "--output", required=True, help=output)
        p.add_argument("--strength", type=float, default=1.0, help=f"0 = the {what}, 1 = fully stylised")
        p.add_argument("--preserve-color", action="store_true", help=f"keep the {what}'s colours")
        p.add_argument("--brush", type=float, default=1.0, help="stroke size: 1 = the network's own strokes, "
                       "0.5 finer, up to 4 broader")
        p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the GPU if there is one)")
        p.add_argument("--variant", default="auto", choices=CHOICES,
                       help="network size for gallery styles (auto: light where there is one)")
        return p

    p = painting("stylize", "paint a photo in a style", ("image", "input photo (jpg, png, webp, ...)"), "photo",
                 "output image (.jpg, .png or .webp)")
    p.add_argument("--max-side", type=int, default=None, help="downscale so the longer side is at most this")
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: automatic; 0 = never)")
    p.set_defaults(run=_stylize)

    p = painting("stylize-video", "paint a video (mp4, mov, mkv, webm) without flicker",
                 ("video", "input video (mp4, mov, mkv or webm)"), "video",
                 "output video (.mp4, H.264; the sound is kept)")
    p.add_argument("--max-side", type=int, default=640, help="the painted frames' longer side (0 = as recorded)")
    p.add_argument("--smooth", type=float, default=None,
                   help="0–0.99: how much of the last frame steadies this one where nothing moved (0 = none: "
                        "flicker; default: fastnst.temporal.SMOOTH)")
    p.set_defaults(run=_stylize_video)

    p = commands.add_parser("styles", help="list the gallery styles")
    p.set_defaults(run=_styles)

    p = commands.add_parser("export-onnx", help="export a style's network to ONNX",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--style", required=True, help="gallery name, Hub repo id or folder")
    p.add_argument("-o", "--output", required=True, help="output .onnx file")
    p.add_argument("--variant", default="auto", choices=CHOICES, help="network size")
    p.add_argument("--size", type=int, default=256, help="example input size used for tracing")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.set_defaults(run=_export_onnx)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    quiet_decoder_warnings()  # the person reads our sentence, not Pillow's warnings and paths
    try:
        args.run(args)
    except FastNSTError as err:
        print(f"fastnst: {err}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:  # e.g. an unwritable output folder
        print(f"fastnst: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fastnst: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
