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
from ptdry.errors import ConfigError
from ptdry.train.prediction import predict
from ptdry.train.settings import TrainingSettings

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

    # -- runtime: device, precision, clipping, distributed (see ptdry.train.settings) -------------
    def setup_training(self, settings: TrainingSettings) -> None:
        """Get ready to train as ``settings`` ask (device, precision, gradient clipping,
        compilation, distributed world); ``Trainer.fit`` calls it before the first step, and
        again whenever the settings changed.

        This base supports the defaults only and refuses anything else by name, so a setting
        is never silently ignored. (Gradient accumulation is the Trainer's: it works with any
        model whose ``train_step`` calls ``trainer.backward`` and ``trainer.optimizer_step``.)

        Raises:
            ConfigError: a setting this model cannot honour.
        """
        asked = settings.requested()
        asked.pop("accumulate_grad_batches", None)
        if asked:
            given = ", ".join(f"{k}={v!r}" for k, v in asked.items())
            raise ConfigError(f"{type(self).__name__} cannot train with {given}: it supports the Trainer's defaults only")

    def to_device(self, device: str) -> None:
        """Move the model to ``device`` now (``"cpu"``, ``"cuda:1"``, ...; see
        :class:`~ptdry.train.settings.Device`), e.g. to predict with a loaded run.

        Raises:
            ConfigError: the model cannot be moved there.
        """
        if device != "auto":
            raise ConfigError(f"{type(self).__name__} cannot be moved to device={device!r}")

    @property
    def device_name(self) -> str | None:
        """Where the model computes (``"cpu"``, ``"cuda:0"``), None when unknown."""
        return None

    @property
    def defers_reads(self) -> bool:
        """True when reading a step's values costs a wait for the device (a GPU): the Trainer
        then reads them once per logging step instead of once per batch."""
        return False

    def read_values(self, values: Mapping[str, Any]) -> dict[str, float]:
        """``values`` (framework scalars or numbers) as floats."""
        return {k: v.item() if hasattr(v, "item") else float(v) for k, v in values.items()}

    def loss_scaler_state(self) -> Any:
        """The state of the loss scaler of float16 training (None without one), which the
        Trainer keeps in its checkpoints."""
        return None

    def load_loss_scaler_state(self, state: Any) -> None:
        """Restore what :meth:`loss_scaler_state` returned."""

    # -- steps -------------------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Clear gradients before a backward pass (frameworks that keep none: nothing)."""

    def backward(self, loss: Any) -> None:
        """Compute gradients of ``loss`` (called by ``Trainer.backward``)."""
        raise NotImplementedError(f"{type(self).__name__} computes gradients inside its train_step")

    def optimizer_step(self) -> None:
        """Apply the gradients (called by ``Trainer.optimizer_step``)."""
        raise NotImplementedError(f"{type(self).__name__} applies gradients inside its train_step")

    def unscale_gradients(self) -> None:
        """Make the gradients their true size before ``on_before_optimizer_step`` callbacks
        see them (float16 training scales them); nothing by default."""

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
