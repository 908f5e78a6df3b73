"""State: what ``state_dict()`` returns — a dict by dotted path, with attribute access."""

from __future__ import annotations

from typing import Any

from ptdry.core import serialize
from ptdry.core.metamodule import Metamodule

__all__ = ["State"]


class State(dict, Metamodule):
    """A Module's state by dotted path (``"trainer.model.net.0.weight"``).

    Values are tensors, NumPy arrays, Python scalars, strings and nested dicts/lists.
    ``s.key`` reads ``s["key"]``; calling ``s()`` returns ``s`` (a metamodule is callable).

    Example:
        >>> s = State({"step": 3})
        >>> s.step, s() is s
        (3, True)
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"State has no key {name!r}; keys: {sorted(self)[:10]}") from None

    def __call__(self) -> "State":
        return self

    def to_document(self) -> dict[str, Any]:
        """BSON-safe data with tensors and arrays inline (for small states; big ones go to
        artifacts through the archive codec)."""
        return {"state": serialize.encode(dict(self), "state", limit=None)}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "State":
        return cls(serialize.decode(doc["state"]))
