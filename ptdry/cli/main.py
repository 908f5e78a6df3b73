"""The ``ptdry`` command: list and inspect past runs, manage the embedded database, and run
a sweep's trials (``ptdry worker``).

Exit codes: 0 ok, 2 bad usage, 1 error — with a one-line message on stderr and no
traceback for errors the user can fix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any, NoReturn, Sequence

from ptdry.cli.worker import add_worker_parser, cmd_worker
from ptdry.cli.comparisons import add_parser as add_comparisons_parser
from ptdry.cli.comparisons import cmd_comparisons
from ptdry.errors import PtdryError

__all__ = ["main"]

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
    "links": "links",
    "sweep": "links.sweep.name",  # `--where "sweep = NAME"`: the runs of a sweep's trials
    "sweep.name": "links.sweep.name",
    "sweep.id": "links.sweep.id",
    "sweep.trial": "links.sweep.trial",
}


class UsageError(PtdryError):
    """Bad command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with the module's convention: a usage error is one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ptdry", description="Query past runs and manage ptdry's database.")
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

    add_worker_parser(sub)
    add_comparisons_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptdry`` console script."""
    parser = _parser()
    argv = _joined_sort(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        handlers = {"runs": cmd_runs, "show": cmd_show, "plot": cmd_plot, "sync": cmd_sync, "db": cmd_db}
        handler = {**handlers, "worker": cmd_worker, "comparisons": cmd_comparisons}[args.command]
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


def _joined_sort(argv: list[str]) -> list[str]:
    """``--sort -created`` as ``--sort=-created``: argparse would take ``-created`` for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--sort" and i + 1 < len(argv):
            out.append(f"--sort={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _repo(args: argparse.Namespace) -> Any:
    from ptdry.db.repo import Repo

    return Repo(args.db)


def _state(doc: dict[str, Any], now: dt.datetime) -> str:
    status = doc.get("status") or {}
    state = status.get("state", "?")
    beat = status.get("heartbeat")
    if state == "running" and isinstance(beat, dt.datetime) and now - beat > STALE_AFTER:
        return "dead"
    return state


#: Fields every stored run has: sorting by them needs no check that they exist.
ALWAYS_PRESENT = frozenset(["_id", "name", "version", "project", "created_at", "updated_at", "cls", "category", "status.state"])


def _sort_spec(text: str) -> list[tuple[str, int]]:
    from ptdry.cli.where import resolve_path
    from ptdry.db.query_options import validate_sort
    from ptdry.errors import SelectorError

    name = text[1:] if text[:1] in "+-" else text
    try:
        return validate_sort([(resolve_path(name, WHERE_ALIASES, "config."), -1 if text.startswith("-") else 1)])
    except SelectorError:
        raise UsageError(
            f"--sort needs a field name, '-' first to sort descending (like -created or "
            f"summary.val.accuracy.best); received {text!r}"
        ) from None


def _check_sort_field(repo: Any, filt: dict[str, Any], sort: list[tuple[str, int]], text: str) -> None:
    """A sort by a field no listed run has is a typo, not an order: say so."""
    field = sort[0][0]
    if field in ALWAYS_PRESENT or repo.find({"$and": [filt, {field: {"$exists": True}}]}, limit=1, projection=["_id"]):
        return
    raise UsageError(
        f"--sort {text!r}: no listed run has a field {field!r}; sort by created, name, version, "
        "status, a config parameter or a summary metric (see `ptdry show ID`)"
    )


def _filter(where: str | None) -> dict[str, Any]:
    from ptdry.cli.where import parse_where

    if not where:
        return {}
    return parse_where(where, aliases=WHERE_ALIASES, prefix_unknown="config.")


def cmd_runs(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise UsageError(f"--limit must be ≥ 0; received {args.limit}")
    filt = _filter(args.where)
    sort = _sort_spec(args.sort)
    if not args.all:
        filt = {"$and": [{"parent": None}, filt]} if filt else {"parent": None}
    repo = _repo(args)
    records = repo.find(filt, sort=sort, limit=args.limit)
    if not records:
        print("no runs match")
        return 0
    _check_sort_field(repo, filt, sort, args.sort)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    config_cols = _varying(records, "config", 4)
    metric_cols = _metric_columns(records, 3)
    header = ["id", "name", "ver", "status", "created"] + config_cols + metric_cols
    rows = []
    for rec in records:
        created = rec.get("created_at")
        row = [
            rec.id[:8],
            str(rec.get("name", "")),
            str(rec.get("version", "")),
            _state(rec, now),
            created.strftime("%Y-%m-%d %H:%M") if isinstance(created, dt.datetime) else "",
        ]
        row += [_fmt(rec.get_path(f"config.{c}")) for c in config_cols]
        row += [_fmt(rec.get_path(f"summary.{m}.best", rec.get_path(f"summary.{m}.last"))) for m in metric_cols]
        rows.append(row)
    _print_table(header, rows)
    return 0


def _leaves(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            if k not in ("__class__", "dry_id"):  # a nested object's class and id are no hyperparameters
                _leaves(f"{prefix}.{k}" if prefix else k, v, out)
    elif not isinstance(value, (dict, list)):
        out[prefix] = value


def _varying(records: list[Any], field: str, most: int) -> list[str]:
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


def _metric_columns(records: list[Any], most: int) -> list[str]:
    from ptdry.db.repo import flat_summary

    names: dict[str, None] = {}
    for rec in records:
        names.update(dict.fromkeys(flat_summary(rec.get("summary") or {})))
    preferred = sorted(names, key=lambda n: (not n.startswith(("val", "test")), n))
    return preferred[:most]


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
    print(f"status: {_state(rec, now)}  created: {rec.get('created_at')}  updated: {rec.get('updated_at')}")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
