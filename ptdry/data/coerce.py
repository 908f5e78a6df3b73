"""as_dataset: the Dataset for whatever a user hands a DataLoader or a DataProvider.

Arrays and tensors become a :class:`~ptdry.data.numpy_dataset.NumpyDataset`, a torch ``Dataset`` a
:class:`~ptdry.data.torch_dataset.TorchDataset`, a ``tf.data.Dataset`` a
:class:`~ptdry.data.tf_dataset.TFDataset`; a ptdry Dataset stays as it is. Types are checked by
module name first, so nothing imports torch or TensorFlow to look at a NumPy array.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ptdry.data import structure
from ptdry.data.dataset import Dataset
from ptdry.data.numpy_dataset import NumpyDataset
from ptdry.errors import ConfigError

__all__ = ["as_dataset"]


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or structure.framework(value) in ("torch", "tf")


def _arrays(parts: list[Any]) -> tuple[list[np.ndarray], str]:
    """``parts`` as NumPy arrays (sharing a CPU tensor's memory), and the backend the dataset's
    elements should have again: torch if any part was a torch tensor, else TensorFlow if any
    was a TensorFlow tensor, else NumPy."""
    kinds = {structure.framework(p) for p in parts}
    backend = "torch" if "torch" in kinds else "tf" if "tf" in kinds else "numpy"
    return [structure.convert(p, "numpy") for p in parts], backend


def as_dataset(value: Any, what: str = "data", expected: str | None = None) -> Dataset:
    """``value`` as a ptdry Dataset.

    Accepted: a Dataset; an array or a tuple/list/dict of equal-length arrays (one batch of
    rows, as in ``(X, y)``; with torch or TensorFlow tensors among them, a NumpyDataset of
    their values whose elements are tensors again: ``.torch()`` (sharing a CPU tensor's
    memory) or ``.tf()``); a torch ``Dataset``; a ``tf.data.Dataset``.

    Raises:
        ConfigError: anything else (the message names ``what``, and ``expected`` — what the
            caller accepts — when given).
    """
    if isinstance(value, Dataset):
        return value
    if isinstance(value, (tuple, list, dict)) and value:
        parts = list(value.values()) if isinstance(value, dict) else list(value)
        if all(_is_array(p) for p in parts):
            converted, backend = _arrays(parts)
            data = dict(zip(value, converted)) if isinstance(value, dict) else tuple(converted)
            return NumpyDataset(data)._convert(backend)
        bad = next(p for p in parts if not _is_array(p))
        raise ConfigError(
            f"{what} holds a {type(bad).__qualname__}; a tuple of data must hold arrays or tensors of "
            "equal length, such as (X, y)"
        )
    if _is_array(value):
        (array,), backend = _arrays([value])
        return NumpyDataset(array)._convert(backend)
    module = type(value).__module__
    if module.startswith("torch") or _is_torch_dataset(value):
        from ptdry.data.torch_dataset import TorchDataset

        return TorchDataset(value)
    if module.startswith("tensorflow"):
        from ptdry.data.tf_dataset import TFDataset

        return TFDataset(value)
    expected = expected or "a ptdry Dataset, arrays such as (X, y), a torch Dataset or a tf.data.Dataset"
    raise ConfigError(f"{what} is a {type(value).__qualname__}; expected {expected}")


def _is_torch_dataset(value: Any) -> bool:
    tud = sys.modules.get("torch.utils.data")
    return tud is not None and isinstance(value, (tud.Dataset, tud.IterableDataset))
