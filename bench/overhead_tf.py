"""Benchmark: ptdry's Trainer driving a Keras model vs Keras's own ``model.fit``.

    python bench/overhead_tf.py [--epochs 20] [--rounds 5]

The same Keras MLP (64-128-10, ``ptdry.tf.nets.keras_mlp``), digits data, batch size 64,
Adam, sparse cross-entropy from logits, accuracy, and epochs, trained by

  (a) Keras: ``model.compile(optimizer, loss, metrics=["accuracy"])`` and
      ``model.fit(x, y, batch_size=64, epochs=..., validation_data=val, shuffle=True,
      verbose=0)``, then ``model.evaluate`` on the test split;
  (b) ptdry: Session → Trainer → KerasModel(metrics=["accuracy"]) with the Trainer's default
      callbacks, per-step history streamed to the embedded database (a fresh SecantusDB
      server in a temporary $PTDRY_HOME), the run document, heartbeat and final state;
  (c) ptdry's Trainer alone (``trainer.fit(data)``, no database).

Each computes train loss and accuracy per step and validation loss and accuracy per epoch.
Rounds alternate the order so machine noise hits all of them. Prints, for each, the median
wall time per epoch in steady state (between consecutive epoch starts) and the whole run
divided by the number of epochs, with ratios to (a) (medians of per-round ratios).
Target: b/a <= 1.05 per epoch. One TensorFlow thread (inter- and intra-op) for all, unless
--threads says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


class EpochClock:
    """Times between consecutive epoch starts (train + validation of one epoch)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def tick(self) -> None:
        self.starts.append(time.perf_counter())

    def median(self) -> float:
        gaps = [b - a for a, b in zip(self.starts, self.starts[1:])]
        return statistics.median(gaps) if gaps else float("nan")

    def on_epoch_start(self, **_) -> None:  # as a ptdry callback
        self.tick()


def keras_fit(splits: dict, epochs: int, seed: int, clock: EpochClock | None = None) -> float:
    import keras

    from ptdry.tf.nets import keras_mlp

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if clock:
                clock.tick()

    keras.utils.set_random_seed(seed)
    model = keras_mlp(64, 128, 10)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    (x, y), val, (xt, yt) = splits["train"], splits["val"], splits["test"]
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=epochs, validation_data=val, shuffle=True, verbose=0, callbacks=[Clock()])
    _, accuracy = model.evaluate(xt, yt, batch_size=64, verbose=0)
    elapsed = time.perf_counter() - t0
    assert accuracy > 0.5
    return elapsed


def _session(epochs: int, seed: int):
    from digits_tf import make_session  # examples/digits_tf.py: the Keras run

    session = make_session(epochs=epochs, seed=seed)
    trainer = session.trainer
    trainer.deterministic = False  # as (a): TensorFlow's default kernels
    trainer.remove_callback("EarlyStopping")  # the default callbacks only: (a) has neither
    trainer.remove_callback("Checkpoint")
    return session


def ptdry_session(splits: dict, epochs: int, seed: int, clock: EpochClock | None = None) -> float:
    session = _session(epochs, seed)
    if clock:
        session.trainer.add_callback(clock, name="bench.EpochClock")
    t0 = time.perf_counter()
    result = session.run()
    elapsed = time.perf_counter() - t0
    assert result["test.accuracy"] > 0.5
    return elapsed


def ptdry_trainer(splits: dict, epochs: int, seed: int, clock: EpochClock | None = None) -> float:
    session = _session(epochs, seed)
    trainer, data = session.trainer, session.data
    if clock:
        trainer.add_callback(clock, name="bench.EpochClock")
    t0 = time.perf_counter()
    trainer.fit(data, seed=seed)
    accuracy = trainer.evaluate(data)["accuracy"]
    elapsed = time.perf_counter() - t0
    assert accuracy > 0.5
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow inter- and intra-op threads (0: its default)")
    args = ap.parse_args()

    os.environ["PTDRY_HOME"] = tempfile.mkdtemp(prefix="ptdry-overhead-tf-")
    logging.getLogger("ptdry").setLevel(logging.WARNING)
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(args.threads)  # before TensorFlow starts its runtime
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from digits import digits_splits

    from ptdry.db.server import EmbeddedServer

    splits = digits_splits(args.seed)
    server = EmbeddedServer()
    server.start()  # started once, as a user's daemon would be
    runs = [("a", keras_fit), ("b", ptdry_session), ("c", ptdry_trainer)]
    whole: dict[str, list[float]] = {k: [] for k, _ in runs}
    steady: dict[str, list[float]] = {k: [] for k, _ in runs}
    try:
        for _, fn in runs:
            fn(splits, 1, args.seed)  # warm-up (imports, tracing, first connection)
        for r in range(args.rounds):
            order = runs if r % 2 == 0 else runs[::-1]
            for key, fn in order:
                clock = EpochClock()
                whole[key].append(fn(splits, args.epochs, args.seed, clock) / args.epochs)
                steady[key].append(clock.median())
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k}={steady[k][-1] * 1e3:.1f} ms/epoch" for k in steady))
    finally:
        server.stop()
    ms = {k: statistics.median(v) for k, v in steady.items()}
    mw = {k: statistics.median(v) for k, v in whole.items()}
    n = len(splits["train"][0])
    print(
        f"\nKeras MLP 64-128-10 on digits ({n} train samples, {-(-n // 64)} steps/epoch, batch 64), "
        f"{args.epochs} epochs, median of {args.rounds} rounds, "
        f"TensorFlow threads: {args.threads or 'default'}"
    )

    def paired(key: str, series: dict[str, list[float]]) -> float:
        return statistics.median(x / y for x, y in zip(series[key], series["a"]))

    print(f"{'':32} {'per epoch':>10} {'ratio':>7}   {'whole run / epochs':>18} {'ratio':>7}")
    labels = {"a": "(a) Keras model.fit", "b": "(b) ptdry Session + DB", "c": "(c) ptdry Trainer alone"}
    for key, label in labels.items():
        print(f"{label:32} {ms[key] * 1e3:8.2f}ms {paired(key, steady):7.3f}   {mw[key] * 1e3:16.2f}ms {paired(key, whole):7.3f}")
    print(
        "\nper epoch: time between consecutive epoch starts (one epoch of training + validation);"
        "\nwhole run: everything from start to end (for (b): storing the run and its data, connecting,"
        "\nthe final state and the test pass), divided by the number of epochs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
