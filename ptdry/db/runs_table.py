"""The table of runs: its columns, the field names ``--where`` and ``--sort`` understand, and
which runs are ``dead``.

Every column header is a name the query language resolves back to the column's field, so a
user can copy a header into ``--where`` or ``--sort``: ``val.accuracy`` is the best
validation accuracy (``summary.val.accuracy.best``), ``status = dead`` selects the runs the
table shows as dead. Pure functions — no printing, no argparse — so every front end that
lists runs (the CLI, a web UI) shares them.

Example:
    >>> field_path("val.accuracy"), field_path("val.accuracy.last"), field_path("lr")
    ('summary.val.accuracy.best', 'summary.val.accuracy.last', 'config.lr')
    >>> column_name("summary.val.accuracy.best"), column_name("config.name")
    ('val.accuracy', 'config.name')
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping, Sequence

from ptdry.errors import SelectorError

__all__ = [
    "METRIC_PHASES",
    "STALE_AFTER",
    "WHERE_ALIASES",
    "column_name",
    "config_leaves",
    "display_state",
    "field_path",
    "format_value",
    "metric_columns",
    "run_duration",
    "runs_filter",
    "runs_table",
    "sort_spec",
    "varying_config",
]

#: A ``running`` run whose heartbeat is older than this shows as ``dead``.
STALE_AFTER = dt.timedelta(seconds=60)

#: Short names of document fields.
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
    "links": "links",
    "sweep": "links.sweep.name",  # `--where "sweep = NAME"`: the runs of a sweep's trials
    "sweep.name": "links.sweep.name",
    "sweep.id": "links.sweep.id",
    "sweep.trial": "links.sweep.trial",
}

#: Metric families ptdry records (``val.loss``, ``optim.lr``, ``time.epoch``, ...): a name
#: starting with one of these is a metric of the summary.
METRIC_PHASES = ("train", "val", "test", "step", "optim", "time")

#: Fields of a summary entry; a metric name without one means its ``best``.
SUMMARY_FIELDS = ("best", "last", "best_step", "mode")

#: Top-level fields of a run document, used as written.
DOCUMENT_FIELDS = frozenset(
    ["_id", "name", "version", "project", "tags", "status", "summary", "config", "created_at", "updated_at", "cls",
     "category", "host", "git", "library_versions", "command", "sources", "torch_threads", "rerun_of", "artifacts", "links",
     "parent", "root", "path", "mro", "schema"]
)  # fmt: skip

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")
_SHORT = {v: k for k, v in reversed(WHERE_ALIASES.items())}  # "status.state" -> "status"


def field_path(name: str) -> str:
    """The stored path a column name or ``--where``/``--sort`` field means.

    Aliases first (``status``, ``id``, ``created``), then metrics (``val.accuracy`` →
    ``summary.val.accuracy.best``; ``val.accuracy.last`` → its last value), then document
    fields, and anything else is a config path (``lr`` → ``config.lr``).
    """
    if name in WHERE_ALIASES:
        return WHERE_ALIASES[name]
    first, _, rest = name.partition(".")
    if first in METRIC_PHASES and rest:
        return f"summary.{name}" if name.rsplit(".", 1)[-1] in SUMMARY_FIELDS and "." in rest else f"summary.{name}.best"
    if first in DOCUMENT_FIELDS:
        return name
    if first in WHERE_ALIASES and rest:
        return f"{WHERE_ALIASES[first]}.{rest}"
    return f"config.{name}"


def column_name(path: str) -> str:
    """The shortest name :func:`field_path` maps back to ``path``."""
    candidates = [_SHORT.get(path, path)]
    if path.startswith("summary."):
        metric = path[len("summary.") :]
        candidates.append(metric)
        if metric.endswith(".best"):
            candidates.append(metric[: -len(".best")])
    elif path.startswith("config."):
        candidates.append(path[len("config.") :])
    fits = [c for c in candidates if field_path(c) == path]
    return min(fits, key=len) if fits else path


def display_state(doc: Mapping[str, Any], now: dt.datetime) -> str:
    """The state a run shows: its ``status.state``, or ``dead`` for a ``running`` run whose
    heartbeat is older than :data:`STALE_AFTER` (``now`` is naive UTC, like stored dates)."""
    status = doc.get("status") or {}
    state = status.get("state", "?")
    beat = status.get("heartbeat")
    if state == "running" and isinstance(beat, dt.datetime) and now - beat > STALE_AFTER:
        return "dead"
    return state


def _shows_as(state: Any, cutoff: dt.datetime) -> dict[str, Any]:
    if state == "dead":
        return {"status.state": "running", "status.heartbeat": {"$lt": cutoff}}
    if state == "running":
        return {"status.state": "running", "status.heartbeat": {"$not": {"$lt": cutoff}}}
    return {"status.state": state}


def _status_condition(condition: Any, cutoff: dt.datetime) -> dict[str, Any]:
    if not isinstance(condition, Mapping):
        return _shows_as(condition, cutoff)
    if len(condition) == 1:
        ((op, value),) = condition.items()
        if op in ("$eq",):
            return _shows_as(value, cutoff)
        if op == "$ne":
            return {"$nor": [_shows_as(value, cutoff)]}
        if op in ("$in", "$nin") and isinstance(value, list):
            parts = [_shows_as(v, cutoff) for v in value]
            return {"$or" if op == "$in" else "$nor": parts} if parts else {"status.state": condition}
    return {"status.state": condition}


def _translate_status(node: Any, cutoff: dt.datetime) -> Any:
    """Conditions on ``status.state`` rewritten to mean the states the table shows."""
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for key, value in node.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            out[key] = [_translate_status(v, cutoff) for v in value]
        elif key == "status.state":
            extra.append(_status_condition(value, cutoff))
        else:
            out[key] = value
    parts = ([out] if out else []) + extra
    return parts[0] if len(parts) == 1 else {"$and": parts}


def runs_filter(
    where: str | None,
    now: dt.datetime,
    *,
    roots_only: bool = True,
    project: str | None = None,
    name: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """The Mongo filter of a ``--where`` text (JSON filters are used as written), limited to
    root runs unless ``roots_only=False``, and to an exact project, a name prefix and a tag.

    Raises:
        SelectorError: the text cannot be parsed or is refused.
    """
    from ptdry.db.where import parse_where

    filt: dict[str, Any] = {}
    if where and where.strip():
        filt = parse_where(where, resolve=field_path)
        if not where.lstrip().startswith("{"):
            filt = _translate_status(filt, now - STALE_AFTER)
    parts = [filt] if filt else []
    if roots_only:
        parts.insert(0, {"parent": None})
    if project:
        parts.append({"project": project})
    if name:
        parts.append({"name": {"$regex": "^" + re.escape(name)}})
    if tag:
        parts.append({"tags": tag})
    return parts[0] if len(parts) == 1 else {"$and": parts} if parts else {}


def run_duration(doc: Mapping[str, Any], now: dt.datetime) -> float | None:
    """Seconds the run has run: start to end, to now while it runs, to its last heartbeat
    when it is dead; None before it started."""
    status = doc.get("status") or {}
    started = status.get("started_at")
    if not isinstance(started, dt.datetime):
        return None
    end = status.get("ended_at")
    if not isinstance(end, dt.datetime):
        beat = status.get("heartbeat")
        end = beat if display_state(doc, now) == "dead" and isinstance(beat, dt.datetime) else now
    return max(0.0, (end - started).total_seconds())


def sort_spec(text: str, option: str = "--sort") -> list[tuple[str, int]]:
    """``[(path, direction)]`` of a ``--sort`` text (a column name; a leading ``-``: descending);
    ``option`` names the option in the error (``"sort"`` for a web API's parameter).

    Raises:
        SelectorError: not a field name (operators such as ``$where`` included).
    """
    name = text[1:] if text[:1] in "+-" else text
    if not _FIELD.match(name):
        raise SelectorError(
            f"{option} takes a field name such as created, val.accuracy or trainer.model.optimizer.lr "
            f"(a leading '-' sorts descending); received {text!r}"
        )
    return [(field_path(name), -1 if text.startswith("-") else 1)]


def format_value(value: Any) -> str:
    """A table cell: numbers with 4 significant digits, long text shortened, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _leaves(prefix: str, value: Any, out: dict[str, Any], classes: bool) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            if (k != "__class__" or classes) and k != "dry_id":  # identities are not hyperparameters
                _leaves(f"{prefix}.{k}" if prefix else k, v, out, classes)
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        for i, v in enumerate(value):  # e.g. parameter groups, callbacks: one leaf per value inside
            _leaves(f"{prefix}.{i}", v, out, classes)
    elif not isinstance(value, Mapping):
        out[prefix] = value


def config_leaves(config: Any, *, classes: bool = False) -> dict[str, Any]:
    """``{"trainer.model.optimizer.lr": 0.001, ...}``: the values of a config tree by path
    (lists of plain values stay whole; ``classes``: with the ``__class__`` of nested objects;
    the ``dry_id`` of nested objects left out)."""
    out: dict[str, Any] = {}
    _leaves("", config or {}, out, classes)
    return out


def varying_config(records: Sequence[Mapping[str, Any]], most: int) -> list[str]:
    """Config paths whose values differ across the runs (the interesting columns)."""
    values: dict[str, set[str]] = {}
    for rec in records:
        for k, v in config_leaves(rec.get("config")).items():
            values.setdefault(k, set()).add(repr(v))
    varying = [k for k, v in values.items() if len(v) > 1]
    if varying:
        return varying[:most]
    numeric = [k for k in values if any(c.replace(".", "", 1).replace("e-", "", 1).isdigit() for c in values[k])]
    return (numeric or list(values))[:most]


def metric_columns(records: Sequence[Mapping[str, Any]], most: int) -> list[str]:
    """A few summary metrics of the runs, validation and test ones first."""
    from ptdry.db.repo import flat_summary

    names: dict[str, None] = {}
    for rec in records:
        names.update(dict.fromkeys(flat_summary(rec.get("summary") or {})))
    return sorted(names, key=lambda n: (not n.startswith(("val", "test")), n))[:most]


def runs_table(
    records: Sequence[Mapping[str, Any]], now: dt.datetime, *, config_columns: int = 4, metric_count: int = 3
) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the runs table: id, name, version, status, created, the config
    values that differ between the runs, and the best value of a few metrics."""
    from ptdry.db.repo import get_path

    config_paths = [f"config.{c}" for c in varying_config(records, config_columns)]
    metric_paths = [f"summary.{m}.best" for m in metric_columns(records, metric_count)]
    fixed = ["_id", "name", "version", "status.state", "created_at"]
    header = [column_name(p) for p in fixed + config_paths + metric_paths]
    rows = []
    for rec in records:
        row = [str(rec["_id"])[:8], str(rec.get("name", "")), str(rec.get("version", "")), display_state(rec, now)]
        row.append(format_value(rec.get("created_at")) if isinstance(rec.get("created_at"), dt.datetime) else "")
        row += [format_value(get_path(rec, p)) for p in config_paths + metric_paths]
        rows.append(row)
    return header, rows

