"""Built-in training callbacks, one per module; re-exported here."""

from ptdry.train.callbacks.checkpoint import Checkpoint, CheckpointStorage, DirectoryStorage, MemoryStorage
from ptdry.train.callbacks.early_stopping import EarlyStopping
from ptdry.train.callbacks.epoch_printer import EpochPrinter
from ptdry.train.callbacks.lr_scheduler import LRScheduler
from ptdry.train.callbacks.metric_logger import MetricLogger
from ptdry.train.callbacks.monitor import MonitorCallback
from ptdry.train.callbacks.nan_detector import NaNDetector
from ptdry.train.callbacks.progress_bar import ProgressBar
from ptdry.train.callbacks.timer import TimeLimit, Timer

__all__ = [
    "Checkpoint",
    "CheckpointStorage",
    "DirectoryStorage",
    "EarlyStopping",
    "EpochPrinter",
    "LRScheduler",
    "MemoryStorage",
    "MetricLogger",
    "MonitorCallback",
    "NaNDetector",
    "ProgressBar",
    "TimeLimit",
    "Timer",
]
