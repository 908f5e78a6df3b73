"""Cast: a storable transform that gives every array of an element one dtype, in its framework.

``ds.map(Cast("float32"))`` works on NumPy, torch and TensorFlow elements alike (and on
batches as on rows, so loaders apply it to whole batches). Being a Module, it is stored in
the dataset's definition like any other argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptdry.core.module import Module
from ptdry.core.properties import Str
from ptdry.data import structure
from ptdry.errors import ConfigError

__all__ = ["Cast"]


class Cast(Module):
    """Cast every array/tensor of an element to ``dtype`` (a NumPy dtype name such as
    ``"float32"``, ``"int64"``, ``"bool"``); Python numbers become arrays of it.

    Example:
        >>> import numpy as np
        >>> from ptdry import NumpyDataset
        >>> NumpyDataset(np.arange(3)).map(Cast("float32")).peek().dtype
        dtype('float32')
    """

    dtype = Str(nonempty=True)

    #: Cast of a batch is the batch of casts: loaders may apply it to whole batches.
    vectorized = True

    def __init__(self, dtype: str) -> None:
        try:
            np.dtype(dtype)
        except TypeError:
            raise ConfigError(f"Cast needs a NumPy dtype name such as 'float32'; received {dtype!r}") from None
        self.dtype = str(np.dtype(dtype))

    def __call__(self, element: Any) -> Any:
        return structure.map_leaves(self._cast, element)

    def _cast(self, leaf: Any) -> Any:
        kind = structure.framework(leaf)
        if kind == "torch":
            import torch

            return leaf.to(getattr(torch, self.dtype))
        if kind == "tf":
            import tensorflow as tf

            return tf.cast(leaf, self.dtype)
        return np.asarray(leaf).astype(self.dtype, copy=False)
