"""``ptdry export``: the selected runs as CSV (one row per run: id, status, config values,
best and last of each metric — for a spreadsheet or pandas) or as JSON (the documents)."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import Any, Mapping, Sequence

from ptdry.cli.common import UsageError, now_utc
from ptdry.cli.runs import query_runs
from ptdry.db.runs_table import column_name, config_leaves, display_state
from ptdry.cli.show import document_json

__all__ = ["cmd_export", "runs_csv"]


def runs_csv(docs: Sequence[Mapping[str, Any]]) -> str:
    """CSV text: ``id, name, version, project, status, created, tags``, every config value
    (by its column name) and ``<metric>`` (best) and ``<metric>.last`` of every metric."""
    from ptdry.db.repo import flat_summary

    now = now_utc()
    leaves = [config_leaves(d.get("config")) for d in docs]
    config_paths = list(dict.fromkeys(p for leaf in leaves for p in leaf))
    summaries = [flat_summary(d.get("summary") or {}) for d in docs]
    metrics = list(dict.fromkeys(m for s in summaries for m in s))
    header = ["id", "name", "version", "project", "status", "created", "tags"]
    header += [column_name(f"config.{p}") for p in config_paths]
    for m in metrics:
        header += [column_name(f"summary.{m}.best"), column_name(f"summary.{m}.last")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for doc, leaf, summary in zip(docs, leaves, summaries):
        created = doc.get("created_at")
        row = [doc["_id"], doc.get("name"), doc.get("version"), doc.get("project"), display_state(doc, now)]
        row += [created.isoformat() if hasattr(created, "isoformat") else created, ";".join(doc.get("tags") or [])]
        row += [leaf.get(p) for p in config_paths]
        for m in metrics:
            entry = summary.get(m) or {}
            row += [entry.get("best"), entry.get("last")]
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def cmd_export(args: argparse.Namespace) -> int:
    _, records = query_runs(args)
    docs = [dict(rec) for rec in records]
    text = runs_csv(docs) if args.format == "csv" else document_json(docs) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    print(f"wrote {len(docs)} runs to {args.output}", file=sys.stderr)
    return 0
