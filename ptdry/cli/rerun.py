"""``ptdry rerun ID``: run a stored run again from the database alone, as a new run linked to
it; ``--check`` says whether the new final weights equal the old ones bit for bit."""

from __future__ import annotations

import argparse

from ptdry.cli.common import UsageError, find_runs, open_repo

__all__ = ["cmd_rerun"]


def cmd_rerun(args: argparse.Namespace) -> int:
    from ptdry.train.rerun import rerun

    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1; received {args.threads}")
    repo = open_repo(args)
    (rec,) = find_runs(repo, [args.id])
    if rec.get("parent") is not None:
        raise UsageError(f"{rec.id[:8]} is a module nested in run {str(rec.get('root'))[:8]}; rerun the run")
    old = f"{rec.id[:8]} ({rec.get('name')} v{rec.get('version')})"
    result = rerun(rec.id, repo.db, trusted=args.trusted, sources=args.sources, threads=args.threads, check=args.check)
    new = repo.modules.find_one({"_id": result.run_id}, {"name": 1, "version": 1}) or {}
    print(f"rerun of {old} -> new run {result.run_id[:8]} ({new.get('name')} v{new.get('version')}): {result.status}")
    changed = f"; changed since the run: {', '.join(result.changed)}" if result.changed else ""
    code = {
        "library": "ptdry and library classes only",
        "current": "the current files (as stored with the run)" if not result.changed else "the current files",
        "stored": "the sources stored with the run",
    }[result.code]
    print(f"code: {code}{changed}")
    recorded = rec.get("torch_threads")
    if result.threads:
        same = "as recorded" if recorded == result.threads else f"the run recorded {recorded or 'none'}"
        print(f"torch threads: {result.threads} ({same})")
    if not args.check:
        return 0
    if result.identical:
        print(f"check: identical — the final weights equal the original's bit for bit ({result.compared} tensors)")
        return 0
    shown = ", ".join(result.differing[:5]) + (", ..." if len(result.differing) > 5 else "")
    print(
        f"check: DIFFERENT — {len(result.differing)} of {result.compared} tensors differ "
        f"(largest difference {result.max_abs_diff:.3g}): {shown}"
    )
    return 1
