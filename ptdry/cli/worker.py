"""``ptdry worker SWEEP``: run a stored sweep's trials on this machine until none is left.

Start it on as many machines as you like, all pointing at the database the sweep lives in;
each claims pending trials atomically, and a trial whose worker dies (its heartbeat goes
stale) is re-queued and resumed from its run's last checkpoint by another worker.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

__all__ = ["add_worker_parser", "cmd_worker"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; received {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0; received {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; received {text!r}")
    return int(text)


def add_worker_parser(sub: Any) -> None:
    w = sub.add_parser("worker", help="run a sweep's trials, claimed from the database, until none is left")
    w.add_argument("sweep", help="the sweep's name (its latest version) or id")
    # also after the command (`ptdry worker NAME --db URI`); SUPPRESS keeps `ptdry --db URI worker NAME`
    w.add_argument(
        "--db", default=argparse.SUPPRESS, metavar="URI",
        help="database URI (default: the embedded server, or $PTDRY_DB_URI)",
    )  # fmt: skip
    w.add_argument("--database", default="ptdry", metavar="NAME", help="database name on the server (default: ptdry)")
    w.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import MODULE first: the module defining your model classes, or calling ptdry.allow (repeatable)",
    )  # fmt: skip
    w.add_argument(
        "--trusted", action="store_true", help="load any class the stored sweep names (trusted databases only)"
    )
    w.add_argument(
        "--heartbeat", type=_positive, default=5.0, metavar="SECONDS",
        help="seconds between heartbeats of a running trial (default 5)",
    )  # fmt: skip
    w.add_argument(
        "--stale-after", type=_positive, default=60.0, metavar="SECONDS",
        help="re-queue running trials whose heartbeat is older than this many seconds (default 60)",
    )  # fmt: skip
    w.add_argument("--max-trials", type=_count, default=None, metavar="N", help="stop after N trials")
    w.add_argument("--no-wait", action="store_true", help="stop when no trial is pending, even while others run")
    w.add_argument("--threads", type=_count, default=None, metavar="N", help="torch CPU threads (default: torch's)")


def cmd_worker(args: argparse.Namespace) -> int:
    from ptdry.errors import ConfigError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for module in args.imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"--import {module}: {exc}") from None
    if args.stale_after <= args.heartbeat:
        raise ConfigError(f"--stale-after ({args.stale_after:g}) must be longer than --heartbeat ({args.heartbeat:g})")
    import torch

    from ptdry.db.interface import DBInterface
    from ptdry.sweep.sweep import Sweep
    from ptdry.sweep.worker import Worker

    if args.threads:
        torch.set_num_threads(args.threads)
    db = DBInterface(args.db, database=args.database)
    sweep = Sweep.load(args.sweep, db=db, trusted=args.trusted)
    worker = Worker(
        sweep,
        heartbeat_interval=args.heartbeat,
        stale_after=args.stale_after,
        wait=not args.no_wait,
        trusted=args.trusted,
    )
    where = f"sweep {sweep.name} ({sweep.dry_id[:8]}) in {db!r}"
    print(f"worker {worker.name}: {where}: {_counts(sweep.counts())}", flush=True)
    ran = worker.run(args.max_trials)
    print(f"worker {worker.name}: ran {ran} trials; sweep {sweep.name}: {_counts(sweep.counts())}", flush=True)
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no trials"
