"""A tiny session for the sweep tests, importable by `ptdry worker --import _sweep_job`.

64 training samples of 8 features (class: the sign of the first), an 8-unit MLP, 3 epochs
of 4 steps, a checkpoint every 2 steps. A worker process started with PTDRY_TEST_KILL_AT=N
SIGKILLs itself at step N of its first trial (mid-trial, after a checkpoint), as a machine
dying would.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import torch

from ptdry import Callback, Checkpoint, Criterion, DataProvider, Looper, Model, ObjectDef, Optimizer, Session, Trainer
from ptdry.train.nets import MLP


def splits():
    x = np.random.default_rng(0).normal(size=(96, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return {"train": (x[:64], y[:64]), "val": (x[64:], y[64:])}


class KillAt(Callback):
    """SIGKILLs this process at step ``PTDRY_TEST_KILL_AT`` if that variable is set."""

    def on_step_end(self, step: int, **_):
        if os.environ.get("PTDRY_TEST_KILL_AT") == str(step):
            os.kill(os.getpid(), signal.SIGKILL)


def make_session(db, *, epochs: int = 3, name: str = "tiny") -> Session:
    return Session(
        name=name,
        trainer=Trainer(
            model=Model(
                net=ObjectDef(MLP, 8, 8, 2),
                optimizer=Optimizer(torch.optim.SGD, lr=0.1),
                criterion=Criterion(torch.nn.CrossEntropyLoss),
            ),
            looper=Looper(epochs=epochs, batch_size=16),
            callbacks=[Checkpoint(every_n_steps=2, every_n_epochs=None, save_last=1, save_top_k=0), KillAt()],
            progress_bar=False,
        ),
        data=DataProvider(**splits()),
        db=db,
        heartbeat_interval=0.2,
    )
