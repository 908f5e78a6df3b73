"""``ptdry show ID``: one run in a form a person reads — status, time, where and with what
it ran, its metrics, checkpoints and files, the error if it failed — or as JSON (``--json``),
or its provenance with the stored source files (``--source``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any, Mapping

from ptdry.cli.common import find_runs, now_utc, open_repo, print_table
from ptdry.db.runs_table import config_leaves, display_state, format_value

__all__ = ["cmd_show", "document_json", "human_bytes"]


def human_bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _duration(status: Mapping[str, Any], now: dt.datetime) -> str:
    start, end = status.get("started_at"), status.get("ended_at")
    if not isinstance(start, dt.datetime):
        return "-"
    seconds = int(((end if isinstance(end, dt.datetime) else now) - start).total_seconds())
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    text = f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"
    return text if isinstance(end, dt.datetime) else text + " so far"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, dt.datetime) else "-"


def _git_line(git: Any) -> str:
    if not isinstance(git, Mapping):
        return "none (not in a git repository)"
    text = str(git.get("commit", "?"))[:12]
    if git.get("branch"):
        text += f" ({git['branch']})"
    if git.get("dirty"):
        text += " dirty" + (" (diff stored; ptdry show --source)" if git.get("diff") else "")
    return text


def document_json(doc: Mapping[str, Any]) -> str:
    """The document as indented JSON (dates in ISO format)."""

    def default(value: Any) -> Any:
        return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else str(value)

    return json.dumps(doc, indent=2, default=default, ensure_ascii=False)


def _print_summary(doc: Mapping[str, Any]) -> None:
    from ptdry.db.repo import flat_summary

    summary = flat_summary(doc.get("summary") or {})
    if not summary:
        return
    print("\nmetrics")
    rows = [
        [m, format_value(s.get("last")), format_value(s.get("best")), format_value(s.get("best_step")), str(s.get("mode", ""))]
        for m, s in sorted(summary.items(), key=lambda kv: (not kv[0].startswith(("val", "test")), kv[0]))
    ]
    print_table(["  metric", "last", "best", "best step", "mode"], [["  " + r[0], *r[1:]] for r in rows])


def _print_artifacts(doc: Mapping[str, Any], run_id: str) -> None:
    arts = doc.get("artifacts") or []
    checkpoints = [a for a in arts if a.get("name", "").startswith("checkpoint/")]
    files = [a for a in arts if a.get("name", "").startswith("file/")]
    if checkpoints:
        from ptdry.train.callbacks.checkpoint import select_checkpoint

        metas = [dict(a.get("meta") or {}, name=a["name"][len("checkpoint/") :]) for a in checkpoints]
        marks: dict[str, list[str]] = {}
        for which in ("last", "best"):
            try:
                marks.setdefault(select_checkpoint(metas, which)["name"], []).append(which)
            except LookupError:
                pass
            except ValueError:  # checkpoints ranked by different metrics: no single best
                pass
        print("\ncheckpoints (Session.load(id, which=...))")
        rows = []
        for meta, art in zip(metas, checkpoints):
            value = meta.get("value")
            score = f"{meta.get('monitor')}={format_value(value)}" if meta.get("monitor") and value is not None else "-"
            rows.append(
                [f"  {meta['name']}", str(meta.get("step", "")), str(meta.get("epoch", "")), str(meta.get("reason", "")),
                 score, human_bytes(art.get("bytes")), ", ".join(marks.get(meta["name"], []))]
            )  # fmt: skip
        print_table(["  name", "step", "epoch", "reason", "score", "size", ""], rows)
    if files:
        print(f"\nfiles (ptdry get {run_id[:8]} NAME)")
        print_table(["  name", "size"], [[f"  {a['name'][len('file/'):]}", human_bytes(a.get("bytes"))] for a in files])


def _print_readable(doc: Mapping[str, Any], now: dt.datetime) -> None:
    status = doc.get("status") or {}
    state = display_state(doc, now)
    print(f"{doc.get('name')} v{doc.get('version')}  id {doc['_id']}")
    reason = status.get("reason")
    print(f"status    {state}" + (f" ({reason})" if reason and reason != "completed" else ""))
    print(f"started   {_when(status.get('started_at'))}   duration {_duration(status, now)}")
    print(f"class     {doc.get('cls')}   project {doc.get('project')}" + (f"   tags {', '.join(doc['tags'])}" if doc.get("tags") else ""))
    where = [f"host      {doc.get('host', '-')}"]
    if doc.get("torch_threads"):
        where.append(f"torch threads {doc['torch_threads']}")
    if doc.get("device"):
        where.append(f"device {doc['device']}")
    if (doc.get("world_size") or 1) > 1:
        where.append(f"processes {doc['world_size']} (torch.distributed)")
    print("   ".join(where))
    command = doc.get("command") or {}
    if command.get("argv"):
        print(f"command   {' '.join(command['argv'])}   (in {command.get('cwd')})")
    print(f"git       {_git_line(doc.get('git'))}")
    versions = doc.get("library_versions") or {}
    if versions:
        print("versions  " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if doc.get("rerun_of"):
        print(f"rerun of  {doc['rerun_of']}")
    sources = doc.get("sources") or []
    if sources:
        print(f"sources   {len(sources)} file(s): {', '.join(s['file'] for s in sources[:6])}{', ...' if len(sources) > 6 else ''}")
    error = status.get("error")
    if error:
        print(f"\nerror     {error.get('type')}: {str(error.get('message', '')).strip()}")
    leaves = config_leaves(doc.get("config"), classes=True)
    if leaves:
        print("\nconfig")
        print_table(["  name", "value"], [[f"  {k}", json.dumps(v, default=str)] for k, v in leaves.items()])
    _print_summary(doc)
    _print_artifacts(doc, str(doc["_id"]))


def _print_source(repo: Any, doc: Mapping[str, Any]) -> None:
    command = doc.get("command") or {}
    print(f"command: {' '.join(command.get('argv') or []) or '-'}")
    print(f"cwd: {command.get('cwd', '-')}   python: {command.get('executable', '-')}")
    git = doc.get("git")
    print(f"git: {_git_line(git)}" + (f"   repository {git.get('root')}" if isinstance(git, Mapping) and git.get("root") else ""))
    if isinstance(git, Mapping) and git.get("diff"):
        note = " (truncated: the diff was larger than what is stored)" if git.get("diff_truncated") else ""
        print(f"\n==> git diff HEAD{note} <==")
        print(git["diff"].rstrip("\n"))
    records = {a["name"]: a for a in doc.get("artifacts") or []}
    for entry in doc.get("sources") or []:
        where = f"module {entry['module']}, from {entry.get('path')}"
        record = records.get("source/" + entry["file"])
        if record is None:
            print(f"\n==> {entry['file']} ({where}): not stored ({entry.get('skipped', 'missing')}) <==")
            continue
        print(f"\n==> {entry['file']} ({where}, sha256 {entry['sha256'][:12]}) <==")
        print(repo._store(record["store"]).get(record).decode("utf-8", "replace").rstrip("\n"))


def cmd_show(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    (rec,) = find_runs(repo, [args.id])
    doc = dict(rec)
    if args.json:
        print(document_json(doc))
    elif args.source:
        _print_source(repo, doc)
    else:
        _print_readable(doc, now_utc())
    return 0
