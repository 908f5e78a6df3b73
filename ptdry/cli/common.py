"""What the ``ptdry`` subcommands share: the usage error, opening the database, finding a run
by an id prefix, and printing a table."""

from __future__ import annotations

import re
import sys
from typing import Any, Sequence, TextIO

from ptdry.core.status import utc_now as now_utc
from ptdry.errors import ConfigError, NotFoundError, PtdryError, ServerUnavailableError

__all__ = ["UsageError", "find_runs", "now_utc", "open_repo", "print_table"]


class UsageError(PtdryError):
    """Bad command-line usage or input (exit code 2)."""


def open_repo(args: Any, **kwargs: Any) -> Any:
    """The :class:`~ptdry.db.repo.Repo` of ``args.db``, connected (so an unreachable server
    or a malformed URI fails here, in one line)."""
    from ptdry.db.interface import DBInterface, mask_uri
    from ptdry.db.repo import Repo

    db = DBInterface(getattr(args, "db", None))
    try:
        db.kind  # noqa: B018 - validates the scheme
    except ConfigError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    from pymongo.errors import ConfigurationError, InvalidURI

    try:
        db.client  # noqa: B018 - connects
    except ConfigError as exc:  # DBInterface's own message: names the (masked) URI and the problem
        raise UsageError(_line(exc)) from None
    except (InvalidURI, ValueError, TypeError) as exc:  # pymongo's URI parser: a bad port, a bad escape
        raise UsageError(f"invalid database URI {mask_uri(db.uri)!r}: {_line(exc)}") from None
    except ConfigurationError as exc:  # e.g. mongodb+srv:// whose DNS records cannot be read
        raise ServerUnavailableError(f"cannot use the database at {mask_uri(db.uri)}: {_line(exc)}") from None
    return Repo(db, **kwargs)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_ID = re.compile(r"[0-9A-Za-z_-]+\Z")


def find_runs(repo: Any, prefixes: Sequence[str]) -> list[Any]:
    """The stored record of each id prefix, in order.

    Raises:
        UsageError: a prefix has characters ids never have, or matches several runs.
        NotFoundError: a prefix matches no stored object.
    """
    out = []
    for prefix in prefixes:
        if not _ID.match(prefix):
            raise UsageError(f"run id may hold letters, digits, '-' and '_' only; received {prefix!r}")
        records = repo.find({"_id": {"$regex": f"^{re.escape(prefix)}"}}, limit=2)
        if not records:
            raise NotFoundError(f"no run with id starting {prefix!r}; see `ptdry runs`")
        if len(records) > 1:
            raise UsageError(f"id prefix {prefix!r} is ambiguous ({records[0].id}, {records[1].id}, ...); give more characters")
        out.append(records[0])
    return out


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    """Left-aligned columns separated by two spaces."""
    out = out or sys.stdout
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)
