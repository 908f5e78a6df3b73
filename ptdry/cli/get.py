"""``ptdry get ID NAME``: fetch a file kept with a run (``session.log_artifact``) — or any of
its artifacts by full name (``state``, ``checkpoint/<name>``, ``source/<file>``)."""

from __future__ import annotations

import argparse
import os
import sys

from ptdry.cli.common import UsageError, find_runs, open_repo
from ptdry.core.atomic import atomic_write
from ptdry.errors import NotFoundError

__all__ = ["cmd_get"]


def cmd_get(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    (rec,) = find_runs(repo, [args.id])
    artifacts = {a["name"]: a for a in rec.get("artifacts") or []}
    record = artifacts.get("file/" + args.name) or artifacts.get(args.name)
    if record is None:
        files = [n[len("file/") :] for n in artifacts if n.startswith("file/")]
        raise NotFoundError(f"run {rec.id[:8]} has no file {args.name!r}; its files: {', '.join(files) or 'none'}")
    data = repo._store(record["store"]).get(record)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    target = args.output or os.path.basename(record["name"])
    if os.path.isdir(target):
        target = os.path.join(target, os.path.basename(record["name"]))
    if os.path.exists(target) and not args.force:
        raise UsageError(f"{target!r} exists; pass --force to overwrite it or -o to write elsewhere")
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise UsageError(f"cannot write {target!r}: {exc.strerror or exc}") from None
    print(f"wrote {target} ({len(data)} bytes)")
    return 0
