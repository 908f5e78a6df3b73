"""``ptdry comparisons [ID]``: the comparisons stored by ``ptdry.compare``, listed or one shown
as a table (models of any framework side by side)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "cmd_comparisons"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("comparisons", help="comparisons stored by ptdry.compare (list, or one as a table)")
    p.add_argument("id", nargs="?", default=None, help="a comparison id (a unique prefix is enough); default: list them")
    p.add_argument("--limit", type=int, default=20, help="list at most N comparisons (default 20; 0 = all)")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def cmd_comparisons(args: argparse.Namespace) -> int:
    from ptdry.db.comparisons import find_comparisons, load_comparison
    from ptdry.db.interface import DBInterface

    db = DBInterface(args.db)
    if args.id is None:
        docs = find_comparisons(db, args.limit)
        rows = [
            [d["_id"][:8], _fmt(d.get("name")), str(d["created_at"])[:19], str(len(d["rows"])), ", ".join(d["metrics"])]
            for d in docs
        ]
        if not rows:
            print("no comparisons stored yet; make one with ptdry.compare([...], data)")
            return 0
        _table(["id", "name", "created", "models", "metrics"], rows)
        return 0
    doc = load_comparison(args.id, db)
    print(f"comparison {doc['_id']}  {doc.get('name') or ''}".rstrip())
    data = doc["data"]
    print(f"data {data['sha256'][:12]} {data.get('summary')}" + (f", split {data['split']}" if data.get("split") else ""))
    metrics = list(doc["metrics"])
    rows = [[r["model"], _fmt(r.get("framework")), (r.get("run") or "-")[:8], *(_fmt(r.get(m)) for m in metrics)] for r in doc["rows"]]
    _table(["model", "framework", "run", *metrics], rows)
    return 0
