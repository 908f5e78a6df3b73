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

    def predict(self, data: Any, batch_size: int | None = None, *, split: str = "test") -> Any:
        """The model's outputs over ``data`` as a :class:`~ptdry.data.numpy_dataset.NumpyDataset`:
        every framework's models output data the same way (DRYML's "all models output data in
        the form of Datasets").

        Batches are read as the Trainer's steps read them: ``(inputs..., targets)`` when a
        batch is a tuple of two or more parts, else inputs only. With targets the result is
        supervised, ``NumpyDataset((outputs, targets))``, else ``NumpyDataset(outputs)``; both
        are one batch of every row, in the data's order (``.peek()`` gives the arrays,
        ``.unbatch()`` the rows).

        Args:
            data: an array or tensor of inputs, a tuple ``(X, ..., y)`` (``(X,)`` for inputs
                only), a ptdry Dataset of any backend (NumPy, torch, TensorFlow), a
                DataLoader (read in order, unshuffled, every row), a DataProvider (its
                ``split``), a torch ``Dataset`` or a ``tf.data.Dataset``.
            batch_size: rows per forward pass; None: a DataLoader's (or a DataProvider's)
                batch size, a batched iterable dataset's own batches, else 256.
            split: the DataProvider's split.

        Raises:
            ConfigError: ``data`` of another kind, arrays of different lengths, no samples.

        Example:
            >>> import numpy as np, torch
            >>> from ptdry import Model, NumpyDataset, ObjectDef
            >>> model = Model(ObjectDef(torch.nn.Linear, 3, 2))
            >>> X, y = np.zeros((5, 3), np.float32), np.arange(5)
            >>> predicted = model.predict(NumpyDataset((X, y)).torch(), batch_size=2)
            >>> predicted.supervised, [a.shape for a in predicted.peek()]
            (True, [(5, 2), (5,)])
            >>> model.predict(X).supervised
            False
        """
        return predict(self, data, batch_size, split)

    def training_problems(self) -> list[str]:
        """Why this model cannot be trained (e.g. no optimizer); empty when it can."""
        return []
