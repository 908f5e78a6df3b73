"""Typed, validated attributes with change callbacks (after pyveda's properties).

A property checks every assignment; a rejected value raises :class:`ValidationError` and
the old value stays. Listeners registered with ``obj.on_change(name, fn)`` are called as
``fn(name, old, new, obj)``, in registration order, only when the value really changes.

Example:
    >>> from ptdry import Module
    >>> class Data(Module):
    ...     partition = Partition(default=(80, 10, 10))
    ...     batch_size = Int(default=32, min=1)
    >>> d = Data()
    >>> seen = []
    >>> _ = d.on_change("batch_size", lambda name, old, new, obj: seen.append((old, new)))
    >>> d.batch_size = 64; d.batch_size = 64; seen
    [(32, 64)]
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Iterable, Sequence

from ptdry.errors import ConfigError, ValidationError

__all__ = ["Bool", "Choice", "Float", "Instance", "Int", "Partition", "Property", "Seq", "Str", "add_listener"]

_MISSING = object()
Validator = Callable[[Any], Any]


class Property:
    """A validated attribute. ``validators`` are callables that return False or raise to reject.

    Args:
        default: value before the first assignment (copied per instance).
        validators: extra checks, each ``fn(value) -> bool | None``.
        allow_none: accept ``None`` without checks.
        doc: help text.
    """

    kind = "a value"

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        validators: Iterable[Validator] = (),
        allow_none: bool = False,
        doc: str = "",
    ) -> None:
        self.validators = list(validators)
        self.allow_none = allow_none
        self.__doc__ = doc
        self.name = "?"
        self.owner_name = "?"
        self.default = _MISSING if default is _MISSING else self.validate(default)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner_name = owner.__name__

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        if self.name not in d:
            if self.default is _MISSING:
                raise AttributeError(f"{self.owner_name}.{self.name} has no value yet and no default")
            d[self.name] = copy.deepcopy(self.default)
        return d[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        new = self.validate(value, type(obj).__name__)
        d = obj.__dict__
        old = d.get(self.name, self.default)
        d[self.name] = new
        recorded = d.get("_dry_kwargs")
        if d.get("_dry_ready") and recorded is not None and self.name in recorded:
            recorded[self.name] = new  # a Module's definition records the argument as it is now
        if old is _MISSING or not _equal(old, new):
            for fn in list(d.get("_dry_listeners", {}).get(self.name, ())):
                fn(self.name, None if old is _MISSING else old, new, obj)

    def validate(self, value: Any, owner: str | None = None) -> Any:
        """Return the (normalized) value or raise :class:`ValidationError` naming
        ``<owner>.<name>`` (owner: the class the property is set on; default: its class)."""
        try:
            return self.accept(value)
        except ValidationError:
            raise
        except (TypeError, ValueError) as exc:
            label = f"{owner}.{self.name}" if owner and self.name != "?" else self._label()
            raise ValidationError(f"{label} must be {self.kind}: {exc}; received {_brief(value)}") from None

    def accept(self, value: Any) -> Any:
        """:meth:`check` plus the user's validators; raises TypeError/ValueError (no context)."""
        if value is None and self.allow_none:
            return None
        value = self.check(value)
        for fn in self.validators:
            if fn(value) is False:
                raise ValueError(f"rejected by validator {getattr(fn, '__name__', fn)!r}")
        return value

    def _label(self) -> str:
        if self.name == "?":  # validating the default, before the class assigned a name
            return f"the default of {type(self).__name__}(...)"
        return f"{self.owner_name}.{self.name}"

    def check(self, value: Any) -> Any:
        """Type check and normalize; subclasses override. Raise TypeError/ValueError."""
        return value


def _equal(a: Any, b: Any) -> bool:
    try:
        result = a == b
        if isinstance(result, bool):
            return result
        return bool(getattr(result, "all", lambda: result)())
    except Exception:
        return a is b


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bounds(value: float, lo: float | None, hi: float | None, above: float | None = None) -> None:
    if lo is not None and value < lo:
        raise ValueError(f"below the minimum {lo}")
    if above is not None and value <= above:
        raise ValueError(f"not above {above}")
    if hi is not None and value > hi:
        raise ValueError(f"above the maximum {hi}")


class Int(Property):
    """An integer, optionally within ``[min, max]`` (bools are refused)."""

    kind = "an integer"

    def __init__(self, default: Any = _MISSING, *, min: int | None = None, max: int | None = None, **kw: Any):
        self.min, self.max = min, max
        super().__init__(default, **kw)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError("not an integer")
        value = int(value)
        _bounds(value, self.min, self.max)
        return value


class Float(Property):
    """A real number (ints accepted, stored as float), optionally within ``[min, max]`` and
    strictly greater than ``above``."""

    kind = "a number"

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
        above: float | None = None,
        **kw: Any,
    ):
        self.min, self.max, self.above = min, max, above
        super().__init__(default, **kw)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError("not a number")
        value = float(value)
        if math.isnan(value):
            raise ValueError("NaN is not allowed")
        _bounds(value, self.min, self.max, self.above)
        return value


class Str(Property):
    """A string, optionally non-empty."""

    kind = "a string"

    def __init__(self, default: Any = _MISSING, *, nonempty: bool = False, **kw: Any):
        self.nonempty = nonempty
        super().__init__(default, **kw)

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError("not a string")
        if self.nonempty and not value:
            raise ValueError("empty")
        return value


class Instance(Property):
    """An instance of a class (or of one of a tuple of classes); ``kind`` says what to pass.

    Example:
        >>> from ptdry import Module
        >>> class Owner(Module):
        ...     part = Instance(dict, kind="a dict of parts")
        ...     def __init__(self, part):
        ...         self.part = part
        >>> Owner(part=3)
        Traceback (most recent call last):
        ...
        ptdry.errors.ValidationError: Owner.part must be a dict of parts: int given; received 3
    """

    def __init__(self, types: type | tuple[type, ...], default: Any = _MISSING, *, kind: str | None = None, **kw: Any):
        self.types = types
        names = [t.__name__ for t in (types if isinstance(types, tuple) else (types,))]
        self.kind = kind or "an instance of " + " or ".join(names)
        super().__init__(default, **kw)

    def check(self, value: Any) -> Any:
        if not isinstance(value, self.types):
            raise TypeError(f"{type(value).__qualname__} given")
        return value


class Bool(Property):
    """True or False (not 0/1)."""

    kind = "True or False"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError("not a bool")
        return value


class Choice(Property):
    """One of a fixed set of options."""

    def __init__(self, options: Sequence[Any], default: Any = _MISSING, **kw: Any):
        if not options:
            raise ConfigError("Choice needs at least one option")
        self.options = list(options)
        self.kind = f"one of {self.options}"
        super().__init__(default, **kw)

    def check(self, value: Any) -> Any:
        if value not in self.options:
            raise ValueError("not an option")
        return value


class Seq(Property):
    """A sequence stored as a tuple; ``item`` (a Property) checks each element."""

    kind = "a sequence"

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        item: Property | None = None,
        length: int | None = None,
        **kw: Any,
    ):
        self.item, self.length = item, length
        super().__init__(default, **kw)

    def check(self, value: Any) -> tuple:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError("not a sequence")
        value = tuple(value)
        if self.length is not None and len(value) != self.length:
            raise ValueError(f"needs {self.length} items, got {len(value)}")
        if self.item is not None:
            items = []
            for i, v in enumerate(value):
                try:
                    items.append(self.item.accept(v))
                except (TypeError, ValueError) as exc:
                    kind = TypeError if isinstance(exc, TypeError) else ValueError
                    raise kind(f"item {i}: {exc}") from None
            value = tuple(items)
        return value


class Partition(Seq):
    """``parts`` non-negative numbers that sum to ``total`` (within ``tolerance``).

    The default shape is a train/validation/test split in percent: ``(80, 10, 10)``.
    """

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        parts: int = 3,
        total: float = 100.0,
        tolerance: float = 1e-6,
        **kw: Any,
    ):
        self.total, self.tolerance = total, tolerance
        self.kind = f"{parts} non-negative numbers summing to {total:g}"
        super().__init__(default, item=Float(min=0.0), length=parts, **kw)

    def check(self, value: Any) -> tuple:
        try:
            value = super().check(value)
        except ValueError as exc:
            raise ValueError(str(exc).replace("below the minimum 0.0", "negative")) from None
        if not math.isclose(sum(value), self.total, rel_tol=0, abs_tol=self.tolerance * max(1.0, self.total)):
            raise ValueError(f"they sum to {sum(value):g}")
        return value


def add_listener(obj: Any, name: str, fn: Callable[[str, Any, Any, Any], None]) -> Callable[[], None]:
    """Register ``fn(name, old, new, obj)`` for property ``name`` of ``obj``; returns a remover."""
    prop = getattr(type(obj), name, None)
    if not isinstance(prop, Property):
        props = [k for k in dir(type(obj)) if isinstance(getattr(type(obj), k, None), Property)]
        raise ConfigError(f"{type(obj).__name__} has no property {name!r}; properties: {props}")
    if not callable(fn):
        raise ConfigError(f"on_change needs a callable; received {fn!r}")
    listeners = obj.__dict__.setdefault("_dry_listeners", {}).setdefault(name, [])
    listeners.append(fn)

    def remove() -> None:
        if fn in listeners:
            listeners.remove(fn)

    return remove
