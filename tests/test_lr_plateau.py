"""LRScheduler around ReduceLROnPlateau gives exactly the learning rates torch's own scheduler
gives for the same sequence of metric values — also when the run is resumed halfway."""

from __future__ import annotations

import pytest
import torch
from _train_helpers import MLP, CrashAt

from ptdry.core.objectdef import ObjectDef
from ptdry.data.provider import DataProvider
from ptdry.train.callbacks.checkpoint import Checkpoint, MemoryStorage
from ptdry.train.callbacks.lr_scheduler import LRScheduler
from ptdry.train.looper import Looper
from ptdry.train.model import Criterion, Model, Optimizer
from ptdry.train.trainer import Trainer

Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau
VALUES = [1.0, 0.9, 0.9, 0.91, 0.95, 0.8, 0.8, 0.8, 0.79, 0.799, 0.7, 0.7, 0.7, 0.7, 0.69]
GROUP_LRS = [0.1, 0.01]


def tiny():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(12, 64, generator=g), torch.randint(0, 10, (12,), generator=g)
    return DataProvider(train=(X[:8], y[:8]), val=(X[8:], y[8:]))


class Scripted(Trainer):
    """Validation logs ``values[epoch - 1]`` as ``val.<metric>``."""

    metric = "loss"
    values: list = []

    def validate(self, data, split="val"):
        out = {self.metric: self.values[self.epoch - 1]}
        self.log(split, out)
        return out


def model():
    groups = [{"params": "layers.0", "lr": GROUP_LRS[0]}, {"params": "layers.3", "lr": GROUP_LRS[1]}]
    return Model(ObjectDef(MLP, 64, 32, 10), Optimizer(torch.optim.SGD, lr=0.5, groups=groups), Criterion(torch.nn.CrossEntropyLoss))


def scripted(metric, callbacks, epochs=len(VALUES)):
    trainer = Scripted(model(), Looper(epochs=epochs, batch_size=4), callbacks, progress_bar=False)
    trainer.metric, trainer.values = metric, VALUES
    return trainer


def torch_rates(kwargs):
    """The learning rates (of both groups) torch's scheduler sets, epoch by epoch."""
    params = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    opt = torch.optim.SGD([{"params": [params[0]], "lr": GROUP_LRS[0]}, {"params": [params[1]], "lr": GROUP_LRS[1]}], lr=0.5)
    scheduler = Plateau(opt, **kwargs)
    rates = []
    for value in VALUES:
        rates.append([g["lr"] for g in opt.param_groups])
        opt.step()
        scheduler.step(value)
    return rates


def ptdry_rates(trainer):
    h = trainer.history
    return [list(pair) for pair in zip((v for _, v in h.series("optim.lr")), (v for _, v in h.series("optim.lr_1")))]


CASES = [
    ("loss", {"factor": 0.5, "patience": 1}, {}),
    ("loss", {"factor": 0.5, "patience": 0, "threshold_mode": "abs", "threshold": 0.05}, {}),
    ("loss", {"factor": 0.1, "patience": 0, "cooldown": 2}, {}),
    ("loss", {"factor": 0.3, "patience": 1, "min_lr": [0.05, 0.002]}, {}),
    ("loss", {"factor": 0.5, "patience": 1, "threshold": 0.2, "eps": 0.01}, {}),
    ("accuracy", {"factor": 0.5, "patience": 1}, {"mode": "max"}),  # ptdry infers it from the name
]


@pytest.mark.parametrize("metric, kwargs, torch_extra", CASES)
def test_the_learning_rates_are_torchs_for_the_same_metric_values(metric, kwargs, torch_extra):
    trainer = scripted(metric, [LRScheduler(Plateau, monitor=f"val.{metric}", **kwargs)])
    trainer.fit(tiny(), seed=0)
    assert ptdry_rates(trainer) == torch_rates({**kwargs, **torch_extra})


@pytest.mark.parametrize("metric, kwargs, torch_extra", CASES)
def test_the_learning_rates_stay_torchs_across_a_resume(metric, kwargs, torch_extra):
    storage = MemoryStorage()

    def callbacks():
        return [
            LRScheduler(Plateau, monitor=f"val.{metric}", **kwargs),
            Checkpoint(save_top_k=0, on_exception=False, storage=storage),
        ]

    crashing = scripted(metric, callbacks() + [CrashAt(step=15)])  # 2 steps an epoch: mid-epoch 8
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(tiny(), seed=0)
    resumed = crashing.definition().build()
    resumed.metric, resumed.values = metric, VALUES
    resumed.remove_callback("CrashAt")
    assert resumed.load_checkpoint(storage, "last")["epoch"] == 7
    resumed.fit(tiny())
    # (a bare trainer's checkpoint holds the history's position, not its records: the fresh
    # tree has the records of the epochs after the checkpoint)
    rates = ptdry_rates(resumed)
    assert len(rates) == len(VALUES) - 7 and rates == torch_rates({**kwargs, **torch_extra})[7:]
