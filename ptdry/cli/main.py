"""The ``ptdry`` command: list and inspect past runs, and manage the embedded database.

Exit codes: 0 ok, 2 bad usage, 1 error — with a one-line message on stderr and no
traceback for errors the user can fix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any, Sequence

from ptdry.db.runs_table import WHERE_ALIASES, metric_columns, run_state, varying_config
from ptdry.errors import PtdryError

__all__ = ["main"]


class UsageError(PtdryError):
    """Bad command-line usage (exit code 2)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ptdry", description="Query past runs and manage ptdry's database.")
    p.add_argument("--db", default=None, help="database URI (default: the embedded server, or $PTDRY_DB_URI)")
    sub = p.add_subparsers(dest="command", required=True)

    runs = sub.add_parser("runs", help="table of past runs")
    runs.add_argument("--where", default=None, help='JSON Mongo filter or e.g. "trainer.optimizer.lr < 1e-3 and status = completed"')
    runs.add_argument(
        "--sort", default="-created", help="field to sort by; a leading '-' sorts descending: --sort=-summary.val.accuracy.best"
    )
    runs.add_argument("--limit", type=int, default=20, help="at most N runs (default 20; 0 = all)")
    runs.add_argument("--all", action="store_true", help="include nested modules, not only roots")

    show = sub.add_parser("show", help="one run's definition, status and summary")
    show.add_argument("id", help="a run id (a unique prefix is enough)")

    plot = sub.add_parser("plot", help="learning curves of a run, as an image")
    plot.add_argument("id", help="a run id (a unique prefix is enough)")
    plot.add_argument("--metric", action="append", default=None, help="metric to plot (repeatable; default: all)")
    plot.add_argument("-o", "--output", required=True, help="image file to write (.png, .pdf, .svg)")

    sync = sub.add_parser("sync", help="write history kept in local journals (while the database was down)")
    sync.add_argument("--journal-dir", default=None, help="default: $PTDRY_HOME/journal")

    db = sub.add_parser("db", help="the embedded default database server")
    db.add_argument("action", choices=["start", "stop", "status"])

    ui = sub.add_parser("ui", help="web dashboard of the runs (needs ptdry[ui])")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    ui.add_argument("--allow-edit", action="store_true", help="allow tagging and deleting runs (read-only by default)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptdry`` console script."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        handler = {"runs": cmd_runs, "show": cmd_show, "plot": cmd_plot, "sync": cmd_sync, "db": cmd_db, "ui": cmd_ui}[args.command]
        return handler(args)
    except UsageError as exc:
        print(f"ptdry {args.command}: {exc}", file=sys.stderr)
        return 2
    except PtdryError as exc:
        print(f"ptdry {args.command}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ptdry runs | head`
        sys.stderr.close()
        return 0


def _repo(args: argparse.Namespace) -> Any:
    from ptdry.db.repo import Repo

    return Repo(args.db)


def _sort_spec(text: str) -> list[tuple[str, int]]:
    field = text.lstrip("-+")
    if not field:
        raise UsageError(f"--sort needs a field name; received {text!r}")
    field = WHERE_ALIASES.get(field, field if "." in field and field.split(".")[0] in WHERE_ALIASES else f"config.{field}")
    return [(field, -1 if text.startswith("-") else 1)]


def _filter(where: str | None) -> dict[str, Any]:
    from ptdry.db.where import parse_where

    if not where:
        return {}
    return parse_where(where, aliases=WHERE_ALIASES, prefix_unknown="config.")


def cmd_runs(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise UsageError(f"--limit must be ≥ 0; received {args.limit}")
    filt = _filter(args.where)
    if not args.all:
        filt = {"$and": [{"parent": None}, filt]} if filt else {"parent": None}
    records = _repo(args).find(filt, sort=_sort_spec(args.sort), limit=args.limit)
    if not records:
        print("no runs match")
        return 0
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    config_cols = varying_config(records, "config", 4)
    metric_cols = metric_columns(records, 3)
    header = ["id", "name", "ver", "status", "created"] + config_cols + metric_cols
    rows = []
    for rec in records:
        created = rec.get("created_at")
        row = [
            rec.id[:8],
            str(rec.get("name", "")),
            str(rec.get("version", "")),
            run_state(rec, now),
            created.strftime("%Y-%m-%d %H:%M") if isinstance(created, dt.datetime) else "",
        ]
        row += [_fmt(rec.get_path(f"config.{c}")) for c in config_cols]
        row += [_fmt(rec.get_path(f"summary.{m}.best", rec.get_path(f"summary.{m}.last"))) for m in metric_cols]
        rows.append(row)
    _print_table(header, rows)
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def _one_record(repo: Any, prefix: str) -> Any:
    import re

    if not re.fullmatch(r"[0-9A-Za-z_-]+", prefix):
        raise UsageError(f"run id may hold letters, digits, '-' and '_' only; received {prefix!r}")
    records = repo.find({"_id": {"$regex": f"^{re.escape(prefix)}"}}, limit=2)
    if not records:
        from ptdry.errors import NotFoundError

        raise NotFoundError(f"no run with id starting {prefix!r}; see `ptdry runs`")
    if len(records) > 1:
        raise UsageError(f"id prefix {prefix!r} is ambiguous; give more characters")
    return records[0]


def cmd_show(args: argparse.Namespace) -> int:
    repo = _repo(args)
    rec = _one_record(repo, args.id)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    print(f"{rec.get('name')} v{rec.get('version')}  id={rec.id}  class={rec.get('cls')}")
    print(f"status: {run_state(rec, now)}  created: {rec.get('created_at')}  updated: {rec.get('updated_at')}")
    error = (rec.get("status") or {}).get("error")
    if error:
        print(f"error: {error.get('type')}: {error.get('message')}")
    print("config:")
    print(json.dumps(rec.get("config", {}), indent=2, default=str))
    if rec.get("summary"):
        print("summary:")
        from ptdry.db.repo import flat_summary

        for metric, s in flat_summary(rec["summary"]).items():
            print(f"  {metric}: last={_fmt(s.get('last'))} best={_fmt(s.get('best'))}")
    arts = rec.get("artifacts") or []
    if arts:
        print("artifacts: " + ", ".join(f"{a['name']} ({a['bytes']} bytes, {a['store']})" for a in arts))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ptdry.cli.plot import plot_history

    repo = _repo(args)
    rec = _one_record(repo, args.id)
    docs = list(repo.db.collection("history").find({"run": rec.id}, {"_id": 0}).sort("seq", 1))
    if not docs:
        from ptdry.errors import NotFoundError

        raise NotFoundError(f"run {rec.id} has no history records")
    title = f"{rec.get('name')} v{rec.get('version')} ({rec.id[:8]})"
    drawn = plot_history(docs, args.output, metrics=args.metric, title=title)
    print(f"wrote {args.output} ({', '.join(drawn)})")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from ptdry.db.history_writer import sync_journals

    repo = _repo(args)
    written = sync_journals(repo.db.collection("history"), args.journal_dir)
    if not written:
        print("nothing to sync")
    for run, n in written.items():
        print(f"{run}: {n} new history records written")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from ptdry.db.server import EmbeddedServer

    if args.db:
        raise UsageError("`ptdry db` manages the embedded server; it takes no --db URI")
    server = EmbeddedServer()
    if args.action == "start":
        uri = server.start()
        print(f"embedded database running at {uri} (data in {server.dir / 'data'})")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    else:
        info = server.status()
        if not info["running"]:
            print(f"not running (home {server.home}); `ptdry db start` starts it")
            return 0
        print(f"running: pid {info['pid']} at {info['uri']} (data in {info['storage']}, log {info['log']})")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Run ``python -m ptdry.ui`` (the ui layer is not imported by the cli); the URI goes
    through the environment, where other users cannot read it."""
    import os
    import subprocess

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535; received {args.port}")
    env = dict(os.environ)
    if args.db:
        env["PTDRY_DB_URI"] = args.db
    cmd = [sys.executable, "-m", "ptdry.ui", "--host", args.host, "--port", str(args.port)]
    child = subprocess.Popen(cmd + (["--allow-edit"] if args.allow_edit else []), env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:  # from a terminal the child got the same Ctrl-C; else tell it
        try:
            child.wait(timeout=3)
        except subprocess.TimeoutExpired:
            child.terminate()
            child.wait()
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
