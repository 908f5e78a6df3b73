"""Runs for the dashboard's tests: real small digits Sessions (one fails) and a long history."""

from __future__ import annotations

import datetime as dt
import math
import pathlib
import sys

import torch

from ptdry import Callback, Checkpoint, Criterion, DataProvider, Looper, Model, ObjectDef, Optimizer, Session, Statistic, Trainer
from ptdry.db.history_store import history_document, insert_history
from ptdry.db.repo import Repo
from ptdry.train.nets import MLP

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _session_job import splits  # noqa: E402


class FailAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step, **_):
        if step == self.step:
            raise RuntimeError(f"loss exploded at step {step}")


def make_session(db, *, name: str, lr: float = 3e-3, epochs: int = 2, tags=(), callbacks=()) -> Session:
    return Session(
        name=name,
        trainer=Trainer(
            model=Model(
                net=ObjectDef(MLP, 64, 32, 10, dropout=0.2),
                optimizer=Optimizer(torch.optim.Adam, lr=lr),
                criterion=Criterion(torch.nn.CrossEntropyLoss),
            ),
            looper=Looper(epochs=epochs, batch_size=32),
            callbacks=[Checkpoint(every_n_steps=10, every_n_epochs=None, save_top_k=0), *callbacks],
            progress_bar=False,
        ),
        data=DataProvider(**splits()),
        db=db,
        tags=list(tags),
        heartbeat_interval=0.5,
    )


def make_runs(db) -> dict[str, str]:
    """Three real runs named "digits" (lr 3e-3 and 1e-2 complete, tagged; the third fails at
    step 5) and a "stale" run still marked running whose heartbeat stopped. ``{label: id}``."""
    ids = {}
    for label, lr, tags, extra in [("slow", 3e-3, ["baseline"], []), ("fast", 1e-2, ["best"], []), ("failed", 3e-2, [], [FailAt(5)])]:
        session = make_session(db, name="digits", lr=lr, tags=tags, callbacks=extra)
        try:
            session.run()
        except RuntimeError:
            pass
        ids[label] = session.dry_id
    stale = make_session(db, name="stale", epochs=1)
    repo = Repo(db)
    stale.status.start()
    repo.add_object(stale, name="stale", history=False)
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    repo.modules.update_one({"_id": stale.dry_id}, {"$set": {"status.heartbeat": old, "status.started_at": old}})
    ids["stale"] = stale.dry_id
    return ids


def add_long_history(db, run: str, steps: int) -> None:
    """``steps`` records of train.loss (a decaying wave) for ``run``, with rollups."""
    docs = [
        history_document(run, s, Statistic("train", {"loss": 1 / (1 + s / 100) + 0.05 * math.sin(s / 9)}, step=s, epoch=s // 500))
        for s in range(steps)
    ]
    insert_history(db.collection("history"), docs)
