"""Edits, only with ``ptdry ui --allow-edit``: tag runs and delete them.

=====================================  ================================================
``POST /api/runs/{id}/tags``           ``{"add": [...], "remove": [...]}``; answers the
                                       run's tags
``DELETE /api/runs/{id}``              the run, its nested modules, history, rollups and
                                       artifacts (not while it runs)
=====================================  ================================================

Without ``--allow-edit`` both answer 403. A request from another site is refused
(cross-site request forgery): its ``Origin`` must be this server, and a POST must carry
JSON (which a foreign page cannot send without the browser asking first).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ptdry.db.runs_table import display_state
from ptdry.ui.api_runs import RunsApi, utc_now
from ptdry.ui.jsonable import JSON, error_response

__all__ = ["EditApi", "same_origin"]

MAX_TAG = 100


def same_origin(request: Request) -> bool:
    """The request's ``Origin`` (sent by browsers with every POST and DELETE) is this server,
    or absent (a script such as curl, which no web page can make the browser send)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


class EditApi:
    """Tagging and deleting over the runs of a :class:`RunsApi`; ``allowed`` False refuses."""

    def __init__(self, runs: RunsApi, allowed: bool) -> None:
        self.runs = runs
        self.allowed = allowed

    def _refusal(self, request: Request) -> JSON | None:
        if not self.allowed:
            return error_response(403, "this dashboard is read-only; start it with `ptdry ui --allow-edit` to tag or delete runs")
        if not same_origin(request):
            return error_response(403, f"cross-site request refused (Origin {request.headers.get('origin')!r})")
        return None

    async def tags(self, request: Request) -> JSON:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error_response(415, "send the tags as JSON (Content-Type: application/json)")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error_response(400, f"the body is not valid JSON ({exc})")
        problem = _check_tags(body)
        if problem:
            return error_response(400, problem)
        return await _in_thread(self._apply_tags, request.path_params["run_id"], body.get("add", []), body.get("remove", []))

    def _apply_tags(self, run_id: str, add: list[str], remove: list[str]) -> JSON:
        doc = self.runs.find_doc(run_id, {"_id": 1})
        modules = self.runs.repo.modules
        if add:
            modules.update_one({"_id": doc["_id"]}, {"$addToSet": {"tags": {"$each": add}}})
        if remove:
            modules.update_one({"_id": doc["_id"]}, {"$pull": {"tags": {"$in": remove}}})
        return JSON({"id": doc["_id"], "tags": (modules.find_one({"_id": doc["_id"]}, {"tags": 1}) or {}).get("tags", [])})

    async def delete(self, request: Request) -> JSON:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        return await _in_thread(self._delete, request.path_params["run_id"])

    def _delete(self, run_id: str) -> JSON:
        doc = self.runs.find_doc(run_id, {"_id": 1, "parent": 1, "status": 1, "name": 1, "version": 1})
        if doc.get("parent") is not None:
            return error_response(400, f"{doc['_id']} is a module of run {doc['parent']}; delete that run instead")
        if display_state(doc, utc_now()) == "running":
            return error_response(409, f"run {doc['_id']} is running; stop it first (or wait until it shows as dead)")
        removed = self.runs.repo.delete({"_id": doc["_id"]})
        return JSON({"id": doc["_id"], "deleted": removed})


def _check_tags(body: Any) -> str | None:
    if not isinstance(body, dict) or set(body) - {"add", "remove"}:
        return 'send {"add": [tags], "remove": [tags]}'
    for key in ("add", "remove"):
        tags = body.get(key, [])
        if not isinstance(tags, list):
            return f"{key} must be a list of tags; received {tags!r}"
        for tag in tags:
            if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
                return f"a tag must be a non-empty string of at most {MAX_TAG} characters; received {tag!r}"
    return None


async def _in_thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
