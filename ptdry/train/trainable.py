"""Trainable: what the Trainer needs from a model, whatever framework computes it.

The Trainer never touches tensors: it hands each batch to ``model.train_step(batch,
trainer)`` and ``model.eval_step(batch, metrics)`` and records the numbers they return.
The torch :class:`~ptdry.train.model.Model` implements this contract, and so can a model of
any other framework (e.g. ``ptdry.tf.KerasModel``), so the same Trainer, callbacks, history,
checkpoints and run documents drive both.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from ptdry.core.module import Module
from ptdry.train.prediction import predict

__all__ = ["Trainable"]


class Trainable(Module):
    """Base of models a :class:`~ptdry.train.trainer.Trainer` can train.

    Subclasses implement :meth:`train_step`, :meth:`eval_step` and :meth:`train`; the rest
    have defaults. Values returned by the steps may be framework scalars (anything with
    ``.item()``) or floats; ``"loss"`` is the value NaNDetector and the progress bar watch.
    """

    #: The framework computing the model (``"torch"``, ``"tensorflow"``), for determinism
    #: settings and comparison tables; None: unknown.
    framework: str | None = None

    def train_step(self, batch: Any, trainer: Any) -> Mapping[str, Any]:
        """One optimization step on ``batch``; returns ``{"loss": ..., ...}``.

        ``trainer`` is the Trainer running the step: call ``trainer.backward(loss)`` and
        ``trainer.optimizer_step()`` where they apply, so callbacks of those events fire.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step(batch, trainer)")

    def eval_step(self, batch: Any, metrics: Mapping[str, Any]) -> Mapping[str, Any]:
        """Loss (a batch mean) and ``metrics`` (``{name: ptdry.metrics.Metric}``) of one
        evaluation batch, without changing the model: each metric's
        :class:`~ptdry.metrics.Partial` (``batch_partials(metrics, outputs, targets)`` with
        NumPy outputs and targets), which the Trainer adds up exactly over the split."""
        raise NotImplementedError(f"{type(self).__name__} does not implement eval_step(batch, metrics)")

    def zero_grad(self) -> None:
        """Clear gradients before a backward pass (frameworks that keep none: nothing)."""

    def backward(self, loss: Any) -> None:
        """Compute gradients of ``loss`` (called by ``Trainer.backward``)."""
        raise NotImplementedError(f"{type(self).__name__} computes gradients inside its train_step")

    def optimizer_step(self) -> None:
        """Apply the gradients (called by ``Trainer.optimizer_step``)."""
        raise NotImplementedError(f"{type(self).__name__} applies gradients inside its train_step")

    @property
    def optimizer_object(self) -> Any:
        """The framework's optimizer, as callbacks of ``on_before_optimizer_step`` see it."""
        return None

    def train(self, mode: bool = True) -> "Trainable":
        """Training mode (dropout on) or, with ``mode=False``, evaluation mode; returns self."""
        return self

    @property
    def training(self) -> bool:
        return True

    @contextlib.contextmanager
    def evaluating(self) -> Iterator["Trainable"]:
        """Evaluation mode without gradients for the block; the previous mode is restored."""
        was_training = self.training
        self.train(False)
        try:
            yield self
        finally:
            self.train(was_training)

    def predict_batch(self, *inputs: Any) -> Any:
        """The outputs for one batch of inputs (NumPy arrays), in inference mode, as an array
        or a framework tensor."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_batch(*inputs)")

    def predict(self, data: Any, batch_size: int = 256, *, split: str = "test") -> Any:
        """The model's outputs over ``data`` as NumPy arrays: every framework's models give
        the same :class:`~ptdry.train.prediction.Predictions` ``(outputs, targets)``.

        Args:
            data: an array of inputs, a tuple ``(X, ..., y)`` (the last array is the
                targets; ``(X,)`` for inputs only), or a DataProvider (its ``split``).
            batch_size: samples per forward pass.
            split: the DataProvider's split.

        Raises:
            ConfigError: ``data`` of another kind, arrays of different lengths, no samples.
        """
        return predict(self, data, batch_size, split)

    def training_problems(self) -> list[str]:
        """Why this model cannot be trained (e.g. no optimizer); empty when it can."""
        return []
