"""A KerasModel under the Trainer's runtime settings: device and gradient clipping are
honoured; precision, accumulation, compile and distributed jobs are refused with what to
use instead (real TensorFlow)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ptdry import Callback, DataProvider, KerasModel, Looper, ObjectDef, Trainer
from ptdry.errors import ConfigError
from ptdry.tf.nets import keras_mlp

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)
DATA = DataProvider(train=(X, Y), val=(X[:16], Y[:16]))


def _model() -> KerasModel:
    return KerasModel(
        ObjectDef(keras_mlp, 8, 16, 2),
        optimizer=ObjectDef(keras.optimizers.SGD, learning_rate=1.0),
        loss=ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True),
    )


class _Weights(Callback):
    def on_step_start(self, trainer, **_):
        self.before = [w.numpy().copy() for w in trainer.model.net.trainable_weights]

    def on_step_end(self, trainer, **_):
        after = [w.numpy() for w in trainer.model.net.trainable_weights]
        self.largest = max(getattr(self, "largest", 0.0), max(float(np.abs(a - b).max()) for a, b in zip(after, self.before)))


def test_gradient_clipping_by_value_bounds_every_update_of_a_keras_model():
    watch = _Weights()
    trainer = Trainer(_model(), Looper(epochs=1, batch_size=16), callbacks=[watch], verbose=0, grad_clip_value=1e-3, device="cpu")
    trainer.fit(DATA, seed=0)
    assert 0 < watch.largest <= 1e-3 * (1 + 1e-5)  # learning rate 1: an update is the clipped gradient
    assert trainer.model.device_name == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "bf16-mixed"}, r"precision='bf16-mixed': build the net under keras.mixed_precision"),
        ({"accumulate_grad_batches": 2}, r"accumulate_grad_batches=2: give the Keras optimizer gradient_accumulation_steps"),
        ({"compile": True}, r"compile=True: use KerasModel\(..., jit_compile=True\)"),
        ({"device": "mps"}, r"device='mps' is torch's name for the Apple GPU; TensorFlow has no such device"),
    ],
)
def test_settings_keras_takes_elsewhere_are_refused_with_what_to_use(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(_model(), Looper(epochs=1, batch_size=16), verbose=0, **kwargs).fit(DATA, seed=0)
