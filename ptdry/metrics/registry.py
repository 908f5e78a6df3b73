"""Metrics by name, and turning a user's list of names, metrics and functions into metrics."""

from __future__ import annotations

from typing import Any, Callable

from ptdry.errors import ConfigError
from ptdry.metrics.classification import F1, Accuracy, LogLoss, TopKAccuracy
from ptdry.metrics.metric import BatchMean, Metric
from ptdry.metrics.regression import MAE, MSE

__all__ = ["METRICS", "resolve_metrics"]

#: Metrics known by name (each name makes a fresh metric with its default arguments).
METRICS: dict[str, Callable[[], Metric]] = {
    "accuracy": Accuracy,
    "top_k_accuracy": TopKAccuracy,
    "log_loss": LogLoss,
    "f1": F1,
    "mse": MSE,
    "mae": MAE,
}


def resolve_metrics(metrics: Any) -> dict[str, Metric]:
    """``{name: Metric}`` from names in :data:`METRICS`, :class:`Metric` objects (named by
    their ``name``) and functions ``fn(outputs, targets) -> batch mean`` over NumPy arrays
    (named by ``__name__``, wrapped in :class:`BatchMean`).

    Raises:
        ConfigError: an unknown name, two metrics of one name, or something that is neither
            a name, a Metric nor a function.

    Example:
        >>> sorted(resolve_metrics(("accuracy", "mse")))
        ['accuracy', 'mse']
    """
    if metrics is None:
        return {}
    if isinstance(metrics, (str, Metric)) or callable(metrics):
        metrics = (metrics,)
    out: dict[str, Metric] = {}
    for m in metrics:
        if isinstance(m, str):
            if m not in METRICS:
                raise ConfigError(
                    f"unknown metric {m!r}; known: {sorted(METRICS)}, or pass a ptdry.metrics Metric "
                    "or a function fn(outputs, targets) -> batch mean"
                )
            metric = METRICS[m]()
            name = m
        elif isinstance(m, Metric):
            metric, name = m, m.name
        elif callable(m):
            metric = BatchMean(m)
            name = metric.name
        else:
            raise ConfigError(
                f"a metric must be a name, a ptdry.metrics Metric or a function fn(outputs, targets); received {m!r}"
            )
        if name in out:
            raise ConfigError(f"two metrics are named {name!r}; give one another name")
        out[name] = metric
    return out
