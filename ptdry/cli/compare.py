"""``ptdry compare A B ...``: runs side by side — the config values that differ and the
summary metrics, the best run of each metric marked."""

from __future__ import annotations

import argparse
import json
from typing import Any, Mapping, Sequence

from ptdry.cli.common import UsageError, find_runs, now_utc, open_repo, print_table
from ptdry.db.runs_table import config_leaves, display_state, format_value

__all__ = ["cmd_compare", "compare_table"]

_ABSENT = object()


def _cell(value: Any) -> str:
    if value is _ABSENT:
        return "-"
    return format_value(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else json.dumps(value, default=str)


def compare_table(
    docs: Sequence[Mapping[str, Any]], *, all_config: bool = False, which: str = "best"
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """``(header, config rows, metric rows)`` comparing ``docs``: config leaves whose values
    differ (all with ``all_config``), and each metric's ``which`` value (``"best"`` or
    ``"last"``), the best run's marked with ``*``."""
    from ptdry.db.repo import flat_summary

    header = ["", *(str(d["_id"])[:8] for d in docs)]
    leaves = [config_leaves(d.get("config")) for d in docs]
    paths = list(dict.fromkeys(p for leaf in leaves for p in leaf))
    config_rows = []
    for path in paths:
        values = [leaf.get(path, _ABSENT) for leaf in leaves]
        if all_config or len({json.dumps(v, default=str) if v is not _ABSENT else "\0" for v in values}) > 1:
            config_rows.append([f"  {path}", *(_cell(v) for v in values)])
    summaries = [flat_summary(d.get("summary") or {}) for d in docs]
    metrics = sorted({m for s in summaries for m in s}, key=lambda n: (not n.startswith(("val", "test")), n))
    metric_rows = []
    for metric in metrics:
        entries = [s.get(metric) or {} for s in summaries]
        values = [e.get(which) for e in entries]
        mode = next((e.get("mode") for e in entries if e.get("mode")), "min")
        finite = [v for v in values if isinstance(v, (int, float)) and v == v]
        best = (max if mode == "max" else min)(finite) if len(finite) > 1 else None
        cells = [format_value(v) + ("*" if best is not None and v == best else "") for v in values]
        metric_rows.append([f"  {metric}", *cells])
    return header, config_rows, metric_rows


def cmd_compare(args: argparse.Namespace) -> int:
    if len(args.ids) < 2:
        raise UsageError("compare needs at least two run ids")
    repo = open_repo(args)
    docs = [dict(rec) for rec in find_runs(repo, args.ids)]
    header, config_rows, metric_rows = compare_table(docs, all_config=args.all_config, which="last" if args.last else "best")
    now = now_utc()
    print_table(
        header,
        [
            ["run", *(f"{d.get('name')} v{d.get('version')}" for d in docs)],
            ["status", *(display_state(d, now) for d in docs)],
            ["created", *(format_value(d.get("created_at")) for d in docs)],
        ],
    )
    print("\nconfig" + ("" if args.all_config else " (values that differ)"))
    if config_rows:
        print_table(["  name", *header[1:]], config_rows)
    else:
        print("  identical")
    if metric_rows:
        print(f"\nmetrics ({'last' if args.last else 'best'} values; * marks the best run)")
        print_table(["  metric", *header[1:]], metric_rows)
    return 0
