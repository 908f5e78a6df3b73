"""A small digits session for the end-to-end tests; run as a script it can kill itself.

    python tests/_session_job.py URI DATABASE STEP [SIGNAL | stopdb]
prints the run id, then trains; at STEP (0: never) it sends itself SIGNAL (default SIGKILL),
or with ``stopdb`` stops the embedded database of its ``$PTDRY_HOME`` and trains on. URI
``-`` is the embedded default database.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from ptdry import Checkpoint, Criterion, DataProvider, DBInterface, Looper, Model, ObjectDef, Optimizer, Session, Trainer
from ptdry.train.nets import MLP


def splits(n: int = 600):
    x, y = load_digits(return_X_y=True)
    x, y = (x[:n] / 16.0).astype(np.float32), y[:n].astype(np.int64)
    a, b = int(0.7 * n), int(0.85 * n)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


def make_session(db, *, epochs=3, callbacks=(), checkpoint=None, name="e2e", seed=0) -> Session:
    checkpoint = checkpoint or Checkpoint(every_n_steps=4, every_n_epochs=None, save_last=2, save_top_k=0)
    return Session(
        name=name,
        trainer=Trainer(
            model=Model(
                net=ObjectDef(MLP, 64, 32, 10, dropout=0.2),
                optimizer=Optimizer(torch.optim.Adam, lr=3e-3),
                criterion=Criterion(torch.nn.CrossEntropyLoss),
            ),
            looper=Looper(epochs=epochs, batch_size=32),
            callbacks=[checkpoint, *callbacks],
            progress_bar=False,
        ),
        data=DataProvider(**splits()),
        db=db,
        seed=seed,
        heartbeat_interval=0.2,
    )


class SignalAt:
    """A plain callback that sends this process ``signum`` at step ``step``."""

    def __init__(self, step: int, signum: int = signal.SIGKILL) -> None:
        self.step, self.signum = step, signum

    def on_step_end(self, step: int, **_):
        if step == self.step:
            os.kill(os.getpid(), self.signum)


class StopDBAt:
    """A plain callback that stops the embedded database at step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, **_):
        if step == self.step:
            from ptdry.db.server import EmbeddedServer

            EmbeddedServer().stop()


if __name__ == "__main__":
    uri, database, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    action = sys.argv[4] if len(sys.argv) > 4 else "SIGKILL"
    torch.set_num_threads(1)
    session = make_session(DBInterface(None if uri == "-" else uri, database=database, timeout=1.0))
    if kill_at and action == "stopdb":
        session.trainer.add_callback(StopDBAt(kill_at))
        session.finish_timeout = 0.5
    elif kill_at:
        session.trainer.add_callback(SignalAt(kill_at, getattr(signal, action)))
    print(session.dry_id, flush=True)
    session.run()
