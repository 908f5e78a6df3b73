"""EarlyStopping: Keras' and Lightning's semantics where they agree, each option, the stop
reason in the run, and the same stopping epoch as Keras' own callback."""

from __future__ import annotations

import math

import pytest
import torch
from _train_helpers import make_model

from ptdry.core.callback import Callback
from ptdry.data.provider import DataProvider
from ptdry.errors import ConfigError
from ptdry.train.callbacks.early_stopping import EarlyStopping
from ptdry.train.looper import Looper
from ptdry.train.trainer import Trainer


def tiny():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(12, 64, generator=g), torch.randint(0, 10, (12,), generator=g)
    return DataProvider(train=(X[:8], y[:8]), val=(X[8:], y[8:]))


class Scripted(Trainer):
    """``val.loss`` of epoch e is ``script[e - 1]`` (None: no validation that epoch)."""

    script: list = []

    def validate(self, data, split="val"):
        value = self.script[self.epoch - 1]
        if value is None:
            return {}
        self.log(split, {"loss": value})
        return {"loss": value}


def run(script, **kwargs):
    es = EarlyStopping(**kwargs)
    trainer = Scripted(make_model(), Looper(epochs=len(script), batch_size=4), [es], progress_bar=False)
    trainer.script = list(script)
    trainer.fit(tiny(), seed=0)
    return trainer, es


def test_patience_zero_stops_at_the_first_check_without_improvement():
    trainer, es = run([1.0, 0.9, 0.95, 0.5], patience=0)
    assert trainer.looper.epochs_done == 3 and es.stopped_epoch == 3


def test_patience_counts_checks_not_epochs_so_epochs_without_the_metric_are_skipped():
    trainer, es = run([1.0, None, 1.1, None, 1.2, 0.1], patience=2)
    assert es.stopped_epoch == 5 and es.wait == 2


def test_a_baseline_must_be_beaten_before_improvements_reset_the_counter():
    _, es = run([0.9, 0.95, 0.92, 0.1], patience=2, baseline=0.5)
    assert es.stopped_epoch == 2 and es.best == 0.9  # the first check counted: 0.9 is not below 0.5
    _, es = run([0.4, 0.45, 0.42, 0.1], patience=2, baseline=0.5)
    assert es.stopped_epoch == 3  # 0.4 beat the baseline: counting restarted there


def test_start_from_epoch_ignores_the_warm_up_epochs():
    _, es = run([1.0, 2.0, 3.0, 3.5, 0.6, 0.7], patience=1, start_from_epoch=2)
    assert es.stopped_epoch == 4 and es.best == 3.0 and es.best_epoch == 3


def test_stopping_threshold_stops_once_the_goal_is_reached():
    trainer, es = run([0.9, 0.5, 0.2, 0.1], stopping_threshold=0.3, patience=10)
    assert es.stopped_epoch == 3
    assert es.reason == "early stopping: val.loss = 0.2 < stopping_threshold 0.3"


def test_divergence_threshold_stops_when_the_metric_gets_worse_than_it():
    _, es = run([0.9, 2.0, 5.0, 0.1], divergence_threshold=3.0, patience=10)
    assert es.stopped_epoch == 3
    assert es.reason == "early stopping: val.loss = 5 > divergence_threshold 3"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_check_finite_stops_on_a_nan_or_infinite_metric(bad):
    _, es = run([0.9, 0.8, bad, 0.1], patience=10)
    assert es.stopped_epoch == 3
    assert es.reason == f"early stopping: val.loss is {bad} (not finite); the best was 0.8"


def test_without_check_finite_a_nan_counts_as_no_improvement():
    _, es = run([0.9, math.nan, math.nan, 0.1], patience=2, check_finite=False)
    assert es.stopped_epoch == 3 and es.best == 0.9


class Snapshot(Callback):
    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, trainer, epoch, **_):
        self.weights[epoch] = trainer.model.net.layers[0].weight.detach().clone()


def test_restore_best_weights_after_a_nan_stop():
    snap = Snapshot()
    trainer = Scripted(
        make_model(), Looper(epochs=4, batch_size=4), [snap, EarlyStopping(restore_best_weights=True)], progress_bar=False
    )
    trainer.script = [0.9, 0.5, math.nan, 0.1]
    trainer.fit(tiny(), seed=0)
    assert torch.equal(trainer.model.net.layers[0].weight, snap.weights[2])


def test_the_stop_reason_ends_up_in_the_trainers_status():
    trainer, es = run([1.0, 1.1, 1.2, 1.3], patience=2)
    assert trainer.status.to_document()["reason"] == es.reason
    assert es.reason == "early stopping: val.loss did not improve for 2 checks (best 1 at epoch 1)"
    trainer, _ = run([1.0, 0.9], patience=2)
    assert trainer.status.reason == "completed"


def test_mode_max_and_min_delta():
    _, es = run([0.5, 0.55, 0.7, 0.75], monitor="val.loss", mode="max", patience=1, min_delta=0.1)
    assert es.stopped_epoch == 2 and es.best == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patience": -1}, r"EarlyStopping\.patience must be an integer: below the minimum 0; received -1"),
        ({"patience": 1.5}, r"EarlyStopping\.patience must be an integer: not an integer; received 1\.5"),
        ({"baseline": "low"}, r"EarlyStopping\.baseline must be a number: not a number; received 'low'"),
        ({"start_from_epoch": -2}, r"EarlyStopping\.start_from_epoch must be an integer: below the minimum 0"),
        ({"stopping_threshold": math.nan}, r"EarlyStopping\.stopping_threshold must be a number: NaN is not allowed"),
        ({"check_finite": 1}, r"EarlyStopping\.check_finite must be True or False: not a bool; received 1"),
        ({"mode": "down"}, r"EarlyStopping\.mode must be one of \['auto', 'min', 'max'\]: not an option; received 'down'"),
    ],
)
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EarlyStopping(**kwargs)


SCRIPTS = [
    ([1.0, 0.9, 0.95, 0.97, 0.5, 0.4], {"patience": 2}),
    ([1.0, 0.9, 0.95, 0.97, 0.5, 0.4], {"patience": 0}),
    ([1.0, 0.99, 0.985, 0.984, 0.9, 0.8], {"patience": 1, "min_delta": 0.01}),
    ([0.9, 0.8, 0.85, 0.84, 0.83, 0.2], {"patience": 2, "baseline": 0.5}),
    ([0.9, 0.95, 0.97, 0.6, 0.7, 0.8, 0.9], {"patience": 1, "start_from_epoch": 2}),
    ([0.3, 0.2, 0.25, 0.1, 0.15, 0.16], {"patience": 1, "baseline": 0.25}),
]


def test_stops_at_the_epoch_keras_early_stopping_stops():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    for script, kwargs in SCRIPTS:
        reference = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", **kwargs)
        reference.set_model(model)
        model.stop_training = False
        reference.on_train_begin()
        keras_stop = None
        for epoch, value in enumerate(script):  # Keras counts epochs from 0
            reference.on_epoch_end(epoch, {"val_loss": value})
            if model.stop_training:
                keras_stop = epoch + 1
                break
        _, es = run(script, mode="min", **kwargs)
        assert es.stopped_epoch == keras_stop, (script, kwargs)
        assert es.best == pytest.approx(float(reference.best)), (script, kwargs)
