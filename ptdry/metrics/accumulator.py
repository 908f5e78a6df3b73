"""Accumulator: a split's loss and metrics from its batches, exactly.

An evaluation step returns, per batch, plain numbers that are batch means (the loss) and
:class:`~ptdry.metrics.metric.Partial` sums of metrics. The accumulator weights the means by
batch size and adds the sums up, so the result is that of the whole split at once.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np  # noqa: F401  (the examples use it)

from ptdry.metrics.metric import Metric, Partial

__all__ = ["Accumulator", "batch_partials"]


def batch_partials(metrics: Mapping[str, Metric], outputs: Any, targets: Any) -> dict[str, Partial]:
    """Each metric's :class:`Partial` of one batch (outputs and targets already NumPy arrays)."""
    return {name: Partial(m, m.sums(outputs, targets)) for name, m in metrics.items()}


def _number(value: Any) -> float:
    return value.item() if hasattr(value, "item") else float(value)


class Accumulator:
    """Adds up evaluation batches; :meth:`results` gives ``{name: value}``.

    Example:
        >>> from ptdry.metrics import Accuracy
        >>> acc, m = Accumulator(), Accuracy()
        >>> acc.add({"loss": 1.0, "accuracy": m.partial(np.array([[0, 1]]), np.array([1]))}, size=1)
        >>> acc.add({"loss": 4.0, "accuracy": m.partial(np.array([[0, 1], [1, 0]]), np.array([0, 0]))}, size=2)
        >>> acc.results()
        {'loss': 3.0, 'accuracy': 0.6666666666666666}
    """

    __slots__ = ("_means", "_sums", "n")

    def __init__(self) -> None:
        self._means: dict[str, float] = {}
        self._sums: dict[str, Partial] = {}
        self.n = 0

    def add(self, values: Mapping[str, Any], size: int) -> None:
        """Add one batch of ``size`` samples: Partials are summed, numbers weighted by size."""
        for key, value in values.items():
            if isinstance(value, Partial):
                seen = self._sums.get(key)
                self._sums[key] = value if seen is None else Partial(seen.metric, seen.sums + value.sums)
            else:
                self._means[key] = self._means.get(key, 0.0) + _number(value) * size
        self.n += size

    def results(self) -> dict[str, float]:
        """The value of each loss/metric over everything added (in the order first seen)."""
        out = {k: s / self.n for k, s in self._means.items()} if self.n else {}
        out.update({k: p.result() for k, p in self._sums.items()})
        return out

