"""The dashboard as an ASGI application (Starlette): three pages and their JSON API.

Pages: ``/`` (the runs table), ``/runs/{id}`` (one run), ``/compare?id=A&id=B`` (runs side by
side). The API is documented in :mod:`ptdry.ui.api_runs`, :mod:`ptdry.ui.api_history` and
:mod:`ptdry.ui.api_edit`; ``GET /api`` lists it. Everything the pages need is served from
the package (no CDN); the plots are drawn with uPlot (MIT, ``static/uPlot.LICENSE``).

Example:
    >>> from starlette.testclient import TestClient
    >>> client = TestClient(create_app("mongomock://ui-app-example"), base_url="http://127.0.0.1")
    >>> client.get("/api/runs").json()["runs"]
    []
"""

from __future__ import annotations

import pathlib
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ptdry.core.versions import library_versions
from ptdry.db.interface import DBInterface, mask_uri
from ptdry.db.repo import Repo
from ptdry.errors import ConfigError, NotFoundError, PtdryError, SelectorError, ServerUnavailableError
from ptdry.ui.api_edit import EditApi
from ptdry.ui.api_history import HistoryApi
from ptdry.ui.api_runs import RunsApi
from ptdry.ui.jsonable import JSON, error_response

__all__ = ["create_app"]

HERE = pathlib.Path(__file__).resolve().parent
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

API_INDEX = {
    "GET /api": "this list",
    "GET /api/info": "the database (password masked), ptdry's version, whether edits are allowed",
    "GET /api/runs": "a page of the runs table: where, sort, project, name, tag, limit, offset, all",
    "GET /api/runs/count": "how many runs match (same filter parameters)",
    "GET /api/runs/{id}": "one run: status, timings, provenance, config, summary, artifacts, metrics",
    "GET /api/runs/{id}/history": "curves down-sampled in the server: metric (repeatable), points, start, end",
    "GET /api/runs/{id}/artifacts/{name}": "download one artifact or checkpoint",
    "GET /api/compare": "config diff and summaries of runs: id=A&id=B (2 to 12)",
    "POST /api/runs/{id}/tags": 'with --allow-edit: {"add": [...], "remove": [...]}',
    "DELETE /api/runs/{id}": "with --allow-edit: delete a run that is not running",
}


def create_app(
    db: DBInterface | str | None = None, *, allow_edit: bool = False, allowed_hosts: list[str] | None = None
) -> Starlette:
    """The dashboard application over database ``db`` (a :class:`DBInterface`, a URI, or
    None for the embedded default).

    Args:
        db: the database to show.
        allow_edit: allow tagging and deleting runs (read-only by default).
        allowed_hosts: ``Host`` headers accepted (default: loopback names only, which stops
            DNS-rebinding attacks on a dashboard bound to 127.0.0.1; ``["*"]`` for any).
    """
    if not isinstance(allow_edit, bool):
        raise ConfigError(f"allow_edit must be True or False; received {allow_edit!r}")
    interface = db if isinstance(db, DBInterface) else DBInterface(db)
    repo = Repo(interface)
    runs = RunsApi(repo)
    history = HistoryApi(runs)
    edit = EditApi(runs, allow_edit)

    def info(request: Request) -> JSON:
        return JSON({"db": mask_uri(interface.uri), "database": interface.database, "version": library_versions().get("ptdry"), "allow_edit": allow_edit})

    def index(request: Request) -> JSON:
        return JSON(API_INDEX)

    def page(name: str) -> Any:
        def endpoint(request: Request) -> Response:
            return FileResponse(HERE / "pages" / f"{name}.html", headers={"Cache-Control": "no-cache"})

        return endpoint

    routes = [
        Route("/", page("runs")),
        Route("/runs/{run_id}", page("run")),
        Route("/compare", page("compare")),
        Route("/api", index),
        Route("/api/info", info),
        Route("/api/runs", runs.runs),
        Route("/api/runs/count", runs.count),
        Route("/api/compare", runs.compare),
        Route("/api/runs/{run_id}", runs.run, methods=["GET"]),
        Route("/api/runs/{run_id}", edit.delete, methods=["DELETE"]),
        Route("/api/runs/{run_id}/tags", edit.tags, methods=["POST"]),
        Route("/api/runs/{run_id}/history", history.history),
        Route("/api/runs/{run_id}/artifacts/{name:path}", history.artifact),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    hosts = LOOPBACK_HOSTS if allowed_hosts is None else list(allowed_hosts)
    handlers = {
        NotFoundError: lambda request, exc: error_response(404, _line(exc)),
        SelectorError: lambda request, exc: error_response(400, _line(exc)),
        ConfigError: lambda request, exc: error_response(400, _line(exc)),
        ServerUnavailableError: lambda request, exc: error_response(503, _line(exc)),
        PtdryError: lambda request, exc: error_response(500, f"{type(exc).__name__}: {_line(exc)}"),
    }
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)],
        exception_handlers=handlers,  # type: ignore[arg-type]
    )
    app.state.repo = repo
    app.state.allow_edit = allow_edit
    return app


def _line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _SecurityHeaders:
    """Headers that keep pages from being framed, sniffed or given foreign scripts."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", _CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
