"""The names ``ptdry`` exports: sorted, importable, and pinned (a change here is deliberate)."""

from __future__ import annotations

import importlib

import ptdry

# Update this list together with ptdry/__init__.py when the public surface changes.
EXPORTED = [
    "Allocation",
    "ArchiveError",
    "Bool",
    "Callback",
    "Callbacks",
    "Cast",
    "Checkpoint",
    "CheckpointStorage",
    "Choice",
    "ConfigError",
    "Configuration",
    "ContextError",
    "ContextIncompatibilityError",
    "ContextManager",
    "Criterion",
    "DBError",
    "DBInterface",
    "DataError",
    "DataLoader",
    "DataProvider",
    "DataReader",
    "Dataset",
    "DirectoryStorage",
    "EarlyStopping",
    "EpochPrinter",
    "Every",
    "Float",
    "History",
    "Int",
    "IntegrityError",
    "KerasModel",
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
    "NumpyDataset",
    "ObjectDef",
    "Once",
    "Optimizer",
    "Partition",
    "ProgressBar",
    "Property",
    "PtdryError",
    "RandomSampler",
    "Record",
    "Repo",
    "RerunResult",
    "ResourcePool",
    "ResourceRequest",
    "RunResult",
    "Sampler",
    "Selector",
    "SelectorError",
    "Seq",
    "SequentialSampler",
    "SerializationError",
    "ServerUnavailableError",
    "Session",
    "State",
    "StateDictError",
    "Statistic",
    "Status",
    "Str",
    "SubsetSampler",
    "Sweep",
    "SweepError",
    "TFDataset",
    "TRIGGERS",
    "Terminated",
    "TimeLimit",
    "Timer",
    "TorchDataset",
    "Trainer",
    "TrainingError",
    "Trial",
    "UntrustedArchiveError",
    "ValidationError",
    "WeightedRandomSampler",
    "__version__",
    "active_context",
    "allow",
    "build",
    "choice",
    "compare",
    "compute_context",
    "context_check",
    "load_object",
    "loguniform",
    "randint",
    "rerun",
    "save_object",
    "uniform",
]


def test_all_is_sorted():
    assert sorted(ptdry.__all__) == ptdry.__all__


def test_all_has_no_duplicates():
    assert len(set(ptdry.__all__)) == len(ptdry.__all__)


def test_every_exported_name_is_importable():
    module = importlib.import_module("ptdry")
    for name in ptdry.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict = {}
    exec("from ptdry import *", namespace)
    assert set(ptdry.__all__) <= set(namespace)


def test_exported_names_are_pinned():
    assert ptdry.__all__ == EXPORTED


def test_every_exported_error_is_a_ptdry_error():
    for name in ptdry.__all__:
        obj = getattr(ptdry, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ptdry.PtdryError), name


def test_version_is_a_string():
    assert isinstance(ptdry.__version__, str) and ptdry.__version__.count(".") >= 1
