"""``ptdry runs``: the table of past runs, filtered with ``--where`` and sorted with ``--sort``."""

from __future__ import annotations

import argparse
from typing import Any

from ptdry.cli.common import UsageError, now_utc, open_repo, print_table
from ptdry.db.runs_table import column_name, runs_filter, runs_table, sort_spec
from ptdry.errors import SelectorError

__all__ = ["cmd_runs", "query_runs"]


def query_runs(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """``(repo, records)`` that ``--where``/``--sort``/``--limit``/``--all`` select.

    Raises:
        UsageError: a bad ``--where``, ``--sort`` or ``--limit`` (one line, exit code 2), or
            a sort field no selected run has.
    """
    if args.limit < 0:
        raise UsageError(f"--limit must be >= 0; received {args.limit}")
    now = now_utc()
    try:
        filt = runs_filter(args.where, now, roots_only=not args.all)
        sort = sort_spec(args.sort)
    except SelectorError as exc:
        raise UsageError(str(exc)) from None
    repo = open_repo(args)
    records = repo.find(filt, sort=sort, limit=args.limit)
    field = sort[0][0]
    if records and all(rec.get_path(field) is None for rec in records):
        if not repo.find({"$and": [filt, {field: {"$exists": True}}]}, limit=1, projection={"_id": 1}):
            name = args.sort.lstrip("+-")
            raise UsageError(
                f"--sort {name!r}: no selected run has the field {field!r}; sort by a column of `ptdry runs` "
                f"(created, version, {column_name('summary.val.loss.best')}, ...) or a config path"
            )
    return repo, records


def cmd_runs(args: argparse.Namespace) -> int:
    _, records = query_runs(args)
    if not records:
        print("no runs match")
        return 0
    header, rows = runs_table(records, now_utc())
    print_table(header, rows)
    return 0
