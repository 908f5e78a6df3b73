"""NumpyDataset: arrays, a list of elements, or a function that yields them, as a Dataset.

As in DRYML, an array (or a tuple / dict of equal-length arrays, such as ``(X, Y)``) is *one
batch* of ``len(array)`` rows: ``peek()`` returns it whole, ``unbatch()`` yields its rows
(views) and ``unbatch().batch(n)`` slices it. Loaders and partitions count rows. A list holds
the elements themselves; a function returning a fresh iterator of elements makes an iterable
dataset that is read anew on every pass.

The arrays live in the dataset's *state* (its definition records a
:class:`~ptdry.core.dataref.DataRef` fingerprint), so a saved tree carries its data; a function
is stored by name in the definition and called again when the tree is rebuilt.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator

import numpy as np

from ptdry.core.dataref import DataRef
from ptdry.core.properties import Bool, Int
from ptdry.data import structure
from ptdry.data.dataset import Dataset
from ptdry.errors import ConfigError, DataError, NotReadyError

__all__ = ["NumpyDataset"]

_ONE_BATCH = (np.ndarray, tuple, dict)


class NumpyDataset(Dataset):
    """NumPy data as a Dataset.

    Args:
        data: an array, a tuple or dict of equal-length arrays (one batch of rows), a list
            of elements, or a function (module-level, to be storable) returning an iterator
            of elements. A generator object itself is refused: it can be read only once.
        batch_size: for a list or a function, the rows in each element when the elements
            are batches. (For arrays it is their length.)
        supervised: the elements are ``(X, Y)`` pairs; default: True for a pair of arrays
            (or a list whose first element is a pair).
        size: for a function, the number of elements if known (``len()`` and loaders use it).

    Raises:
        ConfigError: arrays of different lengths, a generator, or another type of data.

    Example:
        >>> import numpy as np
        >>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
        >>> ds = NumpyDataset((X, y))
        >>> ds.batch_size, ds.supervised, ds.unbatch().peek()
        (5, True, (array([0., 1.]), np.int64(0)))
        >>> [b[1].tolist() for b in ds.unbatch().batch(2)]
        [[0, 1], [2, 3], [4]]
    """

    dry_data_args = ("data",)

    size = Int(min=0, allow_none=True)
    batch_rows = Int(min=1, allow_none=True)
    pairs = Bool(allow_none=True)

    def __init__(
        self,
        data: Any = None,
        *,
        generator: Callable[[], Any] | None = None,
        batch_size: int | None = None,
        supervised: bool | None = None,
        size: int | None = None,
    ) -> None:
        if callable(data) and not isinstance(data, (DataRef, np.ndarray, Dataset)):
            data, generator = None, data
            self._record_argument("data", None)
            self._record_argument("generator", generator)
        if inspect.isgenerator(data) or isinstance(data, Iterator):
            raise ConfigError(
                f"NumpyDataset cannot use a {type(data).__qualname__}: it can be read only once; pass a "
                "function that returns a fresh one (def rows(): yield ...; NumpyDataset(rows))"
            )
        if generator is not None and not callable(generator):
            raise ConfigError(f"generator must be a function returning an iterator; received {generator!r:.80}")
        if (data is None) == (generator is None):
            raise ConfigError(
                "NumpyDataset needs data: an array, a tuple (X, Y) of arrays, a list of elements or a function"
            )
        if size is not None and generator is None:
            raise ConfigError("size= is for a function's elements; the length of arrays or a list is known")
        self.size = size
        self.batch_rows = batch_size
        self.pairs = supervised
        d = self.__dict__
        d["_dry_data"], d["_dry_pending"], d["_dry_generator"] = None, None, generator
        if isinstance(data, DataRef):  # rebuilt from a definition: the arrays come with the state
            d["_dry_pending"] = data
        elif data is not None:
            self._set_data(data)
            self._record_argument("batch_size", self.batch_rows)
            self._record_argument("supervised", self.supervised)

    # -- the data ---------------------------------------------------------------------------------
    def _set_data(self, data: Any) -> None:
        if isinstance(data, _ONE_BATCH):
            for leaf in structure.leaves(data):
                if not isinstance(leaf, np.ndarray):
                    raise ConfigError(
                        f"NumpyDataset data holds a {type(leaf).__qualname__}; a tuple or dict must hold NumPy "
                        "arrays (for torch tensors use TorchDataset, or .numpy() them; for elements pass a list)"
                    )
            try:
                n = structure.batch_length(data, "NumpyDataset's data")
            except DataError as exc:
                raise ConfigError(str(exc)) from None
            if self.batch_rows is not None and self.batch_rows != n:
                raise ConfigError(f"batch_size={self.batch_rows} but the arrays have {n} rows; leave batch_size out")
            self.batch_rows = n
        elif not isinstance(data, list):
            raise ConfigError(
                f"NumpyDataset data must be an array, a tuple or dict of arrays, a list of elements or a "
                f"function; received {type(data).__qualname__}"
            )
        self.__dict__["_dry_data"], self.__dict__["_dry_pending"] = data, None

    def _data(self) -> Any:
        if self.__dict__["_dry_pending"] is not None:
            raise NotReadyError(
                "the data of this NumpyDataset is not loaded yet (it was rebuilt from a definition); "
                "call load_state_dict() with the saved state first"
            )
        return self.__dict__["_dry_data"]

    @property
    def data(self) -> Any:
        """The arrays (or list of elements) given; None for a function."""
        return self._data()

    # -- Dataset ------------------------------------------------------------------------------------
    @property
    def random_access(self) -> bool:
        return self.__dict__["_dry_generator"] is None

    def _length(self) -> int | None:
        if self.__dict__["_dry_generator"] is not None:
            return self.size
        data = self._data()
        return 1 if isinstance(data, _ONE_BATCH) else len(data)

    def _get(self, i: int) -> Any:
        data = self._data()
        return data if isinstance(data, _ONE_BATCH) else data[i]

    def _batch_lengths(self) -> list[int]:
        data = self._data()
        if isinstance(data, _ONE_BATCH):
            return [self.batch_rows]
        return super()._batch_lengths()

    def _iter(self) -> Iterator[Any]:
        generator = self.__dict__["_dry_generator"]
        if generator is None:
            data = self._data()
            return iter([data] if isinstance(data, _ONE_BATCH) else data)
        out = generator()
        try:
            return iter(out)
        except TypeError:
            raise DataError(
                f"the generator function {generator!r:.60} returned a {type(out).__qualname__}, not an iterator"
            ) from None

    @property
    def batch_size(self) -> int | None:
        return self.batch_rows

    @property
    def supervised(self) -> bool:
        if self.pairs is not None:
            return self.pairs
        data = self.__dict__["_dry_data"]
        if isinstance(data, list) and data:
            data = data[0]
        return isinstance(data, tuple) and len(data) == 2

    @property
    def backend(self) -> str:
        return "numpy"

    # -- state ---------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """``{"data": ...}``: the arrays or elements (nothing for a function)."""
        if self.__dict__["_dry_generator"] is not None:
            return {}
        return {"data": self.__dict__["_dry_data"]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "data" not in state or self.__dict__["_dry_generator"] is not None:
            return
        data = state["data"]
        expected = self.__dict__["_dry_pending"]
        if expected is not None and DataRef.of(data) != expected:
            raise ConfigError(
                f"the saved data (fingerprint {DataRef.of(data).sha256[:12]}) does not match this "
                f"NumpyDataset's definition ({expected.sha256[:12]}); was the state saved from other data?"
            )
        self._set_data(data)

    def problems(self) -> list[str]:
        out = super().problems()
        if self.__dict__["_dry_pending"] is not None:
            out.append("data not loaded: call load_state_dict() with the saved state")
        return out
