"""The JSON API of a run's curves, and downloads of its checkpoints and artifacts.

======================================  ===============================================
``GET /api/runs/{id}/history``          curves down-sampled in the server: parameters
                                        ``metric`` (repeatable; default all),
                                        ``points`` (the plot's width in pixels, default
                                        1000), ``start`` and ``end`` (a step range)
``GET /api/runs/{id}/artifacts/{name}`` the bytes of one artifact (``checkpoint/best``…)
======================================  ===============================================
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ptdry.db.history_query import metric_series
from ptdry.errors import ConfigError
from ptdry.ui.api_runs import RunsApi, bad_request
from ptdry.ui.jsonable import JSON, error_response

__all__ = ["HistoryApi"]


class HistoryApi:
    """Curves and artifact downloads over the runs of a :class:`RunsApi`."""

    def __init__(self, runs: RunsApi) -> None:
        self.runs = runs

    def history(self, request: Request) -> JSON:
        doc = self.runs.find_doc(request.path_params["run_id"], {"_id": 1})
        q = request.query_params
        try:
            points = _number(q.get("points"), "points", 1000, integer=True)
            start = _number(q.get("start"), "start", None)
            end = _number(q.get("end"), "end", None)
            metrics = [m for v in q.getlist("metric") for m in v.split(",") if m] or None
            result = metric_series(self.runs.repo.db, doc["_id"], metrics, points=points, start=start, end=end)
        except ConfigError as exc:
            return bad_request(exc, "query")
        return JSON(result)

    def artifact(self, request: Request) -> Response:
        name = request.path_params["name"]
        doc = self.runs.find_doc(request.path_params["run_id"], {"_id": 1, "name": 1, "version": 1, "artifacts": 1})
        records = [a for a in doc.get("artifacts") or [] if a.get("name") == name]
        if not records:
            names = ", ".join(a.get("name", "?") for a in doc.get("artifacts") or []) or "none"
            return error_response(404, f"run {doc['_id']} has no artifact {name!r}; its artifacts: {names}")
        record = records[-1]
        data = self.runs.repo.artifact_bytes(record)
        filename = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{doc.get('name')}-v{doc.get('version')}-{name}") + _suffix(record)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-SHA256": record["sha256"]},
        )


def _suffix(record: dict[str, Any]) -> str:
    return ".ptdry" if str(record.get("format", "")).startswith("ptdry") else ""


def _number(text: str | None, name: str, default: Any, *, integer: bool = False) -> Any:
    if text is None or text == "":
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}; received {text!r}") from None
    if not integer and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; received {text!r}")
    return value
