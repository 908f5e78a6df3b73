"""DataRef: stands in a definition for a data argument whose values live in the module's state.

A class lists such arguments in ``dry_data_args`` (e.g. a DataProvider's ``train``/``val``).
``definition()`` records a fingerprint (sha256 of the arrays' dtype, shape and bytes) instead
of megabytes of data, so runs on the same data share a category hash, and the data itself
travels with the state (archives, database artifacts).
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["DataRef", "SAMPLES"]

#: How many elements of a map-style dataset its fingerprint hashes (spread evenly over it).
SAMPLES = 16


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
        """Fingerprint arrays/tensors (and tuples, lists, dicts of them) by content; a
        map-style dataset (``__len__`` and ``__getitem__``, e.g. a torch Dataset) by its class,
        length and the content of :data:`SAMPLES` elements spread over it; other objects by
        class name (and length). A DataRef is its own fingerprint (a module rebuilt from a
        definition still holds the placeholder)."""
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
    if isinstance(value, np.generic):  # a NumPy scalar: by value, as a 0-d array
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes() if not arr.dtype.hasobject else repr(arr.tolist()).encode())
        return {"dtype": str(arr.dtype), "shape": list(arr.shape)}
    if value is None or isinstance(value, (bool, int, float, str)):
        h.update(repr(value).encode())
        return value
    name = f"{type(value).__module__}:{type(value).__qualname__}"
    length = _length(value)
    h.update(f"{name}/{length}".encode())
    if length and hasattr(value, "__getitem__") and not isinstance(value, (str, bytes, bytearray)):
        # a map-style dataset (torch Dataset, ...): its content decides, not its class and
        # length; SAMPLES elements spread over it (first and last included) are hashed
        picks = sorted({round(i * (length - 1) / (SAMPLES - 1)) for i in range(SAMPLES)}) if length > 1 else [0]
        sub = hashlib.sha256()
        try:
            for i in picks:
                sub.update(f"@{i}".encode())
                _feed_leaf(sub, value[i])
        except (KeyError, IndexError, TypeError):  # not indexable by position after all
            return {"type": name, "length": length}
        h.update(sub.digest())
        return {"type": name, "length": length, "sampled": len(picks)}
    return {"type": name, "length": length}


def _length(value: Any) -> int | None:
    try:
        return len(value) if hasattr(value, "__len__") else None
    except TypeError:  # e.g. a tf.data.Dataset of unknown or infinite length
        return None


def _feed_leaf(h: Any, value: Any) -> None:
    """Hash one sampled element: arrays/tensors and containers by content, objects that can
    give their bytes (PIL images) by those, anything else by type only (never by ``repr``,
    which may hold memory addresses)."""
    if isinstance(value, (list, tuple, dict, DataRef)) or value is None or isinstance(value, (bool, int, float, str)):
        _feed(h, value)
        return
    import numpy as np

    if isinstance(value, np.ndarray) or isinstance(value, np.generic) or type(value).__module__.startswith("torch"):
        _feed(h, np.asarray(value) if isinstance(value, np.generic) else value)
        return
    h.update(f"{type(value).__module__}:{type(value).__qualname__}".encode())
    to_bytes = getattr(value, "tobytes", None)
    if callable(to_bytes):
        h.update(bytes(to_bytes()))
