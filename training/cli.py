"""Command line: `python -m training --style painting.jpg --data coco/train2014 --out runs/starry [...]`.

Two forms share one entry point (`main`, also the `fastnst-train` console script):

    python -m training --style S --data D --out RUN_DIR [options]      train (or --resume), export, optionally push
    python -m training --style A --style B:weight=2 ... --out RUN_DIR  one family network for several paintings
    python -m training --style NEW --from RUN_OR_STYLE ... --out RUN   a new style from a trained network
    python -m training --recipe training/recipes/gallery.json --data D --out RUN   a recipe file; flags override it
    python -m training push RUN_DIR --repo user/name [--private]        (re)try publishing a finished run

Under `torchrun --nproc-per-node N python -m training ...` the same command trains with DDP.
User mistakes (a FastNSTError, a missing file) print one line to stderr and exit with status 2; the same sentence
goes to RUN_DIR/failure.txt (training.run_folder) when RUN_DIR exists, for a parent process to read (training.fit).
"""
import argparse
import signal
import sys
from dataclasses import asdict, fields
from pathlib import Path

from fastnst.device import PRECISIONS, keep_freed_memory
from fastnst.errors import FastNSTError
from fastnst.imageio import quiet_decoder_warnings

from . import data as D
from . import recipe as R
from .paintings import parse_paintings
from .publish import push_run, repo_for
from . import run_folder
from .run_folder import RunFolder
from .trainer import train

EPILOG = f"""outputs in RUN_DIR (training.run_folder):
{run_folder.__doc__.split(chr(10) * 2)[1]}

Publish a finished run later with:
  python -m training push RUN_DIR --repo user/name [--private] [--revision BRANCH]"""
HUB_OPTIONS = ("push_to_hub", "private", "revision")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the epilog's lines as written."""


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="Train a fast style-transfer network for "
                                "one painting (Johnson et al. 2016), or one family network for several (Dumoulin "
                                "et al. 2017), and publish it.", epilog=EPILOG, formatter_class=HelpFormatter)
    d = {f.name: f.default for f in (*fields(R.Recipe), *fields(R.RunOptions))}
    _what_and_where(p, d)
    _network(p, d)
    _recipe(p, d)
    _running(p, d)
    return p


def _what_and_where(p: argparse.ArgumentParser, d: dict) -> None:
    """The run's inputs and outputs: paintings, photos, run folder, Hub repo."""
    io = p.add_argument_group("what and where")
    io.add_argument("--recipe", metavar="FILE.json", default=None, help="start from this recipe (keys as in "
                    "training/recipes/*.json: what is learned, not how it runs); any flag given overrides its value")
    io.add_argument("--style", action="append", metavar="PAINTING[:weight=W,size=S]",
                    help="the painting (jpg/png/webp); repeat it to train one family network for several paintings "
                    "(each exported on its own), each with its own style weight and size if given; required unless "
                    "--recipe names them (given, these replace the recipe's)")
    io.add_argument("--data", help="folder of photos (searched recursively, e.g. COCO train2014) "
                    "or a text file listing them, one path per line relative to the file; required unless --recipe "
                    "names it")
    io.add_argument("--out", required=True, help="run directory for checkpoints, samples, history and exports")
    io.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    io.add_argument("--from", dest="from_network", metavar="RUN_OR_STYLE", default=None,
                    help="start from this network (a run directory, style folder, gallery name or Hub id): first "
                    "only the paintings' scale/shift learn (--norm-only-images), then all weights")
    io.add_argument("--push-to-hub", metavar="USER/NAME", default=None, help="publish the export to this Hub repo "
                    "(a family: one repo per painting, USER/NAME-<painting>)")
    io.add_argument("--private", action="store_true", help="create the Hub repo as private")
    io.add_argument("--revision", default=None, help="Hub branch to push to (default: main)")
    io.add_argument("--title", default=None, help="the style's name on its model card (default: from the "
                    "painting's file name, e.g. starry_night.jpg → Starry Night)")
    io.add_argument("--artist", default=None, help="the painter, for the model card")


def _network(p: argparse.ArgumentParser, d: dict) -> None:
    """The network's shape."""
    net = p.add_argument_group("network")
    net.add_argument("--arch", choices=("transformer", "texture"), default=d["arch"],
                     help="Johnson's TransformerNet or Ulyanov's multi-scale TextureNet")
    net.add_argument("--norm", choices=("instance", "batch"), default=d["norm"])
    net.add_argument("--width", type=float, default=None, help="channel multiplier (0.5: the light CPU net); "
                     "default: --from's, else 1; wider than --from's widens it (Net2Net: starts painting as it does)")
    net.add_argument("--residual-blocks", type=int, default=None, help="TransformerNet depth; default: --from's, "
                     "else 5")
    net.add_argument("--texture-only", action="store_true", help="texture synthesis: noise in, style loss only "
                     "(implies --arch texture)")


def _recipe(p: argparse.ArgumentParser, d: dict) -> None:
    """What is learned and how: the budget, the optimiser, the loss."""
    rec = p.add_argument_group("recipe")
    rec.add_argument("--image-steps", type=int, default=d["image_steps"], help="training budget in images "
                     "(160k = 2 epochs of COCO); steps = this / (batch size × GPUs)")
    rec.add_argument("--batch-size", type=int, default=None, help=f"per process; default {R.BATCH_CPU} on CPU, "
                     f"{R.BATCH_GPU} on a GPU")
    rec.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate")
    rec.add_argument("--lr-schedule", choices=R.LR_SCHEDULES, default=d["lr_schedule"], help="cosine: from --lr "
                     "down to 0 at the last step")
    rec.add_argument("--norm-only-images", type=int, default=None, help=f"with --from: image-steps in which only "
                     f"the scale/shift learn (default {R.NORM_ONLY_IMAGES})")
    rec.add_argument("--crop", type=int, default=d["crop"], help="training crop size")
    rec.add_argument("--prep-side", type=int, default=None, help="photos are cached with their shorter side "
                     "resized to this and centre-cropped square; default round(crop × 1.15)")
    rec.add_argument("--style-size", type=int, default=d["style_size"], help="downscale the painting so its "
                     "longer side is at most this (0: use it as is); brush strokes scale with it")
    scale = ("default: by the loss network's activation scale, 1e5 / 1e10 (content / style) for torchvision's "
             "VGG (pytorch/examples), 1 / 1.5 (VGG16) or 1 / 3 (VGG19) for Caffe-converted files")
    rec.add_argument("--content-weight", type=float, default=None, help=scale)
    rec.add_argument("--style-weight", type=float, default=None, help="see --content-weight")
    rec.add_argument("--tv-weight", type=float, default=d["tv_weight"], help="total-variation smoothing")
    rec.add_argument("--palette-weight", type=float, default=d["palette_weight"], help="pull the colours toward "
                     "the painting's (sliced Wasserstein), apart from its texture; 0 = off")
    rec.add_argument("--gamut-weight", type=float, default=d["gamut_weight"], help="pull every colour toward "
                     "the nearest of the painting's (stray ones the palette term leaves, such as green eyes); 0 = off")
    rec.add_argument("--content-layers", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                     default=d["content_layers"], help="loss-network layers the photo is kept at, comma-separated "
                     "(default the loss network's own: relu2_2 for vgg16, relu4_2 for vgg19)")
    rec.add_argument("--stability-weight", type=float, default=d["stability_weight"], help="weight of the "
                     "stability loss (training.stability): the same strokes when the photo moves a few pixels; "
                     "0 = off")
    rec.add_argument("--loss-arch", choices=sorted(R.LOSS_LAYERS), default=d["loss_arch"],
                     help="vgg16: content relu2_2, style relu1_2/2_2/3_3/4_3 (Johnson); vgg19: content relu4_2, "
                     "style relu1_1..relu5_1 (Gatys)")
    rec.add_argument("--loss-weights", default=None, help="VGG features as a safetensors file, or 'imagenet' "
                     "(torchvision download) or 'random' (tests only); default $FASTNST_VGG_WEIGHTS, else imagenet")
    rec.add_argument("--seed", type=int, default=d["seed"])


def _running(p: argparse.ArgumentParser, d: dict) -> None:
    """How this process runs the recipe: device, precision, logging, checkpoints."""
    run = p.add_argument_group("running")
    run.add_argument("--device", default=d["device"], help="auto, cpu, cuda or cuda:N")
    run.add_argument("--precision", choices=PRECISIONS, default=d["precision"],
                     help="auto: bf16 autocast on GPUs with native bf16 (compute capability 8.0 on) and on CPUs where "
                          "it is measurably faster, fp16 with a GradScaler on older GPUs (T4, V100), else fp32")
    run.add_argument("--compile", action="store_true", help="torch.compile the training step (GPU)")
    run.add_argument("--log-every", type=int, default=d["log_every"], help="steps between log lines (each syncs)")
    run.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"], help="steps between checkpoints")
    run.add_argument("--sample-every", type=int, default=d["sample_every"], help="steps between sample grids")
    run.add_argument("--heldout", type=int, default=d["heldout"], help="photos kept out of training for samples "
                     "and final losses (at most a fifth of the data)")
    run.add_argument("--stop-at", type=int, default=None, metavar="STEP", help="checkpoint and stop at this step "
                     "(continue later with --resume)")
    run.add_argument("--preview-every", type=int, default=None, metavar="STEPS", help="write the network as it is "
                     "to RUN/preview every STEPS steps (a live preview); SIGUSR1 finishes the run early, exported")
    run.add_argument("--cache-dir", default=None, help=f"where decoded photos are cached (default {D.CACHE_DIR})")
    run.add_argument("--data-workers", type=int, default=None, help="decoding threads for the one-time cache "
                     "(default: all cores, at most 16)")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def push_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training push", description="Publish a finished run's export to "
                                "the Hugging Face Hub (token: $HF_TOKEN or `hf auth login`).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="the run directory (--out of the training run)")
    p.add_argument("--repo", required=True, metavar="USER/NAME", help="Hub model repo")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--revision", default=None, help="branch to push to (default: main)")
    return p


def push(run_dir, repo: str, *, private: bool = False, revision: str | None = None) -> list[str]:
    """Publish a finished run, a family as one repo per painting (`repo-<slug>`); a failure raises HubError naming
    the retry command (training.publish.push_run)."""
    urls = []
    for slug in RunFolder(run_dir).exported_styles():
        urls.append(push_run(Path(run_dir), repo, private=private, revision=revision, subfolder=slug))
        print(f"published {repo_for(repo, slug)}: {urls[-1]}")
    return urls


def parse_train_args(argv: list[str]) -> tuple[R.TrainConfig, dict]:
    """The training command as (config, hub options). With --recipe the file's values become the parser's
    defaults, so a flag given on the command line overrides the file and nothing else does."""
    parser = train_parser()
    known, _ = parser.parse_known_args(argv)
    recipe = R.Recipe.from_json(known.recipe) if known.recipe else R.Recipe()
    parser.set_defaults(**{k: v for k, v in asdict(recipe).items() if k != "style"})
    a = vars(parser.parse_args(argv))
    a.pop("recipe")
    a["style"] = a["style"] or recipe.style  # append: given --style flags replace the recipe's paintings
    hub = {k: a.pop(k) for k in HUB_OPTIONS}
    return R.TrainConfig.of(**a), hub


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    folder = None
    try:
        if argv[:1] == ["push"]:
            a = push_parser().parse_args(argv[1:])
            if not Path(a.run_dir).is_dir():
                raise FastNSTError(f"Run directory {a.run_dir} does not exist.")
            push(a.run_dir, a.repo, private=a.private, revision=a.revision)
            return 0
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # "finish early" before the loop has begun: nothing to export
        cfg, hub = parse_train_args(argv)
        folder = RunFolder(cfg.options.out)
        folder.failure.unlink(missing_ok=True)  # an earlier attempt's reason is not this one's
        keep_freed_memory()  # training steps reuse freed memory instead of page-faulting fresh memory in
        quiet_decoder_warnings()
        recipe = cfg.recipe
        if not recipe.style or not recipe.data:
            raise FastNSTError(f"Give {'--style' if not recipe.style else '--data'} (or name it in --recipe).")
        for painting in parse_paintings(recipe.style):
            if not Path(painting.path).is_file():
                raise FastNSTError(f"--style {painting.path} does not exist.")
        if not Path(recipe.data).exists():
            raise FastNSTError(f"--data {recipe.data} does not exist.")
        result = train(cfg)
        if result["status"] != "finished":
            return 0  # interrupted or --stop-at: checkpoint written, a clean exit
        if hub["push_to_hub"] and result.get("export"):
            push(result["run_dir"], hub["push_to_hub"], private=hub["private"], revision=hub["revision"])
        return 0
    except (FastNSTError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        if folder is not None and folder.root.is_dir():
            try:
                folder.write_failure(str(err))
            except OSError:  # a read-only or vanished folder: the line on stderr is all there is
                pass
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (e.g. while preparing photos)
        print("interrupted", file=sys.stderr)
        return 130
