"""The JSON API of the runs: the table (filtered, sorted, one page at a time), one run, and
the comparison of a few runs. Read-only; the edits are in :mod:`ptdry.ui.api_edit`.

=====================================  ================================================
``GET /api/runs``                      one page of the runs table; query parameters
                                       ``where`` (the ``ptdry runs --where`` language or
                                       a JSON filter), ``sort`` (``-created``,
                                       ``summary.val.loss.best``, ``lr``…), ``project``,
                                       ``name`` (prefix), ``tag``, ``limit`` (≤ 1000),
                                       ``offset``, ``all=1`` (nested modules too)
``GET /api/runs/count``                how many runs match (same filter parameters)
``GET /api/runs/{id}``                 one run: status, timings, provenance, config,
                                       summary, artifacts, metric names
``GET /api/compare?id=A&id=B``         config values side by side (which differ) and
                                       summaries of 2 to 12 runs
=====================================  ================================================

A bad query answers 400 with ``{"error": message, "column": n}`` (the column of the
``where`` text the parser stopped at, when it has one).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from ptdry.db.history_query import run_metrics
from ptdry.db.query_plan import plan_filter
from ptdry.db.repo import Repo, flat_summary
from ptdry.core.status import utc_now
from ptdry.db.runs_table import (
    config_leaves,
    display_state,
    metric_columns,
    run_duration,
    runs_filter,
    sort_spec,
    varying_config,
)
from ptdry.errors import ConfigError, NotFoundError, SelectorError
from ptdry.ui.jsonable import JSON, error_response

__all__ = ["RunsApi", "bad_request"]

CONFIG_COLUMNS = 8
METRIC_COLUMNS = 6
MAX_LIMIT = 1000
MAX_COMPARE = 12

#: What a row of the table needs (the definition, args and provenance stay in the server).
ROW_FIELDS = [
    "_id", "name", "version", "project", "tags", "cls", "parent", "created_at", "config", "summary",
    "status.state", "status.started_at", "status.ended_at", "status.heartbeat",
]  # fmt: skip
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")
_COLUMN = re.compile(r"at column (\d+)")


def bad_request(exc: Exception, field: str) -> JSON:
    """400 with the error's first line and, for a parse error, the column it stopped at."""
    message = str(exc).splitlines()[0]
    m = _COLUMN.search(message)
    return error_response(400, message, field=field, column=int(m.group(1)) if m else None)


def get_path(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


class RunsApi:
    """Endpoints over one :class:`Repo`."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    # -- helpers -----------------------------------------------------------------------------
    def _filter(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        flag = q.get("all", "0").lower()
        if flag not in ("0", "1", "true", "false", ""):
            raise ConfigError(f"all must be 0 or 1; received {flag!r}")
        return runs_filter(
            q.get("where") or None,
            utc_now(),
            roots_only=flag not in ("1", "true"),
            project=q.get("project") or None,
            name=q.get("name") or None,
            tag=q.get("tag") or None,
        )

    def find_doc(self, run_id: str, projection: Any = None) -> dict[str, Any]:
        """The document of ``run_id``, or of the one run whose id starts with it."""
        doc = self.repo.modules.find_one({"_id": run_id}, projection)
        if doc is not None:
            return doc
        if not re.fullmatch(r"[0-9A-Za-z_-]{4,}", run_id):
            raise NotFoundError(f"no run with id {run_id!r}")
        docs = list(self.repo.modules.find({"_id": {"$regex": f"^{re.escape(run_id)}"}}, projection).limit(2))
        if len(docs) != 1:
            raise NotFoundError(f"no run with id {run_id!r}" if not docs else f"id prefix {run_id!r} is ambiguous")
        return docs[0]

    # -- endpoints ---------------------------------------------------------------------------
    def runs(self, request: Request) -> JSON:
        q = request.query_params
        try:
            filt = plan_filter(self._filter(request))
        except (SelectorError, ConfigError) as exc:
            return bad_request(exc, "where")
        try:
            limit, offset = _int(q, "limit", 50, 1, MAX_LIMIT), _int(q, "offset", 0, 0, None)
            sort = sort_spec(q.get("sort") or "-created", option="sort")
        except ConfigError as exc:
            return bad_request(exc, "query")
        cursor = self.repo.modules.find(filt, ROW_FIELDS).sort(sort).skip(offset).limit(limit + 1)
        docs = list(cursor)
        has_more = len(docs) > limit
        docs = docs[:limit]
        now = utc_now()
        config_cols = varying_config(docs, CONFIG_COLUMNS)
        metric_cols = metric_columns(docs, METRIC_COLUMNS)
        rows = []
        for doc in docs:
            summary = flat_summary(doc.get("summary") or {})
            rows.append(
                {
                    **_identity(doc),
                    "state": display_state(doc, now),
                    "created_at": doc.get("created_at"),
                    "started_at": get_path(doc, "status.started_at"),
                    "duration": run_duration(doc, now),
                    "config": {c: get_path(doc.get("config"), c) for c in config_cols},
                    "metrics": {m: _best_last(summary.get(m)) for m in metric_cols},
                }
            )
        columns = {"config": config_cols, "metrics": metric_cols}
        return JSON({"runs": rows, "columns": columns, "offset": offset, "limit": limit, "has_more": has_more, "now": now})

    def count(self, request: Request) -> JSON:
        try:
            filt = plan_filter(self._filter(request))
        except (SelectorError, ConfigError) as exc:
            return bad_request(exc, "where")
        return JSON({"count": self.repo.modules.count_documents(filt)})

    def run(self, request: Request) -> JSON:
        doc = self.find_doc(request.path_params["run_id"], {"definition": 0, "args": 0, "mro": 0})
        now = utc_now()
        summary = flat_summary(doc.get("summary") or {})
        metrics = run_metrics(self.repo.db, doc["_id"]) or sorted(summary)
        artifacts = [
            {k: a.get(k) for k in ("name", "bytes", "format", "store", "sha256", "meta")} for a in doc.get("artifacts") or []
        ]
        status = doc.get("status") or {}
        return JSON(
            {
                **_identity(doc),
                "state": display_state(doc, now),
                "status": status,
                "duration": run_duration(doc, now),
                "created_at": doc.get("created_at"),
                "updated_at": doc.get("updated_at"),
                "category": doc.get("category"),
                "root": doc.get("root"),
                "children": doc.get("children") or [],
                "host": doc.get("host"),
                "git": doc.get("git"),
                "library_versions": doc.get("library_versions"),
                "history_pending": bool(doc.get("history_pending")),
                "config": doc.get("config") or {},
                "summary": summary,
                "metrics": metrics,
                "artifacts": artifacts,
                "now": now,
            }
        )

    def compare(self, request: Request) -> JSON:
        ids = list(dict.fromkeys(i for v in request.query_params.getlist("id") for i in v.split(",") if i))
        if not 2 <= len(ids) <= MAX_COMPARE:
            return error_response(400, f"compare needs 2 to {MAX_COMPARE} run ids (id=A&id=B); received {len(ids)}")
        projection = ["_id", "name", "version", "project", "tags", "cls", "parent", "config", "summary", "status"]
        docs = [self.find_doc(i, projection) for i in ids]
        now = utc_now()
        leaves = [config_leaves(d.get("config") or {}) for d in docs]
        paths = list(dict.fromkeys(p for leaf in leaves for p in leaf))
        config = []
        for p in paths:
            values = [leaf.get(p) for leaf in leaves]
            config.append({"path": p, "values": values, "differs": any(v != values[0] for v in values)})
        summaries = [flat_summary(d.get("summary") or {}) for d in docs]
        metrics = sorted(set().union(*summaries))
        runs = [
            {**_identity(d), "state": display_state(d, now), "summary": {m: _best_last(s.get(m)) for m in metrics}}
            for d, s in zip(docs, summaries)
        ]
        return JSON({"runs": runs, "config": config, "metrics": metrics})


def _identity(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "name": doc.get("name"),
        "version": doc.get("version"),
        "project": doc.get("project"),
        "tags": doc.get("tags") or [],
        "cls": doc.get("cls"),
        "parent": doc.get("parent"),
    }


def _best_last(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if not entry:
        return None
    return {"best": entry.get("best"), "last": entry.get("last"), "mode": entry.get("mode")}


def _int(q: Any, name: str, default: int, low: int, high: int | None) -> int:
    text = q.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer; received {text!r}") from None
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be from {low} to {high}; received {value}" if high else f"{name} must be ≥ {low}; received {value}")
    return value


