"""The main job in Keras: the digits MLP as a KerasModel, trained by ptdry's Trainer and
recorded as a run exactly like the torch one (examples/digits.py).

    python examples/digits_tf.py [--epochs 30] [--db URI]

Runs on the embedded default database unless --db is given. Prints the test accuracy, the
run id, and how to see the run.
"""

from __future__ import annotations

import argparse
import logging
import sys

from digits import digits_splits

from ptdry import Checkpoint, DataProvider, DBInterface, EarlyStopping, KerasModel, Looper, ObjectDef, Session, Trainer
from ptdry.db.interface import mask_uri
from ptdry.tf.nets import keras_mlp


def make_session(epochs: int = 30, db: DBInterface | str | None = None, seed: int = 0) -> Session:
    """The Keras twin of examples/digits.py's experiment tree."""
    import keras

    return Session(
        name="digits-mlp-keras",
        trainer=Trainer(
            model=KerasModel(
                net=ObjectDef(keras_mlp, 64, 128, 10),
                optimizer=ObjectDef(keras.optimizers.Adam, learning_rate=1e-3),
                loss=ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True),
                metrics=["accuracy"],  # train.accuracy, as Keras's fit reports it
            ),
            looper=Looper(epochs=epochs, batch_size=64),
            callbacks=[EarlyStopping(monitor="val.loss", patience=3), Checkpoint(every_n_epochs=1)],
            deterministic=True,
        ),
        data=DataProvider(**digits_splits(seed)),
        db=db if isinstance(db, DBInterface) else DBInterface(db),
        seed=seed,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--db", default=None, help="database URI (default: the embedded server)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    session = make_session(args.epochs, args.db, args.seed)
    result = session.run()
    print(f"test accuracy: {result['test.accuracy']:.4f}")
    print(f"run {result.run_id} stored in {session.db!r} ({result.status})")
    db_flag = f" --db '{mask_uri(args.db)}'" if args.db else ""  # never print a password
    print(f"see it with: ptdry{db_flag} runs   (details: ptdry{db_flag} show {result.run_id[:8]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
