"""Metric: a number computed from a model's outputs and the targets, in NumPy, exact over batches.

Every framework's model hands its outputs to the same metrics as NumPy arrays, so a torch
model and a Keras model evaluated on the same data are measured by the same code. A metric
computes *additive sums* of a batch (``sums``) and turns the totals into the value
(``result``): a split evaluated in batches gives exactly the value of the whole split, for
means (accuracy, MSE) and for ratios of counts (F1) alike.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ptdry.core.module import Module
from ptdry.errors import ConfigError

__all__ = ["BatchMean", "MeanMetric", "Metric", "Partial", "as_numpy"]


def as_numpy(value: Any) -> np.ndarray:
    """``value`` as a NumPy array: arrays as they are, framework tensors through ``.numpy()``
    (torch tensors detached and moved to the CPU first), anything else via ``np.asarray``."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy"):  # TensorFlow
        return value.numpy()
    return np.asarray(value)


class Partial:
    """The sums of one batch for one metric; :class:`~ptdry.metrics.accumulator.Accumulator`
    adds them up and asks the metric for the result."""

    __slots__ = ("metric", "sums")

    def __init__(self, metric: "Metric", sums: np.ndarray) -> None:
        self.metric, self.sums = metric, sums

    def result(self) -> float:
        return self.metric.result(self.sums)

    def __repr__(self) -> str:
        return f"Partial({self.metric.name}, {self.sums.tolist()})"


class Metric(Module):
    """Base of ptdry's metrics: ``metric(outputs, targets) -> float`` over NumPy arrays.

    Subclasses define :attr:`name`, :meth:`sums` (a 1-D float64 array of additive sums of one
    batch) and :meth:`result` (the value from summed sums). Metrics are Modules: their
    arguments are recorded, so a Trainer's or a comparison's metrics are stored with it.

    Example:
        >>> from ptdry.metrics import Accuracy
        >>> acc = Accuracy()
        >>> acc(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
        0.5
        >>> a, b = acc.sums(np.array([[0.1, 0.9]]), np.array([1])), acc.sums(np.array([[0.8, 0.2]]), np.array([1]))
        >>> acc.result(a + b)
        0.5
    """

    #: The name values are recorded under (``val.<name>``).
    name: str = "metric"
    #: True when larger values are better (accuracy), False when smaller are (MSE).
    higher_is_better: bool = True

    def sums(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define sums(outputs, targets)")

    def result(self, sums: np.ndarray) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not define result(sums)")

    def __call__(self, outputs: Any, targets: Any) -> float:
        """The metric of ``outputs`` against ``targets`` (arrays or framework tensors)."""
        return self.result(self.sums(as_numpy(outputs), as_numpy(targets)))

    def partial(self, outputs: Any, targets: Any) -> Partial:
        """The sums of one batch, to be added up over a split."""
        return Partial(self, self.sums(as_numpy(outputs), as_numpy(targets)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanMetric(Metric):
    """A mean of per-sample (or per-element) values: sums are ``[total, count]``."""

    def values(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sums(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        v = np.asarray(self.values(outputs, targets), dtype=np.float64)
        return np.array([v.sum(), v.size], dtype=np.float64)

    def result(self, sums: np.ndarray) -> float:
        if sums[1] == 0:
            raise ConfigError(f"metric {self.name} of no samples; evaluate it on a non-empty split")
        return float(sums[0] / sums[1])


class BatchMean(Metric):
    """A user function ``fn(outputs, targets) -> mean over the batch``, weighted by batch size.

    Args:
        fn: the function; it receives NumPy arrays.
        name: the recorded name; default ``fn.__name__``.

    Example:
        >>> def close(outputs, targets):
        ...     return float(np.mean(np.abs(outputs - targets) < 0.5))
        >>> BatchMean(close)(np.array([0.0, 1.0]), np.array([0.1, 2.0]))
        0.5
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any], name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError(f"fn must be a function fn(outputs, targets) -> batch mean; received {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def sums(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        value = self.fn(outputs, targets)
        n = len(targets) if np.ndim(targets) else 1
        return np.array([float(as_numpy(value)) * n, n], dtype=np.float64)

    def result(self, sums: np.ndarray) -> float:
        if sums[1] == 0:
            raise ConfigError(f"metric {self.name} of no samples; evaluate it on a non-empty split")
        return float(sums[0] / sums[1])

    def __repr__(self) -> str:
        return f"BatchMean({self.name})"
