"""The runs table shared by ``ptdry runs`` and ``ptdry ui``: which columns, and run states.

Only config values that differ between the listed runs make columns (the interesting
ones); a few summary metrics follow, validation and test metrics first; a ``running`` run
whose heartbeat stopped shows as ``dead``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = [
    "STALE_AFTER",
    "WHERE_ALIASES",
    "config_leaves",
    "field_path",
    "metric_columns",
    "run_duration",
    "run_state",
    "runs_filter",
    "varying_config",
]

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


def config_leaves(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"trainer.optimizer.lr": 0.001, "net.sizes": [64, 32], ...}``: the values of a
    config tree by dotted path, lists as values (the class names of nested objects, under
    ``__class__``, are left out)."""
    out: dict[str, Any] = {}
    if isinstance(config, dict) and config:
        for k, v in config.items():
            if k != "__class__":
                out.update(config_leaves(v, f"{prefix}.{k}" if prefix else k))
    elif prefix:
        out[prefix] = config
    return out


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


def run_duration(doc: Any, now: dt.datetime) -> float | None:
    """Seconds the run has run: start to end, to now while it runs, to its last heartbeat
    when it is dead; None before it started."""
    status = doc.get("status") or {}
    started = status.get("started_at")
    if not isinstance(started, dt.datetime):
        return None
    end = status.get("ended_at")
    if not isinstance(end, dt.datetime):
        beat = status.get("heartbeat")
        end = beat if run_state(doc, now) == "dead" and isinstance(beat, dt.datetime) else now
    return max(0.0, (end - started).total_seconds())


def field_path(name: str) -> str:
    """The stored path a runs-table field name means: an alias (``status``, ``created``),
    a document path (``summary.val.loss.best``) or else a config value (``lr``)."""
    first = name.split(".")[0]
    if name in WHERE_ALIASES:
        return WHERE_ALIASES[name]
    return name if "." in name and first in WHERE_ALIASES else f"config.{name}"


def runs_filter(
    where: str | None = None,
    *,
    roots: bool = True,
    project: str | None = None,
    name: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """The Mongo filter of a runs table: the ``--where`` text (see :mod:`ptdry.db.where`),
    root runs only unless ``roots`` is False, and exact project, name prefix and tag."""
    import re

    from ptdry.db.where import parse_where

    parts = [parse_where(where, aliases=WHERE_ALIASES, prefix_unknown="config.")] if where else []
    if roots:
        parts.append({"parent": None})
    if project:
        parts.append({"project": project})
    if name:
        parts.append({"name": {"$regex": "^" + re.escape(name)}})
    if tag:
        parts.append({"tags": tag})
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else {"$and": parts} if parts else {}
