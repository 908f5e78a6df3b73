"""Local worker processes for ``sweep.run(workers=N)``.

Each process is *spawned* (not forked: torch and the database client hold threads), loads
the sweep from the database by id and runs the same :class:`~ptdry.sweep.worker.Worker`
loop as ``ptdry worker``, with its share of the CPU threads. The parent watches them: the
trials of a process that dies are re-queued at once (no need to wait for their heartbeat
to go stale) and picked up by the others.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
from typing import Any

from ptdry.errors import ConfigError, SweepError

__all__ = ["run_local"]

log = logging.getLogger(__name__)


def run_local(sweep: Any, workers: int, *, heartbeat_interval: float, stale_after: float) -> None:
    """Run ``sweep``'s trials in ``workers`` spawned processes; returns when none is left.

    Raises:
        ConfigError: the sweep's database lives in this process only (``mongomock://``).
        SweepError: every process exited while trials were still unfinished.
    """
    from ptdry.sweep.worker import worker_name

    if sweep.db.kind == "mongomock":
        raise ConfigError(
            "worker processes need a database they all reach; mongomock:// lives in this process only: "
            "use workers=1, the embedded default (db=None) or a mongodb:// server"
        )
    spec = {
        "uri": sweep.db.uri,
        "database": sweep.db.database,
        "timeout": sweep.db.timeout,
        "sweep_cls": type(sweep),  # pickled by reference: the child imports it
        "sweep_id": sweep.dry_id,
        "allowed": sweep.callables(),
        "heartbeat_interval": heartbeat_interval,
        "stale_after": stale_after,
        "threads": max(1, (os.cpu_count() or 1) // workers),
        "log_level": logging.getLogger().getEffectiveLevel(),
    }
    ctx = multiprocessing.get_context("spawn")
    base = worker_name()
    procs = {}
    for i in range(workers):
        name = f"{base}/{i}"
        procs[name] = ctx.Process(target=_child, args=(spec, name), name=f"ptdry-sweep-worker-{i}")
        procs[name].start()
    log.info("sweep %s: %d local workers started", sweep.name, workers)
    failed: list[tuple[str, int | None]] = []
    try:
        while procs:
            multiprocessing.connection.wait([p.sentinel for p in procs.values()], timeout=1.0)
            for name, proc in list(procs.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del procs[name]
                if proc.exitcode != 0:
                    failed.append((name, proc.exitcode))
                    numbers = sweep.store.requeue_worker(name)
                    log.warning(
                        "sweep worker %s exited with code %s; trials %s re-queued", name, proc.exitcode, numbers
                    )
    except BaseException:
        for proc in procs.values():  # SIGTERM: each run ends interrupted with a checkpoint
            proc.terminate()
        for name, proc in procs.items():
            proc.join(timeout=30)
            sweep.store.requeue_worker(name)
        raise
    left = sweep.store.unfinished()
    if left:
        codes = ", ".join(str(code) for _, code in failed) or "none"
        raise SweepError(
            f"every local worker of sweep {sweep.name!r} exited (failed exit codes: {codes}) with {left} trials "
            "unfinished; their errors are above. Fix the cause and run the sweep again: finished trials are kept"
        )


def _child(spec: dict[str, Any], name: str) -> None:
    """A worker process: load the sweep by id and run the worker loop."""
    logging.basicConfig(level=spec["log_level"], format="%(levelname)s %(processName)s %(name)s: %(message)s")
    import torch

    from ptdry.db.interface import DBInterface
    from ptdry.sweep.worker import Worker

    torch.set_num_threads(spec["threads"])
    db = DBInterface(spec["uri"], database=spec["database"], timeout=spec["timeout"])
    try:
        sweep = spec["sweep_cls"].load(spec["sweep_id"], db=db, allowed=spec["allowed"])
        Worker(sweep, name=name, heartbeat_interval=spec["heartbeat_interval"], stale_after=spec["stale_after"]).run()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        db.close()
