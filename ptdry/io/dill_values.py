"""Values only dill can store — lambdas, closures, local classes — in trusted archives.

``save_object(obj, path, trusted=True)`` stores a constructor argument that a definition
cannot name (``Model(loss=lambda y, t: ...)``) and a state value that pickle cannot write
with `dill <https://pypi.org/project/dill/>`_ (an optional dependency:
``pip install 'ptdry[dill]'``). Each such value is a member ``dill/<n>.pkl``; where it was,
the definition or state holds ``{"__dill_ref__": {"index": n, "path": ..., "type": ...}}``,
and the manifest lists every one under ``"dill"`` (member, key path, type). The same object
met twice is stored once and loads as one object.

Loading such a value runs code the file chose, so ``load_object`` refuses an archive that
lists any unless ``trusted=True`` — before anything is unpickled — naming each key path.
Archives without such values have no ``"dill"`` entry and load exactly as before.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator

from ptdry.core import serialize
from ptdry.errors import ArchiveError, SerializationError, UntrustedArchiveError

__all__ = ["MARKER", "DillReader", "DillWriter", "check_records", "member"]

MARKER = "__dill_ref__"
#: The manifest key listing the dill members.
MANIFEST_KEY = "dill"


def member(n: int) -> str:
    return f"dill/{n}.pkl"


def _import_dill(purpose: str, error: type[Exception]) -> Any:
    try:
        import dill
    except ImportError as exc:
        raise error(f"{purpose} needs the dill package, which is not installed; pip install 'ptdry[dill]'") from exc
    return dill


def _kind(value: Any) -> str:
    """``class m.Local``, ``function m.f.<locals>.<lambda>`` or the type ``m.Thing``."""
    if isinstance(value, type):
        return f"class {value.__module__}.{value.__qualname__}"
    if inspect.isfunction(value):
        return f"function {value.__module__}.{value.__qualname__}"
    return f"{type(value).__module__}.{type(value).__qualname__}"


class DillWriter:
    """Collects the values of one archive that go to ``dill/<n>.pkl``."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.records: list[dict[str, Any]] = []
        self._seen: dict[int, tuple[Any, dict]] = {}  # id -> (the value, kept alive; its marker)

    def add(self, value: Any, path: str) -> dict[str, Any]:
        """Store ``value`` (found at ``path``) and return the marker that stands for it.

        Raises:
            SerializationError: dill cannot store it either, or dill is not installed.
        """
        if id(value) in self._seen:
            return self._seen[id(value)][1]
        kind = _kind(value)
        dill = _import_dill(f"storing {path} ({kind}) with save_object(..., trusted=True)", SerializationError)
        try:
            data = dill.dumps(value, protocol=4, recurse=True)
        except Exception as exc:
            raise SerializationError(
                f"{path} ({kind}) cannot be stored, not even with dill ({type(exc).__name__}: {exc})"
            ) from exc
        n = len(self.blobs)
        self.blobs.append(data)
        self.records.append({"member": member(n), "path": path, "type": kind})
        marker = {MARKER: {"index": n, "path": path, "type": kind}}
        self._seen[id(value)] = (value, marker)
        return marker

    def definition_fallback(self, value: Any, path: str) -> dict[str, Any]:
        """For ``ObjectDef.to_dict(fallback=...)``: dill for what has no name, but never for
        data refused for its size (that belongs in the state, as the error says)."""
        if isinstance(value, (bytes, bytearray)) or type(value).__module__.split(".")[0] in ("numpy", "torch"):
            serialize.encode(value, path)  # raises the size error it raised before
        return self.add(value, path)

    def members(self) -> Iterator[tuple[str, bytes, bool]]:
        for n, data in enumerate(self.blobs):
            yield member(n), data, True


def check_records(manifest: dict[str, Any], *, trusted: bool, where: str, func: str) -> list:
    """The manifest's dill records; refuses them (naming each key path) unless ``trusted``.

    Raises:
        UntrustedArchiveError: the archive holds dill values and ``trusted`` is false.
        ArchiveError: the list is malformed.
    """
    records = manifest.get(MANIFEST_KEY, [])
    if not isinstance(records, list):
        raise ArchiveError(f"cannot load {where}: its manifest's list of dill values is malformed")
    if records and not trusted:
        raise untrusted(records, where, func)
    return records


_DILL = "stored with dill (a lambda, closure or local class), which runs arbitrary code when loaded"


def untrusted(records: list, where: str, func: str, how: str = _DILL) -> UntrustedArchiveError:
    """The refusal to load ``records`` (values ``how`` stored, each ``{"path", "type"}``) from
    ``where`` without ``trusted=True``, naming the first five and ``func``'s argument."""
    listed = ", ".join(
        f"{r.get('path')} ({r.get('type')})" if isinstance(r, dict) else repr(r) for r in records[:5]
    )
    more = f" and {len(records) - 5} more" if len(records) > 5 else ""
    values = "value" if len(records) == 1 else "values"
    return UntrustedArchiveError(
        f"cannot load {where}: {values} {listed}{more} {how}; "
        f"pass trusted=True to {func} if you trust this file"
    )


class DillReader:
    """Loads ``dill/<n>.pkl`` members on first use (each once), refusing unless trusted."""

    def __init__(self, read: Callable[[str], bytes], *, trusted: bool, where: str, func: str) -> None:
        self.read, self.trusted, self.where, self.func = read, trusted, where, func
        self._loaded: dict[int, Any] = {}

    def hook(self, marker: str, payload: Any, path: str) -> Any:
        """A decode hook (``serialize.decode``'s): handles :data:`MARKER`, nothing else."""
        if marker != MARKER:
            return serialize.NOT_HANDLED
        return self.load(payload)

    def load(self, payload: Any) -> Any:
        if not isinstance(payload, dict) or type(payload.get("index")) is not int or payload["index"] < 0:
            raise ArchiveError(f"cannot load {self.where}: malformed reference to a dill value {payload!r}")
        if not self.trusted:
            raise untrusted([payload], self.where, self.func)
        n = payload["index"]
        if n not in self._loaded:
            dill = _import_dill(f"loading {payload.get('path')} from {self.where}", ArchiveError)
            data = self.read(member(n))
            try:
                self._loaded[n] = dill.loads(data)
            except Exception as exc:
                raise ArchiveError(
                    f"cannot load {self.where}: the dill value {payload.get('path')} cannot be read "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
        return self._loaded[n]
