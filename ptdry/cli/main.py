"""The ``ptdry`` command: list, inspect, compare, export and rerun past runs; manage the
embedded database. This module is the argparse wiring; each command lives in its own module
under ``ptdry.cli`` and is imported only when it runs (``ptdry --help`` stays light).

Exit codes: 0 ok, 2 bad usage or input, 1 a failure — with a one-line message on stderr and
no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable, NoReturn, Sequence

from ptdry.cli.common import UsageError
from ptdry.cli.comparisons import add_parser as add_comparisons_parser
from ptdry.cli.ui import add_ui_parser
from ptdry.cli.worker import add_worker_parser
from ptdry.db.runs_table import STALE_AFTER, WHERE_ALIASES
from ptdry.errors import PtdryError

__all__ = ["STALE_AFTER", "WHERE_ALIASES", "UsageError", "main"]

#: command -> "module:function" (imported when the command runs).
COMMANDS = {
    "runs": "ptdry.cli.runs:cmd_runs",
    "show": "ptdry.cli.show:cmd_show",
    "compare": "ptdry.cli.compare:cmd_compare",
    "plot": "ptdry.cli.plot:cmd_plot",
    "export": "ptdry.cli.export:cmd_export",
    "get": "ptdry.cli.get:cmd_get",
    "tag": "ptdry.cli.manage:cmd_tag",
    "rm": "ptdry.cli.manage:cmd_rm",
    "rerun": "ptdry.cli.rerun:cmd_rerun",
    "sync": "ptdry.cli.database:cmd_sync",
    "db": "ptdry.cli.database:cmd_db",
    "worker": "ptdry.cli.worker:cmd_worker",
    "comparisons": "ptdry.cli.comparisons:cmd_comparisons",
    "ui": "ptdry.cli.ui:cmd_ui",
}


class _Parser(argparse.ArgumentParser):
    """argparse with the module's convention: a usage error is one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _query_arguments(parser: argparse.ArgumentParser, limit: int) -> None:
    parser.add_argument(
        "--where", default=None, help='e.g. "trainer.model.optimizer.lr < 1e-3 and status = completed" or a JSON Mongo filter'
    )
    parser.add_argument("--sort", default="-created", help="a column to sort by; a leading '-' sorts descending: --sort=-val.accuracy")
    parser.add_argument("--limit", type=int, default=limit, help=f"at most N runs (default {limit or 'all'}; 0 = all)")
    parser.add_argument("--all", action="store_true", help="include nested modules, not only runs")


def _parser() -> argparse.ArgumentParser:
    # --db is accepted before and after the subcommand (after wins).
    common = _Parser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help="database URI (default: the embedded server, or $PTDRY_DB_URI)")
    p = _Parser(prog="ptdry", description="Query, compare and rerun past runs; manage ptdry's database.")
    p.add_argument("--db", default=None, help="database URI (default: the embedded server, or $PTDRY_DB_URI)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    _query_arguments(command("runs", "table of past runs"), limit=20)

    show = command("show", "one run: status, provenance, metrics, checkpoints, files")
    show.add_argument("id", help="a run id (a unique prefix is enough)")
    mode = show.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="the whole stored document as JSON")
    mode.add_argument("--source", action="store_true", help="the command line, git state and diff, and the stored source files")

    compare = command("compare", "runs side by side: config differences and metrics")
    compare.add_argument("ids", nargs="+", metavar="ID", help="two or more run ids (prefixes)")
    compare.add_argument("--all-config", action="store_true", help="every config value, not only those that differ")
    compare.add_argument("--last", action="store_true", help="last metric values instead of the best")

    plot = command("plot", "learning curves of one run, or several overlaid, as an image")
    plot.add_argument("ids", nargs="+", metavar="ID", help="run ids (prefixes)")
    plot.add_argument("--metric", action="append", default=None, help="metric to plot (repeatable; default: all)")
    plot.add_argument("-o", "--output", required=True, help="image file to write (.png, .pdf, .svg)")

    export = command("export", "selected runs as CSV (a row per run) or JSON (the documents)")
    _query_arguments(export, limit=0)
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")

    get = command("get", "fetch a file kept with a run (session.log_artifact)")
    get.add_argument("id", help="a run id (a unique prefix is enough)")
    get.add_argument("name", help="the file's name, as `ptdry show` lists it")
    get.add_argument("-o", "--output", default=None, help="where to write it (default: its name here; '-': stdout)")
    get.add_argument("--force", action="store_true", help="overwrite an existing file")

    tag = command("tag", "add tags to a run (or remove them)")
    tag.add_argument("id", help="a run id (a unique prefix is enough)")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument("--remove", action="store_true", help="remove these tags instead")

    rm = command("rm", "delete runs with their history, checkpoints and files")
    rm.add_argument("ids", nargs="*", metavar="ID", help="run ids (prefixes)")
    rm.add_argument("--where", default=None, help="delete the runs this expression selects instead")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    rerun = command("rerun", "run a stored run again from the database, as a new run linked to it")
    rerun.add_argument("id", help="a run id (a unique prefix is enough)")
    rerun.add_argument("--check", action="store_true", help="say whether the new final weights equal the old ones bitwise")
    rerun.add_argument(
        "--trusted", action="store_true", help="allow importing the run's code (current files or stored sources): only for databases you trust"
    )
    rerun.add_argument(
        "--sources",
        choices=["auto", "stored", "current"],
        default="auto",
        help="code to run: the stored sources, the current files, or (auto) the current ones unless they changed",
    )
    rerun.add_argument("--threads", type=int, default=None, help="torch threads (default: the count the run recorded)")

    sync = command("sync", "complete runs whose database writes wait in local journals (history, checkpoints, their end)")
    sync.add_argument("--journal-dir", default=None, help="default: $PTDRY_HOME/journal")

    db = command("db", "the embedded default database server")
    db.add_argument("action", choices=["start", "stop", "status"])

    add_worker_parser(sub)
    add_comparisons_parser(sub)
    add_ui_parser(sub, parents=[common])
    return p


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


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, _, name = COMMANDS[command].partition(":")
    return getattr(importlib.import_module(module), name)


def _from_a_database_library(exc: BaseException) -> bool:
    return type(exc).__module__.partition(".")[0] in ("pymongo", "bson", "gridfs", "mongomock")


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptdry`` console script; returns the exit code."""
    parser = _parser()
    argv = _joined_sort(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    prefix = f"ptdry {args.command}:"
    try:
        return _handler(args.command)(args)
    except UsageError as exc:
        print(f"{prefix} {_line(exc)}", file=sys.stderr)
        return 2
    except PtdryError as exc:
        print(f"{prefix} {_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ptdry runs | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"{prefix} {exc.strerror or _line(exc)}{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not _from_a_database_library(exc):
            raise  # a bug in ptdry: the traceback is what a report needs
        print(f"{prefix} database error: {type(exc).__name__}: {_line(exc)}", file=sys.stderr)
        return 1


def _run(argv: Any = None) -> None:  # pragma: no cover - `python -m ptdry.cli.main`
    sys.exit(main(argv))


if __name__ == "__main__":  # pragma: no cover
    _run()
