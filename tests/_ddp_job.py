"""A digits job for the distributed tests, run under torchrun (2 processes, gloo):

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/_ddp_job.py URI DATABASE OUT MODE

MODE ``run``: first a Trainer alone, one epoch of a net without dropout (rank 0 saves its
weights and validation metrics to OUT/epoch1.pt), then a Session with dropout and periodic
checkpoints (rank 0 prints the run id and saves the final weights to OUT/final.pt);
``kill:K``: that Session, whose rank 1 SIGKILLs itself at step K; ``resume:RUN_ID``: the
killed run resumed (rank 0 saves the final weights to OUT/final.pt).
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

#: 421 training rows: the last global batch of 64 has 37, split 19/18 between two ranks.
TRAIN, VAL, TEST = 421, 91, 88


def splits():
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int64)
    a, b, c = TRAIN, TRAIN + VAL, TRAIN + VAL + TEST
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:c], y[b:c])}


def plain_trainer(batch_size: int) -> Trainer:
    """The net of the equivalence test (no dropout: each process would draw its own masks)."""
    model = Model(ObjectDef(MLP, 64, 32, 10), Optimizer(torch.optim.Adam, lr=1e-2), Criterion(torch.nn.CrossEntropyLoss))
    return Trainer(model, Looper(epochs=1, batch_size=batch_size), verbose=0)


def make_session(db) -> Session:
    return Session(
        name="ddp",
        trainer=Trainer(
            Model(ObjectDef(MLP, 64, 32, 10, dropout=0.2), Optimizer(torch.optim.Adam, lr=3e-3), Criterion(torch.nn.CrossEntropyLoss)),
            Looper(epochs=3, batch_size=32),
            callbacks=[Checkpoint(every_n_steps=3, every_n_epochs=None, save_last=2)],
            verbose=0,
        ),
        data=DataProvider(**splits()),
        db=db,
        seed=5,
        heartbeat_interval=0.5,
    )


class KillAt:
    """Rank 1 sends itself SIGKILL at the end of step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step: int, **_):
        if step == self.step and trainer.global_rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)


def weights(trainer: Trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.model.net.state_dict().items()}


if __name__ == "__main__":
    uri, database, out, mode = sys.argv[1:5]
    db = DBInterface(uri, database=database)
    rank0 = os.environ.get("RANK") == "0"
    if mode == "run":
        trainer = plain_trainer(32)
        metrics = trainer.fit(DataProvider(**splits()), seed=0)
        if rank0:
            torch.save({"weights": weights(trainer), "metrics": metrics, "steps": trainer.step}, os.path.join(out, "epoch1.pt"))
    if mode.startswith("resume:"):
        result = Session.resume(mode.partition(":")[2], db=db)
    else:
        session = make_session(db)
        if mode.startswith("kill:"):  # (runtime wiring: not in the run's definition)
            session.trainer.add_callback(KillAt(int(mode.partition(":")[2])))
        if rank0:
            print(session.run_id, flush=True)
        result = session.run()
    if rank0:
        loaded = Session.load(result.run_id, which=None, db=db)
        torch.save(weights(loaded.trainer), os.path.join(out, "final.pt"))
