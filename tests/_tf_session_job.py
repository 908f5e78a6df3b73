"""A small Keras digits session for the TensorFlow end-to-end tests, run as a subprocess.

    python tests/_tf_session_job.py run URI DATABASE STEP     prints the run id, trains; at
                                                              STEP (0: never) SIGKILLs itself
    python tests/_tf_session_job.py resume URI DATABASE RUN   resumes RUN, then trains the same
                                                              session from scratch; prints its id

TensorFlow runs on one thread for inter- and intra-op work, set before its runtime starts
(the thread count is part of bitwise exactness, as for torch).
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
from sklearn.datasets import load_digits

from ptdry import Checkpoint, DataProvider, DBInterface, KerasModel, Looper, ObjectDef, Session, Trainer
from ptdry.tf.nets import keras_mlp


def splits(n: int = 600):
    x, y = load_digits(return_X_y=True)
    x, y = (x[:n] / 16.0).astype(np.float32), y[:n].astype(np.int64)
    a, b = int(0.7 * n), int(0.85 * n)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


def make_session(db, *, epochs=3, callbacks=(), checkpoint=None, name="e2e-keras", seed=0) -> Session:
    import keras

    checkpoint = checkpoint or Checkpoint(every_n_steps=4, every_n_epochs=None, save_last=2, save_top_k=0)
    return Session(
        name=name,
        trainer=Trainer(
            model=KerasModel(
                net=ObjectDef(keras_mlp, 64, 32, 10, dropout=0.2),
                optimizer=ObjectDef(keras.optimizers.Adam, learning_rate=3e-3),
                loss=ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True),
                metrics=["accuracy"],
            ),
            looper=Looper(epochs=epochs, batch_size=32),
            callbacks=[checkpoint, *callbacks],
            progress_bar=False,
            deterministic=True,
        ),
        data=DataProvider(**splits()),
        db=db,
        seed=seed,
        heartbeat_interval=0.2,
    )


class KillAt:
    """A plain callback that SIGKILLs this process at step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, **_):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def one_thread() -> None:
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)


if __name__ == "__main__":
    mode, uri, database, arg = sys.argv[1:5]
    one_thread()
    db = DBInterface(uri, database=database)
    if mode == "run":
        session = make_session(db)
        if int(arg):
            session.trainer.add_callback(KillAt(int(arg)))
        print(session.dry_id, flush=True)
        session.run()
    else:
        Session.resume(arg, db=db)
        straight = make_session(db, name="straight-keras")
        straight.run()
        print(straight.dry_id, flush=True)
