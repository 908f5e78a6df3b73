"""TensorFlow and torch in one pipeline: a TFDataset feeding a torch Model, a TorchDataset
feeding a KerasModel, NumpyDataset(...).tf() / .torch() either way — trained by one Trainer or
Session, predicted into NumpyDatasets, compared on the same samples (real TensorFlow)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from torch.utils.data import TensorDataset

from ptdry import (
    Criterion,
    DataLoader,
    DataProvider,
    DBInterface,
    KerasModel,
    Looper,
    Model,
    NumpyDataset,
    ObjectDef,
    Optimizer,
    Session,
    TFDataset,
    TorchDataset,
    Trainer,
    compare,
)
from ptdry.tf.nets import keras_mlp
from ptdry.train.nets import MLP

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 8)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
TRAIN, VAL, TEST = slice(0, 80), slice(80, 100), slice(100, 120)


def torch_model() -> Model:
    return Model(ObjectDef(MLP, 8, 16, 2), Optimizer(torch.optim.Adam, lr=1e-2), Criterion(torch.nn.CrossEntropyLoss))


def keras_model() -> KerasModel:
    return KerasModel(
        net=ObjectDef(keras_mlp, 8, 16, 2),
        optimizer=ObjectDef(keras.optimizers.Adam, learning_rate=1e-2),
        loss=ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True),
    )


def tf_rows(part: slice) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((X[part], Y[part]))


def torch_rows(part: slice) -> TensorDataset:
    return TensorDataset(torch.from_numpy(X[part]), torch.from_numpy(Y[part]))


def learns(model, data: DataProvider, epochs: int = 3) -> Trainer:
    """Train ``model`` a few epochs on ``data``; check its validation loss went down."""
    trainer = Trainer(model, Looper(epochs=epochs, batch_size=16), metrics=["accuracy"], progress_bar=False)
    before = trainer.validate(data, "val")["loss"]
    assert trainer.fit(data, seed=0)["val.loss"] < before
    return trainer


def test_a_tf_dataset_feeds_a_torch_model_in_a_stored_session_and_its_predictions():
    data = DataProvider(
        train=TFDataset(tf_rows(TRAIN)),
        val=TFDataset(tf_rows(VAL).batch(8), batch_size=8),  # batched in TensorFlow
        test=TFDataset(tf_rows(TEST)),
    )
    db = DBInterface("mongomock://mixed-tf-torch")
    session = Session(trainer=Trainer(torch_model(), Looper(epochs=3, batch_size=16), progress_bar=False), data=data, db=db)
    result = session.run()
    val_losses = [v for _, v in session.trainer.history.series("val.loss")]
    assert result.status == "completed" and len(val_losses) == 3 and val_losses[-1] < val_losses[0]
    model = session.trainer.model
    predicted = model.predict(data.test)
    assert predicted.supervised and predicted.backend == "numpy"
    outputs, targets = predicted.peek()
    np.testing.assert_array_equal(targets, Y[TEST])
    np.testing.assert_allclose(outputs, model.predict(X[TEST]).peek(), rtol=1e-6)
    # TensorFlow tensors as inputs, and a batched TensorFlow pipeline read in its own batches
    np.testing.assert_allclose(model.predict(tf.constant(X[TEST])).peek(), outputs, rtol=1e-6)
    val_outputs, _ = model.predict(data.val).peek()
    np.testing.assert_allclose(val_outputs, model.predict(X[VAL]).peek(), rtol=1e-6)
    # the stored run rebuilds its TensorFlow data from the state, and predicts the same numbers
    loaded = Session.load(session.dry_id, which=None, db=db)
    again, _ = loaded.trainer.model.predict(loaded.data, split="test").peek()
    np.testing.assert_array_equal(again, outputs)


def test_a_torch_dataset_feeds_a_keras_model_and_its_predictions():
    data = DataProvider(train=TorchDataset(torch_rows(TRAIN)), val=TorchDataset(torch_rows(VAL)))
    model = keras_model()
    learns(model, data)
    predicted = model.predict(data.val)
    outputs, targets = predicted.peek()
    assert outputs.shape == (20, 2) and np.array_equal(targets, Y[VAL])
    np.testing.assert_array_equal(outputs, model.predict((X[VAL], Y[VAL])).peek()[0])
    # torch tensors and a torch DataLoader of batches of 7 give the same numbers
    np.testing.assert_allclose(model.predict(torch.from_numpy(X[VAL])).peek(), outputs, rtol=1e-6)
    loader = DataLoader(TorchDataset(torch_rows(VAL)), batch_size=7)
    np.testing.assert_allclose(model.predict(loader).peek()[0], outputs, rtol=1e-6)


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_numpy_data_converted_to_either_framework_feeds_both_models(backend):
    def split(part: slice) -> NumpyDataset:
        ds = NumpyDataset((X[part], Y[part]))
        return ds.tf() if backend == "tf" else ds.torch()

    data = DataProvider(train=split(TRAIN), val=split(VAL))
    for model in (torch_model(), keras_model()):
        learns(model, data, epochs=2)
        outputs, targets = model.predict(split(VAL), batch_size=8).peek()
        assert isinstance(outputs, np.ndarray) and np.array_equal(targets, Y[VAL])
        np.testing.assert_allclose(outputs, model.predict(X[VAL]).peek(), rtol=1e-5, atol=1e-6)


def noisy(element):
    """Random noise on the inputs: a new draw on every pass (a stateful generator)."""
    x, y = element
    return x + NOISE.normal(tf.shape(x)), y


NOISE = tf.random.Generator.from_seed(1)


def test_compare_reads_a_tensorflow_pipeline_once_so_every_model_sees_the_same_samples():
    models = [torch_model(), keras_model()]
    for model in models:
        learns(model, DataProvider(train=(X[TRAIN], Y[TRAIN]), val=(X[VAL], Y[VAL])), epochs=2)
    arrays = compare(models, (X[TEST], Y[TEST]), metrics=["accuracy", "log_loss"], store=False)
    pipeline = compare(models, TFDataset(tf_rows(TEST).batch(6), batch_size=6), metrics=["accuracy", "log_loss"], store=False)
    assert list(pipeline["framework"]) == ["torch", "tensorflow"]
    np.testing.assert_allclose(pipeline[["accuracy", "log_loss"]].to_numpy(), arrays[["accuracy", "log_loss"]].to_numpy(), rtol=1e-5)
    # random noise in the pipeline: read twice, the same model would score differently
    twice = compare([models[0], models[0]], TFDataset(tf_rows(TEST)).map(noisy), metrics=["log_loss"], store=False)
    assert twice["log_loss"].iloc[0] == twice["log_loss"].iloc[1]
    db = DBInterface("mongomock://mixed-compare")
    stored = compare(models, DataProvider(test=TorchDataset(torch_rows(TEST))), metrics=["accuracy"], db=db)
    same = compare(models, (X[TEST], Y[TEST]), metrics=["accuracy"], db=db)
    docs = [db.collection("comparisons").find_one({"_id": t.attrs["comparison_id"]}) for t in (stored, same)]
    assert docs[0]["data"]["split"] == "test" and docs[1]["data"]["split"] is None
    assert docs[0]["data"]["sha256"] == docs[1]["data"]["sha256"]  # the same samples, whatever their form
