"""ptdry: compose experiments as trees of Modules, run them, and find every run again in MongoDB."""

from ptdry.core.callback import Callback
from ptdry.core.callbacks import Callbacks
from ptdry.core.history import History
from ptdry.core.module import Module
from ptdry.core.objectdef import Configuration, ObjectDef, build
from ptdry.core.properties import Bool, Choice, Float, Int, Partition, Property, Seq, Str
from ptdry.core.state import State
from ptdry.core.statistic import Statistic
from ptdry.core.status import Status
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
    "Choice",
    "ConfigError",
    "Configuration",
    "DBError",
    "Float",
    "History",
    "Int",
    "IntegrityError",
    "Module",
    "MultipleFoundError",
    "NotFoundError",
    "NotReadyError",
    "ObjectDef",
    "Partition",
    "Property",
    "PtdryError",
    "SelectorError",
    "Seq",
    "SerializationError",
    "ServerUnavailableError",
    "State",
    "StateDictError",
    "Statistic",
    "Status",
    "Str",
    "TrainingError",
    "UntrustedArchiveError",
    "ValidationError",
    "__version__",
    "build",
]
