"""Regression metrics over NumPy outputs: mean squared and mean absolute error.

Targets are matched to the outputs' shape when they hold as many numbers (``(n,)`` targets
for ``(n, 1)`` outputs), so the usual single-output case needs no reshaping.
"""

from __future__ import annotations

import numpy as np

from ptdry.errors import ConfigError
from ptdry.metrics.metric import MeanMetric

__all__ = ["MAE", "MSE"]


def _errors(outputs: np.ndarray, targets: np.ndarray, name: str) -> np.ndarray:
    if outputs.shape != targets.shape:
        if outputs.size != targets.size:
            raise ConfigError(
                f"{name}: outputs of shape {outputs.shape} and targets of shape {targets.shape}; "
                "expected as many targets as outputs"
            )
        targets = targets.reshape(outputs.shape)
    return outputs.astype(np.float64, copy=False) - targets.astype(np.float64, copy=False)


class MSE(MeanMetric):
    """Mean squared error over every output value.

    Example:
        >>> MSE()(np.array([[1.0], [3.0]]), np.array([0.0, 1.0]))
        2.5
    """

    name = "mse"
    higher_is_better = False

    def values(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.square(_errors(outputs, targets, self.name))


class MAE(MeanMetric):
    """Mean absolute error over every output value.

    Example:
        >>> MAE()(np.array([1.0, -3.0]), np.array([0.0, 1.0]))
        2.5
    """

    name = "mae"
    higher_is_better = False

    def values(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.abs(_errors(outputs, targets, self.name))
