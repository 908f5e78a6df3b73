"""DataRef: stands in a definition for a data argument whose values live in the module's state.

A class lists such arguments in ``dry_data_args`` (e.g. a DataProvider's ``train``/``val``).
``definition()`` records a fingerprint (sha256 of the arrays' dtype, shape and bytes) instead
of megabytes of data, so runs on the same data share a category hash, and the data itself
travels with the state (archives, database artifacts).
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["DataRef"]


class DataRef:
    """A fingerprint of data kept in state. ``DataRef.of(value)`` makes one.

    Example:
        >>> import numpy as np
        >>> DataRef.of((np.zeros(3), np.ones(3))) == DataRef.of((np.zeros(3), np.ones(3)))
        True
    """

    __slots__ = ("sha256", "summary")

    def __init__(self, sha256: str, summary: Any = None) -> None:
        self.sha256 = sha256
        self.summary = summary

    @classmethod
    def of(cls, value: Any) -> "DataRef":
        """Fingerprint arrays/tensors (and tuples, lists, dicts of them) by content; other
        objects (e.g. a torch Dataset) by class name and length only. A DataRef is its own
        fingerprint (a module rebuilt from a definition still holds the placeholder)."""
        if isinstance(value, DataRef):
            return value
        h = hashlib.sha256()
        summary = _feed(h, value)
        return cls(h.hexdigest(), summary)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataRef) and other.sha256 == self.sha256

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DataRef({self.sha256[:12]}…, {self.summary})"


def _feed(h: Any, value: Any) -> Any:
    import numpy as np

    if isinstance(value, DataRef):
        h.update(value.sha256.encode())
        return value.summary
    if isinstance(value, (list, tuple)):
        h.update(f"seq{len(value)}".encode())
        return [_feed(h, v) for v in value]
    if isinstance(value, dict):
        h.update(f"map{len(value)}".encode())
        return {str(k): _feed(h, v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if type(value).__module__.startswith("torch") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes() if not arr.dtype.hasobject else repr(arr.tolist()).encode())
        return {"dtype": str(arr.dtype), "shape": list(arr.shape)}
    if value is None or isinstance(value, (bool, int, float, str)):
        h.update(repr(value).encode())
        return value
    name = f"{type(value).__module__}:{type(value).__qualname__}"
    length = len(value) if hasattr(value, "__len__") else None
    h.update(f"{name}/{length}".encode())
    return {"type": name, "length": length}
