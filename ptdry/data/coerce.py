"""as_dataset: the Dataset for whatever a user hands a DataLoader or a DataProvider.

Arrays become a :class:`~ptdry.data.numpy_dataset.NumpyDataset`, a torch ``Dataset`` a
:class:`~ptdry.data.torch_dataset.TorchDataset`, a ``tf.data.Dataset`` a
:class:`~ptdry.data.tf_dataset.TFDataset`; a ptdry Dataset stays as it is. Types are checked by
module name first, so nothing imports torch or TensorFlow to look at a NumPy array.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ptdry.data.dataset import Dataset
from ptdry.data.numpy_dataset import NumpyDataset
from ptdry.errors import ConfigError

__all__ = ["as_dataset"]


def _is_array(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor))


def as_dataset(value: Any, what: str = "data") -> Dataset:
    """``value`` as a ptdry Dataset.

    Accepted: a Dataset; an array or a tuple/list/dict of equal-length arrays (one batch of
    rows, as in ``(X, y)``; with torch tensors among them, a NumpyDataset of their memory
    whose elements are tensors again, ``.torch()``); a torch ``Dataset``; a
    ``tf.data.Dataset``.

    Raises:
        ConfigError: anything else (the message names ``what``).
    """
    if isinstance(value, Dataset):
        return value
    if isinstance(value, (tuple, list, dict)) and value:
        parts = list(value.values()) if isinstance(value, dict) else list(value)
        if all(_is_array(p) for p in parts):
            converted = [p if isinstance(p, np.ndarray) else p.detach().cpu().numpy() for p in parts]
            data = dict(zip(value, converted)) if isinstance(value, dict) else tuple(converted)
            tensors = any(not isinstance(p, np.ndarray) for p in parts)
            return NumpyDataset(data).torch() if tensors else NumpyDataset(data)
        bad = next(p for p in parts if not _is_array(p))
        raise ConfigError(
            f"{what} holds a {type(bad).__qualname__}; a tuple of data must hold arrays or tensors of "
            "equal length, such as (X, y)"
        )
    if _is_array(value):
        if isinstance(value, np.ndarray):
            return NumpyDataset(value)
        return NumpyDataset(value.detach().cpu().numpy()).torch()
    module = type(value).__module__
    if module.startswith("torch") or _is_torch_dataset(value):
        from ptdry.data.torch_dataset import TorchDataset

        return TorchDataset(value)
    if module.startswith("tensorflow"):
        from ptdry.data.tf_dataset import TFDataset

        return TFDataset(value)
    raise ConfigError(
        f"{what} is a {type(value).__qualname__}; expected a ptdry Dataset, arrays such as (X, y), a torch "
        "Dataset or a tf.data.Dataset"
    )


def _is_torch_dataset(value: Any) -> bool:
    tud = sys.modules.get("torch.utils.data")
    return tud is not None and isinstance(value, (tud.Dataset, tud.IterableDataset))
