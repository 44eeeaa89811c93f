"""Training new styles: what a run learns (`recipe`), its files (`run_folder`), photo cache and sampling (`data`),
the training loop (`trainer`), the command line (`cli`, `python -m training`) and publishing to the Hub
(`publish`)."""
from .recipe import Recipe, RunOptions, TrainConfig
from .run_folder import RunFolder
from .trainer import train

__all__ = ["Recipe", "RunFolder", "RunOptions", "TrainConfig", "train"]
