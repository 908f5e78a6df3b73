"""Shared pieces of the training tests: small nets, digits data, a trainer factory."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ptdry.core.callback import Callback
from ptdry.core.objectdef import ObjectDef
from ptdry.data.provider import DataProvider
from ptdry.train.looper import Looper
from ptdry.train.model import Criterion, Model, Optimizer
from ptdry.train.trainer import Trainer


class MLP(torch.nn.Module):
    """64 → hidden → 10 with dropout (so exact resume must restore the RNG)."""

    def __init__(self, inputs: int = 64, hidden: int = 32, outputs: int = 10, p: float = 0.2) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Dropout(p), torch.nn.Linear(hidden, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@functools.lru_cache(maxsize=1)
def digits_arrays(n_train: int = 600, n_val: int = 200, n_test: int = 200):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    a, b, c = n_train, n_train + n_val, n_train + n_val + n_test
    return (X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:c], y[b:c])


def digits(n_train: int = 600, n_val: int = 200, n_test: int = 200) -> DataProvider:
    train, val, test = digits_arrays(n_train, n_val, n_test)
    return DataProvider(train=train, val=val, test=test)


def make_model(lr: float = 1e-2, hidden: int = 32, p: float = 0.2) -> Model:
    return Model(
        ObjectDef(MLP, 64, hidden, 10, p=p),
        Optimizer(torch.optim.Adam, lr=lr),
        Criterion(torch.nn.CrossEntropyLoss),
    )


def make_trainer(epochs: int = 2, batch_size: int = 64, callbacks=(), **kwargs) -> Trainer:
    kwargs.setdefault("progress_bar", False)
    return Trainer(make_model(), Looper(epochs=epochs, batch_size=batch_size), list(callbacks), **kwargs)


class Recorder(Callback):
    """Records every trigger it receives as (trigger, step, epoch)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def _rec(self, name, kw):
        self.events.append((name, kw.get("step"), kw.get("epoch")))


def _make_handler(name):
    def handler(self, **kw):
        self._rec(name, kw)

    handler.__name__ = name
    return handler


for _name in (
    "on_train_start", "on_epoch_start", "on_step_start", "on_before_backward", "on_after_backward",
    "on_before_optimizer_step", "on_step_end", "on_validation_start", "on_validation_end",
    "on_epoch_end", "on_train_end", "on_checkpoint_save", "on_checkpoint_load", "on_exception",
):
    setattr(Recorder, _name, _make_handler(_name))


class CrashAt(Callback):
    """Captures the trainer's state at the end of step ``step``, then raises (a crash)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.state = None

    def on_step_end(self, trainer, step, **_):
        if step == self.step:
            import copy

            self.state = copy.deepcopy(dict(trainer.state_dict()))
            raise RuntimeError(f"simulated crash after step {step}")


def net_params(trainer: Trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.model.net.state_dict().items()}


def history_values(trainer: Trainer, skip=("time",)) -> list:
    return [(s.name, s.step, s.epoch, dict(s.values)) for s in trainer.history if s.name not in skip]
