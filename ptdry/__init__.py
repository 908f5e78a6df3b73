"""ptdry: compose experiments as trees of Modules, run them, and find every run again in MongoDB.

Public names load on first use (PEP 562), so ``import ptdry`` stays light: torch, TensorFlow
and the database driver load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Where each public name lives; ``ptdry.<name>`` imports that module on first use.
_EXPORTS: dict[str, str] = {
    "allow": "ptdry.core.allowed",
    "Callback": "ptdry.core.callback",
    "Callbacks": "ptdry.core.callbacks",
    "History": "ptdry.core.history",
    "Module": "ptdry.core.module",
    "Configuration": "ptdry.core.objectdef",
    "ObjectDef": "ptdry.core.objectdef",
    "build": "ptdry.core.objectdef",
    "Bool": "ptdry.core.properties",
    "Choice": "ptdry.core.properties",
    "Float": "ptdry.core.properties",
    "Int": "ptdry.core.properties",
    "Partition": "ptdry.core.properties",
    "Property": "ptdry.core.properties",
    "Seq": "ptdry.core.properties",
    "Str": "ptdry.core.properties",
    "State": "ptdry.core.state",
    "Statistic": "ptdry.core.statistic",
    "Status": "ptdry.core.status",
    "Allocation": "ptdry.context.allocation",
    "ContextManager": "ptdry.context.manager",
    "active_context": "ptdry.context.manager",
    "context_check": "ptdry.context.manager",
    "ResourcePool": "ptdry.context.pool",
    "ResourceRequest": "ptdry.context.request",
    "compute_context": "ptdry.context.spawn",
    "Cast": "ptdry.data.cast",
    "Dataset": "ptdry.data.dataset",
    "DataLoader": "ptdry.data.loader",
    "DataProvider": "ptdry.data.provider",
    "NumpyDataset": "ptdry.data.numpy_dataset",
    "DataReader": "ptdry.data.reader",
    "RandomSampler": "ptdry.data.samplers",
    "Sampler": "ptdry.data.samplers",
    "SequentialSampler": "ptdry.data.samplers",
    "SubsetSampler": "ptdry.data.samplers",
    "WeightedRandomSampler": "ptdry.data.samplers",
    "TFDataset": "ptdry.data.tf_dataset",
    "TorchDataset": "ptdry.data.torch_dataset",
    "DBInterface": "ptdry.db.interface",
    "Record": "ptdry.db.repo",
    "Repo": "ptdry.db.repo",
    "Selector": "ptdry.db.selector",
    "ArchiveError": "ptdry.errors",
    "ConfigError": "ptdry.errors",
    "ContextError": "ptdry.errors",
    "ContextIncompatibilityError": "ptdry.errors",
    "DataError": "ptdry.errors",
    "DBError": "ptdry.errors",
    "IntegrityError": "ptdry.errors",
    "MultipleFoundError": "ptdry.errors",
    "NotFoundError": "ptdry.errors",
    "NotReadyError": "ptdry.errors",
    "PtdryError": "ptdry.errors",
    "SelectorError": "ptdry.errors",
    "SerializationError": "ptdry.errors",
    "ServerUnavailableError": "ptdry.errors",
    "StateDictError": "ptdry.errors",
    "SweepError": "ptdry.errors",
    "TrainingError": "ptdry.errors",
    "UntrustedArchiveError": "ptdry.errors",
    "ValidationError": "ptdry.errors",
    "load_object": "ptdry.io.archive",
    "KerasModel": "ptdry.tf.keras_model",
    "save_object": "ptdry.io.archive",
    "Checkpoint": "ptdry.train.callbacks",
    "CheckpointStorage": "ptdry.train.callbacks",
    "DirectoryStorage": "ptdry.train.callbacks",
    "EarlyStopping": "ptdry.train.callbacks",
    "EpochPrinter": "ptdry.train.callbacks",
    "LRScheduler": "ptdry.train.callbacks",
    "MemoryStorage": "ptdry.train.callbacks",
    "MetricLogger": "ptdry.train.callbacks",
    "NaNDetector": "ptdry.train.callbacks",
    "ProgressBar": "ptdry.train.callbacks",
    "TimeLimit": "ptdry.train.callbacks",
    "Timer": "ptdry.train.callbacks",
    "Looper": "ptdry.train.looper",
    "Criterion": "ptdry.train.model",
    "Model": "ptdry.train.model",
    "Optimizer": "ptdry.train.model",
    "RerunResult": "ptdry.train.rerun",
    "rerun": "ptdry.train.rerun",
    "RunResult": "ptdry.train.session",
    "Session": "ptdry.train.session",
    "Sweep": "ptdry.sweep.sweep",
    "Trial": "ptdry.sweep.trials",
    "choice": "ptdry.sweep.space",
    "loguniform": "ptdry.sweep.space",
    "randint": "ptdry.sweep.space",
    "uniform": "ptdry.sweep.space",
    "Terminated": "ptdry.train.session",
    "compare": "ptdry.train.compare",
    "Trainer": "ptdry.train.trainer",
    "Every": "ptdry.train.triggers",
    "Once": "ptdry.train.triggers",
    "TRIGGERS": "ptdry.train.triggers",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ptdry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
