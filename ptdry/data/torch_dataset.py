"""TorchDataset: a torch ``Dataset`` (map-style or iterable) as a ptdry Dataset.

torch is imported only when one is made. A ``TensorDataset`` (and any dataset whose elements
fit in ``store_limit`` bytes) is kept in the state; a recipe is kept in the definition; see
:mod:`ptdry.data.foreign` for how each is rebuilt.
"""

from __future__ import annotations

from typing import Any, Iterator

from ptdry.data.foreign import DEFAULT_STORE_LIMIT, ForeignDataset
from ptdry.errors import ConfigError

__all__ = ["TorchDataset"]


class TorchDataset(ForeignDataset):
    """A torch dataset: map-style (``__getitem__`` and ``__len__``) or an ``IterableDataset``.

    Args:
        dataset: the torch dataset; or a recipe — ``ObjectDef(MyDataset, ...)`` or a
            module-level function returning one — that a rebuilt tree runs again.
        supervised: the elements are ``(X, Y)`` pairs; default: when the first element is a pair.
        store_limit: keep the elements in the state when they take at most this many bytes
            (0: never), so a stored tree rebuilds without the object.
        recipe, stored: recorded by ptdry (how the dataset is rebuilt); leave them out.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> ds = TorchDataset(TensorDataset(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0])))
        >>> len(ds), ds.supervised, ds.batch(2).peek()[1].tolist()
        (3, True, [0, 1])
    """

    def __init__(
        self,
        dataset: Any = None,
        *,
        supervised: bool | None = None,
        store_limit: int = DEFAULT_STORE_LIMIT,
        recipe: Any = None,
        stored: bool | None = None,
    ) -> None:
        self._setup(dataset, recipe, store_limit, stored)
        if supervised is None and self.__dict__["_dry_obj"] is not None:
            first = next(iter(self._source_iter()), None)
            supervised = isinstance(first, (tuple, list)) and len(first) == 2
            self._record_argument("supervised", supervised)
        self.__dict__["_dry_pairs"] = bool(supervised)

    def _check(self, obj: Any) -> Any:
        import torch.utils.data as tud

        if isinstance(obj, tud.IterableDataset) or (hasattr(obj, "__getitem__") and hasattr(obj, "__len__")):
            return obj
        if hasattr(obj, "__iter__") and not isinstance(obj, (str, bytes, dict)):
            return obj
        raise ConfigError(
            f"TorchDataset needs a torch Dataset (map-style or iterable) or a recipe for one; received "
            f"{type(obj).__qualname__}"
        )

    @property
    def _source_random_access(self) -> bool:
        import torch.utils.data as tud

        obj = self.__dict__["_dry_obj"]
        return not isinstance(obj, tud.IterableDataset) and hasattr(obj, "__getitem__") and hasattr(obj, "__len__")

    def _source_length(self) -> int | None:
        obj = self.__dict__["_dry_obj"]
        try:
            return len(obj)
        except TypeError:
            return None

    def _source_get(self, i: int) -> Any:
        return self.__dict__["_dry_obj"][i]

    def _source_iter(self) -> Iterator[Any]:
        obj = self.__dict__["_dry_obj"]
        if self._source_random_access:
            return (obj[i] for i in range(len(obj)))
        return iter(obj)

    def _rows(self, index: Any) -> Any:
        obj = self.__dict__["_dry_obj"]
        getitems = getattr(obj, "__getitems__", None)
        if self.__dict__["_dry_rows"] is None and callable(getitems) and not isinstance(index, slice):
            from ptdry.data import structure

            return structure.stack(list(getitems([int(i) for i in index])), "torch")
        return super()._rows(index)

    @property
    def supervised(self) -> bool:
        return self.__dict__["_dry_pairs"]

    @property
    def backend(self) -> str:
        return "torch"
