"""Rerun a stored run from the database alone, and check that it reproduces bit for bit.

:func:`rerun` rebuilds a run's Session from its stored definition (with fresh ids), gives it
the run's data (from its stored state), sets the torch thread count the run recorded, and
runs it as a new run whose document says ``rerun_of``. With the same seed and threads, CPU
training is deterministic, so ``check=True`` compares the new final weights with the old
ones bitwise — a reproducibility test of the stored run.

The run's code: a definition names the user's classes (``mynet:Net``). When the current
files still have the sha256 recorded with the run, they are imported; when they changed (or
``sources="stored"``), the stored copies are written to a temporary directory put first on
``sys.path`` and imported from there. Classes of the script itself (``__main__:Net``) come
from running the script under another name, so its ``if __name__ == "__main__":`` block
does not run. **Importing runs code**, and stored sources come from the database: whoever
can write to it can make a rerun execute anything. So a rerun that must import modules
needs ``trusted=True`` (``ptdry rerun --trusted``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import sys
import tempfile
from typing import Any, Iterable

from ptdry.core.objectdef import ObjectDef
from ptdry.core.state import State
from ptdry.db.repo import Repo
from ptdry.db.sources import SOURCE_PREFIX, definition_names, file_sha256, write_sources
from ptdry.errors import ConfigError, NotFoundError, UntrustedArchiveError

__all__ = ["RerunResult", "compare_states", "rerun"]

log = logging.getLogger(__name__)

_SCRIPT_MODULE = "__ptdry_rerun_main__"


@dataclasses.dataclass
class RerunResult:
    """What :func:`rerun` did: the new run, the code it used, and the check's verdict.

    ``code`` is ``"current"`` (the files as they are), ``"stored"`` (the sources stored with
    the run) or ``"library"`` (the run names no code of yours). ``identical`` is None without
    ``check``; else whether every tensor of the final model state is bitwise equal."""

    run_id: str
    rerun_of: str
    status: str
    code: str
    changed: list[str]
    threads: int | None
    identical: bool | None = None
    compared: int = 0
    differing: list[str] = dataclasses.field(default_factory=list)
    max_abs_diff: float = 0.0


def _tensors(state: Any, prefix: str) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k.startswith(prefix) and hasattr(v, "shape") and hasattr(v, "dtype")}


def compare_states(old: Any, new: Any, prefix: str = "trainer.model.") -> tuple[int, list[str], float]:
    """``(tensors compared, keys that differ, largest absolute difference)`` between the
    tensors (and arrays) under ``prefix`` of two states; equal means same dtype, shape and bits."""
    import numpy as np
    import torch

    a, b = _tensors(old, prefix), _tensors(new, prefix)
    differing = sorted(set(a) ^ set(b))
    worst = 0.0
    for key in sorted(set(a) & set(b)):
        x, y = torch.as_tensor(np.asarray(a[key]) if not isinstance(a[key], torch.Tensor) else a[key]), b[key]
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x, y):
            differing.append(key)
            if x.shape == y.shape and x.is_floating_point() and y.is_floating_point():
                worst = max(worst, float((x.double() - y.double()).abs().max()) if x.numel() else 0.0)
    return len(set(a) | set(b)), differing, worst


def _user_modules(doc: dict[str, Any]) -> tuple[set[str], list[dict[str, Any]]]:
    """The modules of the user's code the definition names, and the stored source entries."""
    named = {n.partition(":")[0] for n in definition_names(doc.get("definition"))}
    sources = [e for e in doc.get("sources") or [] if "sha256" in e]
    stored = {e["module"] for e in sources}
    return {m for m in named if m in stored or m == "__main__"}, sources


def _fetch(repo: Repo, doc: dict[str, Any]) -> Any:
    records = {a["name"]: a for a in doc.get("artifacts") or []}

    def fetch(file: str) -> bytes:
        record = records.get(SOURCE_PREFIX + file)
        if record is None:
            raise NotFoundError(f"run {doc['_id']} has no stored source {file!r}")
        return repo._store(record["store"]).get(record)

    return fetch


def _script(path: str) -> Any:
    """Run the script at ``path`` as a module named otherwise than ``__main__`` (its
    ``if __name__ == "__main__":`` block does not run) and expose what it defines as
    ``__main__``'s, so stored names ``__main__:Net`` resolve to it."""
    spec = importlib.util.spec_from_file_location(_SCRIPT_MODULE, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load the run's script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_SCRIPT_MODULE] = module
    spec.loader.exec_module(module)
    main = sys.modules["__main__"]
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != _SCRIPT_MODULE:
            continue
        current = getattr(main, name, None)
        if current is not None and current is not obj:
            raise ConfigError(
                f"this process's __main__ already defines {name!r}, which the run's script defines too; "
                "rerun it from the command line: ptdry rerun --trusted ID"
            )
        obj.__module__ = "__main__"
        setattr(main, name, obj)
    return module


def _prepare_code(repo: Repo, doc: dict[str, Any], sources: str, trusted: bool) -> tuple[str, list[str]]:
    """Make the run's modules importable (current files or stored sources); returns the code
    used and the files that changed since the run."""
    needed, entries = _user_modules(doc)
    changed = [e["file"] for e in entries if file_sha256(e["path"]) != e["sha256"]]
    if not needed:
        return "library", changed
    use_stored = sources == "stored" or (sources == "auto" and bool(changed))
    main_entry = next((e for e in entries if e["module"] == "__main__"), None)
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    running_it = main_entry is not None and main_file and os.path.realpath(main_file) == os.path.realpath(main_entry["path"])
    to_import = sorted(m for m in needed if m != "__main__" and m not in sys.modules)
    if "__main__" in needed and not (running_it and not use_stored):
        to_import.append("__main__ (the run's script)")
    if to_import and not trusted:
        what = "its stored sources" if use_stored else "your current files"
        raise UntrustedArchiveError(
            f"run {doc['_id']} needs code to be rebuilt — {', '.join(to_import)} — from {what}; importing it runs "
            "that code, and stored sources come from the database: pass trusted=True (ptdry rerun --trusted) "
            "if you trust this database"
        )
    if use_stored:
        directory = tempfile.mkdtemp(prefix="ptdry-rerun-")
        written = write_sources(entries, _fetch(repo, doc), directory)
        for module in needed - {"__main__"}:
            loaded = getattr(sys.modules.get(module), "__file__", None)
            if loaded is not None and os.path.realpath(loaded) != os.path.realpath(written.get(module, loaded)):
                raise ConfigError(
                    f"module {module!r} is already imported from {loaded}, which differs from the run's stored "
                    "source; rerun in a fresh process: ptdry rerun --trusted ID"
                )
        sys.path.insert(0, directory)
        script = written.get("__main__")
        log.info("rerun of %s uses its stored sources (written to %s)", doc["_id"], directory)
    else:
        for entry in entries:
            if entry["module"] == "__main__":
                continue
            rel = entry["file"].replace("/", os.sep)
            path = os.path.realpath(entry["path"])
            root = path[: -len(rel) - 1] if path.endswith(os.sep + rel) else os.path.dirname(path)
            if root not in sys.path:
                sys.path.insert(0, root)
        script = None if main_entry is None else main_entry["path"]
    if "__main__" in needed and script is not None and not (running_it and not use_stored):
        _script(script)
    return ("stored" if use_stored else "current"), changed


def _final_state(repo: Repo, doc: dict[str, Any]) -> State:
    from ptdry.io.archive import state_from_bytes

    record = next((a for a in doc.get("artifacts") or [] if a.get("name") == "state"), None)
    if record is None:
        raise NotFoundError(f"run {doc['_id']} has no stored state (its data and final weights)")
    data = repo._store(record["store"]).get(record)
    return state_from_bytes(data, trusted=repo.trusted, allowed=repo.allowed, source=f"the state of run {doc['_id']}")


def rerun(
    run_id: str,
    db: Any = None,
    *,
    trusted: bool = False,
    allowed: Iterable[Any] = (),
    sources: str = "auto",
    threads: int | None = None,
    check: bool = False,
) -> RerunResult:
    """Run the stored run ``run_id`` again, from the database alone, as a new linked run.

    Args:
        run_id: the run's full id.
        db: a DBInterface or URI (None: the embedded default).
        trusted: allow importing the run's code and loading anything its documents name.
        allowed: classes or functions the definition may name besides the allowed ones.
        sources: ``"auto"`` (the current files unless they changed since the run, then the
            stored ones), ``"stored"`` or ``"current"``.
        threads: torch threads; default: the count the run recorded.
        check: compare the new final model state with the old one, bitwise.

    Raises:
        NotFoundError: no such run, or it lacks its stored state.
        UntrustedArchiveError: the run needs code imported and ``trusted`` is False.
        ConfigError: it is not a Session run, or ``sources`` is not one of the three.
    """
    import torch

    from ptdry.train.session import Session

    if sources not in ("auto", "stored", "current"):
        raise ConfigError(f"sources must be 'auto', 'stored' or 'current'; received {sources!r}")
    repo = Repo(db, trusted=trusted, allowed=allowed)
    doc = repo.modules.find_one({"_id": run_id})
    if doc is None:
        raise NotFoundError(f"no run {run_id!r} in {repo.db!r}; see `ptdry runs`")
    code, changed = _prepare_code(repo, doc, sources, trusted)
    definition = ObjectDef.from_dict(doc["definition"], trusted=trusted, allowed=allowed).without_ids()
    session = definition.build()
    if not isinstance(session, Session):
        raise ConfigError(f"{run_id} is a {type(session).__qualname__}, not a Session run; only runs can be rerun")
    old_state = _final_state(repo, doc)
    session.data.load_state_dict(State({k[len("data.") :]: v for k, v in old_state.items() if k.startswith("data.")}))
    session.db = repo.db
    threads = threads if threads is not None else doc.get("torch_threads")
    if threads:
        torch.set_num_threads(int(threads))
    session.__dict__["_dry_document"] = {"rerun_of": run_id}
    outcome = session.run()
    result = RerunResult(outcome.run_id, run_id, outcome.status, code, changed, threads)
    if check:
        compared, differing, worst = compare_states(old_state, session.state_dict())
        result.identical = compared > 0 and not differing
        result.compared, result.differing, result.max_abs_diff = compared, differing, worst
    return result
