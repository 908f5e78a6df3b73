"""Checkpoint retention: save_top_k (0 = only the latest, -1 = all), save_last, NaN scores,
the default that keeps the best when there is validation, and refused combinations."""

from __future__ import annotations

import math

import pytest
import torch
from _train_helpers import make_model

from ptdry.data.provider import DataProvider
from ptdry.errors import NotFoundError
from ptdry.train.callbacks.checkpoint import Checkpoint, MemoryStorage, select_checkpoint
from ptdry.train.looper import Looper
from ptdry.train.trainer import Trainer


def tiny(val=True):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(12, 64, generator=g), torch.randint(0, 10, (12,), generator=g)
    return DataProvider(train=(X[:8], y[:8]), val=(X[8:], y[8:]) if val else None)


class Scripted(Trainer):
    script: list = []

    def validate(self, data, split="val"):
        self.log(split, {"loss": self.script[self.epoch - 1]})
        return {"loss": self.script[self.epoch - 1]}


def run(script, ckpt):
    storage = ckpt.storage
    trainer = Scripted(make_model(), Looper(epochs=len(script), batch_size=4), [ckpt], progress_bar=False)
    trainer.script = list(script)
    trainer.fit(tiny(), seed=0)
    return [int(n[6:10]) for n in storage.names()], storage  # the epochs kept


def test_the_default_keeps_the_latest_and_the_best_by_val_loss():
    kept, storage = run([0.9, 0.3, 0.5, 0.7], Checkpoint(storage=MemoryStorage()))
    assert kept == [2, 4]
    assert select_checkpoint(storage.list(), "best")["value"] == 0.3
    assert select_checkpoint(storage.list(), "last")["epoch"] == 4


def test_without_validation_the_default_keeps_only_the_latest_and_no_best():
    storage = MemoryStorage()
    trainer = Trainer(make_model(), Looper(epochs=3, batch_size=4), [Checkpoint(storage=storage)], progress_bar=False)
    trainer.fit(tiny(val=False), seed=0)
    assert storage.names() == ["ckpt-e0003-s00000006"]
    with pytest.raises(NotFoundError, match=r"no checkpoint recorded a finite value of val.loss, so none is best"):
        select_checkpoint(storage.list(), "best")


def test_save_top_k_zero_keeps_only_the_latest():
    kept, _ = run([0.9, 0.3, 0.5], Checkpoint(save_top_k=0, storage=MemoryStorage()))
    assert kept == [3]


def test_save_top_k_minus_one_keeps_every_checkpoint():
    kept, _ = run([0.9, 0.3, 0.5], Checkpoint(save_top_k=-1, save_last=False, storage=MemoryStorage()))
    assert kept == [1, 2, 3]


def test_save_top_k_without_save_last_keeps_only_the_best():
    kept, _ = run([0.9, 0.3, 0.5, 0.2, 0.8], Checkpoint(save_top_k=2, save_last=False, storage=MemoryStorage()))
    assert kept == [2, 4]


def test_save_last_as_a_count_keeps_that_many_latest():
    kept, _ = run([0.1, 0.3, 0.5, 0.7, 0.9], Checkpoint(save_top_k=1, save_last=3, storage=MemoryStorage()))
    assert kept == [1, 3, 4, 5]


def test_a_nan_first_score_never_counts_as_best():
    kept, storage = run([math.nan, 0.6, 0.7], Checkpoint(storage=MemoryStorage()))
    assert kept == [2, 3]
    assert select_checkpoint(storage.list(), "best")["epoch"] == 2


def test_only_nan_scores_leave_no_best_checkpoint():
    kept, storage = run([math.nan, math.nan], Checkpoint(storage=MemoryStorage()))
    assert kept == [2]
    with pytest.raises(NotFoundError, match=r"no checkpoint recorded a finite value of val.loss, so none is best \(the storage holds \['ckpt-e0002-s00000004'\]\)"):
        select_checkpoint(storage.list(), "best")


def test_ties_keep_the_earlier_checkpoint_and_max_mode_ranks_high_values_first():
    kept, _ = run([0.5, 0.5, 0.9], Checkpoint(save_last=False, storage=MemoryStorage()))
    assert kept == [1]
    kept, _ = run([0.5, 0.9, 0.7], Checkpoint(mode="max", save_last=False, storage=MemoryStorage()))
    assert kept == [2]


def test_without_a_monitor_checkpoints_have_no_value_and_are_not_ranked():
    kept, storage = run([0.9, 0.3], Checkpoint(monitor=None, storage=MemoryStorage()))
    assert kept == [2] and storage.list()[0]["value"] is None


def test_the_former_keep_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"keep_last=, keep_best=\) are deprecated"):
        ckpt = Checkpoint(keep_last=2, keep_best=1, storage=MemoryStorage())
    assert (ckpt.save_last, ckpt.save_top_k) == (2, 1)
    with pytest.warns(DeprecationWarning):
        assert Checkpoint(keep_last=None).save_top_k == -1
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'keep_fist'"):
        Checkpoint(keep_fist=1)
