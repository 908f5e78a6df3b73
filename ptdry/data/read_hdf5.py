"""Reading HDF5 files (h5py, imported here only): datasets read by row, never loaded whole."""

from __future__ import annotations

from typing import Any

import numpy as np

from ptdry.data.sources import ArraySource, select
from ptdry.errors import DataError

__all__ = ["read_hdf5"]


class _HDF5Source(ArraySource):
    def __init__(self, file: Any, arrays: list[Any], path: str) -> None:
        super().__init__(arrays, path, take=_take)
        self.file = file

    def close(self) -> None:
        self.file.close()


def _take(dataset: Any, indices: np.ndarray) -> Any:
    """Rows ``indices`` (sorted, unique) of an h5py dataset: one read of the span they cover
    when they are dense in it, else h5py's point selection."""
    if not len(indices):
        return dataset[0:0]
    low, high = int(indices[0]), int(indices[-1]) + 1
    if high - low <= 4 * len(indices):
        return dataset[low:high][indices - low]
    return dataset[indices]


def read_hdf5(path: str, options: dict[str, Any]) -> ArraySource:
    """The datasets ``keys`` (paths inside the file; default: every dataset at its root, in
    name order) of an HDF5 file, row by row."""
    import h5py

    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot be read as HDF5 ({exc})") from None
    try:
        keys = options.get("keys")
        if keys is None:
            available = [k for k in file.keys() if isinstance(file[k], h5py.Dataset)]
        else:
            wanted = [keys] if isinstance(keys, str) else list(keys)
            available = [k for k in wanted if k in file and isinstance(file[k], h5py.Dataset)]
            available += [k for k in file.keys() if k not in available]  # for the message
        names = select(available, keys, path, "datasets")
        arrays = [file[name] for name in names]
        for name, array in zip(names, arrays):
            if array.ndim == 0:
                raise DataError(f"{path}: dataset {name!r} holds a single value, not rows")
        return _HDF5Source(file, arrays, path)
    except BaseException:
        file.close()
        raise
