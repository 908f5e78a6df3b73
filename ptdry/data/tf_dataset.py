"""TFDataset: a ``tf.data.Dataset`` as a ptdry Dataset (TensorFlow imported only here, lazily).

A ``tf.data.Dataset`` is iterable, not indexable: a TFDataset iterates it in Python (eager
tensors), so the vocabulary (``batch``, ``map``, ``shuffle``, ``numpy()``…) means the same as
for every other Dataset. A finite dataset small enough is kept in the state (as NumPy arrays),
a recipe function in the definition; see :mod:`ptdry.data.foreign`.
"""

from __future__ import annotations

from typing import Any, Iterator

from ptdry.core.dataref import DataRef
from ptdry.core.properties import Int
from ptdry.data import structure
from ptdry.data.foreign import DEFAULT_STORE_LIMIT, ForeignDataset
from ptdry.errors import ConfigError

__all__ = ["TFDataset"]


class TFDataset(ForeignDataset):
    """A ``tf.data.Dataset`` whose elements are TensorFlow tensors (or tuples/dicts of them).

    Args:
        dataset: the ``tf.data.Dataset``, or a module-level function returning one (stored in
            the definition and called again when the tree is rebuilt).
        batch_size: rows per element when the elements are batches (``ds.batch(n)`` in
            TensorFlow); None: the elements are rows.
        supervised: the elements are ``(X, Y)`` pairs; default: when its element spec is a pair.
        store_limit: keep a finite dataset in the state when it takes at most this many bytes.
        recipe, stored: recorded by ptdry (how the dataset is rebuilt); leave them out.

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> ds = TFDataset(tf.data.Dataset.from_tensor_slices(np.arange(6.0).reshape(3, 2)))
        >>> ds.count(), ds.numpy().peek().tolist()
        (3, [0.0, 1.0])
    """

    rows_per_element = Int(min=1, allow_none=True)

    def __init__(
        self,
        dataset: Any = None,
        *,
        batch_size: int | None = None,
        supervised: bool | None = None,
        store_limit: int = DEFAULT_STORE_LIMIT,
        recipe: Any = None,
        stored: bool | None = None,
    ) -> None:
        self.rows_per_element = batch_size
        self._setup(dataset, recipe, store_limit, stored)
        obj = self.__dict__["_dry_obj"]
        if supervised is None and obj is not None:
            spec = obj.element_spec
            supervised = isinstance(spec, tuple) and len(spec) == 2
            self._record_argument("supervised", supervised)
        self.__dict__["_dry_pairs"] = bool(supervised)

    def _check(self, obj: Any) -> Any:
        import tensorflow as tf

        if not isinstance(obj, tf.data.Dataset):
            raise ConfigError(
                f"TFDataset needs a tf.data.Dataset or a function returning one; received {type(obj).__qualname__}"
            )
        return obj

    def _content_ref(self, obj: Any) -> DataRef:
        """Cardinality, element spec and the content of the first 16 elements."""
        first = [structure.convert(e, "numpy") for e in obj.take(16)]
        return DataRef.of(("tf.data.Dataset", int(obj.cardinality()), repr(obj.element_spec), first))

    def _source_length(self) -> int | None:
        n = int(self.__dict__["_dry_obj"].cardinality())
        return n if n >= 0 else None  # -1: infinite, -2: unknown

    def _source_iter(self) -> Iterator[Any]:
        return iter(self.__dict__["_dry_obj"])

    def _storable(self, element: Any) -> Any:
        return structure.convert(element, "numpy")

    def _restored(self, element: Any) -> Any:
        return structure.convert(element, "tf")

    @property
    def batch_size(self) -> int | None:
        return self.rows_per_element

    @property
    def supervised(self) -> bool:
        return self.__dict__["_dry_pairs"]

    @property
    def backend(self) -> str:
        return "tf"
