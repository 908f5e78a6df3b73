"""``ptdry sync`` (history kept in local journals while the database was down) and
``ptdry db start|stop|status`` (the embedded default server)."""

from __future__ import annotations

import argparse

from ptdry.cli.common import UsageError, open_repo

__all__ = ["cmd_db", "cmd_sync"]


def cmd_sync(args: argparse.Namespace) -> int:
    from ptdry.db.history_writer import sync_journals

    repo = open_repo(args)
    written = sync_journals(repo.db.collection("history"), args.journal_dir)
    if not written:
        print("nothing to sync")
    for run, n in written.items():
        print(f"{run}: {n} new history records written")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from ptdry.db.server import EmbeddedServer

    if args.db:
        raise UsageError("`ptdry db` manages the embedded server; it takes no --db URI")
    server = EmbeddedServer()
    if args.action == "start":
        uri = server.start()
        print(f"embedded database running at {uri} (data in {server.dir / 'data'})")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    else:
        info = server.status()
        if not info["running"]:
            print(f"not running (home {server.home}); `ptdry db start` starts it")
            return 0
        print(f"running: pid {info['pid']} at {info['uri']} (data in {info['storage']}, log {info['log']})")
    return 0
