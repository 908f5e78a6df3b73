"""Contract: a run interrupted at any step and resumed from its state ends bitwise identical.

Uninterrupted run vs. a run that crashes after step k (its state captured at that step's
end, or taken from its last checkpoint), rebuilt from the definition in a fresh tree, loaded
and continued: equal final weights (``torch.equal``) and equal history values. The net has
dropout and the data is shuffled, so the RNG states and data order must be restored too.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from _train_helpers import CrashAt, digits, history_values, make_model, net_params

from ptdry.errors import ConfigError
from ptdry.train.callbacks.checkpoint import Checkpoint, MemoryStorage
from ptdry.train.callbacks.early_stopping import EarlyStopping
from ptdry.train.callbacks.lr_scheduler import LRScheduler
from ptdry.train.looper import Looper
from ptdry.train.trainer import Trainer

EPOCHS, BATCH = 3, 64  # 600 samples: 10 steps per epoch, 30 in all


def _trainer(**looper_kwargs) -> Trainer:
    return Trainer(
        make_model(),
        Looper(epochs=EPOCHS, batch_size=BATCH, **looper_kwargs),
        [
            EarlyStopping(patience=50, restore_best_weights=True),
            LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.7),
        ],
        progress_bar=False,
    )


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def reference(data):
    trainer = _trainer()
    trainer.fit(data, seed=7)
    return net_params(trainer), history_values(trainer), trainer.history.summary()


def _disturb_rngs() -> None:
    """Move every global RNG, as other code in a resuming process would."""
    random.random()
    np.random.rand(3)
    torch.rand(3)


def _assert_same(trainer: Trainer, reference) -> None:
    """Same weights; the same history: its length and every metric's summary (restored from
    the state), and the records logged after the resume (a bare trainer's checkpoint holds
    the history's position and summaries, not its records)."""
    weights, history, summary = reference
    got = net_params(trainer)
    assert got.keys() == weights.keys()
    for key in weights:
        assert torch.equal(got[key], weights[key]), f"weights differ at {key}"
    assert len(trainer.history) == len(history)
    assert trainer.history.summary() == summary
    assert history_values(trainer) == history[trainer.history.store.start :]


@pytest.mark.parametrize("k", [1, 7, 10, 11, 29])  # mid-epoch, last step of an epoch, first of the next
def test_resume_from_state_taken_at_any_step_is_bitwise_identical(data, reference, k):
    crashing = _trainer()
    crasher = crashing.add_callback(CrashAt(k))
    with pytest.raises(RuntimeError, match=f"simulated crash after step {k}"):
        crashing.fit(data, seed=7)
    assert crashing.status.state == "failed"

    fresh = crashing.definition().build()  # the tree again, without the crashing callback
    _disturb_rngs()
    fresh.load_state_dict(crasher.state)
    _disturb_rngs()
    fresh.fit(data)
    assert fresh.looper.steps_done == EPOCHS * 10
    _assert_same(fresh, reference)


def test_resume_from_last_checkpoint_after_a_crash_is_bitwise_identical(data, reference):
    storage = MemoryStorage(serialize=True)  # through the archive bytes, as on disk or in the DB
    crashing = _trainer()
    crashing.add_callback(Checkpoint(every_n_steps=4, every_n_epochs=None, save_last=2, save_top_k=0, on_exception=False, storage=storage))
    crashing.add_callback(CrashAt(14))
    with pytest.raises(RuntimeError):
        crashing.fit(data, seed=7)
    assert [m["step"] for m in storage.list()] == [8, 12]

    fresh = crashing.definition().build()
    info = fresh.load_checkpoint(storage, "last")
    assert info["step"] == 12
    fresh.fit(data, seed=7)
    _assert_same(fresh, reference)


def test_resume_from_an_epoch_end_checkpoint_does_not_repeat_the_epoch_end(data, reference):
    storage = MemoryStorage()
    crashing = _trainer()
    crashing.add_callback(Checkpoint(every_n_epochs=1, save_last=5, save_top_k=0, on_exception=False, storage=storage))
    crashing.add_callback(CrashAt(13))
    with pytest.raises(RuntimeError):
        crashing.fit(data, seed=7)
    assert [(m["epoch"], m["step"]) for m in storage.list()] == [(1, 10)]

    fresh = crashing.definition().build()
    fresh.load_checkpoint(storage)
    fresh.fit(data)
    _assert_same(fresh, reference)


def test_resume_with_max_steps_and_no_shuffle(data):
    def run(crash_at=None):
        trainer = _trainer(max_steps=17, shuffle=False)
        if crash_at is None:
            trainer.fit(data, seed=3)
            return trainer
        crasher = trainer.add_callback(CrashAt(crash_at))
        with pytest.raises(RuntimeError):
            trainer.fit(data, seed=3)
        fresh = trainer.definition().build()
        fresh.fit(data, resume_state=crasher.state)
        return fresh

    ref, resumed = run(), run(crash_at=5)
    assert ref.looper.steps_done == resumed.looper.steps_done == 17
    _assert_same(resumed, (net_params(ref), history_values(ref), ref.history.summary()))


def test_resume_refuses_a_different_seed(data):
    trainer = _trainer()
    crasher = trainer.add_callback(CrashAt(3))
    with pytest.raises(RuntimeError):
        trainer.fit(data, seed=7)
    fresh = trainer.definition().build()
    fresh.load_state_dict(crasher.state)
    with pytest.raises(ConfigError, match="started with seed=7; it cannot resume with seed=8"):
        fresh.fit(data, seed=8)


def test_resumed_early_stopping_stops_at_the_same_epoch(data):
    def trainer():
        return Trainer(
            make_model(lr=0.05),
            Looper(epochs=12, batch_size=BATCH),
            [EarlyStopping(monitor="val.accuracy", patience=1, min_delta=0.5, restore_best_weights=True)],
            progress_bar=False,
        )

    ref = trainer()
    ref.fit(data, seed=1)
    stopped = ref.looper.epochs_done
    assert stopped == 2  # no improvement of 0.5 after the first epoch: stop after epoch 2

    storage = MemoryStorage()
    crashing = trainer()
    crashing.add_callback(Checkpoint(every_n_epochs=1, save_last=1, save_top_k=0, on_exception=False, storage=storage))
    crashing.add_callback(CrashAt(stopped * 10 + 1))  # would crash in the epoch after the stop
    crashing.fit(data, seed=1)  # ...but the run stopped before it
    fresh = trainer()  # a tree built by the same code (same definition, other ids)
    fresh.load_checkpoint(storage)
    fresh.fit(data)
    assert fresh.looper.epochs_done == stopped
    _assert_same(fresh, (net_params(ref), history_values(ref), ref.history.summary()))
