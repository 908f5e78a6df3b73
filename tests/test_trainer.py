"""Trainer: the loop, trigger order, history, stopping, failures, overriding train_step."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch
from _train_helpers import Recorder, digits, make_model, make_trainer

from ptdry.core.callback import Callback
from ptdry.data.provider import DataProvider
from ptdry.errors import ConfigError, NotReadyError, TrainingError
from ptdry.train.callbacks.checkpoint import Checkpoint, MemoryStorage
from ptdry.train.callbacks.nan_detector import NaNDetector
from ptdry.train.callbacks.progress_bar import ProgressBar
from ptdry.train.looper import Looper
from ptdry.train.model import Model
from ptdry.train.trainer import Trainer


def tiny(n_train=6, n_val=4):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_train + n_val, 64, generator=g)
    y = torch.randint(0, 10, (n_train + n_val,), generator=g)
    return DataProvider(train=(X[:n_train], y[:n_train]), val=(X[n_train:], y[n_train:]), test=(X[n_train:], y[n_train:]))


def test_triggers_fire_in_the_documented_order_for_a_two_epoch_run():
    rec = Recorder()
    make_trainer(epochs=2, batch_size=4, callbacks=[rec]).fit(tiny(), seed=0)
    step_events = ["on_step_start", "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_step_end"]
    expected = [("on_train_start", 0, 1)]
    step = 0
    for epoch in (1, 2):
        expected.append(("on_epoch_start", step, epoch))
        for _ in range(2):  # 6 samples, batch 4: two steps
            step += 1
            expected += [(name, step, epoch) for name in step_events]
        expected += [("on_validation_start", step, epoch), ("on_validation_end", step, epoch), ("on_epoch_end", step, epoch)]
    expected.append(("on_train_end", 4, 2))
    assert rec.events == expected


def test_history_holds_step_epoch_and_validation_values():
    trainer = make_trainer(epochs=2, batch_size=4)
    metrics = trainer.fit(tiny(), seed=0)
    names = [(s.name, s.step, s.epoch) for s in trainer.history]
    assert names == [
        ("step", 1, 1), ("step", 2, 1), ("train", 2, 1), ("val", 2, 1),
        ("step", 3, 2), ("step", 4, 2), ("train", 4, 2), ("val", 4, 2),
    ]
    steps = [v for _, v in trainer.history.series("step.loss")]
    assert trainer.history.series("train.loss")[1] == (4, pytest.approx(sum(steps[2:]) / 2))
    assert set(metrics) == {"step.loss", "train.loss", "val.loss", "val.accuracy"}
    assert trainer.status.state == "completed"


def test_log_every_n_steps_thins_the_step_records_only():
    trainer = make_trainer(epochs=2, batch_size=2, log_every_n_steps=2)
    trainer.fit(tiny(), seed=0)
    assert [s for s, _ in trainer.history.series("step.loss")] == [2, 4, 6]
    assert len(trainer.history.series("train.loss")) == 2


def test_validation_every_n_epochs_and_after_the_last():
    trainer = Trainer(make_model(), Looper(epochs=5, batch_size=4, val_every_n_epochs=2), progress_bar=False)
    trainer.fit(tiny(), seed=0)
    assert [s.epoch for s in trainer.history if s.name == "val"] == [2, 4, 5]


def test_max_steps_ends_training_mid_epoch_and_still_closes_the_epoch():
    rec = Recorder()
    trainer = Trainer(make_model(), Looper(epochs=10, batch_size=2, max_steps=4), [rec], progress_bar=False)
    trainer.fit(tiny(), seed=0)
    assert trainer.looper.steps_done == 4 and trainer.looper.epochs_done == 2
    assert rec.events[-2:] == [("on_epoch_end", 4, 2), ("on_train_end", 4, 2)]
    assert [s.epoch for s in trainer.history if s.name == "val"] == [1, 2]


class StopAt(Callback):
    def __init__(self, step: int):
        self.step = step
        self.reason = None

    def on_step_end(self, trainer, step, **_):
        if step == self.step:
            trainer.stop("enough")

    def on_train_end(self, reason, **_):
        self.reason = reason


def test_stop_ends_after_the_current_step_with_the_reason():
    stopper = StopAt(3)
    trainer = make_trainer(epochs=5, batch_size=2, callbacks=[stopper])
    trainer.fit(tiny(), seed=0)
    assert trainer.looper.steps_done == 3 and stopper.reason == "enough"
    assert trainer.status.state == "completed" and not trainer.should_stop


class Boom(Callback):
    def on_epoch_end(self, epoch, **_):
        if epoch == 2:
            raise ValueError("boom")


class SeesException(Callback):
    def __init__(self):
        self.seen = None

    def on_exception(self, exception, step, **_):
        self.seen = (type(exception).__name__, step)


def test_a_failing_callback_is_named_the_run_fails_and_on_exception_runs_first():
    watcher = SeesException()
    trainer = make_trainer(epochs=3, batch_size=4, callbacks=[watcher, Boom()])
    with pytest.raises(ValueError, match="boom") as info:
        trainer.fit(tiny(), seed=0)
    assert info.value.ptdry_callback == "Boom"
    assert "raised by callback 'Boom' in on_epoch_end" in info.value.__notes__
    assert watcher.seen == ("ValueError", 4)
    assert trainer.status.state == "failed"
    assert trainer.status.error["type"] == "ValueError" and trainer.status.error["message"] == "boom"


class BrokenHandler(Callback):
    def on_exception(self, **_):
        raise RuntimeError("handler broke")


def test_an_error_inside_on_exception_does_not_hide_the_original(caplog):
    trainer = make_trainer(epochs=3, batch_size=4, callbacks=[BrokenHandler(), Boom()])
    with caplog.at_level(logging.ERROR), pytest.raises(ValueError, match="boom") as info:
        trainer.fit(tiny(), seed=0)
    assert any("also failed in on_exception" in note for note in info.value.__notes__)
    assert "BrokenHandler failed in on_exception" in caplog.text


class Interrupt(Callback):
    def on_step_end(self, **_):
        raise KeyboardInterrupt


def test_keyboard_interrupt_marks_the_run_interrupted():
    trainer = make_trainer(callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(tiny(), seed=0)
    assert trainer.status.state == "interrupted"


def test_evaluate_reports_loss_and_metrics_on_the_test_split():
    trainer = make_trainer(epochs=1, batch_size=4)
    trainer.fit(tiny(), seed=0)
    result = trainer.evaluate(tiny())
    assert set(result) == {"loss", "accuracy"} and 0 <= result["accuracy"] <= 1
    assert trainer.history.last("test.accuracy") == result["accuracy"]
    assert trainer.model.training  # evaluation restores the mode


def test_digits_mlp_learns():
    data = digits()
    trainer = make_trainer(epochs=8, batch_size=32)
    trainer.fit(data, seed=0)
    assert trainer.evaluate(data)["accuracy"] > 0.9


class MixupFreeTrainer(Trainer):
    """A custom train_step: an L2 penalty added to the loss, extra values recorded."""

    def train_step(self, batch):
        x, y = batch
        outputs = self.model(x)
        penalty = sum((p**2).sum() for p in self.model.parameters()) * 1e-4
        loss = self.model.loss(outputs, y) + penalty
        self.backward(loss)
        self.optimizer_step()
        return {"loss": loss, "penalty": penalty}


def test_overriding_train_step_keeps_history_triggers_and_checkpoints():
    rec, storage = Recorder(), MemoryStorage()
    trainer = MixupFreeTrainer(
        make_model(), Looper(epochs=2, batch_size=4), [rec, Checkpoint(every_n_epochs=1, save_last=5, save_top_k=0, storage=storage)],
        progress_bar=False,
    )
    trainer.fit(tiny(), seed=0)
    assert len(trainer.history.series("step.penalty")) == 4
    assert len(trainer.history.series("train.penalty")) == 2
    assert sum(1 for e in rec.events if e[0] == "on_before_backward") == 4
    assert [m["epoch"] for m in storage.list()] == [1, 2]
    rebuilt = trainer.definition().build()
    assert type(rebuilt) is MixupFreeTrainer
    rebuilt.load_checkpoint(storage)
    assert torch.equal(rebuilt.model.net.layers[0].weight, trainer.model.net.layers[0].weight)


def test_train_step_may_return_just_the_loss():
    class LossOnly(Trainer):
        def train_step(self, batch):
            return super().train_step(batch)["loss"]

    trainer = LossOnly(make_model(), Looper(epochs=1, batch_size=4), progress_bar=False)
    trainer.fit(tiny(), seed=0)
    assert len(trainer.history.series("step.loss")) == 2


def test_fit_says_what_is_missing():
    trainer = Trainer(Model(torch.nn.Linear(64, 10)), Looper(), progress_bar=False)
    with pytest.raises(NotReadyError) as info:
        trainer.fit(DataProvider(val=(torch.zeros(2, 64), torch.zeros(2))))
    message = str(info.value)
    assert "model has no optimizer" in message and "model has no criterion" in message
    assert "data has no train split" in message


def test_default_train_step_needs_targets():
    trainer = make_trainer()
    with pytest.raises(TrainingError, match=r"Model\.train_step needs batches \(inputs\.\.\., targets\); received 1 part"):
        trainer.fit(DataProvider(train=(torch.zeros(4, 64),)))


def test_default_callbacks_nan_detector_always_progress_bar_on_a_terminal(monkeypatch):
    assert make_trainer().callbacks.names() == ["NaNDetector"]
    assert make_trainer(detect_nan=False).callbacks.names() == []
    assert make_trainer(callbacks=[NaNDetector("stop")]).callbacks.names() == ["NaNDetector"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    trainer = make_trainer(progress_bar=None)
    assert trainer.callbacks.names() == ["NaNDetector", "ProgressBar"]
    assert "ProgressBar" not in repr(trainer.definition())  # defaults are not part of the definition


def test_progress_bar_runs(capsys):
    make_trainer(epochs=2, batch_size=2, callbacks=[ProgressBar(refresh_every=1)]).fit(tiny(), seed=0)
    assert "epoch 2/2" in capsys.readouterr().err


def test_callback_names_are_made_unique_and_checked(caplog):
    trainer = make_trainer(callbacks=[Recorder(), Recorder()])
    assert trainer.callbacks.names() == ["NaNDetector", "Recorder", "Recorder_2"]

    class Typo(Callback):
        def on_stepend(self, **_):
            pass

    with caplog.at_level(logging.WARNING):
        trainer.add_callback(Typo())
    assert "defines ['on_stepend'], which no trainer calls" in caplog.text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": torch.nn.Linear(2, 2)}, r"model must be a ptdry Model\(net, optimizer, criterion\)"),
        ({"looper": 3}, r"Trainer\.looper must be a Looper\(epochs=\.\.\., batch_size=\.\.\.\): int given; received 3"),
        ({"callbacks": Recorder()}, r"callbacks must be a list of callbacks; received Recorder"),
        ({"metrics": ("f2",)}, r"unknown metric 'f2'; known: \['accuracy', 'f1', 'log_loss', 'mae', 'mse', 'top_k_accuracy'\]"),
        ({"log_every_n_steps": 0}, r"Trainer\.log_every_n_steps must be an integer: below the minimum 1; received 0"),
    ],
)
def test_bad_trainer_arguments_are_named(kwargs, message):
    args = {"model": make_model(), **kwargs}
    with pytest.raises(ConfigError, match=message):
        Trainer(**args)


def test_looper_arguments_are_checked():
    with pytest.raises(ConfigError, match=r"Looper\.epochs must be an integer: below the minimum 1; received 0"):
        Looper(epochs=0)
    with pytest.raises(ConfigError, match=r"Looper\.max_steps must be an integer: below the minimum 1; received -1"):
        Looper(max_steps=-1)


def top2(outputs, targets):
    best = np.argsort(-outputs, axis=-1)[:, :2]
    return (best == targets[:, None]).any(-1).mean()


def test_metric_functions_are_averaged_over_the_split():
    trainer = make_trainer(metrics=("accuracy", top2))
    trainer.fit(tiny(), seed=0)
    assert trainer.history.last("val.top2") >= trainer.history.last("val.accuracy")
    assert trainer.definition().build().metric_fns["top2"].fn is top2


def test_fit_again_after_raising_epochs_continues_training():
    trainer = make_trainer(epochs=1, batch_size=4)
    trainer.fit(tiny(), seed=0)
    trainer.looper.epochs = 2
    trainer.fit(tiny())
    assert trainer.looper.epochs_done == 2 and trainer.looper.steps_done == 4


def test_callback_names_with_dots_keep_their_own_state():
    from ptdry.train.callbacks.early_stopping import EarlyStopping

    def build():
        trainer = make_trainer()
        trainer.add_callback(EarlyStopping(), name="ptdry.session.Early")
        trainer.add_callback(EarlyStopping(), name="ptdry")
        return trainer

    trainer = build()
    trainer.callbacks["ptdry.session.Early"].wait, trainer.callbacks["ptdry"].wait = 2, 1
    fresh = build()
    fresh.load_state_dict(trainer.state_dict())
    assert (fresh.callbacks["ptdry.session.Early"].wait, fresh.callbacks["ptdry"].wait) == (2, 1)
