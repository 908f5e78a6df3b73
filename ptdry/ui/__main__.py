"""``python -m ptdry.ui``: run the dashboard (``ptdry ui`` starts this in its own process).

The database URI comes from ``$PTDRY_DB_URI`` (never from the command line, where other
users of the machine could read it); none means the embedded default. Exit codes as for
``ptdry``: 0 ok, 2 bad usage, 1 error, with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from ptdry.errors import PtdryError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ptdry ui", description="A web dashboard of the runs in the database.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    parser.add_argument("--allow-edit", action="store_true", help="allow tagging and deleting runs (read-only by default)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="ptdry ui: %(message)s")
    try:
        from ptdry.ui.server import serve
    except ImportError as exc:
        print(f"ptdry ui: needs the ui extra ({exc.name} is missing): pip install 'ptdry[ui]'", file=sys.stderr)
        return 1

    def ready(url: str) -> None:
        mode = "tagging and deleting allowed" if args.allow_edit else "read-only"
        print(f"ptdry ui: serving {url} ({mode}); Ctrl-C stops it", flush=True)

    try:
        serve(host=args.host, port=args.port, allow_edit=args.allow_edit, on_ready=ready)
    except PtdryError as exc:
        print(f"ptdry ui: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
