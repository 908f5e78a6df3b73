"""Sources: one opened file as a FileDataset reads it — rows by index, or a stream of elements.

A :class:`Source` is runtime state (open handles, memory maps), not part of any definition:
a :class:`~ptdry.data.reader.FileDataset` opens one per process when first read. Each
format's reader module (``read_arrays``, ``read_hdf5``, ``read_lmdb``, ``read_images``,
``read_tfrecord``) returns one.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ptdry.data import structure
from ptdry.errors import DataError

__all__ = ["ArraySource", "Source", "select"]


class Source:
    """Rows of one file. Subclasses set ``random_access`` and implement ``__len__``/``get``
    (map-style) or ``iter`` (a stream)."""

    random_access = True
    supervised = False
    classes: list[str] | None = None

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__} is a stream; its length is not known without reading it")

    def get(self, i: int) -> Any:
        raise NotImplementedError

    def rows(self, index: slice | np.ndarray) -> Any:
        positions = range(*index.indices(len(self))) if isinstance(index, slice) else index
        return structure.stack([self.get(int(i)) for i in positions], "numpy")

    def iter(self) -> Iterator[Any]:
        return (self.get(i) for i in range(len(self)))

    def close(self) -> None:
        """Release handles (the default holds none)."""


class ArraySource(Source):
    """Equal-length arrays read by row: NumPy arrays (in memory or memory-mapped) or array-like
    datasets (h5py). One array gives its rows; several give tuples of rows.

    Args:
        arrays: the arrays, in element order.
        path: the file, for messages.
        take: ``take(array, sorted_unique_indices)`` for arrays that cannot gather in any
            order (h5py); default ``array[indices]``.
    """

    def __init__(self, arrays: Sequence[Any], path: str, take: Callable[[Any, np.ndarray], Any] | None = None) -> None:
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise DataError(
                f"{path}: the arrays read have different lengths {sorted(lengths)}; pick equal ones with keys="
            )
        self.arrays, self.path, self.n = list(arrays), path, lengths.pop()
        self.take = take
        self.supervised = len(self.arrays) == 2

    def __len__(self) -> int:
        return self.n

    def _pack(self, parts: list[Any]) -> Any:
        return parts[0] if len(parts) == 1 else tuple(parts)

    def get(self, i: int) -> Any:
        return self._pack([a[i] for a in self.arrays])

    def rows(self, index: slice | np.ndarray) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.n)
            return self._pack([np.asarray(a[start:stop:step]) for a in self.arrays])
        index = np.asarray(index, dtype=np.int64)
        if self.take is None:
            return self._pack([np.asarray(a[index]) for a in self.arrays])
        unique, inverse = np.unique(index, return_inverse=True)  # sorted, as h5py needs them
        return self._pack([np.asarray(self.take(a, unique))[inverse] for a in self.arrays])


def select(available: Sequence[str], keys: Sequence[str] | str | None, path: str, what: str = "arrays") -> list[str]:
    """The names to read: ``keys`` (checked against ``available``), or all of them.

    Raises:
        DataError: a key the file does not have, or a file with nothing to read.
    """
    if keys is None:
        if not available:
            raise DataError(f"{path}: the file has no {what} to read")
        return list(available)
    wanted = [keys] if isinstance(keys, str) else list(keys)
    missing = [k for k in wanted if k not in available]
    if missing:
        raise DataError(f"{path} has no {what} {missing}; it has {list(available)}")
    return wanted
