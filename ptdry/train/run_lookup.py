"""Finding what ``Session.load`` / ``resume`` load: the run (by id or id prefix), the state
to start from, and the parts of the tree the caller replaces."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Mapping

from ptdry.errors import ConfigError, MultipleFoundError, NotFoundError

__all__ = ["find_run_id", "plan_state", "replacer"]

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9A-Za-z_-]+")


def find_run_id(repo: Any, text: str) -> str:
    """The id of the run ``text`` names: its id, or a unique prefix of it (as ``ptdry runs``
    prints).

    Raises:
        NotFoundError: no run's id is or starts with ``text``.
        MultipleFoundError: several runs' ids start with it.
    """
    if not isinstance(text, str) or not text:
        raise ConfigError(f"run_id must be a run's id or a prefix of it (see `ptdry runs`); received {text!r}")
    if repo.modules.count_documents({"_id": text}, limit=1):
        return text
    found = []
    if _ID.fullmatch(text):
        cursor = repo.modules.find({"_id": {"$regex": f"^{re.escape(text)}"}, "parent": None}, {"_id": 1}).limit(6)
        found = [d["_id"] for d in cursor]
    if not found:
        raise NotFoundError(f"no run {text!r} in {repo.db!r}: no run's id is or starts with it; see `ptdry runs`")
    if len(found) > 1:
        listed = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise MultipleFoundError(f"run id prefix {text!r} matches several runs ({listed}); give more characters")
    return found[0]


def plan_state(doc: Mapping[str, Any], which: str | None, resuming: bool) -> tuple[str, str | None]:
    """``(state artifact to load the tree with, checkpoint to load then or None)``.

    ``which="last"`` on a run without a regular checkpoint (killed before its first one,
    or never checkpointing) means its stored state: for resuming, the state the run started
    from (``state`` while it never ended, ``state/initial`` once it did); for loading, the
    state stored last (at its end, or its start if it never ended).
    """
    artifacts = doc.get("artifacts") or []
    regular = [
        a for a in artifacts if a.get("name", "").startswith("checkpoint/") and (a.get("meta") or {}).get("reason") != "exception"
    ]
    if which != "last" or regular:
        return "state", which
    run = doc["_id"]
    ended = (doc.get("status") or {}).get("state") != "running"
    if not resuming:
        log.info("run %s has no checkpoint; loading the state stored at its %s", run, "end" if ended else "start")
        return "state", None
    if any(a.get("name") == "state/initial" for a in artifacts):
        log.info("run %s has no checkpoint; it restarts from its initial state", run)
        return "state/initial", None
    if not ended:
        log.info("run %s was stopped before its first checkpoint; it restarts from its initial state", run)
        return "state", None
    log.warning("run %s has no checkpoint and no initial state; it continues from the state stored at its end", run)
    return "state", None


def replacer(replace: Mapping[str, Any] | None) -> Callable[[Any], None] | None:
    """A function setting each ``{"dotted.path": object}`` of ``replace`` in a built tree."""
    if not replace:
        return None
    if not isinstance(replace, Mapping):
        raise ConfigError(
            f"replace must map dotted paths to objects, e.g. {{'trainer.looper': Looper(...)}}; received {replace!r}"
        )

    def apply(root: Any) -> None:
        for path, value in replace.items():
            parts = str(path).split(".")
            node = root
            for i, part in enumerate(parts):
                if not hasattr(node, part):
                    where = ".".join(parts[:i]) or "the run's tree"
                    children = sorted(n for n, _ in node.named_children()) if hasattr(node, "named_children") else []
                    raise ConfigError(f"replace: {path!r} is not a part of the stored tree ({where} has {children})")
                if i < len(parts) - 1:
                    node = getattr(node, part)
            setattr(node, parts[-1], value)

    return apply
