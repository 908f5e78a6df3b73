"""Predictions of any Trainable over any data, as a NumpyDataset: the one output format of
every framework (DRYML: "all models output data in the form of Datasets"), which
ptdry.metrics and ``ptdry.compare`` read.

``Trainable.predict(data)`` reads ``data`` in batches, runs the model's ``predict_batch`` (its
framework's forward pass in inference mode) on each and joins the outputs. ``data`` is any
form of data ptdry has: an array or tensor of inputs; a tuple ``(X, ..., y)`` of arrays or
tensors; a ptdry Dataset of any backend (NumPy, torch, TensorFlow); a DataLoader; a
DataProvider (its ``split``); a torch ``Dataset`` or a ``tf.data.Dataset``.

A batch is read as the Trainer's steps read it: a tuple or list of two or more parts is
``(inputs..., targets)`` (a supervised dataset's ``(X, Y)``), anything else — an array, a
dict, a one-part tuple ``(X,)`` — is inputs without targets. The result is
``NumpyDataset((outputs, targets))`` (supervised, one batch of every row) when the data has
targets, else ``NumpyDataset(outputs)``; ``outputs, targets = model.predict(data).peek()``.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ptdry.data import structure
from ptdry.data.coerce import as_dataset
from ptdry.data.loader import DataLoader
from ptdry.data.numpy_dataset import NumpyDataset
from ptdry.data.provider import DataProvider
from ptdry.errors import ConfigError, DataError

__all__ = ["DEFAULT_BATCH_SIZE", "batches_of", "predict", "predict_batches", "split_batch"]

#: Rows per forward pass when neither ``batch_size`` nor the data (a DataLoader) says.
DEFAULT_BATCH_SIZE = 256

_FORMS = (
    "an array of inputs, a tuple (X, ..., y) of arrays or tensors, a ptdry Dataset, a DataLoader, "
    "a DataProvider (with split=...), a torch Dataset or a tf.data.Dataset"
)


def batches_of(data: Any, batch_size: int | None = None, split: str = "test") -> Iterator[Any]:
    """The batches of ``data`` (any form in the module doc), every row once, in order.

    Args:
        data: what to read.
        batch_size: rows per batch; None: a DataLoader's (a DataProvider's split is one) own
            batch size, a batched dataset that cannot be indexed (a batched ``tf.data``
            pipeline) in its own batches, else :data:`DEFAULT_BATCH_SIZE`.
        split: the DataProvider's split.

    A DataLoader is read over its dataset in order, without shuffling or dropping a last
    batch, with its ``collate`` and workers; its position does not move.

    Raises:
        ConfigError: ``data`` of another kind, a bad ``batch_size``, an unknown or empty split.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer or None; received {batch_size!r}")
    if isinstance(data, DataProvider):
        data = data.provide(split, shuffle=False)
    if isinstance(data, DataLoader):
        loader = DataLoader(
            data.dataset, batch_size or data.batch_size, collate=data.collate, num_workers=data.num_workers
        )
        return loader.batches()
    arrays = structure.leaves(data) if isinstance(data, (tuple, list, dict)) else [data]
    if arrays and all(structure.framework(a) is not None for a in arrays):
        if any(tuple(getattr(a, "shape", (1,)))[:1] == (0,) for a in arrays):
            raise ConfigError(f"data has no samples: arrays of shapes {[tuple(a.shape) for a in arrays]}")
    dataset = as_dataset(data, "data", expected=_FORMS)
    if batch_size is None and dataset.batched and not dataset.random_access:
        return iter(dataset)
    return DataLoader(dataset, batch_size or DEFAULT_BATCH_SIZE).batches()


def split_batch(batch: Any) -> tuple[tuple[Any, ...], Any]:
    """``(inputs, targets)`` of one batch as the Trainer's steps read it (see the module doc);
    targets None for a batch of inputs only."""
    if isinstance(batch, (tuple, list)):
        if len(batch) >= 2:
            return tuple(batch[:-1]), batch[-1]
        if len(batch) == 1:
            return (batch[0],), None
        raise DataError("a batch of data is an empty tuple; expected (inputs..., targets) or the inputs")
    return (batch,), None


def predict_batches(model: Any, batches: Iterable[Any]) -> tuple[Any, Any]:
    """``(outputs, targets)`` of ``model.predict_batch`` over ``batches``, joined, as NumPy
    (targets None when the batches have none).

    Raises:
        ConfigError: no batches, or some batches with targets and some without.
    """
    outputs: list[Any] = []
    targets: list[Any] = []
    for batch in batches:
        inputs, target = split_batch(batch)
        if outputs and (target is None) != (not targets):
            raise ConfigError(
                "some batches of data have targets and some do not; give every batch (inputs..., targets) "
                "or none of them"
            )
        out = structure.convert(model.predict_batch(*inputs), "numpy")
        outputs.append(tuple(out) if isinstance(out, list) else out)
        if target is not None:
            targets.append(structure.convert(target, "numpy"))
    if not outputs:
        raise ConfigError("data has no samples to predict")
    return structure.concat(outputs), (structure.concat(targets) if targets else None)


def predict(model: Any, data: Any, batch_size: int | None = None, split: str = "test") -> NumpyDataset:
    """``model.predict_batch`` over ``data`` in batches; see :meth:`Trainable.predict`."""
    outputs, targets = predict_batches(model, batches_of(data, batch_size, split))
    if targets is None:
        return NumpyDataset(outputs, supervised=False)
    return NumpyDataset((outputs, targets), supervised=True)
