"""Benchmark: the memory a long run's history holds.

    python bench/history_memory.py [--steps 1000000]

Logs ``--steps`` per-step records (``step.loss``, ``step.lr``), plus one ``train`` and one
``val`` record every 1,000 steps, into a History the way a Trainer does, three ways:

  (a) a bare Trainer's default: the records kept in memory (a MemoryStore) — the baseline;
  (b) inside a Session: records streamed to the run's background writer, which writes them
      to a fresh embedded server in a temporary $PTDRY_HOME (far slower than the loop: the
      backlog waits in the run's journal on disk);
  (c) as (b) with the database unreachable the whole time (everything to the journal).

Prints the memory held after the last record (tracemalloc: Python allocations still alive,
the writer's queue and buffers included) and the peak while logging, with ratios against
(a). Target: (b) and (c) hold <= 20 MB for 1M steps.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import tempfile
import time
import tracemalloc

MB = 2**20


def log_steps(history, steps: int) -> None:
    from ptdry.core.statistic import Statistic

    for step in range(1, steps + 1):
        history.append(Statistic("step", {"loss": 1.0 / step, "lr": 1e-3}, step=step, epoch=1 + step // 1000))
        if step % 1000 == 0:
            history.append(Statistic("train", {"loss": 1.0 / step}, step=step, epoch=step // 1000))
            history.append(Statistic("val", {"loss": 1.0 / step, "accuracy": 0.5}, step=step, epoch=step // 1000))


def measure(label: str, steps: int, make) -> tuple[float, float, float]:
    """``(MB held after logging, MB peak, seconds)``; ``make()`` returns (history, close)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    history, close = make()
    t0 = time.perf_counter()
    log_steps(history, steps)
    elapsed = time.perf_counter() - t0
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    close()
    print(f"{label:44} held {(held - base) / MB:8.1f} MB   peak {(peak - base) / MB:8.1f} MB   {elapsed:6.1f} s", flush=True)
    return (held - base) / MB, (peak - base) / MB, elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    args = ap.parse_args()

    os.environ["PTDRY_HOME"] = tempfile.mkdtemp(prefix="ptdry-history-memory-")
    logging.basicConfig(level=logging.ERROR)
    from ptdry.core.history import History
    from ptdry.db.history_store import RunHistoryStore
    from ptdry.db.interface import DBInterface
    from ptdry.db.run_writer import RunWriter
    from ptdry.db.server import EmbeddedServer

    server = EmbeddedServer()
    server.start()

    def in_memory():
        return History(), lambda: None

    def streamed(db: DBInterface, run: str):
        def make():
            writer = RunWriter(db, run, timeout=0.5, sync_others=False)
            store = RunHistoryStore(db, run)
            store.attach(writer.write, 0)
            history = History(store=store)
            return history, lambda: writer.close(timeout=1.0)

        return make

    try:
        results = {
            "a": measure("(a) bare Trainer: records in memory", args.steps, in_memory),
            "b": measure("(b) Session: streamed to the database", args.steps, streamed(DBInterface(), "bench-up")),
            "c": measure(
                "(c) Session, database unreachable",
                args.steps,
                streamed(DBInterface("mongodb://127.0.0.1:9/", timeout=0.5), "bench-down"),
            ),
        }
    finally:
        server.stop()
    print(f"\n{args.steps:,} steps ({args.steps + 2 * (args.steps // 1000):,} records)")
    print(f"{'':44} {'held':>8} {'ratio':>7}")
    for key, label in (("a", "(a) in memory"), ("b", "(b) streamed"), ("c", "(c) streamed, database down")):
        held = results[key][0]
        print(f"{label:44} {held:6.1f}MB {held / results['a'][0]:7.3f}")
    print("\ntarget: (b) and (c) hold <= 20 MB for 1M steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
