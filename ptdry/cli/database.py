"""``ptdry sync`` (runs whose database writes wait in local journals: history,
checkpoints, their end) and ``ptdry db start|stop|status`` (the embedded default server)."""

from __future__ import annotations

import argparse

from ptdry.cli.common import UsageError, open_repo

__all__ = ["cmd_db", "cmd_sync"]


def cmd_sync(args: argparse.Namespace) -> int:
    from ptdry.db.journal import db_key
    from ptdry.db.run_ops import left_journals, sync_journals

    repo = open_repo(args)
    done = sync_journals(repo, args.journal_dir)
    for run, info in done.items():
        if info.get("dropped"):
            print(f"{run}: no longer in the database; its journal was dropped")
            continue
        end = "; its end recorded" if info["finished"] else ""
        print(f"{run}: {info['records']} history records, {info['checkpoints']} checkpoints{end}")
    key = db_key(repo.db)
    left = left_journals(args.journal_dir)
    for item in left:
        if item["live"]:
            print(f"{item['run']}: running in another process; its journal is applied as it goes")
        elif item["db"] != key:
            print(f"{item['run']}: belongs to {item['db']}; run `ptdry --db <that URI> sync`")
    if not done and not left:
        print("nothing to sync")
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
