"""``ptdry ui``: start the web dashboard (``python -m ptdry.ui``) on the chosen database.

The cli layer does not import the ui layer: the dashboard runs as a child process, and the
database URI reaches it through the environment, where other users cannot read it (not on
its command line).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ptdry.cli.common import UsageError

__all__ = ["add_ui_parser", "cmd_ui"]


def add_ui_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    ui = sub.add_parser("ui", help="web dashboard of the runs (needs ptdry[ui])", parents=parents)
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    ui.add_argument("--allow-edit", action="store_true", help="allow tagging and deleting runs (read-only by default)")


def cmd_ui(args: argparse.Namespace) -> int:
    """Run the dashboard until it ends (Ctrl-C stops it)."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535; received {args.port}")
    env = dict(os.environ)
    if getattr(args, "db", None):
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
