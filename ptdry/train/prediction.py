"""Predictions of any Trainable over data, as NumPy arrays: the one output format of every
framework, which ptdry.metrics and ``ptdry.compare`` read.

``Trainable.predict(data)`` takes the inputs of ``data`` in batches, runs the model's
``predict_batch`` (its framework's forward pass in inference mode) and concatenates the
outputs. ``data`` is an array of inputs, a tuple ``(X, ..., y)`` whose last array is the
targets (``(X,)`` for inputs only), or a DataProvider with a ``split``.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ptdry.errors import ConfigError
from ptdry.metrics import as_numpy

__all__ = ["Predictions", "input_arrays", "predict"]


class Predictions(tuple):
    """``(outputs, targets)`` as NumPy arrays (targets None for inputs without them).

    A tuple, so ``outputs, targets = model.predict(data)`` works, and metrics take it as
    ``metric(*predictions)``.
    """

    def __new__(cls, outputs: np.ndarray, targets: np.ndarray | None) -> "Predictions":
        return super().__new__(cls, (outputs, targets))

    @property
    def outputs(self) -> np.ndarray:
        return self[0]

    @property
    def targets(self) -> np.ndarray | None:
        return self[1]

    def __repr__(self) -> str:
        t = None if self[1] is None else self[1].shape
        return f"Predictions(outputs {self[0].shape} {self[0].dtype}, targets {t})"


def input_arrays(data: Any, split: str = "test") -> tuple[tuple[np.ndarray, ...], np.ndarray | None]:
    """``(inputs, targets)`` of ``data`` as NumPy arrays (see the module doc).

    Raises:
        ConfigError: ``data`` is none of the accepted kinds, or its arrays differ in length.
    """
    if hasattr(data, "provide") and hasattr(data, "has"):
        batches = list(data.provide(split, 4096))
        if not batches:
            raise ConfigError(f"the {split} split of {data!r} has no samples")
        parts = [np.concatenate([as_numpy(b[i]) for b in batches]) for i in range(len(batches[0]))]
        data = tuple(parts)
    if isinstance(data, (tuple, list)):
        if not data:
            raise ConfigError("data is an empty tuple; expected (X, y) arrays, (X,) or an array X")
        arrays = tuple(as_numpy(a) for a in data)
        lengths = {len(a) for a in arrays}
        if len(lengths) > 1:
            raise ConfigError(f"data arrays have different lengths {sorted(lengths)}; expected one row per sample in each")
        return (arrays, None) if len(arrays) == 1 else (arrays[:-1], arrays[-1])
    if hasattr(data, "shape") and hasattr(data, "__len__"):
        return (as_numpy(data),), None
    raise ConfigError(
        f"data is a {type(data).__qualname__}; expected an array of inputs, a tuple (X, ..., y) of arrays "
        "or a DataProvider (with split=...)"
    )


def _batches(inputs: tuple[np.ndarray, ...], batch_size: int) -> Iterator[tuple[np.ndarray, ...]]:
    n = len(inputs[0])
    for start in range(0, n, batch_size):
        yield tuple(a[start : start + batch_size] for a in inputs)


def predict(model: Any, data: Any, batch_size: int = 256, split: str = "test") -> Predictions:
    """``model.predict_batch`` over ``data`` in batches; see :meth:`Trainable.predict`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; received {batch_size!r}")
    inputs, targets = input_arrays(data, split)
    if len(inputs[0]) == 0:
        raise ConfigError("data has no samples to predict")
    outputs = [as_numpy(model.predict_batch(*batch)) for batch in _batches(inputs, batch_size)]
    return Predictions(np.concatenate(outputs), targets)
