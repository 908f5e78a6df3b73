"""DataProvider: the train/val/test splits of an experiment, handing out batches.

Each split is a tuple of equal-length arrays or tensors (``(X, y)``), a map-style torch
Dataset, or None. The data lives in the provider's *state* (its definition keeps a
:class:`~ptdry.core.dataref.DataRef` fingerprint), so a saved tree carries its data and a tree
rebuilt from its definition gets the data back with ``load_state_dict``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ptdry.core.dataref import DataRef
from ptdry.core.module import Module
from ptdry.data.loader import Batches, num_batches
from ptdry.errors import ConfigError, NotReadyError

__all__ = ["DataProvider", "SPLITS"]

log = logging.getLogger(__name__)

#: The split names a DataProvider knows, in order.
SPLITS = ("train", "val", "test")


def _is_array(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or type(value).__module__ == "numpy" and hasattr(value, "shape")


def _is_dataset(value: Any) -> bool:
    return hasattr(value, "__getitem__") and hasattr(value, "__len__") and not isinstance(value, (str, bytes, dict))


def _to_tensor(split: str, i: int, value: Any) -> torch.Tensor:
    """A tensor sharing memory where possible: float64 → float32, integers → int64."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if t.ndim == 0:
        raise ConfigError(f"{split}[{i}] is a scalar; each array needs one row per sample")
    if t.dtype == torch.float64:
        return t.to(torch.float32)
    if not t.dtype.is_floating_point and not t.dtype.is_complex and t.dtype != torch.bool and t.dtype != torch.int64:
        return t.to(torch.int64)
    return t


class DataProvider(Module):
    """The splits of an experiment; ``provide(split, batch_size)`` hands out their batches.

    Arrays are converted to tensors once: float64 becomes float32 and integer dtypes become
    int64 (class labels as losses expect them); other dtypes are kept. The original arrays
    are what the state holds, so the definition's fingerprint still matches after a round
    trip through an archive or the database.

    Args:
        train, val, test: a tuple (or list) of equal-length arrays/tensors such as
            ``(X, y)``, a map-style ``torch.utils.data.Dataset``, or None.

    Raises:
        ConfigError: a split has a wrong type, arrays of different lengths, or no samples.

    Example:
        >>> import numpy as np
        >>> data = DataProvider(train=(np.zeros((5, 2)), np.arange(5)))
        >>> [tuple(y.tolist()) for _, y in data.provide("train", 2)]
        [(0, 1), (2, 3), (4,)]
        >>> data.len_batches("train", 2), data.size("train")
        (3, 5)
    """

    dry_data_args = SPLITS

    def __init__(self, train: Any = None, val: Any = None, test: Any = None) -> None:
        self._raw: dict[str, Any] = {}
        self._tensors: dict[str, tuple[torch.Tensor, ...] | None] = {}
        self._pending: dict[str, DataRef] = {}
        for split, value in zip(SPLITS, (train, val, test)):
            self._set(split, value)

    # -- splits ---------------------------------------------------------------------------
    def _set(self, split: str, value: Any) -> None:
        self._pending.pop(split, None)
        self._tensors[split] = None
        if isinstance(value, DataRef):  # rebuilt from a definition: the data comes with the state
            self._raw[split] = None
            self._pending[split] = value
            return
        if value is None:
            self._raw[split] = None
            return
        if isinstance(value, (tuple, list)):
            if not value:
                raise ConfigError(f"{split} is an empty {type(value).__name__}; expected (X, y) arrays")
            for i, a in enumerate(value):
                if not _is_array(a):
                    raise ConfigError(
                        f"{split}[{i}] is a {type(a).__qualname__}; expected a NumPy array or torch tensor "
                        f"(split {split} = (X, y, ...) arrays of equal length)"
                    )
            tensors = tuple(_to_tensor(split, i, a) for i, a in enumerate(value))
            lengths = [len(t) for t in tensors]
            if len(set(lengths)) > 1:
                raise ConfigError(f"{split} arrays have different lengths {lengths}; expected one row per sample in each")
            if lengths[0] == 0:
                raise ConfigError(f"{split} has no samples (arrays of length 0)")
            self._raw[split] = tuple(value)
            self._tensors[split] = tensors
            return
        if _is_array(value):
            raise ConfigError(
                f"{split} is a single {type(value).__qualname__}; pass a tuple such as ({split}_X, {split}_y) "
                "(or (X,) for inputs only)"
            )
        if _is_dataset(value):
            if len(value) == 0:
                raise ConfigError(f"{split} dataset {type(value).__qualname__} has no samples")
            self._raw[split] = value
            return
        raise ConfigError(
            f"{split} is a {type(value).__qualname__}; expected a tuple of arrays/tensors (X, y), "
            "a map-style torch Dataset, or None"
        )

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")

    def has(self, split: str) -> bool:
        """True if ``split`` holds data (loaded, not None)."""
        self._check_split(split)
        return self._raw[split] is not None

    def size(self, split: str) -> int:
        """Number of samples in ``split``."""
        self._ready(split)
        tensors = self._tensors[split]
        return len(tensors[0]) if tensors is not None else len(self._raw[split])

    def len_batches(self, split: str, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches of ``batch_size`` in ``split``."""
        return num_batches(self.size(split), batch_size, drop_last)

    def _ready(self, split: str) -> None:
        self._check_split(split)
        if split in self._pending:
            raise NotReadyError(
                f"the {split} data of {type(self).__name__} is not loaded yet (it was rebuilt from a "
                "definition); call load_state_dict() with the saved state first"
            )
        if self._raw[split] is None:
            have = [s for s in SPLITS if self._raw[s] is not None]
            raise ConfigError(f"{type(self).__name__} has no {split!r} split; it has {have or 'no data'}")

    # -- batches ----------------------------------------------------------------------------
    def provide(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        skip: int = 0,
        drop_last: bool = False,
    ) -> Batches:
        """The batches of ``split``, as tuples of tensors.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            batch_size: samples per batch.
            shuffle: order the samples by a permutation that depends only on (seed, epoch).
            seed, epoch: what the shuffled order depends on.
            skip: leave out the first ``skip`` batches (resuming mid-epoch).
            drop_last: leave out a last, smaller batch.

        Raises:
            ConfigError: unknown or empty split, bad batch_size or skip.
            NotReadyError: the data has not been loaded into a rebuilt provider.
        """
        self._ready(split)
        tensors = self._tensors[split]
        common = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch, skip=skip, drop_last=drop_last)
        if tensors is not None:
            return Batches(tensors, **common)
        return Batches(dataset=self._raw[split], **common)

    __call__ = provide

    # -- state -----------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """``"<split>.<i>"`` → the i-th array of each array split (the data travels with the
        state). Dataset splits are not stored: pass the dataset again when rebuilding."""
        out: dict[str, Any] = {}
        for split in SPLITS:
            raw = self._raw[split]
            if isinstance(raw, tuple):
                out.update({f"{split}.{i}": a for i, a in enumerate(raw)})
            elif split in self._pending and isinstance(self._pending[split].summary, list):
                out.update({f"{split}.{i}": None for i in range(len(self._pending[split].summary))})
        return out

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for split in SPLITS:
            keys = sorted((k for k in state if k.startswith(split + ".")), key=lambda k: int(k.rsplit(".", 1)[1]))
            if not keys:
                continue
            arrays = tuple(state[k] for k in keys)
            expected = self._pending.get(split)
            if expected is not None and DataRef.of(arrays) != expected:
                raise ConfigError(
                    f"the saved {split} data (fingerprint {DataRef.of(arrays).sha256[:12]}) does not match "
                    f"this provider's definition ({expected.sha256[:12]}); was the state saved from other data?"
                )
            self._set(split, arrays)

    def problems(self) -> list[str]:
        out = super().problems()
        for split in SPLITS:
            if split in self._pending:
                summary = self._pending[split].summary
                if isinstance(summary, list):
                    out.append(f"{split} data not loaded: call load_state_dict() with the saved state")
                else:
                    out.append(f"{split} was a dataset ({summary}); it cannot be restored from state, pass it again")
        return out

    def __repr__(self) -> str:
        parts = []
        for split in SPLITS:
            if split in self._pending:
                parts.append(f"{split}=<not loaded>")
            elif self._raw[split] is not None:
                parts.append(f"{split}={self.size(split)} samples")
        return f"DataProvider({', '.join(parts)})"
