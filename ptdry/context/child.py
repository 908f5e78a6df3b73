"""The process ``compute_context`` starts: ``python -m ptdry.context.child <work dir>``.

The parent writes ``spec.json`` (the allocation, its ``sys.path``, the function's name) and
``payload.pkl`` (the function and its arguments, with dill) into the work dir and starts
this module with the context's environment variables already set. The child then:

1. takes the parent's ``sys.path`` (so the function's module imports here too);
2. imports the requested frameworks, and only those, and applies the limits
   (:func:`ptdry.context.limits.configure`);
3. makes the allocation its active context (``context_check`` works inside);
4. loads the function and its arguments, calls it, and writes ``result.pkl`` (renamed into
   place when complete): the return value, or the exception with its traceback text.

Nothing heavy is imported before step 2: this file and what it imports load only ptdry's
light layers.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

from ptdry.context.allocation import Allocation
from ptdry.context.limits import configure
from ptdry.context.manager import activate_in_child
from ptdry.errors import SerializationError

__all__ = ["PAYLOAD", "RESULT", "SPEC", "main"]

SPEC = "spec.json"
PAYLOAD = "payload.pkl"
RESULT = "result.pkl"


def main(argv: list[str]) -> int:
    """Run the job in ``argv[0]`` (a work dir); the result goes to its ``result.pkl``."""
    work = Path(argv[0])
    spec = json.loads((work / SPEC).read_text())
    sys.path[:] = spec["sys_path"]
    name = spec["name"]
    try:
        allocation = Allocation.from_dict(spec["allocation"])
        configure(allocation, child=True)
        activate_in_child(allocation)
        import dill

        fn, args, kwargs = dill.loads((work / PAYLOAD).read_bytes())
        value = fn(*args, **kwargs)
        try:
            outcome: dict[str, Any] = {"ok": True, "value": dill.dumps(value, recurse=True)}
        except Exception as exc:
            raise SerializationError(
                f"{name} returned {type(value).__module__}.{type(value).__qualname__}, which dill cannot "
                f"send back to the parent ({type(exc).__name__}: {exc}); return plain data instead"
            ) from exc
    except Exception as exc:
        outcome = _error(exc)
    _write(work, outcome)
    return 0


def _error(exc: BaseException) -> dict[str, Any]:
    """The exception as the parent needs it: dill bytes (when it pickles) and its text."""
    kind = type(exc)
    out: dict[str, Any] = {
        "ok": False,
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(kind, exc, exc.__traceback__)),
        "error": None,
        "why": "",
    }
    try:
        import dill

        out["error"] = dill.dumps(exc, recurse=True)
    except Exception as problem:  # the text still goes back
        out["why"] = f"{type(problem).__name__}: {problem}"
    return out


def _write(work: Path, outcome: dict[str, Any]) -> None:
    """Write ``result.pkl`` so that the parent sees it whole or not at all."""
    tmp = work / (RESULT + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(outcome, f, protocol=4)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, work / RESULT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
