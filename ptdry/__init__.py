"""ptdry: compose experiments as trees of Modules, run them, and find every run again in MongoDB."""

from ptdry.core.allowed import allow
from ptdry.core.callback import Callback
from ptdry.core.callbacks import Callbacks
from ptdry.core.history import History
from ptdry.core.module import Module
from ptdry.core.objectdef import Configuration, ObjectDef, build
from ptdry.core.properties import Bool, Choice, Float, Int, Partition, Property, Seq, Str
from ptdry.core.state import State
from ptdry.core.statistic import Statistic
from ptdry.core.status import Status
from ptdry.data.provider import DataProvider
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Record, Repo
from ptdry.db.selector import Selector
from ptdry.io.archive import load_object, save_object
from ptdry.train.callbacks import (
    Checkpoint,
    CheckpointStorage,
    DirectoryStorage,
    EarlyStopping,
    LRScheduler,
    MemoryStorage,
    MetricLogger,
    NaNDetector,
    ProgressBar,
    TimeLimit,
    Timer,
)
from ptdry.train.looper import Looper
from ptdry.train.model import Criterion, Model, Optimizer
from ptdry.train.session import RunResult, Session, Terminated
from ptdry.train.trainer import Trainer
from ptdry.train.triggers import TRIGGERS, Every, Once
from ptdry.errors import (
    ArchiveError,
    CallbackError,
    ConfigError,
    DBError,
    IntegrityError,
    MultipleFoundError,
    NotFoundError,
    NotReadyError,
    PtdryError,
    SelectorError,
    SerializationError,
    ServerUnavailableError,
    StateDictError,
    TrainingError,
    UntrustedArchiveError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "Bool",
    "Callback",
    "CallbackError",
    "Callbacks",
    "Checkpoint",
    "CheckpointStorage",
    "Choice",
    "ConfigError",
    "Configuration",
    "Criterion",
    "DBError",
    "DBInterface",
    "DataProvider",
    "DirectoryStorage",
    "EarlyStopping",
    "Every",
    "Float",
    "History",
    "Int",
    "IntegrityError",
    "LRScheduler",
    "Looper",
    "MemoryStorage",
    "MetricLogger",
    "Model",
    "Module",
    "MultipleFoundError",
    "NaNDetector",
    "NotFoundError",
    "NotReadyError",
    "ObjectDef",
    "Once",
    "Optimizer",
    "Partition",
    "ProgressBar",
    "Property",
    "PtdryError",
    "Record",
    "Repo",
    "RunResult",
    "Selector",
    "SelectorError",
    "Seq",
    "SerializationError",
    "ServerUnavailableError",
    "Session",
    "State",
    "StateDictError",
    "Statistic",
    "Status",
    "Str",
    "TRIGGERS",
    "Terminated",
    "TimeLimit",
    "Timer",
    "Trainer",
    "TrainingError",
    "UntrustedArchiveError",
    "ValidationError",
    "__version__",
    "allow",
    "build",
    "load_object",
    "save_object",
]
