"""ForeignDataset: the shared base of datasets that wrap another library's dataset object.

A torch ``Dataset`` or a ``tf.data.Dataset`` is not a ptdry Module, so a definition cannot
name how to make it again. Three ways keep a tree rebuildable:

- a **recipe** — ``ObjectDef(MyDataset, root=...)`` or a module-level function returning the
  dataset — is stored in the definition and run again on rebuild (loading it back from the
  database needs the class or function allowed: ``ptdry.allow``);
- an object whose elements fit in ``store_limit`` bytes is **stored**: its elements go to the
  state (as one stacked batch), and a rebuilt tree serves them from there;
- any other object is fingerprinted by content (sampled elements) in the definition only; a
  rebuilt tree reports that the dataset must be passed again (see :meth:`problems`).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import numpy as np

from ptdry.core.dataref import DataRef
from ptdry.core.objectdef import ObjectDef
from ptdry.core.properties import Bool, Int
from ptdry.data import structure
from ptdry.data.dataset import Dataset
from ptdry.errors import ConfigError, NotReadyError

__all__ = ["DEFAULT_STORE_LIMIT", "ForeignDataset"]

log = logging.getLogger(__name__)

#: Datasets up to this many bytes are kept in the state by default (256 MiB).
DEFAULT_STORE_LIMIT = 256 * 2**20


class ForeignDataset(Dataset):
    """Base of :class:`~ptdry.data.torch_dataset.TorchDataset` and
    :class:`~ptdry.data.tf_dataset.TFDataset` (see the module doc).

    Subclasses call :meth:`_setup` from ``__init__`` and implement the ``_source_*`` hooks
    over the wrapped object ``self.obj``.
    """

    dry_data_args = ("dataset",)

    store_limit = Int(min=0)
    stored = Bool(allow_none=True)

    def _setup(self, dataset: Any, recipe: Any, store_limit: int, stored: bool | None) -> None:
        d = self.__dict__
        d["_dry_obj"], d["_dry_pending"], d["_dry_rows"], d["_dry_ref"] = None, None, None, None
        self.store_limit = store_limit
        if dataset is not None and recipe is None and (isinstance(dataset, ObjectDef) or _is_function(dataset)):
            dataset, recipe = None, dataset
            self._record_argument("dataset", None)
            self._record_argument("recipe", recipe)
        if (dataset is None) == (recipe is None):
            raise ConfigError(f"{type(self).__name__} needs a dataset object or a recipe (an ObjectDef or a function)")
        if recipe is not None:
            built = recipe.build() if isinstance(recipe, ObjectDef) else recipe()
            d["_dry_obj"], d["_dry_ref"] = self._check(built), None
            self.stored = False
        elif isinstance(dataset, DataRef):  # rebuilt from a definition
            d["_dry_pending"] = dataset
            self.stored = bool(stored)
        else:
            d["_dry_obj"] = self._check(dataset)
            d["_dry_ref"] = self._content_ref(dataset)
            self._record_argument("dataset", d["_dry_ref"])  # fingerprinted once, by content
            self.stored = self._fits(store_limit) if stored is None else bool(stored)
        self._record_argument("stored", self.stored)

    # -- hooks for subclasses ------------------------------------------------------------------------
    def _check(self, obj: Any) -> Any:
        """Return ``obj`` if this class can wrap it, else raise ConfigError."""
        raise NotImplementedError

    def _content_ref(self, obj: Any) -> DataRef:
        """The definition's fingerprint of ``obj`` (default: class, length, sampled elements)."""
        return DataRef.of(obj)

    def _storable(self, element: Any) -> Any:
        """An element as the state keeps it (default: as it is)."""
        return element

    def _restored(self, element: Any) -> Any:
        """An element read back from the state, as the source gave it (default: as it is)."""
        return element

    def _source_length(self) -> int | None:
        raise NotImplementedError

    def _source_iter(self) -> Iterator[Any]:
        raise NotImplementedError

    def _source_get(self, i: int) -> Any:
        raise TypeError(f"{type(self).__name__} wraps an iterable dataset; iterate it, or collect() it first")

    @property
    def _source_random_access(self) -> bool:
        return False

    # -- the source: the object, or the rows restored from the state -----------------------------
    @property
    def obj(self) -> Any:
        """The wrapped dataset object (None when the elements were restored from the state)."""
        if self.__dict__["_dry_obj"] is None and self.__dict__["_dry_rows"] is None:
            self._not_ready()
        return self.__dict__["_dry_obj"]

    def _not_ready(self) -> None:
        pending = self.__dict__["_dry_pending"]
        raise NotReadyError(f"{type(self).__name__}: {self._pending_problem(pending)}")

    def _pending_problem(self, pending: DataRef) -> str:
        if self.stored:
            return "its elements are not loaded yet (rebuilt from a definition): call load_state_dict() with the saved state"
        return (
            f"it wrapped a dataset object ({pending.summary}) that ptdry could not store; pass that dataset "
            "again, or give a recipe (ObjectDef(cls, ...) or a function) so the definition can rebuild it"
        )

    @property
    def random_access(self) -> bool:
        return self.__dict__["_dry_rows"] is not None or (
            self.__dict__["_dry_obj"] is not None and self._source_random_access
        )

    def _length(self) -> int | None:
        rows = self.__dict__["_dry_rows"]
        if rows is not None:
            return len(rows) if isinstance(rows, list) else structure.batch_length(rows)
        self.obj  # noqa: B018  (raises if not ready)
        return self._source_length()

    def _get(self, i: int) -> Any:
        rows = self.__dict__["_dry_rows"]
        if rows is not None:
            return self._restored(rows[i] if isinstance(rows, list) else structure.row(rows, i))
        self.obj  # noqa: B018  (raises if not ready)
        if not self._source_random_access:
            return ForeignDataset._source_get(self, i)  # the explanatory TypeError
        return self._source_get(i)

    def _rows(self, index: slice | np.ndarray) -> Any:
        rows = self.__dict__["_dry_rows"]
        if rows is None or isinstance(rows, list) or type(self)._restored is not ForeignDataset._restored:
            return super()._rows(index)
        if isinstance(index, slice):
            start, stop, step = index.indices(structure.batch_length(rows))
            index = slice(start, stop) if step == 1 else np.arange(start, stop, step)
        return (
            structure.slice_rows(rows, index.start, index.stop)
            if isinstance(index, slice)
            else structure.take_rows(rows, index)
        )

    def _iter(self) -> Iterator[Any]:
        rows = self.__dict__["_dry_rows"]
        if rows is not None:
            return (self._get(i) for i in range(self._length()))
        self.obj  # noqa: B018
        return self._source_iter()

    # -- storing -------------------------------------------------------------------------------------
    def _fits(self, limit: int) -> bool:
        """Whether the elements are plain arrays/numbers and fit in ``limit`` bytes."""
        n = self._source_length()
        if not n or limit <= 0:
            return False
        first = next(iter(self._source_iter()))
        if not all(structure.framework(x) or isinstance(x, (bool, int, float)) for x in structure.leaves(first)):
            return False
        estimate = n * structure.nbytes(first)
        if estimate > limit:
            log.info(
                "%s: not storing %d elements (~%d bytes > store_limit %d)", type(self).__name__, n, estimate, limit
            )
            return False
        return True

    def _materialized(self) -> Any:
        d = self.__dict__
        if d["_dry_rows"] is not None:
            return d["_dry_rows"]
        if d.get("_dry_stacked") is None:  # read once, when the state is first asked for
            elements = [self._storable(e) for e in self._source_iter()]
            d["_dry_stacked"] = elements if self.batched else structure.stack(elements, self.backend)
        return d["_dry_stacked"]

    def extra_state(self) -> dict[str, Any]:
        """``{"elements": ..., "fingerprint": ...}`` when stored (one stacked batch of the
        elements; a list of them when they are batches), else nothing."""
        if not self.stored:
            return {}
        if self.__dict__["_dry_pending"] is not None and self.__dict__["_dry_rows"] is None:
            return {"elements": None, "fingerprint": None}
        return {"elements": self._materialized(), "fingerprint": self._fingerprint().sha256}

    def _fingerprint(self) -> DataRef:
        return self.__dict__["_dry_pending"] or self.__dict__["_dry_ref"]

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "elements" not in state or state["elements"] is None:
            return
        pending = self.__dict__["_dry_pending"]
        if pending is not None and state.get("fingerprint") != pending.sha256:
            raise ConfigError(
                f"the saved elements (fingerprint {str(state.get('fingerprint'))[:12]}) do not match this "
                f"{type(self).__name__}'s definition ({pending.sha256[:12]}); was the state saved from other data?"
            )
        self.__dict__["_dry_rows"] = state["elements"]

    def problems(self) -> list[str]:
        out = super().problems()
        d = self.__dict__
        if d["_dry_obj"] is None and d["_dry_rows"] is None and d["_dry_pending"] is not None:
            out.append(self._pending_problem(d["_dry_pending"]))
        return out


def _is_function(value: Any) -> bool:
    import inspect

    return inspect.isfunction(value) or inspect.isbuiltin(value)
