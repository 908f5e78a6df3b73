"""``ptdry rm`` and ``ptdry tag``: delete runs, and add or remove their tags."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ptdry.cli.common import UsageError, find_runs, open_repo
from ptdry.cli.runs import query_runs

__all__ = ["cmd_rm", "cmd_tag"]


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("not deleting without confirmation: pass --yes (stdin is not a terminal to ask on)")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_rm(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.where):
        raise UsageError("give run ids or --where EXPR (not both) to say which runs to delete")
    if args.where:
        args.sort, args.limit, args.all = "-created", 0, False
        repo, records = query_runs(args)
    else:
        repo = open_repo(args)
        records = find_runs(repo, args.ids)
    if not records:
        print("no runs match")
        return 0
    for rec in records:
        print(f"{rec.id[:8]}  {rec.get('name')} v{rec.get('version')}  {(rec.get('status') or {}).get('state')}")
    if not args.yes and not _confirm(f"delete these {len(records)} run(s), their history, checkpoints and files?"):
        print("nothing deleted")
        return 1
    removed = repo.delete({"_id": {"$in": [rec.id for rec in records]}})
    print(f"deleted {len(records)} run(s) ({removed} documents with their nested modules)")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    (rec,) = find_runs(repo, [args.id])
    tags = list(dict.fromkeys(args.tags))
    update: dict[str, Any] = {"$pullAll": {"tags": tags}} if args.remove else {"$addToSet": {"tags": {"$each": tags}}}
    repo.modules.update_one({"_id": rec.id}, update)
    now = repo.modules.find_one({"_id": rec.id}, {"tags": 1}) or {}
    print(f"{rec.id[:8]} tags: {', '.join(now.get('tags') or []) or '(none)'}")
    return 0
