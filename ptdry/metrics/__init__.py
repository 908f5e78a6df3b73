"""Framework-neutral metrics over NumPy outputs (accuracy, top-k accuracy, log-loss, F1, MSE,
MAE), shared by every model and trainer, exact over batches."""

from ptdry.metrics.accumulator import Accumulator, batch_partials
from ptdry.metrics.classification import F1, Accuracy, LogLoss, TopKAccuracy
from ptdry.metrics.metric import BatchMean, MeanMetric, Metric, Partial, as_numpy
from ptdry.metrics.regression import MAE, MSE
from ptdry.metrics.registry import METRICS, resolve_metrics

__all__ = [
    "F1",
    "MAE",
    "METRICS",
    "MSE",
    "Accumulator",
    "Accuracy",
    "BatchMean",
    "LogLoss",
    "MeanMetric",
    "Metric",
    "Partial",
    "TopKAccuracy",
    "as_numpy",
    "batch_partials",
    "resolve_metrics",
]
