"""Built-in callbacks and filters: Every/Once, EarlyStopping, NaNDetector, Checkpoint and its
storages, LRScheduler, Timer/TimeLimit, MetricLogger."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from _train_helpers import Recorder, make_model, make_trainer

from ptdry.core.callback import Callback
from ptdry.data.provider import DataProvider
from ptdry.errors import ConfigError, NotFoundError, TrainingError
from ptdry.train.callbacks.checkpoint import Checkpoint, DirectoryStorage, MemoryStorage, select_checkpoint
from ptdry.train.callbacks.early_stopping import EarlyStopping
from ptdry.train.callbacks.lr_scheduler import LRScheduler
from ptdry.train.callbacks.metric_logger import MetricLogger
from ptdry.train.callbacks.nan_detector import NaNDetector
from ptdry.train.callbacks.timer import TimeLimit, Timer
from ptdry.train.looper import Looper
from ptdry.train.trainer import Trainer
from ptdry.train.triggers import Every, Once


def tiny(n_train=8, n_val=4):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_train + n_val, 64, generator=g)
    y = torch.randint(0, 10, (n_train + n_val,), generator=g)
    return DataProvider(train=(X[:n_train], y[:n_train]), val=(X[n_train:], y[n_train:]))


class Scripted(Trainer):
    """Validation returns scripted values: ``val.loss`` of epoch e is ``script[e - 1]``."""

    script: list = []

    def validate(self, data, split="val"):
        values = {"loss": self.script[self.epoch - 1]}
        self.log(split, values)
        return values


def scripted(script, epochs=None, callbacks=(), batch_size=4):
    trainer = Scripted(make_model(), Looper(epochs=epochs or len(script), batch_size=batch_size), list(callbacks), progress_bar=False)
    trainer.script = list(script)
    return trainer


# -- filters ----------------------------------------------------------------------------------
def _kinds(rec, name):
    return [(step, epoch) for n, step, epoch in rec.events if n == name]


def test_every_n_steps_runs_step_triggers_on_multiples_only():
    rec = Recorder()
    make_trainer(epochs=2, batch_size=2, callbacks=[Every(rec, steps=3)]).fit(tiny(), seed=0)
    assert _kinds(rec, "on_step_end") == [(3, 1), (6, 2)]
    assert _kinds(rec, "on_before_backward") == [(3, 1), (6, 2)]
    assert len(_kinds(rec, "on_epoch_end")) == 2  # other triggers are not filtered


def test_every_n_epochs_runs_epoch_triggers_on_multiples_only():
    rec = Recorder()
    make_trainer(epochs=5, batch_size=4, callbacks=[Every(rec, epochs=2)]).fit(tiny(), seed=0)
    assert [e for _, e in _kinds(rec, "on_epoch_end")] == [2, 4]
    assert [e for _, e in _kinds(rec, "on_epoch_start")] == [2, 4]


def test_once_runs_each_trigger_the_first_time_only_even_after_a_resume():
    rec = Recorder()
    trainer = make_trainer(epochs=3, batch_size=4, callbacks=[Once(rec)])
    trainer.fit(tiny(), seed=0)
    assert [name for name, *_ in rec.events].count("on_step_end") == 1
    assert _kinds(rec, "on_epoch_end") == [(2, 1)]
    assert trainer.state_dict()["callbacks.Recorder.fired"][:2] == ["on_after_backward", "on_before_backward"]


def test_once_at_a_step_or_epoch():
    at_step, at_epoch = Recorder(), Recorder()
    make_trainer(epochs=3, batch_size=4, callbacks=[Once(at_step, step=4), Once(at_epoch, epoch=2)]).fit(tiny(), seed=0)
    assert _kinds(at_step, "on_step_end") == [(4, 2)]
    assert _kinds(at_epoch, "on_epoch_end") == [(4, 2)]


def test_filters_register_under_the_wrapped_name_and_are_in_the_definition():
    trainer = make_trainer(callbacks=[Every(EarlyStopping(), epochs=2)])
    assert trainer.callbacks.names() == ["NaNDetector", "EarlyStopping"]
    rebuilt = trainer.definition().build()
    wrapped = rebuilt.callbacks["EarlyStopping"]
    assert isinstance(wrapped, Every) and wrapped.n == 2 and isinstance(wrapped.callback, EarlyStopping)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Every(Recorder()), r"Every needs exactly one of steps= or epochs="),
        (lambda: Every(Recorder(), steps=0), r"steps must be a positive integer; received 0"),
        (lambda: Once(Recorder(), step=1, epoch=1), r"Once takes step= or epoch=, not both"),
        (lambda: Every(Recorder, steps=2), r"Every needs a callback instance; received the class Recorder"),
    ],
)
def test_bad_filters_are_rejected(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


# -- early stopping ---------------------------------------------------------------------------
def test_early_stopping_stops_after_patience_epochs_without_improvement():
    es = EarlyStopping(patience=2)
    trainer = scripted([1.0, 0.5, 0.6, 0.55, 0.4, 0.3], callbacks=[es])
    trainer.fit(tiny(), seed=0)
    assert trainer.looper.epochs_done == 4
    assert (es.best, es.best_epoch, es.wait, es.stopped_epoch) == (0.5, 2, 2, 4)


def test_early_stopping_min_delta_and_max_mode():
    es = EarlyStopping(monitor="val.loss", mode="max", patience=1, min_delta=0.1)
    trainer = scripted([0.5, 0.55, 0.7, 0.75], callbacks=[es])
    trainer.fit(tiny(), seed=0)
    assert trainer.looper.epochs_done == 2 and es.best == 0.5


class Snapshot(Callback):
    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, trainer, epoch, **_):
        self.weights[epoch] = trainer.model.net.layers[0].weight.detach().clone()


def test_early_stopping_restores_the_best_weights():
    snap = Snapshot()
    trainer = scripted([1.0, 0.5, 0.7, 0.8], callbacks=[snap, EarlyStopping(patience=2, restore_best_weights=True)])
    trainer.fit(tiny(), seed=0)
    assert torch.equal(trainer.model.net.layers[0].weight, snap.weights[2])
    assert not torch.equal(snap.weights[2], snap.weights[4])


def test_early_stopping_ignores_epochs_without_the_metric():
    es = EarlyStopping(monitor="val.accuracy", patience=1)
    scripted([1.0, 0.9], callbacks=[es]).fit(tiny(), seed=0)
    assert es.best is None and es.wait == 0


def test_early_stopping_arguments_are_checked():
    with pytest.raises(ConfigError, match=r"EarlyStopping\.patience must be an integer: below the minimum 0; received -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(ConfigError, match=r"EarlyStopping\.mode must be one of \['auto', 'min', 'max'\]: not an option; received 'down'"):
        EarlyStopping(mode="down")


# -- NaN --------------------------------------------------------------------------------------
class PoisonAt(Callback):
    """Makes the weights NaN after step ``step``, so the next loss is NaN."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step, **_):
        if step == self.step:
            with torch.no_grad():
                trainer.model.net.layers[0].weight.fill_(float("nan"))


def test_nan_loss_raises_by_default_and_fails_the_run():
    trainer = make_trainer(epochs=3, batch_size=4, callbacks=[PoisonAt(2)])
    with pytest.raises(TrainingError, match=r"loss is nan at step 3 \(epoch 2\)") as info:
        trainer.fit(tiny(), seed=0)
    assert info.value.ptdry_callback == "NaNDetector"
    assert trainer.status.state == "failed" and trainer.status.error["type"] == "TrainingError"


def test_nan_loss_with_action_stop_ends_the_run_after_that_step():
    trainer = make_trainer(epochs=5, batch_size=4, callbacks=[NaNDetector("stop"), PoisonAt(2)])
    trainer.fit(tiny(), seed=0)
    assert trainer.looper.steps_done == 3 and trainer.looper.epochs_done == 2
    assert trainer.status.state == "completed"
    assert math.isnan(trainer.history.last("step.loss"))


def test_nan_detector_action_is_checked():
    with pytest.raises(ConfigError, match=r"NaNDetector\.action must be one of \['raise', 'stop'\]: not an option; received 'ignore'"):
        NaNDetector("ignore")


# -- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_keeps_the_last_k_and_the_best_k():
    storage = MemoryStorage()
    ckpt = Checkpoint(every_n_epochs=1, save_last=2, save_top_k=1, storage=storage)
    scripted([0.9, 0.3, 0.5, 0.7, 0.8, 0.6], callbacks=[ckpt]).fit(tiny(), seed=0)  # 2 steps per epoch
    assert storage.names() == ["ckpt-e0002-s00000004", "ckpt-e0005-s00000010", "ckpt-e0006-s00000012"]
    best = select_checkpoint(storage.list(), "best")
    assert (best["name"], best["value"], best["monitor"]) == ("ckpt-e0002-s00000004", 0.3, "val.loss")


def test_checkpoint_every_n_steps_with_save_top_k_minus_one_keeps_all():
    storage = MemoryStorage()
    make_trainer(epochs=2, batch_size=2, callbacks=[Checkpoint(every_n_steps=3, every_n_epochs=None, save_top_k=-1, storage=storage)]).fit(tiny(), seed=0)
    assert [(m["epoch"], m["step"], m["batch"]) for m in storage.list()] == [(0, 3, 3), (1, 6, 2)]


def test_checkpoint_saves_on_exception_and_last_skips_it():
    storage = MemoryStorage()
    trainer = make_trainer(epochs=3, batch_size=4, callbacks=[Checkpoint(every_n_epochs=1, storage=storage), PoisonAt(3)])
    with pytest.raises(TrainingError):
        trainer.fit(tiny(), seed=0)
    assert storage.names() == ["ckpt-e0001-s00000002", "ckpt-e0001-s00000004-exception"]  # 1 epoch, 4 steps done
    failure = select_checkpoint(storage.list(), "exception")
    assert failure["reason"] == "exception" and "loss is nan" in failure["error"]
    assert select_checkpoint(storage.list(), "last")["name"] == "ckpt-e0001-s00000002"


def test_on_checkpoint_save_and_load_triggers_fire():
    rec, storage = Recorder(), MemoryStorage()
    trainer = make_trainer(epochs=1, batch_size=4, callbacks=[rec, Checkpoint(storage=storage)])
    trainer.fit(tiny(), seed=0)
    trainer.load_checkpoint(storage)
    names = [n for n, *_ in rec.events]
    assert names.index("on_checkpoint_save") > names.index("on_epoch_end")
    assert names[-1] == "on_checkpoint_load"


def test_directory_storage_round_trip_list_and_remove(tmp_path):
    storage = DirectoryStorage(tmp_path / "ckpts")
    trainer = make_trainer(epochs=2, batch_size=4, callbacks=[Checkpoint(storage=storage)])
    trainer.fit(tiny(), seed=0)
    files = sorted(p.name for p in (tmp_path / "ckpts").iterdir())
    assert all(f.endswith((".json", ".state")) for f in files) and len(files) in (2, 4)
    fresh = trainer.definition().build()
    info = fresh.load_checkpoint(storage, "last")
    assert info["epoch"] == 2 and fresh.looper.epochs_done == 2
    assert torch.equal(fresh.model.net.layers[0].weight, trainer.model.net.layers[0].weight)
    assert fresh.history.summary() == trainer.history.summary() and len(fresh.history) == len(trainer.history)
    storage.remove(info["name"])
    assert info["name"] not in storage.names()
    with pytest.raises(NotFoundError, match=rf"no checkpoint named '{info['name']}'"):
        storage.load(info["name"])


def test_trainer_checkpoint_storage_is_used_when_the_callback_has_none():
    storage = MemoryStorage()
    trainer = make_trainer(epochs=1, batch_size=4, callbacks=[Checkpoint()])
    trainer.checkpoint_storage = storage
    trainer.fit(tiny(), seed=0)
    assert storage.names() == ["ckpt-e0001-s00000002"]
    assert "checkpoint_storage" not in dict(trainer.named_children())
    assert not any(k.startswith("checkpoint_storage") for k in trainer.state_dict())
    with pytest.raises(ConfigError, match=r"storage must have save/load/remove/list methods"):
        trainer.checkpoint_storage = "ckpts/"


def test_missing_storage_and_unknown_checkpoints_are_reported():
    trainer = make_trainer(epochs=1, batch_size=4, callbacks=[Checkpoint(on_exception=False)])
    with pytest.raises(ConfigError, match=r"no checkpoint storage: pass storage=DirectoryStorage\(path\)"):
        trainer.fit(tiny(), seed=0)
    with pytest.raises(NotFoundError, match=r"no checkpoint to load as 'last'; the storage holds nothing"):
        trainer.load_checkpoint(MemoryStorage(), "last")
    with pytest.raises(NotFoundError, match=r"no best checkpoint was kept \(the storage holds nothing; a Checkpoint keeps"):
        trainer.load_checkpoint(MemoryStorage(), "best")
    with pytest.raises(ConfigError, match=r"checkpoint name must be letters, digits"):
        MemoryStorage().save("../x", {}, {})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every_n_steps": 0}, r"Checkpoint\.every_n_steps must be an integer: below the minimum 1; received 0"),
        ({"save_top_k": -2}, r"Checkpoint\.save_top_k must be an integer: below the minimum -1; received -2"),
        ({"save_last": -1}, r"Checkpoint\.save_last must be True, False or a number of latest checkpoints"),
        ({"storage": "dir"}, r"Checkpoint\.storage must be a CheckpointStorage \(e\.g\. DirectoryStorage\(path\)\): str given; received 'dir'"),
        ({"prefix": "a/b"}, r"Checkpoint\.prefix must be a string: letters, digits"),
        ({"every_n_epochs": None, "on_exception": False}, r"this Checkpoint never saves"),
        ({"monitor": None, "save_top_k": 2}, r"Checkpoint\(save_top_k=2\) keeps the best checkpoints by a metric, but monitor=None"),
        ({"save_top_k": 0, "save_last": False}, r"this Checkpoint keeps nothing \(save_top_k=0 and save_last=False\)"),
    ],
)
def test_checkpoint_arguments_are_checked(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Checkpoint(**kwargs)


# -- learning-rate schedules ----------------------------------------------------------------
def _lrs(trainer):
    return [round(v, 6) for _, v in trainer.history.series("optim.lr")]


def test_lr_scheduler_with_step_lr():
    trainer = make_trainer(epochs=4, batch_size=4, callbacks=[LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.1)])
    trainer.fit(tiny(), seed=0)
    assert _lrs(trainer) == [0.01, 0.01, 0.001, 0.001]
    assert "callbacks.LRScheduler.scheduler" in trainer.state_dict()


def test_lr_scheduler_per_step():
    trainer = make_trainer(epochs=2, batch_size=4, callbacks=[LRScheduler(torch.optim.lr_scheduler.ExponentialLR, interval="step", gamma=0.5)])
    trainer.fit(tiny(), seed=0)
    assert _lrs(trainer) == [0.0025, 0.000625]  # at each epoch end, after that epoch's 2 steps


def test_lr_scheduler_with_reduce_on_plateau_reads_the_monitored_metric():
    cb = LRScheduler(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.5, patience=1)
    trainer = scripted([1.0, 1.0, 1.0, 1.0, 1.0], callbacks=[cb])
    trainer.fit(tiny(), seed=0)
    assert _lrs(trainer) == [0.01, 0.01, 0.01, 0.005, 0.005]
    assert cb.monitor == "val.loss"


def test_lr_scheduler_arguments_are_checked():
    with pytest.raises(ConfigError, match=r"LRScheduler\.interval must be one of \['epoch', 'step'\]: not an option; received 'batch'"):
        LRScheduler(torch.optim.lr_scheduler.StepLR, interval="batch", step_size=1)
    with pytest.raises(ConfigError, match=r"scheduler_cls must be a scheduler class"):
        LRScheduler("step")


# -- time -------------------------------------------------------------------------------------
def test_timer_records_epoch_and_step_times():
    trainer = make_trainer(epochs=2, batch_size=4, callbacks=[Timer()])
    trainer.fit(tiny(), seed=0)
    epochs = trainer.history.series("time.epoch")
    assert len(epochs) == 2 and all(v > 0 for _, v in epochs)
    assert 0 < trainer.history.last("time.step") < trainer.history.last("time.epoch")
    assert trainer.history.last("time.train") >= sum(v for _, v in epochs)


def test_time_limit_stops_training():
    trainer = make_trainer(epochs=50, batch_size=4, callbacks=[TimeLimit(0.0)])
    trainer.fit(tiny(), seed=0)
    assert trainer.looper.steps_done == 1
    assert trainer.state_dict()["callbacks.TimeLimit.elapsed"] > 0
    with pytest.raises(ConfigError, match=r"TimeLimit\.seconds must be a number: below the minimum 0\.0; received -1"):
        TimeLimit(-1)


# -- metric logger ----------------------------------------------------------------------------
def test_metric_logger_sends_every_statistic_to_its_sink():
    seen = []
    trainer = make_trainer(epochs=2, batch_size=4, callbacks=[MetricLogger(sink=seen.append)])
    trainer.fit(tiny(), seed=0)
    assert [s.name for s in seen] == [s.name for s in trainer.history]
    assert seen[0] is trainer.history.records[0]
    assert trainer.definition().build().callbacks["MetricLogger"].sink is None


def test_metric_logger_without_sink_logs_epoch_values(caplog):
    with caplog.at_level(logging.INFO, logger="ptdry.train"):
        make_trainer(epochs=1, batch_size=4, callbacks=[MetricLogger(phases=["val"])]).fit(tiny(), seed=0)
    records = [r.getMessage() for r in caplog.records if r.name == "ptdry.train"]
    assert len(records) == 1 and "val.loss=" in records[0]
