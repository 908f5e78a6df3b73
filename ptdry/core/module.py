"""Module: the callable building block of ptdry — identity, a tree of children, state.

Every subclass records its constructor arguments and a ``dry_id`` automatically (its
``__init__`` is wrapped when the class is created), whether or not it calls
``super().__init__()``. Attributes holding Modules, ``torch.nn.Module``\\ s, optimizers or
schedulers become children, like in torch; ``state_dict()`` gathers their state by dotted
path. A Module may also inherit ``torch.nn.Module`` (put ``Module`` first in the bases).
"""

from __future__ import annotations

import functools
import inspect
import sys
import uuid
from typing import Any, Callable, Iterator

from ptdry.core.allowed import TRUSTED
from ptdry.core.callbacks import Callbacks
from ptdry.core.dataref import DataRef
from ptdry.core.history import History
from ptdry.core.objectdef import Configuration, ObjectDef
from ptdry.core.state import State
from ptdry.core.statistic import Statistic
from ptdry.core.status import Status
from ptdry.errors import ConfigError, SerializationError, StateDictError

__all__ = ["Module"]

_CHILD_TYPES: tuple[type, ...] | None = None


def _torch_child_types() -> tuple[type, ...]:
    """Torch types that count as children; empty until torch is imported (never imports it)."""
    global _CHILD_TYPES
    if _CHILD_TYPES is None:
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "optim"):
            return ()
        from torch.optim import lr_scheduler

        _CHILD_TYPES = (
            torch.nn.Module,
            torch.optim.Optimizer,
            lr_scheduler.LRScheduler,
            lr_scheduler.ReduceLROnPlateau,
        )
    return _CHILD_TYPES


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and hasattr(torch, "nn") and isinstance(obj, torch.nn.Module)


def _is_child(value: Any) -> bool:
    return isinstance(value, Module) or isinstance(value, _torch_child_types())


def _setup(obj: Any) -> None:
    """Create ptdry's (and, for torch hybrids, torch's) internals once."""
    d = obj.__dict__
    if "_dry_children" in d:
        return
    if _is_torch_module(obj) and "_parameters" not in d:
        import torch

        torch.nn.Module.__init__(obj)
    d["_dry_children"] = {}


def _capture(sig: inspect.Signature, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Split a call into recorded (args, kwargs): defaulted parameters go to kwargs."""
    try:
        bound = sig.bind(None, *args, **kwargs)
    except TypeError:
        return tuple(args), dict(kwargs)  # the real __init__ will raise the natural error
    bound.apply_defaults()
    params = sig.parameters
    has_varargs = any(p.kind == p.VAR_POSITIONAL for p in params.values())
    out_args: list[Any] = []
    out_kwargs: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue  # self
        p = params[name]
        if p.kind == p.VAR_POSITIONAL:
            out_args.extend(value)
        elif p.kind == p.VAR_KEYWORD:
            out_kwargs.update(value)
        elif p.kind == p.KEYWORD_ONLY:
            out_kwargs[name] = value
        elif p.kind == p.POSITIONAL_ONLY or has_varargs:
            out_args.append(value)
        elif p.default is p.empty and i - 1 < len(args):
            out_args.append(value)
        else:
            out_kwargs[name] = value
    return tuple(out_args), out_kwargs


def _wrap_init(init: Callable[..., None]) -> Callable[..., None]:
    sig = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        d = self.__dict__
        if "_dry_id" in d:  # super().__init__() or a second call: identity is already set
            kwargs.pop("dry_id", None)
            init(self, *args, **kwargs)
            return
        dry_id = kwargs.pop("dry_id", None)
        if dry_id is None:
            dry_id = str(uuid.uuid4())
        elif not isinstance(dry_id, str) or not dry_id:
            raise ConfigError(f"dry_id must be a non-empty string; received {dry_id!r}")
        _setup(self)
        d["_dry_args"], d["_dry_kwargs"] = _capture(sig, args, kwargs)
        d["_dry_id"] = dry_id
        init(self, *args, **kwargs)

    __init__._dry_wrapped = True  # type: ignore[attr-defined]
    return __init__


class Module:
    """A callable component with identity, children, state and metamodules.

    Example:
        >>> class Scale(Module):
        ...     def __init__(self, factor=2.0):
        ...         self.factor = factor
        ...     def __call__(self, x):
        ...         return x * self.factor
        >>> s = Scale(3.0)
        >>> s(2), s.dry_kwargs["factor"], s.definition().build()(1)
        (6.0, 3.0, 3.0)
    """

    #: Names of keyword arguments holding data that lives in state, not in the definition
    #: (the definition records a :class:`~ptdry.core.dataref.DataRef` fingerprint instead).
    dry_data_args: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_dry_wrapped", False):
            cls.__init__ = _wrap_init(init)  # type: ignore[method-assign]

    def __init__(self) -> None:
        _setup(self)

    # -- identity ----------------------------------------------------------------------------
    @property
    def dry_id(self) -> str:
        """This object's id (uuid4 string unless given as ``dry_id=``)."""
        return self.__dict__["_dry_id"]

    @property
    def dry_args(self) -> tuple:
        """Positional constructor arguments as recorded."""
        return self.__dict__["_dry_args"]

    @property
    def dry_kwargs(self) -> dict[str, Any]:
        """Keyword constructor arguments (defaults included), then ``dry_id``; a copy."""
        return {**self.__dict__["_dry_kwargs"], "dry_id": self.dry_id}

    def _record_argument(self, name: str, value: Any) -> None:
        """Change what the definition records for keyword argument ``name`` (e.g. to mask a
        password); for subclasses, called from ``__init__``."""
        if name not in self.__dict__["_dry_kwargs"]:
            raise ConfigError(f"{type(self).__name__} has no recorded keyword argument {name!r}")
        self.__dict__["_dry_kwargs"][name] = value

    def definition(self) -> ObjectDef:
        """This module as an :class:`ObjectDef` value (nested Modules as nested definitions).

        Raises:
            SerializationError: an argument cannot be stored; the message names its path.
        """
        return _definition(self, {}, type(self).__name__)

    def query_document(self) -> dict[str, Any]:
        """The fields a :class:`~ptdry.db.selector.Selector` matches on."""
        return self.definition().query_document()

    # -- call ----------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _is_torch_module(self):
            import torch

            return torch.nn.Module.__call__(self, *args, **kwargs)
        raise NotImplementedError(
            f"{type(self).__name__} does not define __call__; a Module subclass defines its "
            "primary action there"
        )

    # -- tree ----------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_dry_children" not in d:
            _setup(self)
        children = d["_dry_children"]
        if _is_child(value):
            children[name] = value
        elif name in children:
            del children[name]
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        self.__dict__.get("_dry_children", {}).pop(name, None)
        super().__delattr__(name)

    def named_children(self) -> Iterator[tuple[str, Any]]:
        """``(attribute, child)`` for Modules, torch modules, optimizers and schedulers.

        A Module that is also a ``torch.nn.Module`` keeps torch's meaning (torch modules only),
        so torch's own methods (``.to()``, ``.parameters()``) keep working.
        """
        if _is_torch_module(self):
            import torch

            yield from torch.nn.Module.named_children(self)
            return
        yield from list(self.__dict__.get("_dry_children", {}).items())

    def children(self) -> Iterator[Any]:
        """Immediate children (see :meth:`named_children`)."""
        for _, child in self.named_children():
            yield child

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        """``(dotted path, module)`` for this module and every Module/torch module below it."""
        if _is_torch_module(self):
            import torch

            yield from torch.nn.Module.named_modules(self, memo, prefix, remove_duplicate)
            return
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, Module):
                yield from child.named_modules(memo, path, remove_duplicate)
            elif _is_torch_module(child):
                for sub, m in child.named_modules(prefix=path, remove_duplicate=remove_duplicate):
                    if not remove_duplicate or id(m) not in memo:
                        memo.add(id(m))
                        yield sub, m

    def modules(self) -> Iterator[Any]:
        for _, m in self.named_modules():
            yield m

    def apply(self, fn: Callable[[Any], None]) -> "Module":
        """Call ``fn`` on every module below, children first, then on this one; returns self."""
        if _is_torch_module(self):
            import torch

            return torch.nn.Module.apply(self, fn)
        for child in self.children():
            if isinstance(child, Module) or _is_torch_module(child):
                child.apply(fn)
        fn(self)
        return self

    # -- state -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Override to add this module's own state (arrays, counters, ...) to ``state_dict``."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Override to restore what :meth:`extra_state` returned."""

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> State:
        """The state of every child by dotted path, plus :meth:`extra_state`.

        Values are the live objects (tensors are not copied), as in torch.
        """
        out = State() if destination is None else destination
        if _is_torch_module(self):
            import torch

            torch.nn.Module.state_dict(self, destination=out, prefix=prefix, keep_vars=keep_vars)
        for name, child in self._state_children():
            path = prefix + name
            if isinstance(child, Module):
                child.state_dict(destination=out, prefix=path + ".", keep_vars=keep_vars)
            elif _is_torch_module(child):
                child.state_dict(destination=out, prefix=path + ".", keep_vars=keep_vars)
            else:
                out[path] = child.state_dict()
        for key, value in self.extra_state().items():
            out[prefix + key] = value
        return out

    def _state_children(self) -> list[tuple[str, Any]]:
        """Children whose state this module gathers itself (torch gathers its own modules)."""
        items = list(self.__dict__.get("_dry_children", {}).items())
        if _is_torch_module(self):
            return [(n, c) for n, c in items if not _is_torch_module(c)]
        return items

    def load_state_dict(self, state: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Restore :meth:`state_dict` output.

        Raises:
            StateDictError: with ``strict``, listing every missing and unexpected key.
        """
        expected = set(self.state_dict().keys())
        given = set(state.keys())
        missing, unexpected = sorted(expected - given), sorted(given - expected)
        if strict and (missing or unexpected):
            lines = [f"cannot load state into {type(self).__name__}:"]
            if missing:
                lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
            if unexpected:
                lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
            lines.append("  pass strict=False to load the keys that match")
            raise StateDictError("\n".join(lines), missing, unexpected)
        self._load(state, "")
        return None

    def _load(self, state: dict[str, Any], prefix: str) -> None:
        if not _is_torch_module(self):
            self._load_own(state, prefix)
            return
        import torch

        # torch restores parameters and buffers of the whole torch subtree; every ptdry Module
        # in that subtree then restores what torch does not know (optimizers, plain Modules,
        # extra state) — the same split that state_dict() makes.
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        torch.nn.Module.load_state_dict(self, own, strict=False)
        for path, m in torch.nn.Module.named_modules(self):
            if isinstance(m, Module):
                m._load_own(state, f"{prefix}{path}." if path else prefix)

    def _load_own(self, state: dict[str, Any], prefix: str) -> None:
        """Restore the children this module gathers itself (see ``_state_children``) and its
        extra state."""
        for name, child in self._state_children():
            path = prefix + name
            if isinstance(child, Module):
                child._load(state, path + ".")
            elif _is_torch_module(child):
                sub = {k[len(path) + 1 :]: v for k, v in state.items() if k.startswith(path + ".")}
                child.load_state_dict(sub, strict=False)
            elif path in state:
                child.load_state_dict(state[path])
        self._load_extra(state, prefix)

    def _load_extra(self, state: dict[str, Any], prefix: str) -> None:
        keys = self.extra_state().keys()
        extra = {k: state[prefix + k] for k in keys if prefix + k in state}
        if extra:
            self.load_extra_state(extra)

    def save_self(self, file: Any) -> None:
        """Save this module (definition and state) as an archive; see ``ptdry.save_object``."""
        from ptdry.io.archive import save_object  # the io layer; imported only when used

        save_object(self, file)

    # -- readiness and properties -------------------------------------------------------------
    def problems(self) -> list[str]:
        """Why this module cannot run (empty when ready); override and extend ``super()``'s."""
        out = []
        for name, child in self.named_children():
            if isinstance(child, Module):
                out += [f"{name}: {p}" for p in child.problems()]
        return out

    def on_change(self, name: str, fn: Callable[[str, Any, Any, Any], None]) -> Callable[[], None]:
        """Call ``fn(name, old, new, self)`` when property ``name`` really changes.

        Returns a function that unregisters ``fn``.
        """
        from ptdry.core.properties import add_listener

        return add_listener(self, name, fn)

    # -- metamodules ---------------------------------------------------------------------------
    def _meta(self, key: str, factory: Callable[[], Any]) -> Any:
        d = self.__dict__
        if key not in d:
            d[key] = factory()
        return d[key]

    @property
    def configuration(self) -> Configuration:
        """This module's definition as a metamodule (a fresh value each time)."""
        return Configuration.of(self.definition())

    @property
    def status(self) -> Status:
        return self._meta("_dry_status", lambda: Status(self))

    @property
    def statistics(self) -> Statistic:
        """The latest computed quantities of this module."""
        return self._meta("_dry_statistics", lambda: Statistic(type(self).__name__.lower()))

    @property
    def history(self) -> History:
        return self._meta("_dry_history", History)

    @property
    def callbacks(self) -> Callbacks:
        return self._meta("_dry_callbacks", Callbacks)

    def __repr__(self) -> str:
        if _is_torch_module(self):
            import torch

            return torch.nn.Module.__repr__(self)
        d = self.__dict__
        if "_dry_id" not in d:
            return f"{type(self).__name__}(<not initialized>)"
        parts = [_brief(a) for a in d["_dry_args"]] + [f"{k}={_brief(v)}" for k, v in d["_dry_kwargs"].items()]
        return f"{type(self).__name__}({', '.join(parts)})"


Module.__init__ = _wrap_init(Module.__init__)  # type: ignore[method-assign]


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _definition(module: Module, memo: dict[int, ObjectDef], path: str) -> ObjectDef:
    if id(module) in memo:
        return memo[id(module)]
    d = module.__dict__
    if "_dry_id" not in d:
        raise ConfigError(f"{path}: {type(module).__name__} was not constructed normally (no dry_id)")
    node = ObjectDef.__new__(ObjectDef)
    memo[id(module)] = node
    node.cls = type(module)
    node.args = tuple(_def_value(a, memo, f"{path}.args[{i}]") for i, a in enumerate(d["_dry_args"]))
    data_args = getattr(type(module), "dry_data_args", ())
    node.kwargs = {
        k: DataRef.of(v) if k in data_args and v is not None else _def_value(v, memo, f"{path}.{k}")
        for k, v in d["_dry_kwargs"].items()
    }
    node.kwargs["dry_id"] = d["_dry_id"]
    return node


def _def_value(value: Any, memo: dict[int, ObjectDef], path: str) -> Any:
    from ptdry.core import serialize

    if isinstance(value, Module):
        return _definition(value, memo, path)
    if isinstance(value, ObjectDef):
        # A recipe (e.g. ObjectDef(torch.optim.SGD, lr=0.1)): copied like a Module's
        # definition, so its arguments are checked here and a shared recipe stays shared.
        if id(value) in memo:
            return memo[id(value)]
        node = ObjectDef.__new__(type(value))
        memo[id(value)] = node
        node.cls = value.cls
        node.args = tuple(_def_value(a, memo, f"{path}.args[{i}]") for i, a in enumerate(value.args))
        node.kwargs = {k: _def_value(v, memo, f"{path}.{k}") for k, v in value.kwargs.items()}
        return node
    if isinstance(value, list):
        return [_def_value(v, memo, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_def_value(v, memo, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            where = f"{path}.{k}" if isinstance(k, str) else f"{path}[{k!r}]"
            out[_def_value(k, memo, f"{path}<key {k!r}>")] = _def_value(v, memo, where)
        return out
    if _is_torch_module(value) or isinstance(value, _torch_child_types()):
        raise SerializationError(
            f"argument {path} is a {type(value).__qualname__} instance, whose constructor "
            f"arguments ptdry cannot know; pass ObjectDef({type(value).__qualname__}, ...) instead"
        )
    # a copy, and proof it can be stored; the value is the caller's own, so its names are trusted
    return serialize.decode(serialize.encode(value, path), policy=TRUSTED)
