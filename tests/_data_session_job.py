"""Sessions whose data is a DataLoader with a RandomSampler, a partitioned dataset read by
worker processes, or an HDF5 file; run as a script, the session kills itself mid-epoch.

    python tests/_data_session_job.py URI DATABASE MODE KILL_AT [H5PATH]
prints the run id, then trains; at step KILL_AT (0: never) it sends itself SIGKILL.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

import numpy as np
import torch

from ptdry import (
    Checkpoint,
    Criterion,
    DataLoader,
    DataProvider,
    DataReader,
    DBInterface,
    Looper,
    Model,
    NumpyDataset,
    ObjectDef,
    Optimizer,
    RandomSampler,
    Session,
    Trainer,
)
from ptdry.train.nets import MLP

MODES = ("random_sampler", "workers", "hdf5")


@functools.lru_cache(maxsize=1)
def digits(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:n] / 16.0).astype(np.float32), y[:n].astype(np.int64)


def write_hdf5(path: str) -> None:
    import h5py

    x, y = digits()
    with h5py.File(path, "w") as f:
        f["x"], f["y"] = x, y


def data_for(mode: str, h5path: str | None = None, num_workers: int = 2) -> DataProvider:
    x, y = digits()
    if mode == "random_sampler":  # 200 training rows: 13 batches of 16 per epoch
        train = DataLoader(NumpyDataset((x[:200], y[:200])), batch_size=16, sampler=RandomSampler(seed=11))
        return DataProvider(train=train, val=(x[200:], y[200:]))
    if mode == "workers":  # 210 training rows: 14 batches
        return DataProvider(NumpyDataset((x, y)), partition=(70, 30, 0), batch_size=16, num_workers=num_workers)
    return DataProvider(DataReader(keys=["x", "y"]).read(h5path), partition=(70, 30, 0), batch_size=16)


def make_session(db, mode: str, h5path: str | None = None, name: str = "data-e2e", num_workers: int = 2) -> Session:
    return Session(
        name=name,
        trainer=Trainer(
            model=Model(
                net=ObjectDef(MLP, 64, 32, 10, dropout=0.2),
                optimizer=Optimizer(torch.optim.Adam, lr=3e-3),
                criterion=Criterion(torch.nn.CrossEntropyLoss),
            ),
            looper=Looper(epochs=2),
            callbacks=[Checkpoint(every_n_steps=4, every_n_epochs=None, save_last=2, save_top_k=0)],
            progress_bar=False,
        ),
        data=data_for(mode, h5path, num_workers),
        db=db,
        seed=3,
        heartbeat_interval=0.2,
    )


class KillAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, **_):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    uri, database, mode, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(1)
    session = make_session(DBInterface(uri, database=database), mode, sys.argv[5] if len(sys.argv) > 5 else None)
    if kill_at:
        session.trainer.add_callback(KillAt(kill_at))
    print(session.dry_id, flush=True)
    session.run()
