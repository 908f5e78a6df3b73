"""The runs table shared by ``ptdry runs`` and ``ptdry ui``: which columns, and run states.

Only config values that differ between the listed runs make columns (the interesting
ones); a few summary metrics follow, validation and test metrics first; a ``running`` run
whose heartbeat stopped shows as ``dead``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["STALE_AFTER", "WHERE_ALIASES", "metric_columns", "run_state", "varying_config"]

#: A ``running`` run whose heartbeat is older than this shows as ``dead``.
STALE_AFTER = dt.timedelta(seconds=60)

WHERE_ALIASES = {
    "status": "status.state",
    "id": "_id",
    "_id": "_id",
    "name": "name",
    "version": "version",
    "project": "project",
    "tags": "tags",
    "created": "created_at",
    "created_at": "created_at",
    "cls": "cls",
    "summary": "summary",
    "config": "config",
}


def run_state(doc: Any, now: dt.datetime) -> str:
    """The run's status state, or ``dead`` for a running run whose heartbeat is stale."""
    status = doc.get("status") or {}
    state = status.get("state", "?")
    beat = status.get("heartbeat")
    if state == "running" and isinstance(beat, dt.datetime) and now - beat > STALE_AFTER:
        return "dead"
    return state


def _leaves(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            if k != "__class__":
                _leaves(f"{prefix}.{k}" if prefix else k, v, out)
    elif not isinstance(value, (dict, list)):
        out[prefix] = value


def varying_config(records: list[Any], field: str, most: int) -> list[str]:
    """Config paths whose values differ across the listed runs (the interesting columns)."""
    values: dict[str, set[str]] = {}
    for rec in records:
        leaves: dict[str, Any] = {}
        _leaves("", rec.get(field, {}), leaves)
        for k, v in leaves.items():
            values.setdefault(k, set()).add(repr(v))
    varying = [k for k, v in values.items() if len(v) > 1]
    if varying:
        return varying[:most]
    numeric = [k for k in values if any(c.replace(".", "", 1).replace("e-", "", 1).isdigit() for c in values[k])]
    return (numeric or list(values))[:most]


def metric_columns(records: list[Any], most: int) -> list[str]:
    from ptdry.db.repo import flat_summary

    names: dict[str, None] = {}
    for rec in records:
        names.update(dict.fromkeys(flat_summary(rec.get("summary") or {})))
    preferred = sorted(names, key=lambda n: (not n.startswith(("val", "test")), n))
    return preferred[:most]
