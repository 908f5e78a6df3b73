"""Benchmark: sweep throughput (trials per minute) against running the same trials by hand.

    python bench/sweep.py [--epochs 5] [--rounds 1]

The digits MLP of examples/digits.py over a grid of 8 points (4 learning rates x 2 seeds),
each trial a full Session run (checkpoint every epoch, history streamed, test evaluation)
recorded in the embedded database (a fresh SecantusDB server in a temporary $PTDRY_HOME):

  (a) sequential: the same 8 trial sessions run one after another in this process
      (``sweep.trial_session(point).run()``), without any sweep machinery;
  (b) ``sweep.run(workers=1)``: the worker loop in this process (claims, heartbeats, links);
  (c) one spawned local worker process (start-up, torch import and sweep loading included);
  (d) ``sweep.run(workers=2)``: two spawned local worker processes.

Prints trials/min for each and its ratio to (a), side by side (medians over rounds). Torch
uses all cores in (a) and (b) and splits them between the processes in (c) and (d), as
``sweep.run`` does.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

SPACE = {"trainer.model.optimizer.lr": [1e-3, 3e-3, 1e-2, 3e-2], "seed": range(2)}


def make_sweep(epochs: int, name: str):
    from digits import make_session  # examples/digits.py: the README's tree

    from ptdry import Sweep

    session = make_session(epochs=epochs)
    session.trainer.remove_callback("EarlyStopping")  # every trial trains the same number of epochs
    return Sweep(session, SPACE, monitor="val.accuracy", name=name)


def sequential(epochs: int, name: str) -> float:
    sweep = make_sweep(epochs, name)
    points = sweep.points()
    t0 = time.perf_counter()
    for point in points:
        assert sweep.trial_session(point).run().status == "completed"
    return len(points) / (time.perf_counter() - t0) * 60


def with_workers(epochs: int, name: str, workers: int, spawned: bool) -> float:
    from ptdry.sweep.local import run_local

    sweep = make_sweep(epochs, name)
    t0 = time.perf_counter()
    if spawned and workers == 1:
        sweep.save()
        run_local(sweep, 1, heartbeat_interval=5.0, stale_after=60.0)
        trials = sweep.trials()
    else:
        trials = sweep.run(workers=workers)
    elapsed = time.perf_counter() - t0
    assert [t.state for t in trials] == ["completed"] * len(trials), [t.state for t in trials]
    return len(trials) / elapsed * 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["PTDRY_HOME"] = tempfile.mkdtemp(prefix="ptdry-bench-sweep-")
    torch.set_num_threads(os.cpu_count() or 1)
    from ptdry.db.server import EmbeddedServer

    server = EmbeddedServer()
    server.start()  # started once, as a user's daemon would be
    cases = {
        "a": ("sequential, one process", lambda r: sequential(args.epochs, f"seq-{r}")),
        "b": ("sweep.run(workers=1), in process", lambda r: with_workers(args.epochs, f"w1-{r}", 1, False)),
        "c": ("1 spawned worker process", lambda r: with_workers(args.epochs, f"p1-{r}", 1, True)),
        "d": ("sweep.run(workers=2), 2 processes", lambda r: with_workers(args.epochs, f"w2-{r}", 2, True)),
    }
    rates: dict[str, list[float]] = {k: [] for k in cases}
    try:
        sequential(1, "warm-up")  # imports, first connection, allocator
        for r in range(args.rounds):
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for key in order:
                rates[key].append(cases[key][1](r))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k}={rates[k][-1]:.1f}" for k in cases), flush=True)
    finally:
        server.stop()
    base = statistics.median(rates["a"])
    print(f"\n8 trials of {args.epochs} epochs each, {os.cpu_count()} CPU cores, medians of {args.rounds} round(s):")
    print(f"{'':36s} {'trials/min':>10s} {'vs (a)':>8s}")
    for key, (label, _) in cases.items():
        rate = statistics.median(rates[key])
        print(f"({key}) {label:32s} {rate:10.1f} {rate / base:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
