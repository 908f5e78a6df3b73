"""Benchmark: does a database outage slow training down?

    python bench/outage.py [--seconds 50] [--outage 30] [--rounds 2]

The README's digits Session (MLP 64-128-10, batch 64) with a Checkpoint every epoch
(save_top_k=0: only the latest is kept, so retention runs at every epoch) on a fresh embedded server in a temporary
$PTDRY_HOME, trained for about ``--seconds`` seconds, three ways:

  (up)      the server runs the whole time — the baseline;
  (stop)    the server is stopped ``--outage`` seconds, from 20 % of the run on, then
            started again (the run's writes wait in its journal, then catch up);
  (sigstop) the server is frozen with SIGSTOP for as long, then SIGCONT: a hung server,
            whose sockets accept and never answer.

Prints, for each, the whole run's wall time (``session.run()``: storing the run, training,
the test pass, the final state) and the longest epoch, with ratios against (up) measured
in the same round (median over rounds); and checks that every run is ``completed`` with its
whole history in the database — at its end, or after ``ptdry sync`` when the writer had not
caught up with the backlog within ``Session.finish_timeout``. Target: (stop)/(up) and
(sigstop)/(up) <= 1.05.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import sys
import tempfile
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


class EpochClock:
    """Runtime callback: the time between consecutive epoch starts."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_epoch_start(self, **_) -> None:
        self.starts.append(time.perf_counter())

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]

    def longest(self) -> float:
        return max(self.gaps(), default=float("nan"))


def make_session(epochs: int):
    from digits import make_session as digits_session  # examples/digits.py

    from ptdry import Checkpoint, DBInterface

    session = digits_session(epochs=epochs, db=DBInterface(timeout=2.0))
    session.trainer.remove_callback("EarlyStopping")  # a fixed number of epochs
    session.trainer.remove_callback("Checkpoint")
    session.trainer.add_callback(Checkpoint(every_n_epochs=1, save_top_k=0))
    return session


def run_once(epochs: int, mode: str, server, start: float, outage: float) -> tuple[float, float, float, bool]:
    from ptdry import DBInterface

    session = make_session(epochs)
    clock = EpochClock()
    session.trainer.add_callback(clock, name="bench.EpochClock")
    pid = int(server.status()["pid"])
    timers = []
    if mode == "stop":
        timers = [threading.Timer(start, server.stop), threading.Timer(start + outage, server.start)]
    elif mode == "sigstop":
        timers = [
            threading.Timer(start, os.kill, (pid, signal.SIGSTOP)),
            threading.Timer(start + outage, os.kill, (pid, signal.SIGCONT)),
        ]
    t0 = time.perf_counter()
    for t in timers:
        t.start()
    try:
        result = session.run()
    finally:
        for t in timers:
            t.join()
    elapsed = time.perf_counter() - t0
    db = DBInterface()

    def complete() -> bool:
        doc = db.collection("modules").find_one({"_id": result.run_id}, {"status": 1})
        stored = db.collection("history").count_documents({"run": result.run_id})
        return doc["status"]["state"] == "completed" and stored == len(session.trainer.history)

    synced_at_end = complete()
    if not synced_at_end:  # what the run's end could not write within finish_timeout
        from ptdry.db.run_ops import sync_journals

        time.sleep(1.0)  # the writer's thread lets go of the journal
        sync_journals(db)
        if not complete():
            raise SystemExit(f"{mode}: run {result.run_id} is incomplete even after `ptdry sync`")
    return elapsed, clock.longest(), statistics.median(clock.gaps()), synced_at_end


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=50.0, help="about how long each run trains")
    ap.add_argument("--outage", type=float, default=30.0, help="seconds the server is away")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    os.environ["PTDRY_HOME"] = tempfile.mkdtemp(prefix="ptdry-outage-")
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    from ptdry.db.server import EmbeddedServer

    server = EmbeddedServer()
    server.start()
    try:
        per_epoch = run_once(20, "up", server, 0, 0)[2]  # warm-up, and the time of an epoch
        epochs = max(5, int(args.seconds / per_epoch))
        start = 0.2 * args.seconds
        results: dict[str, list[tuple[float, float, float, bool]]] = {"up": [], "stop": [], "sigstop": []}
        for r in range(args.rounds):
            order = ["up", "stop", "sigstop"] if r % 2 == 0 else ["sigstop", "stop", "up"]
            for mode in order:
                results[mode].append(run_once(epochs, mode, server, start, args.outage))
                print(f"round {r + 1}/{args.rounds} {mode:8} {results[mode][-1][0]:7.1f} s", flush=True)
    finally:
        server.start()
        os.kill(int(server.status()["pid"]), signal.SIGCONT)
        server.stop()

    def ratio(mode: str, i: int) -> float:
        return statistics.median(x[i] / y[i] for x, y in zip(results[mode], results["up"]))

    print(
        f"\ndigits MLP, {epochs} epochs (~{args.seconds:.0f} s), Checkpoint every epoch (save_top_k=0), "
        f"server away {args.outage:.0f} s from t={start:.0f} s; median of {args.rounds} rounds"
    )
    print(f"{'':10} {'whole run':>10} {'ratio':>7}   {'longest epoch':>14} {'ratio':>7}   {'all in the DB at the end':>24}")
    for mode in ("up", "stop", "sigstop"):
        whole = statistics.median(x[0] for x in results[mode])
        longest = statistics.median(x[1] for x in results[mode])
        synced = sum(x[3] for x in results[mode])
        print(
            f"{mode:10} {whole:9.1f}s {ratio(mode, 0):7.3f}   {longest * 1e3:12.0f}ms {ratio(mode, 1):7.3f}   "
            f"{synced:>14} of {len(results[mode])} runs"
        )
    print(
        "\ntarget: whole-run ratio <= 1.05 for stop and sigstop. Every run is completed with its whole"
        "\nhistory: at its end, or (when the writer had not caught up within Session.finish_timeout)"
        "\nafter `ptdry sync`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
