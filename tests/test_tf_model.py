"""KerasModel: forward pass, state round trip (bitwise, archives, safe loading), the Trainer's
contract (steps, hooks, metric names like torch's), and errors (real TensorFlow)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import ptdry
from ptdry import Callback, DataProvider, KerasModel, Looper, Model, ObjectDef, Trainer, load_object, save_object
from ptdry.errors import ConfigError, StateDictError, TrainingError, UntrustedArchiveError
from ptdry.tf.nets import keras_mlp
from ptdry.train.model import Criterion, Optimizer
from ptdry.train.nets import MLP

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 8)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
DATA = DataProvider(train=(X[:64], Y[:64]), val=(X[64:80], Y[64:80]), test=(X[80:], Y[80:]))


def make_model(**kw) -> KerasModel:
    args = dict(
        net=ObjectDef(keras_mlp, 8, 16, 2, dropout=0.1),
        optimizer=ObjectDef(keras.optimizers.Adam, learning_rate=1e-2),
        loss=ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True),
    )
    return KerasModel(**{**args, **kw})


class BatchNormNet(keras.Model):
    """A subclassed Keras model: layers named by attribute, batch-norm statistics as state."""

    def __init__(self, hidden: int = 6):
        super().__init__()
        self.hidden = keras.layers.Dense(hidden, activation="relu")
        self.norm = keras.layers.BatchNormalization()
        self.out = keras.layers.Dense(2)

    def call(self, x, training=False):
        return self.out(self.norm(self.hidden(x), training=training))


def test_the_state_round_trip_is_bitwise_and_paths_are_stable_across_rebuilds():
    model = make_model()
    trainer = Trainer(model, Looper(epochs=2, batch_size=16), progress_bar=False)
    trainer.fit(DATA, seed=0)
    state = model.state_dict()
    assert "net.dense.kernel" in state and "net.dense_1.bias" in state and "net.dropout.seed_generator" in state
    assert "optimizer.iteration" in state and "optimizer.net.dense.kernel.momentum" in state
    assert int(state["optimizer.iteration"]) == 8
    twin = model.definition().build()  # a second build in this process: Keras's names are dense_2, ...
    assert sorted(twin.state_dict()) == sorted(state)
    twin.load_state_dict(state)
    for key, value in twin.state_dict().items():
        assert value.dtype == state[key].dtype and value.tobytes() == state[key].tobytes(), key
    batch = (X[:16], Y[:16])
    a, b = Trainer(model, progress_bar=False), Trainer(twin, progress_bar=False)
    assert model.train_step(batch, a)["loss"] == twin.train_step(batch, b)["loss"]


def test_equal_definitions_start_from_equal_weights_and_the_global_rng_is_untouched():
    import random

    before = random.getstate()
    a, b = make_model(), make_model()
    assert random.getstate() == before
    for key, value in a.state_dict().items():
        assert np.array_equal(value, b.state_dict()[key]), key
    other = make_model(init_seed=1)
    assert not np.array_equal(other.state_dict()["net.dense.kernel"], a.state_dict()["net.dense.kernel"])


def test_a_subclassed_model_names_layers_by_attribute_and_keeps_batch_norm_statistics(tmp_path):
    model = KerasModel(ObjectDef(BatchNormNet, 6), "adam", "sparse_categorical_crossentropy", input_shape=(8,))
    Trainer(model, Looper(epochs=1, batch_size=16), progress_bar=False).fit(DATA, seed=0)
    state = model.state_dict()
    assert {"net.hidden.kernel", "net.norm.moving_mean", "net.out.bias"} <= set(state)
    assert not np.array_equal(state["net.norm.moving_mean"], np.zeros(6))  # updated by training
    save_object(model, tmp_path / "m.zip")
    loaded = load_object(tmp_path / "m.zip")  # BatchNormNet's module is imported: allowed
    for key, value in loaded.state_dict().items():
        assert value.tobytes() == state[key].tobytes(), key
    np.testing.assert_array_equal(loaded.predict(X).peek(), model.predict(X).peek())


def test_keras_classes_load_safely_but_a_users_build_function_needs_allow(tmp_path):
    save_object(make_model(), tmp_path / "mlp.zip")
    assert isinstance(load_object(tmp_path / "mlp.zip"), KerasModel)  # keras_mlp, Adam, the loss: allowed

    model = KerasModel(ObjectDef(tiny_net), "sgd", "mse")
    save_object(model, tmp_path / "tiny.zip")
    with pytest.raises(UntrustedArchiveError, match=r"names test_tf_model:tiny_net, which ptdry does not import"):
        load_object(tmp_path / "tiny.zip")
    assert isinstance(load_object(tmp_path / "tiny.zip", allowed=[tiny_net]), KerasModel)


def tiny_net():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])


def test_keras_layers_are_allowed_but_other_keras_names_are_refused():
    from ptdry.core.allowed import ImportPolicy

    policy = ImportPolicy()
    assert policy.resolve("keras.src.layers.core.dense:Dense", "x") is keras.layers.Dense
    assert policy.resolve("keras.src.losses.losses:sparse_categorical_crossentropy", "x") is keras.losses.sparse_categorical_crossentropy
    with pytest.raises(UntrustedArchiveError, match="of Keras only its layers, models, optimizers"):
        policy.resolve("keras.src.saving.saving_api:load_model", "x")
    with pytest.raises(UntrustedArchiveError, match="of Keras only"):
        policy.resolve("keras.src.utils.file_utils:get_file", "x")


def test_loading_a_wrong_state_names_every_problem_and_loads_nothing():
    model = make_model()
    state = model.state_dict()
    before = model.state_dict()["net.dense.kernel"].copy()
    bad = {k: v for k, v in state.items() if k != "net.dense.bias"}
    bad["net.dense.kernel"] = np.ones((3, 3), np.float32)
    bad["net.extra"] = np.zeros(1)
    with pytest.raises(StateDictError, match=r"(?s)missing keys \(1\): net.dense.bias.*unexpected keys \(1\): net.extra"
                       r".*net.dense.kernel: shape \(3, 3\) where the model has \(8, 16\)"):
        model.load_state_dict(bad)
    assert np.array_equal(model.state_dict()["net.dense.kernel"], before)
    bad = dict(state, **{"net.dense.kernel": state["net.dense.kernel"].astype(np.float64)})
    with pytest.raises(StateDictError, match="dtype float64 where the model has float32"):
        model.load_state_dict(bad)


def test_callbacks_see_the_same_metric_names_for_keras_and_torch():
    seen = {}

    class Names(Callback):
        def __init__(self, key):
            self.key = key

        def on_epoch_end(self, metrics, **_):
            seen[self.key] = sorted(metrics)

    torch_model = Model(ObjectDef(MLP, 8, 16, 2), Optimizer(torch.optim.Adam, lr=1e-2),
                        Criterion(torch.nn.CrossEntropyLoss), metrics=["accuracy"])
    for key, model in (("keras", make_model(metrics=["accuracy"])), ("torch", torch_model)):
        trainer = Trainer(model, Looper(epochs=1, batch_size=16), [Names(key)], metrics=["accuracy", "f1"], progress_bar=False)
        trainer.fit(DATA, seed=0)
    assert seen["keras"] == seen["torch"] == [
        "train.accuracy", "train.loss", "val.accuracy", "val.f1", "val.loss"
    ]  # fmt: skip


def test_gradient_callbacks_see_the_loss_gradients_and_optimizer_and_may_change_gradients():
    calls = []

    class Zero(Callback):
        def on_before_backward(self, loss, **_):
            calls.append(("before_backward", float(loss)))

        def on_after_backward(self, trainer, **_):
            grads = trainer.model.gradients
            calls.append(("after_backward", len(grads)))
            trainer.model.gradients = [g * 0 for g in grads]  # e.g. clipping

        def on_before_optimizer_step(self, optimizer, **_):
            calls.append(("before_optimizer_step", type(optimizer).__name__))

    model = make_model(optimizer=ObjectDef(keras.optimizers.SGD, learning_rate=0.1))
    before = model.state_dict()["net.dense.kernel"]
    trainer = Trainer(model, Looper(epochs=1, batch_size=32, max_steps=1), [Zero()], progress_bar=False)
    trainer.fit(DATA, seed=0)
    assert [c[0] for c in calls] == ["before_backward", "after_backward", "before_optimizer_step"]
    assert calls[1][1] == 4 and calls[2][1] == "SGD"
    assert np.array_equal(model.state_dict()["net.dense.kernel"], before)  # zero gradients applied
    assert int(model.state_dict()["optimizer.iteration"]) == 1
    with pytest.raises(TrainingError, match="KerasModel computes gradients together with the loss"):
        model.backward(0.0)


def test_keras_model_arguments_are_checked():
    with pytest.raises(ConfigError, match="net must be a keras.Model or an ObjectDef of a function or class making one; received str"):
        KerasModel("net")
    with pytest.raises(ConfigError, match=r"net BatchNormNet has no weights yet: start it with a keras.Input"):
        KerasModel(ObjectDef(BatchNormNet))
    with pytest.raises(ConfigError, match="unknown Keras optimizer 'adamm'"):
        make_model(optimizer="adamm")
    with pytest.raises(ConfigError, match="optimizer must be ObjectDef\\(keras.optimizers.Adam"):
        make_model(optimizer=3)
    with pytest.raises(ConfigError, match="unknown Keras loss 'msee'"):
        make_model(loss="msee")
    trainer = Trainer(KerasModel(ObjectDef(keras_mlp, 8, 2)), progress_bar=False)
    with pytest.raises(ptdry.NotReadyError, match="(?s)no optimizer: pass KerasModel.*no loss: pass KerasModel"):
        trainer.fit(DATA)
    with pytest.raises(TrainingError, match=r"KerasModel.train_step needs batches \(inputs..., targets\); received 1 part"):
        make_model().train_step((X,), trainer)


def test_the_forward_pass_and_predict_give_the_same_outputs_in_inference_mode():
    model = make_model()
    out = model(X[:5])
    outputs, targets = model.predict((X, Y), batch_size=7).peek()
    assert outputs.shape == (96, 2) and np.array_equal(targets, Y)
    np.testing.assert_allclose(outputs[:5], out.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X).peek(), outputs)  # no dropout in inference


def test_a_torch_dataset_feeds_a_keras_model_in_one_pipeline():
    from torch.utils.data import TensorDataset

    torch_data = DataProvider(
        train=TensorDataset(torch.as_tensor(X[:64]), torch.as_tensor(Y[:64])),
        val=TensorDataset(torch.as_tensor(X[64:]), torch.as_tensor(Y[64:])),
    )
    model = make_model()
    trainer = Trainer(model, Looper(epochs=3, batch_size=16), progress_bar=False)
    before = trainer.validate(torch_data, "val")["loss"]
    assert trainer.fit(torch_data, seed=0)["val.loss"] < before  # it learns from torch tensors
    # the torch dataset and the same NumPy arrays give the model the same numbers
    check = Trainer(model, Looper(batch_size=16), progress_bar=False)
    assert check.validate(torch_data, "val") == pytest.approx(check.validate(DataProvider(val=(X[64:], Y[64:])), "val"))
