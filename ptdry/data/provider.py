"""DataProvider: an experiment's train/val/test splits, handed out as DataLoaders.

Two forms:

- ``DataProvider(dataset, partition=(70, 20, 10), count=None, seed=0)`` allocates the splits
  from one dataset (see :mod:`ptdry.data.partitions`). ``partition`` and ``count`` are
  validated properties; assigning either re-allocates the splits through their change
  callbacks (pyveda's PR-55 design), and users register their own on any property with
  ``dp.on_change(name, fn)``.
- ``DataProvider(train=..., val=..., test=...)`` takes each split as it is: a Dataset, arrays
  such as ``(X, y)``, a torch or TensorFlow dataset, or a DataLoader.

``dp.train`` / ``dp.val`` / ``dp.test`` are the split datasets; ``dp.provide(split)`` gives a
:class:`~ptdry.data.loader.DataLoader` over one (shuffled for ``train``). The datasets are
children of the provider, so their data (or their files' fingerprints) travel with it.
"""

from __future__ import annotations

from typing import Any

from ptdry.core.module import Module
from ptdry.core.properties import Int, Partition, Seq, Str
from ptdry.data.coerce import as_dataset
from ptdry.data.dataset import Dataset
from ptdry.data.loader import DataLoader
from ptdry.data.partitions import Split, allocate
from ptdry.errors import ConfigError, NotReadyError, ValidationError

__all__ = ["SPLITS", "DataProvider", "as_provider"]

#: The split names a DataProvider knows, in order.
SPLITS = ("train", "val", "test")

_DEFAULT_PARTITION = (70.0, 20.0, 10.0)


class _Checked:
    """A property mixin: after its own validation, ``obj._check_<name>(value)`` may refuse the
    value for this object (the old value stays)."""

    name: str

    def __set__(self, obj: Any, value: Any) -> None:
        check = getattr(obj, f"_check_{self.name}", None)
        if check is not None and obj.__dict__.get("_dry_ready"):
            check(self.validate(value, type(obj).__name__))
        super().__set__(obj, value)  # type: ignore[misc]


class _PartitionProperty(_Checked, Partition):
    pass


class _CountProperty(_Checked, Int):
    pass


class DataProvider(Module):
    """The splits of an experiment; ``provide(split)`` hands out a DataLoader over one.

    Args:
        dataset: one dataset to allocate the splits from (anything
            :func:`~ptdry.data.coerce.as_dataset` takes).
        partition: percentages of the rows for train, val and test; they must sum to 100.
            Default ``(70, 20, 10)``.
        count: how many rows to allocate (None: all of them).
        seed: the rows are allocated in an order drawn from this seed; None: in their order.
        train, val, test: the splits themselves, instead of ``dataset``.
        classes: names of the classes (metadata; a property others may watch).
        batch_size: the loaders' batch size when ``provide`` is not given one.
        num_workers: the loaders' worker processes.

    Raises:
        ConfigError: both forms at once, a split of a wrong type, ``count`` above the rows.
        ValidationError: a partition that does not sum to 100 (also on assignment).

    Example:
        >>> import numpy as np
        >>> from ptdry import NumpyDataset
        >>> dp = DataProvider(NumpyDataset(np.arange(100)), partition=(70, 20, 10), seed=None)
        >>> dp.train.allocated, dp.val.allocated, dp.test.allocated
        (70, 20, 10)
        >>> dp.partition = (90, 5, 5)
        >>> dp.train.allocated, list(dp.test.index_range)[:2]
        (90, [95, 96])
    """

    partition = _PartitionProperty(allow_none=True)
    count = _CountProperty(min=1, allow_none=True)
    seed = Int(allow_none=True)
    classes = Seq(item=Str(), allow_none=True)
    batch_size = Int(min=1)
    num_workers = Int(min=0)

    def __init__(
        self,
        dataset: Any = None,
        partition: Any = None,
        count: int | None = None,
        seed: int | None = 0,
        *,
        train: Any = None,
        val: Any = None,
        test: Any = None,
        classes: Any = None,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        d = self.__dict__
        d["_dry_alloc"], d["_dry_loaders"] = None, {}
        explicit = {s: v for s, v in zip(SPLITS, (train, val, test)) if v is not None}
        if dataset is not None and explicit:
            raise ConfigError(
                f"give either one dataset to partition or the splits {sorted(explicit)} themselves, not both"
            )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.classes = classes
        self.seed = seed
        if dataset is not None:
            self.dataset = as_dataset(dataset, "dataset")
            self._record_argument("dataset", self.dataset)
            self.partition = _DEFAULT_PARTITION if partition is None else partition
            self._record_argument("partition", self.partition)
            self.count = count
            self._check_count(count, error=ConfigError)
        else:
            if partition is not None or count is not None:
                raise ConfigError(
                    "partition and count allocate splits from one dataset: DataProvider(dataset, partition=...)"
                )
            self.partition = None
            self.count = None
            for split in SPLITS:
                value = _as_split(split, explicit.get(split))
                setattr(self, f"{split}_set", value)
                if split in explicit:
                    self._record_argument(split, value)
        for name in ("partition", "count", "seed"):
            self.on_change(name, self._reallocate)

    # -- allocation (pyveda's partitions) ------------------------------------------------------------
    @property
    def partitioned(self) -> bool:
        """True for ``DataProvider(dataset, partition=...)``."""
        return "dataset" in self.__dict__

    def _rows(self) -> Dataset:
        return self.dataset.unbatch()

    def _available(self) -> int | None:
        """Rows of the dataset, when known without reading it (None otherwise, or while its
        data is not loaded or its file is missing)."""
        if self.dataset.problems():
            return None
        return self._rows()._length()

    def _check_partition(self, value: Any) -> None:
        if not self.partitioned and value is not None:
            raise ValidationError(
                "DataProvider.partition applies to DataProvider(dataset, partition=...); this one was "
                "given its train/val/test splits"
            )
        if self.partitioned and value is None:
            raise ValidationError("DataProvider.partition must be 3 percentages summing to 100; received None")

    def _check_count(self, value: Any, error: type = ValidationError) -> None:
        if value is None:
            return
        if not self.partitioned:
            raise error(
                "DataProvider.count applies to DataProvider(dataset, partition=...); this one was given its splits"
            )
        rows = self._available()
        if rows is not None and value > rows:
            raise error(f"DataProvider.count must be at most the {rows} rows of the dataset; received {value}")

    def _reallocate(self, name: str, old: Any, new: Any, obj: Any) -> None:
        """The change callback of ``partition``, ``count`` and ``seed``: new splits now."""
        self.__dict__["_dry_alloc"] = None
        self.__dict__["_dry_loaders"].clear()
        if self.partitioned and self._available() is not None:
            self._allocation()

    def _allocation(self) -> dict[str, Dataset]:
        alloc = self.__dict__["_dry_alloc"]
        if alloc is None:
            rows = self._rows()
            total = rows._length()
            if total is None:
                if self.count is None:
                    raise ConfigError(
                        f"the rows of {type(self.dataset).__name__} are not known without reading it; give "
                        "DataProvider(..., count=N) to allocate N of them"
                    )
                total = self.count
            count = total if self.count is None else self.count
            sizes = allocate(count, self.partition)
            starts = [sum(sizes[:i]) for i in range(len(sizes))]
            alloc = {
                split: Split(rows, start, start + size, seed=self.seed, total=total)
                for split, start, size in zip(SPLITS, starts, sizes)
            }
            self.__dict__["_dry_alloc"] = alloc
        return alloc

    # -- splits ----------------------------------------------------------------------------------------
    def split(self, name: str) -> Dataset | None:
        """The dataset of split ``name`` (None when there is none)."""
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        if self.partitioned:
            return self._allocation()[name]
        value = getattr(self, f"{name}_set")
        return value.dataset if isinstance(value, DataLoader) else value

    @property
    def train(self) -> Dataset | None:
        return self.split("train")

    @property
    def val(self) -> Dataset | None:
        return self.split("val")

    @property
    def test(self) -> Dataset | None:
        return self.split("test")

    def has(self, split: str) -> bool:
        """True if ``split`` has rows (or, not loaded yet, will have)."""
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if not self.partitioned:
            return getattr(self, f"{split}_set") is not None
        if self.dataset.problems():
            return self.partition[SPLITS.index(split)] > 0
        return self._allocation()[split].allocated > 0

    def size(self, split: str) -> int:
        """Rows in ``split``."""
        return len(self._ready(split).unbatch())

    def _ready(self, split: str) -> Dataset:
        problems = self.problems()
        if problems:
            raise NotReadyError(f"{type(self).__name__} is not ready: " + "; ".join(problems))
        dataset = self.split(split)
        if dataset is None or (self.partitioned and dataset.allocated == 0):
            have = [s for s in SPLITS if self.has(s)]
            raise ConfigError(f"{type(self).__name__} has no {split!r} split; it has {have or 'no data'}")
        return dataset

    def provide(
        self,
        split: str,
        batch_size: int | None = None,
        *,
        shuffle: bool | None = None,
        drop_last: bool = False,
        num_workers: int | None = None,
    ) -> DataLoader:
        """A DataLoader over ``split`` (made once per set of arguments, then reused).

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            batch_size: rows per batch (default: the provider's).
            shuffle: a RandomSampler (default: for ``train``, when its rows can be indexed).
            drop_last: leave out a last, smaller batch.
            num_workers: worker processes (default: the provider's).

        A split given as a DataLoader is returned as it is; asking it for another batch size
        is an error.

        Raises:
            ConfigError: unknown or empty split, or a batch size the split's DataLoader has not.
            NotReadyError: the data of a rebuilt provider is not loaded yet.
        """
        dataset = self._ready(split)
        given = None if self.partitioned else getattr(self, f"{split}_set")
        if isinstance(given, DataLoader):
            if batch_size is not None and batch_size != given.batch_size:
                raise ConfigError(
                    f"the {split} split is a DataLoader with batch_size={given.batch_size}, and batch_size="
                    f"{batch_size} was asked for (Looper(batch_size=...)); set only one of them"
                )
            return given
        if shuffle is None:
            shuffle = split == "train" and dataset.unbatch().random_access
        key = (
            split,
            batch_size or self.batch_size,
            shuffle,
            drop_last,
            self.num_workers if num_workers is None else num_workers,
        )
        loader = self.__dict__["_dry_loaders"].get(key)
        if loader is None or loader.dataset is not dataset:
            loader = DataLoader(dataset, key[1], shuffle=shuffle, drop_last=drop_last, num_workers=key[4])
            self.__dict__["_dry_loaders"][key] = loader
        return loader

    __call__ = provide

    def __repr__(self) -> str:
        if self.partitioned:
            alloc = self.__dict__["_dry_alloc"]  # (a repr reads no data)
            sizes = "/".join(str(s.allocated) for s in alloc.values()) if alloc else "not allocated yet"
            return f"DataProvider({type(self.dataset).__name__}, partition={self.partition}, rows {sizes})"
        parts = [f"{s}={type(self.split(s)).__name__}" for s in SPLITS if self.split(s) is not None]
        return f"DataProvider({', '.join(parts)})"


def _as_split(split: str, value: Any) -> Any:
    if value is None or isinstance(value, DataLoader):
        return value
    return as_dataset(value, split)


def as_provider(data: Any) -> DataProvider:
    """``data`` as a DataProvider: a DataProvider as it is; a dict ``{"train": ..., "val":
    ...}`` of splits; anything else (a Dataset, a DataLoader, arrays ``(X, y)``, a torch or
    TensorFlow dataset) as the train split."""
    if isinstance(data, DataProvider):
        return data
    if isinstance(data, dict) and data and set(data) <= set(SPLITS):
        return DataProvider(**data)
    return DataProvider(train=data)
