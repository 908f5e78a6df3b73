"""Partitions: train/val/test splits allocated from one dataset by percentages (after pyveda).

:func:`allocate` turns ``count`` rows and a partition such as ``(70, 20, 10)`` into split
sizes that sum to ``count`` exactly (largest remainder first, ties to the earlier split).
Each split is a :class:`Split`: the contiguous positions ``[start, stop)`` of an order of the
rows — the rows' own order, or a permutation of all of them drawn from ``seed`` — so splits
never overlap, and changing the partition or the count only moves the boundaries. A
``count`` below the number of rows uses the first ``count`` positions of that order (a
random subset when seeded).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np

from ptdry.core.properties import Int
from ptdry.data.dataset import Dataset, _Derived
from ptdry.data.randomness import rng
from ptdry.errors import ConfigError

__all__ = ["Split", "allocate", "row_order"]


def allocate(count: int, partition: Sequence[float]) -> list[int]:
    """Split sizes for ``count`` rows in proportions ``partition`` (summing to 100).

    Example:
        >>> allocate(100, (70, 20, 10)), allocate(200, (80, 0, 20)), allocate(1797, (70, 15, 15))
        ([70, 20, 10], [160, 0, 40], [1258, 270, 269])
    """
    total = float(sum(partition))
    exact = [count * p / total for p in partition]
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[: count - sum(sizes)]:
        sizes[i] += 1
    return sizes


def row_order(rows: int, seed: int | None) -> np.ndarray | None:
    """The order ``rows`` rows are allocated in: a permutation drawn from ``seed``, or None
    for the rows' own order."""
    return None if seed is None else rng("partition", seed, rows).permutation(rows)


class Split(_Derived):
    """Positions ``start`` to ``stop`` (exclusive) of the ``total`` rows of ``source`` taken in
    the order :func:`row_order` draws from ``seed`` (None: their own order).

    Example:
        >>> import numpy as np
        >>> from ptdry import NumpyDataset
        >>> rows = NumpyDataset(np.arange(10)).unbatch()
        >>> s = Split(rows, 7, 10, seed=None, total=10)
        >>> s.allocated, list(s.index_range), [int(x) for x in s]
        (3, [7, 8, 9], [7, 8, 9])
    """

    start = Int(min=0)
    stop = Int(min=0)
    seed = Int(allow_none=True)
    total = Int(min=0)

    def __init__(self, source: Dataset, start: int, stop: int, seed: int | None = None, total: int = 0) -> None:
        if stop < start or stop > total:
            raise ConfigError(f"a split of {total} rows cannot span positions [{start}, {stop})")
        self.source = source
        self.start, self.stop, self.seed, self.total = start, stop, seed, total

    @property
    def allocated(self) -> int:
        """Rows in this split."""
        return self.stop - self.start

    @property
    def index_range(self) -> range:
        """Positions ``[start, stop)`` of this split in the allocation order."""
        return range(self.start, self.stop)

    @property
    def indices(self) -> np.ndarray:
        """The source rows of this split, in order."""
        order = self._order()
        positions = np.arange(self.start, self.stop)
        return positions if order is None else order[self.start : self.stop]

    def _order(self) -> np.ndarray | None:
        cached = self.__dict__.get("_dry_split_order")
        if cached is None or cached[0] != (self.seed, self.total):
            cached = self.__dict__["_dry_split_order"] = ((self.seed, self.total), row_order(self.total, self.seed))
        return cached[1]

    @property
    def batch_size(self) -> None:
        return None

    def _length(self) -> int:
        return self.allocated

    def _get(self, i: int) -> Any:
        order = self._order()
        return self.source._get(self.start + i if order is None else int(order[self.start + i]))

    def _rows(self, index: slice | np.ndarray) -> Any:
        order = self._order()
        if isinstance(index, slice):
            start, stop, step = index.indices(self.allocated)
            if order is None and step == 1:
                return self.source._rows(slice(self.start + start, self.start + stop))
            index = np.arange(start, stop, step)
        positions = np.asarray(index) + self.start
        return self.source._rows(positions if order is None else order[positions])

    def _iter(self) -> Iterator[Any]:
        if self.source.random_access:
            return (self._get(i) for i in range(self.allocated))
        if self.seed is not None:
            raise ConfigError("a seeded partition needs a map-style dataset; use seed=None for an iterable one")
        return iter(self.source.skip(self.start).take(self.allocated))
