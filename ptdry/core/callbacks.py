"""Callbacks: the registry that calls every callback defining a trigger, in order.

A callback is any object with methods named after triggers (``on_step_end``); usually a
:class:`~ptdry.core.callback.Callback`. The registry looks up, once per trigger, which
callbacks define it, so a trigger nobody handles costs one dict lookup.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ptdry.core.metamodule import Metamodule
from ptdry.errors import ConfigError, StateDictError, add_note

__all__ = ["Callbacks"]


def _is_trigger_name(name: str) -> bool:
    """Triggers are named ``on_<event>``, so no other method of a callback is ever called."""
    return name.isidentifier() and name.startswith("on_") and len(name) > 3


class Callbacks(Metamodule):
    """An ordered registry of callbacks, addressed by name.

    Example:
        >>> class Count:
        ...     n = 0
        ...     def on_step_end(self, **_): self.n += 1
        >>> cbs = Callbacks(); c = cbs.register(Count())
        >>> cbs.call("on_step_end", loss=0.1); c.n
        1
    """

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}
        self._handlers: dict[str, list[tuple[str, Callable[..., Any]]]] = {}

    def register(self, callback: Any, name: str | None = None) -> Any:
        """Add ``callback`` (called after those already registered); returns it."""
        if isinstance(callback, type):
            raise ConfigError(f"register() needs a callback instance; received the class {callback.__name__}")
        base = name or type(callback).__name__
        if name is not None and name in self._entries:
            raise ConfigError(f"a callback named {name!r} is already registered")
        unique, n = base, 1
        while unique in self._entries:
            n += 1
            unique = f"{base}_{n}"
        self._entries[unique] = callback
        self._handlers.clear()
        return callback

    def remove(self, callback: Any) -> None:
        """Unregister a callback (the object or its name)."""
        for key, value in list(self._entries.items()):
            if value is callback or key == callback:
                del self._entries[key]
                self._handlers.clear()
                return
        raise ConfigError(f"callback {callback!r} is not registered; registered: {list(self._entries)}")

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def handlers(self, trigger: str) -> list[tuple[str, Callable[..., Any]]]:
        """``[(name, bound method), ...]`` of the callbacks that define ``trigger``."""
        found = self._handlers.get(trigger)
        if found is None:
            if not _is_trigger_name(trigger):
                raise ConfigError(f"{trigger!r} is not a valid trigger name (use e.g. 'on_step_end')")
            found = []
            for key, cb in self._entries.items():
                fn = getattr(cb, trigger, None)
                if callable(fn):
                    found.append((key, fn))
            self._handlers[trigger] = found
        return found

    def call(self, trigger: str, **kwargs: Any) -> None:
        """Call ``trigger(**kwargs)`` on every callback that defines it, in registration order.

        An exception keeps its type; a note (and ``exc.ptdry_callback``) names the callback.
        """
        for key, fn in self.handlers(trigger):
            try:
                fn(**kwargs)
            except Exception as exc:
                if getattr(exc, "ptdry_callback", None) is None:
                    exc.ptdry_callback = key  # type: ignore[attr-defined]
                    add_note(exc, f"raised by callback {key!r} in {trigger}")
                raise

    def state_dict(self) -> dict[str, Any]:
        """``{name: callback.state_dict()}`` for callbacks that have state."""
        return {k: cb.state_dict() for k, cb in self._entries.items() if hasattr(cb, "state_dict")}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Give each registered callback its part of :meth:`state_dict` output.

        Raises:
            StateDictError: with ``strict``, naming every stateful callback the state lacks and
                every name in the state that is not registered.
        """
        expected = {k for k, cb in self._entries.items() if hasattr(cb, "state_dict")}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - set(self._entries))
        if strict and (missing or unexpected):
            lines = ["cannot load callback state:"]
            if missing:
                lines.append(f"  missing callbacks ({len(missing)}): {', '.join(missing)}")
            if unexpected:
                lines.append(f"  unregistered callbacks ({len(unexpected)}): {', '.join(unexpected)}")
            registered = ", ".join(self._entries) or "(none)"
            lines.append(f"  registered: {registered}; pass strict=False to load what matches")
            raise StateDictError("\n".join(lines), missing, unexpected)
        for key, value in state.items():
            cb = self._entries.get(key)
            if cb is None:
                continue
            if getattr(type(cb), "_dry_module", False) is True:  # a Module: strictness passes down
                cb.load_state_dict(value, strict=strict)
            else:  # a plain callback with torch/Ignite-style state methods
                cb.load_state_dict(value)

    def to_document(self) -> dict[str, Any]:
        out = []
        for key, cb in self._entries.items():
            entry: dict[str, Any] = {"name": key, "cls": f"{type(cb).__module__}:{type(cb).__qualname__}"}
            if hasattr(cb, "definition"):
                entry["definition"] = cb.definition().to_dict()
            out.append(entry)
        return {"callbacks": out}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Callbacks":
        """Rebuild the registry; callbacks stored with a definition are built again."""
        from ptdry.core.objectdef import ObjectDef

        reg = cls()
        for entry in doc.get("callbacks", []):
            if "definition" not in entry:
                raise ConfigError(f"callback {entry.get('name')!r} was stored without a definition; cannot rebuild it")
            reg.register(ObjectDef.from_dict(entry["definition"]).build(), name=entry["name"])
        return reg

    def __repr__(self) -> str:
        return f"Callbacks({list(self._entries)})"
