"""The main job: train an MLP on scikit-learn's bundled digits and record the run.

    python examples/digits.py [--epochs 20] [--db URI]

Runs on the embedded default database (started on first use, kept running as a daemon:
`ptdry db stop` ends it). Prints the test accuracy, the run id, and how to see the run.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from ptdry import (
    Checkpoint,
    Criterion,
    DataProvider,
    DBInterface,
    EarlyStopping,
    Looper,
    Model,
    NumpyDataset,
    ObjectDef,
    Optimizer,
    Session,
    Trainer,
)
from ptdry.db.interface import mask_uri
from ptdry.train.nets import MLP


def digits_data(seed: int = 0) -> DataProvider:
    """The 1,797 8x8 digit images, scaled to [0, 1], split 70 / 15 / 15 % by ptdry (the rows
    are allocated in an order drawn from ``seed``)."""
    x, y = load_digits(return_X_y=True)
    rows = NumpyDataset(((x / 16.0).astype(np.float32), y.astype(np.int64)))
    return DataProvider(rows, partition=(70, 15, 15), seed=seed)


def digits_splits(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The same splits as arrays (for code outside ptdry, e.g. bench/overhead.py's plain loop)."""
    data = digits_data(seed)
    x, y = data.dataset.data
    return {split: (x[data.split(split).indices], y[data.split(split).indices]) for split in ("train", "val", "test")}


def make_session(epochs: int = 20, db: DBInterface | str | None = None, seed: int = 0) -> Session:
    """The experiment tree of the README."""
    return Session(
        name="digits-mlp",
        trainer=Trainer(
            model=Model(
                net=ObjectDef(MLP, 64, 128, 10),
                optimizer=Optimizer(torch.optim.Adam, lr=1e-3),
                criterion=Criterion(torch.nn.CrossEntropyLoss),
            ),
            looper=Looper(epochs=epochs, batch_size=64),
            callbacks=[EarlyStopping(monitor="val.loss", patience=3), Checkpoint(every_n_epochs=1)],
        ),
        data=digits_data(seed),
        db=db if isinstance(db, DBInterface) else DBInterface(db),
        seed=seed,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--db", default=None, help="database URI (default: the embedded server)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(min(2, torch.get_num_threads()))

    session = make_session(args.epochs, args.db, args.seed)
    result = session.run()
    print(f"test accuracy: {result['test.accuracy']:.4f}")
    print(f"run {result.run_id} stored in {session.db!r} ({result.status})")
    db_flag = f" --db '{mask_uri(args.db)}'" if args.db else ""  # never print a password
    print(f"see it with: ptdry{db_flag} runs   (details: ptdry{db_flag} show {result.run_id[:8]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
