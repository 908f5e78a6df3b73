"""Classification metrics over NumPy outputs: accuracy, top-k accuracy, log-loss, F1.

Outputs are class scores of shape ``(n, classes)`` — logits or probabilities, as a model
gives them — or, for a binary problem, one score per sample (shape ``(n,)`` or ``(n, 1)``).
Targets are class indices ``(n,)``, or one-hot / probability rows of the outputs' shape.
Where it matters whether scores are probabilities or logits (log-loss, a binary threshold),
scores are read as probabilities when every row is one (values in [0, 1], rows of several
classes summing to 1), else as logits; pass ``from_logits=`` to say it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptdry.core.properties import Choice, Int
from ptdry.errors import ConfigError
from ptdry.metrics.metric import MeanMetric, Metric

__all__ = ["Accuracy", "F1", "LogLoss", "TopKAccuracy", "class_scores", "predicted_classes", "target_classes"]


def _is_binary(outputs: np.ndarray) -> bool:
    return outputs.ndim == 1 or outputs.ndim == 2 and outputs.shape[1] == 1


def _are_probabilities(outputs: np.ndarray) -> bool:
    if outputs.size == 0 or outputs.min() < 0 or outputs.max() > 1:
        return False
    return _is_binary(outputs) or bool(np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-4))


def _check(outputs: np.ndarray, targets: np.ndarray, name: str) -> None:
    if outputs.ndim not in (1, 2):
        raise ConfigError(f"{name} needs outputs of shape (n, classes) or (n,); received shape {outputs.shape}")
    if len(outputs) != len(targets):
        raise ConfigError(f"{name}: {len(outputs)} outputs but {len(targets)} targets; expected one target per output")


def target_classes(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Class indices of ``targets`` (one-hot or probability rows: their argmax)."""
    if targets.ndim == 2 and targets.shape == outputs.shape and outputs.shape[1] > 1:
        return targets.argmax(axis=1)
    return targets.reshape(len(targets)).astype(np.int64, copy=False)


def predicted_classes(outputs: np.ndarray, from_logits: bool | None = None) -> np.ndarray:
    """The predicted class of each row: the highest score; for one score per sample, 1 where
    it is above 0.5 (probabilities) or 0 (logits)."""
    if _is_binary(outputs):
        scores = outputs.reshape(len(outputs))
        logits = (not _are_probabilities(outputs)) if from_logits is None else from_logits
        return (scores > (0.0 if logits else 0.5)).astype(np.int64)
    return outputs.argmax(axis=1)


def class_scores(outputs: np.ndarray, from_logits: bool | None = None) -> np.ndarray:
    """Probabilities ``(n, classes)`` from scores: softmax (sigmoid for one score per sample)
    of logits, unchanged probabilities."""
    scores = outputs.astype(np.float64, copy=False)
    logits = (not _are_probabilities(outputs)) if from_logits is None else from_logits
    if _is_binary(outputs):
        p = scores.reshape(len(scores))
        if logits:
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1)
    if logits:
        shifted = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    return scores


class Accuracy(MeanMetric):
    """Fraction of samples whose predicted class is the target.

    Example:
        >>> Accuracy()(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 1, 1]))
        0.6666666666666666
    """

    name = "accuracy"

    def values(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        _check(outputs, targets, self.name)
        return predicted_classes(outputs) == target_classes(outputs, targets)


class TopKAccuracy(MeanMetric):
    """Fraction of samples whose target is among the ``k`` highest scores.

    Args:
        k: how many of the best classes count.

    Example:
        >>> TopKAccuracy(k=2)(np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]), np.array([1, 2]))
        0.5
    """

    k = Int(min=1)

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.name = "top_k_accuracy" if k == 5 else f"top{k}_accuracy"

    def values(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        _check(outputs, targets, self.name)
        if _is_binary(outputs):
            raise ConfigError(f"{self.name} needs scores of shape (n, classes); received shape {outputs.shape}")
        truth = target_classes(outputs, targets)
        if self.k >= outputs.shape[1]:
            return np.ones(len(outputs), dtype=bool)
        # the target counts when fewer than k classes score strictly higher (ties favour it)
        own = np.take_along_axis(outputs, truth[:, None], axis=1)
        return (outputs > own).sum(axis=1) < self.k

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


class LogLoss(MeanMetric):
    """Mean negative log-likelihood of the targets (cross-entropy), from logits or probabilities.

    Args:
        from_logits: True: outputs are logits; False: probabilities; None: decided per batch
            (probabilities when every row is one).
        eps: probabilities are clipped to [eps, 1 - eps].

    Example:
        >>> round(LogLoss()(np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([0, 0])), 4)
        0.3993
    """

    name = "log_loss"
    higher_is_better = False

    def __init__(self, from_logits: bool | None = None, eps: float = 1e-15) -> None:
        if from_logits not in (None, True, False):
            raise ConfigError(f"from_logits must be True, False or None (detect); received {from_logits!r}")
        self.from_logits = from_logits
        self.eps = float(eps)

    def values(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        _check(outputs, targets, self.name)
        probs = np.clip(class_scores(outputs, self.from_logits), self.eps, 1 - self.eps)
        if targets.ndim == 2 and targets.shape == outputs.shape and outputs.shape[1] > 1:
            return -(targets * np.log(probs)).sum(axis=1)
        truth = target_classes(outputs, targets)
        if truth.size and (truth.min() < 0 or truth.max() >= probs.shape[1]):
            raise ConfigError(f"{self.name}: targets must be class indices in [0, {probs.shape[1]}); received {truth.max()}")
        return -np.log(probs[np.arange(len(truth)), truth])

    def __repr__(self) -> str:
        return f"LogLoss(from_logits={self.from_logits})"


class F1(Metric):
    """F1 score (harmonic mean of precision and recall), exact over batches: the sums are the
    true positives, false positives and false negatives of each class.

    Args:
        average: ``"macro"`` (mean over classes seen in targets or predictions),
            ``"weighted"`` (weighted by each class's number of targets), ``"micro"`` (from
            total counts), or ``"binary"`` (class 1 only).
        num_classes: the number of classes; default: the outputs' last dimension (2 for one
            score per sample).

    Example:
        >>> round(F1()(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1])), 4)
        0.6667
    """

    name = "f1"
    average = Choice(["macro", "weighted", "micro", "binary"])
    num_classes = Int(min=2, allow_none=True)

    def __init__(self, average: str = "macro", num_classes: int | None = None) -> None:
        self.average = average
        self.num_classes = num_classes

    def sums(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        _check(outputs, targets, self.name)
        c = self.num_classes or (2 if _is_binary(outputs) else outputs.shape[1])
        pred, truth = predicted_classes(outputs), target_classes(outputs, targets)
        if truth.size and (truth.min() < 0 or truth.max() >= c):
            raise ConfigError(f"{self.name}: targets must be class indices in [0, {c}); received {truth.max()}")
        tp = np.bincount(truth[pred == truth], minlength=c)[:c]
        predicted = np.bincount(pred, minlength=c)[:c]
        actual = np.bincount(truth, minlength=c)[:c]
        return np.concatenate([tp, predicted - tp, actual - tp]).astype(np.float64)

    def result(self, sums: np.ndarray) -> float:
        tp, fp, fn = np.split(np.asarray(sums, dtype=np.float64), 3)
        if self.average == "micro":
            return _f1(tp.sum(), fp.sum(), fn.sum())
        if self.average == "binary":
            if len(tp) != 2:
                raise ConfigError(f"F1(average='binary') needs 2 classes; these outputs have {len(tp)}")
            return _f1(tp[1], fp[1], fn[1])
        seen = (tp + fp + fn) > 0
        if not seen.any():
            raise ConfigError("F1 of no samples; evaluate it on a non-empty split")
        scores = np.array([_f1(a, b, c) for a, b, c in zip(tp[seen], fp[seen], fn[seen])])
        if self.average == "weighted":
            support = (tp + fn)[seen]
            return float((scores * support).sum() / support.sum()) if support.sum() else 0.0
        return float(scores.mean())

    def __repr__(self) -> str:
        return f"F1(average={self.average!r})"


def _f1(tp: Any, fp: Any, fn: Any) -> float:
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0
