"""DataLoader: batches of a dataset's rows in a sampler's order, resumable at any batch.

The loader counts *rows*: a batched dataset (NumPy arrays given whole are one batch) is
unbatched first, and its ``batch_size`` regroups the rows. Its position — epochs done and
batches done in the current epoch — is part of its ``state_dict``; since a sampler's order
depends only on ``(seed, epoch)``, a loader restored from that state continues with exactly
the batches it had not given out, with any sampler.

Batches of in-memory arrays are made with one gather per array (``X[indices]``), or are
views when the sampler is sequential; a ``collate`` function instead builds each batch from
the rows. With ``num_workers > 0`` worker processes (torch's ``DataLoader`` machinery) make
the same batches, in the same order, as the main process would.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator

import numpy as np

from ptdry.core.module import Module
from ptdry.core.properties import Bool, Instance, Int
from ptdry.data import structure
from ptdry.data.coerce import as_dataset
from ptdry.data.dataset import Dataset
from ptdry.data.samplers import RandomSampler, Sampler, SequentialSampler
from ptdry.errors import ConfigError

__all__ = ["DataLoader"]


class DataLoader(Module):
    """Batches of ``batch_size`` rows of ``dataset``, in the order of ``sampler``.

    Args:
        dataset: a ptdry Dataset, or arrays such as ``(X, y)``, a torch Dataset or a
            ``tf.data.Dataset`` (wrapped for you).
        batch_size: rows per batch.
        sampler: a :class:`~ptdry.data.samplers.Sampler`; default: sequential, or a
            :class:`~ptdry.data.samplers.RandomSampler` with ``shuffle=True``.
        shuffle: shorthand for ``sampler=RandomSampler()``.
        drop_last: leave out a last, smaller batch.
        collate: a function making a batch from a list of rows (module-level, to be stored and
            sent to workers); default: one gather per array.
        num_workers: worker processes making batches (0: in this process). Order and
            content are the same either way.
        seed: the seed of a sampler that has none; None: 0, or the run's seed when a Trainer
            drives the loader.

    Example:
        >>> import numpy as np
        >>> loader = DataLoader((np.arange(10.0), np.arange(10)), batch_size=4, shuffle=True, seed=1)
        >>> first = [y.tolist() for _, y in loader]           # epoch 0
        >>> state = loader.state_dict()                        # position: epoch 1, batch 0
        >>> it = iter(loader); _ = next(it)                    # one batch of epoch 1 ...
        >>> resumed = DataLoader((np.arange(10.0), np.arange(10)), batch_size=4, shuffle=True, seed=1)
        >>> resumed.load_state_dict(loader.state_dict())      # ... resumes after it
        >>> [y.tolist() for _, y in resumed] == [y.tolist() for _, y in it]
        True
    """

    dataset = Instance(Dataset, kind="a ptdry Dataset")
    sampler = Instance(Sampler, kind="a ptdry Sampler")
    batch_size = Int(min=1)
    drop_last = Bool()
    num_workers = Int(min=0)
    seed = Int(allow_none=True)

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 32,
        sampler: Sampler | None = None,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        collate: Callable[[list], Any] | None = None,
        num_workers: int = 0,
        seed: int | None = None,
    ) -> None:
        if shuffle and sampler is not None:
            raise ConfigError("give either shuffle=True or a sampler, not both (shuffle=True means RandomSampler())")
        if collate is not None and not callable(collate):
            raise ConfigError(f"collate must be a function taking a list of rows; received {collate!r:.80}")
        converted = as_dataset(dataset, "DataLoader dataset")
        self.dataset = converted
        self.batch_size = batch_size
        self.sampler = sampler if sampler is not None else RandomSampler() if shuffle else SequentialSampler()
        self.drop_last = drop_last
        self.collate = collate
        self.num_workers = num_workers
        self.seed = seed
        self.epochs_done = 0
        self.batches_done = 0
        self.__dict__["_dry_run_seed"] = 0
        self.__dict__["_dry_order"] = None
        if converted is not dataset:
            self._record_argument("dataset", converted)
        if shuffle:  # the definition names the sampler itself
            self._record_argument("sampler", self.sampler)
            self._record_argument("shuffle", False)

    # -- rows and order -------------------------------------------------------------------------------
    def _rows_view(self) -> Dataset:
        d = self.__dict__
        cached = d.get("_dry_rows_view")
        if cached is None or cached[0] is not self.dataset:
            cached = d["_dry_rows_view"] = (self.dataset, self.dataset.unbatch())
        return cached[1]

    def _seed(self) -> int:
        return self.seed if self.seed is not None else self.__dict__["_dry_run_seed"]

    def _batches_of(self, epoch: int) -> list[Any]:
        """The row index of each batch of ``epoch`` (slices for a sequential sampler)."""
        rows = self._rows_view()
        n = len(rows)
        key = (epoch, self._seed(), n, self.batch_size, self.drop_last, id(self.sampler))
        cached = self.__dict__["_dry_order"]
        if cached is not None and cached[0] == key:
            return cached[1]
        bs = self.batch_size
        if isinstance(self.sampler, SequentialSampler):
            stops = range(bs, n + (0 if self.drop_last else bs), bs)
            batches: list[Any] = [slice(stop - bs, min(stop, n)) for stop in stops]
        else:
            order = np.asarray(self.sampler.order(n, epoch, self._seed()), dtype=np.int64)
            count = len(order) // bs if self.drop_last else -(-len(order) // bs)
            batches = [order[i * bs : (i + 1) * bs] for i in range(count)]
        self.__dict__["_dry_order"] = (key, batches)
        return batches

    def __len__(self) -> int:
        """Batches per epoch."""
        rows = self._rows_view()
        if rows.random_access:
            return len(self._batches_of(self.epochs_done))
        n = rows._length()
        if n is None:
            raise TypeError("the number of batches is not known: the dataset's length is not known without reading it")
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch, or None when the dataset's length is not known without reading it."""
        try:
            return len(self)
        except TypeError:
            return None

    # -- position ---------------------------------------------------------------------------------------
    def seek(self, epochs_done: int, batches_done: int = 0, *, seed: int | None = None) -> "DataLoader":
        """Move to batch ``batches_done`` of epoch ``epochs_done`` (counted from 0); ``seed``
        becomes the seed of samplers without one when ``seed=`` was not given to the loader.
        Returns the loader."""
        if seed is not None:
            self.__dict__["_dry_run_seed"] = int(seed)
        self.epochs_done, self.batches_done = int(epochs_done), 0
        total = self.num_batches
        if batches_done < 0 or (total is not None and batches_done > total):
            raise ConfigError(
                f"batch {batches_done} is outside epoch {epochs_done}, which has {total} batches "
                f"({self.batch_size} rows each); was the position saved with other data?"
            )
        self.batches_done = int(batches_done)
        return self

    def __iter__(self) -> Iterator[Any]:
        """The rest of the current epoch (the next one if this one is done); the position
        follows every batch given out and moves to the next epoch at the end."""
        if self.batches_done and self.batches_done >= (self.num_batches or self.batches_done + 1):
            self.epochs_done, self.batches_done = self.epochs_done + 1, 0
        return self.remaining()

    def remaining(self) -> Iterator[Any]:
        """The batches of the current epoch after the position (none when it is done), moving
        the position as they are given out, to the next epoch at the end."""
        return self._epoch(self.epochs_done, self.batches_done, advance=True)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Any]:
        """The batches of ``epoch`` from batch ``start`` on, without moving the position
        (evaluation passes use this)."""
        return self._epoch(epoch, start, advance=False)

    def _epoch(self, epoch: int, start: int, advance: bool) -> Iterator[Any]:
        rows = self._rows_view()
        if not rows.random_access:
            source = self._stream(rows, start)
        elif self.num_workers:
            source = _worker_batches(self, rows, self._batches_of(epoch)[start:])
        else:
            source = (fetch(rows, index, self.collate) for index in self._batches_of(epoch)[start:])
        d = self.__dict__
        for batch in source:
            if advance:
                d["batches_done"] += 1
            yield batch
        if advance:
            self.epochs_done, self.batches_done = epoch + 1, 0

    def _stream(self, rows: Dataset, start: int) -> Iterator[Any]:
        """Batches of an iterable dataset: consecutive rows (a sampler needs random access)."""
        if not isinstance(self.sampler, SequentialSampler):
            raise ConfigError(
                f"{type(self.sampler).__name__} needs a map-style dataset, and {type(rows).__name__} is iterable: "
                "shuffle it with dataset.shuffle(buffer_size, seed) and use the default sampler"
            )
        if self.num_workers:
            raise ConfigError("num_workers > 0 needs a map-style dataset; an iterable one is read in this process")
        bs = self.batch_size
        it = itertools.islice(iter(rows), start * bs, None)
        while True:
            chunk = list(itertools.islice(it, bs))
            if not chunk or (len(chunk) < bs and self.drop_last):
                return
            yield self.collate(chunk) if self.collate is not None else structure.stack(chunk, rows.backend)

    # -- state --------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "batches_done": self.batches_done}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for key in ("epochs_done", "batches_done"):
            if key in state:
                setattr(self, key, int(state[key]))

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, sampler={type(self.sampler).__name__}, "
            f"num_workers={self.num_workers}, at epoch {self.epochs_done} batch {self.batches_done})"
        )


def fetch(rows: Dataset, index: Any, collate: Callable[[list], Any] | None) -> Any:
    """One batch: the rows ``index`` (a slice or an index array) of ``rows``."""
    if collate is None:
        return rows._rows(index)
    positions = range(*index.indices(len(rows))) if isinstance(index, slice) else index
    return collate([rows._get(int(i)) for i in positions])


class _Fetch:
    """What torch's worker processes call: ``fetch`` of one batch index."""

    def __init__(self, rows: Dataset, collate: Callable[[list], Any] | None) -> None:
        self.rows, self.collate = rows, collate

    def __getitem__(self, index: Any) -> Any:
        return fetch(self.rows, index, self.collate)

    def __len__(self) -> int:
        return len(self.rows)


def _first(batch: Any) -> Any:
    return batch


def _worker_batches(loader: DataLoader, rows: Dataset, indices: list[Any]) -> Iterator[Any]:
    """The batches ``indices`` made by ``loader.num_workers`` processes, in order."""
    if not indices:
        return iter(())
    import torch
    import torch.utils.data as tud

    # torch seeds its workers from `generator`; without one it would draw from (and move) the
    # global RNG, so a run with workers would differ from one without, and a resumed run
    # from an uninterrupted one. Batches are made deterministically: the seed plays no part.
    engine = tud.DataLoader(
        _Fetch(rows, loader.collate),
        batch_size=None,
        sampler=indices,
        num_workers=loader.num_workers,
        collate_fn=_first,
        prefetch_factor=2,
        generator=torch.Generator().manual_seed(0),
    )
    return iter(engine)
