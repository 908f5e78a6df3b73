"""Metrics the Trainer computes on validation and test batches, by name or as functions.

A metric is ``fn(outputs, targets) -> number`` giving the mean over one batch; the Trainer
averages it over a split weighted by batch size, so means such as accuracy come out exact.
"""

from __future__ import annotations

from typing import Any, Callable

from ptdry.errors import ConfigError

__all__ = ["METRICS", "accuracy", "resolve_metrics"]

Metric = Callable[[Any, Any], Any]


def accuracy(outputs: Any, targets: Any) -> Any:
    """Fraction of samples whose highest-scoring class (last dimension) equals the target.

    Example:
        >>> import torch
        >>> float(accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])))
        0.5
    """
    return (outputs.argmax(dim=-1) == targets).float().mean()


#: Metrics known by name.
METRICS: dict[str, Metric] = {"accuracy": accuracy}


def resolve_metrics(metrics: Any) -> dict[str, Metric]:
    """``{name: fn}`` from names in :data:`METRICS` and functions (named after ``__name__``).

    Raises:
        ConfigError: an unknown name, or something that is neither a name nor a function.
    """
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    out: dict[str, Metric] = {}
    for m in metrics:
        if isinstance(m, str):
            if m not in METRICS:
                raise ConfigError(f"unknown metric {m!r}; known: {sorted(METRICS)}, or pass a function fn(outputs, targets)")
            out[m] = METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", type(m).__name__)] = m
        else:
            raise ConfigError(f"a metric must be a name or a function fn(outputs, targets); received {m!r}")
    return out
