"""Training new styles: photo cache and sampling (`data`), the training loop (`trainer`), the command line
(`cli`, `python -m training`) and publishing to the Hub (`publish`)."""
from .trainer import TrainConfig, train

__all__ = ["TrainConfig", "train"]
