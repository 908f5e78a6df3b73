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
from typing import Any, Callable, Iterator, Mapping

from ptdry.core import serialize
from ptdry.core.allowed import TRUSTED
from ptdry.core.callbacks import Callbacks
from ptdry.core.dataref import DataRef
from ptdry.core.history import History
from ptdry.core.objectdef import Configuration, ObjectDef
from ptdry.core.state import State
from ptdry.core.state_loading import apply_state, state_problems
from ptdry.core.statistic import Statistic
from ptdry.core.status import Status
from ptdry.core.torch_kinds import is_torch_module as _is_torch_module
from ptdry.core.torch_kinds import torch_child_types as _torch_child_types
from ptdry.core.traverse import Walk, key_path
from ptdry.errors import ConfigError, SerializationError

__all__ = ["Module"]

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
        d["_dry_ready"] = True  # constructed: Properties set from now on update the recorded kwargs

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

    #: Marks ptdry Modules for code that must not import this file (definitions, loading).
    _dry_module = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_dry_wrapped", False):
            cls.__init__ = _wrap_init(init)  # type: ignore[method-assign]
        override = cls.__dict__.get("state_dict")
        if override is not None and not _takes_torch_arguments(override):
            cls.state_dict = _accept_torch_arguments(override)  # type: ignore[method-assign]

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
        """Change what the definition records for argument ``name`` (e.g. to mask a password,
        or to record the value an argument was converted to); for subclasses, called from
        ``__init__``. A parameter given positionally is changed in place."""
        d = self.__dict__
        if name in d["_dry_kwargs"]:
            d["_dry_kwargs"][name] = value
            return
        position = _positional_index(type(self), name)
        if position is None or position >= len(d["_dry_args"]):
            raise ConfigError(f"{type(self).__name__} has no recorded argument {name!r}")
        args = list(d["_dry_args"])
        args[position] = value
        d["_dry_args"] = tuple(args)

    def definition(self, *, opaque: bool = False) -> ObjectDef:
        """This module as an :class:`ObjectDef` value (nested Modules as nested definitions).

        Args:
            opaque: keep argument values that a definition cannot encode (lambdas, closures,
                local classes) as they are, instead of raising. ``to_dict()`` still refuses
                them; ``save_object(obj, path, trusted=True)`` stores them with dill.

        Raises:
            SerializationError: an argument cannot be stored; the message names its path.
        """
        return _definition(self, opaque)

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
        super().__setattr__(name, value)  # first: a Property that refuses the value changes nothing
        children = d["_dry_children"]
        if _is_child(value):
            children[name] = value
        elif name in children:
            del children[name]

    def __delattr__(self, name: str) -> None:
        self.__dict__.get("_dry_children", {}).pop(name, None)
        super().__delattr__(name)

    def named_children(self) -> Iterator[tuple[str, Any]]:
        """``(attribute, child)`` for every child: ptdry Modules, torch modules, optimizers
        and schedulers, in the order they were assigned.

        This is the one list of children: :meth:`state_dict`, :meth:`problems`, the Repo and
        every tree walk use it, for a Module that is also a ``torch.nn.Module`` too.
        """
        own = self.__dict__.get("_dry_children", {})
        if not _is_torch_module(self):
            yield from list(own.items())
            return
        import torch

        # torch modules registered by torch (add_module, nn.Sequential) come first, in torch's
        # order; then what only ptdry tracks (optimizers, schedulers, plain Modules)
        registered = list(torch.nn.Module.named_children(self))
        yield from registered
        names = {n for n, _ in registered}
        yield from [(n, c) for n, c in list(own.items()) if n not in names and not _is_torch_module(c)]

    def children(self) -> Iterator[Any]:
        """Immediate children (see :meth:`named_children`).

        For a Module that is also a ``torch.nn.Module`` this is torch's: torch modules only,
        because torch's ``.to()``, ``.train()`` and ``.apply()`` call it on every child.
        """
        if _is_torch_module(self):
            import torch

            for _, module in torch.nn.Module.named_children(self):
                yield module
            return
        for _, child in self.named_children():
            yield child

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        """``(dotted path, module)`` for this module and every Module/torch module below it
        (torch's own for a torch hybrid, whose parameters torch finds this way)."""
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
            if isinstance(child, Module) or _is_torch_module(child):
                yield from child.named_modules(memo, path, remove_duplicate)

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
        """Override to add this module's own state (arrays, counters, ...) to ``state_dict``.

        (Overriding :meth:`state_dict` / :meth:`load_state_dict` themselves works too.)
        """
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Override to restore what :meth:`extra_state` returned."""

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> State:
        """The state of every child by dotted path, plus :meth:`extra_state`.

        Values are the live objects (tensors are not copied), as in torch. Subclasses may
        override it as torch users do (``s = super().state_dict(); s["data"] = ...``); a
        child's state is what its own ``state_dict()`` returns, overridden or not.
        """
        out = State() if destination is None else destination
        children = self.named_children()
        if _is_torch_module(self):
            import torch

            # torch gathers parameters, buffers and torch children; ptdry adds the rest
            torch.nn.Module.state_dict(self, destination=out, prefix=prefix, keep_vars=keep_vars)
            children = [(n, c) for n, c in children if not _is_torch_module(c)]
        for name, child in children:
            path = prefix + name
            if _is_torch_module(child):
                child.state_dict(destination=out, prefix=path + ".", keep_vars=keep_vars)
            elif isinstance(child, Module):
                for key, value in child.state_dict().items():
                    out[f"{path}.{key}"] = value
            else:  # an optimizer or a scheduler: its state under one key
                out[path] = child.state_dict()
        for key, value in self.extra_state().items():
            out[prefix + key] = value
        return out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Restore :meth:`state_dict` output, all or nothing.

        Every key is checked before anything is loaded: with ``strict``, the keys the base
        class owns (children and :meth:`extra_state`) must match exactly; tensors must have
        the shapes of the parameters they go into, and optimizer states the parameter groups
        of the optimizer. A subclass that overrides this method takes its own keys out of
        ``state`` and passes the rest to ``super().load_state_dict``.

        Raises:
            StateDictError: listing every missing, unexpected and mismatched key; nothing
                was loaded.
        """
        problem = state_problems(self, Module.state_dict(self), state, strict)
        if problem is not None:
            raise problem
        apply_state(self, state, strict)
        return None

    load_state_dict._dry_base = True  # type: ignore[attr-defined]  # (overrides are not)

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


def _positional_index(cls: type, name: str) -> int | None:
    """Where parameter ``name`` of ``cls.__init__`` sits among the recorded positional
    arguments (None if it is not positional or follows ``*args``)."""
    init = inspect.unwrap(cls.__init__)
    params = list(inspect.signature(init).parameters.values())[1:]
    for i, p in enumerate(params):
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return None
        if p.name == name:
            return i
    return None


def _takes_torch_arguments(fn: Any) -> bool:
    """Whether a ``state_dict`` override accepts torch's ``destination=``/``prefix=`` call."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "prefix" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _accept_torch_arguments(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Let ``def state_dict(self)`` be called the way torch calls its children's
    (``state_dict(destination=..., prefix=..., keep_vars=...)``): keys get the prefix."""

    @functools.wraps(fn)
    def state_dict(self: Any, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        own = fn(self, *args)
        if destination is None and not prefix:
            return own
        out = State() if destination is None else destination
        for key, value in own.items():
            out[prefix + key] = value
        return out

    return state_dict


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _definition(module: Module, opaque: bool = False) -> ObjectDef:
    """The definition of ``module``: the one tree walk, with Modules and recipes as nodes."""

    def node(walk: Walk, value: Any, path: str) -> ObjectDef:
        new = ObjectDef.__new__(type(value) if isinstance(value, ObjectDef) else ObjectDef)
        walk.remember(value, new)
        if isinstance(value, ObjectDef):
            # a recipe (e.g. ObjectDef(torch.optim.SGD, lr=0.1)): copied, its arguments checked
            new.cls, new.args, new.kwargs = value.cls, walk.args(value.args, path), walk.kwargs(value.kwargs, path)
            return new
        d = value.__dict__
        if "_dry_id" not in d:
            raise ConfigError(f"{path}: {type(value).__name__} was not constructed normally (no dry_id)")
        data_args = type(value).dry_data_args
        new.cls = type(value)
        args = d["_dry_args"]
        if data_args and args:  # a data argument given positionally is fingerprinted too
            positions = {_positional_index(type(value), name) for name in data_args} - {None}
            args = tuple(DataRef.of(a) if i in positions and a is not None else a for i, a in enumerate(args))
        new.args = walk.args(args, path)
        new.kwargs = {
            k: DataRef.of(v) if k in data_args and v is not None else walk(v, key_path(path, k))
            for k, v in d["_dry_kwargs"].items()
        }
        new.kwargs["dry_id"] = d["_dry_id"]
        return new

    leaf = _storable_or_opaque if opaque else _storable
    return Walk((Module, ObjectDef), node, leaf)(module, type(module).__name__)


def _storable_or_opaque(value: Any, path: str) -> Any:
    """:func:`_storable`, or the value itself when only its encoding fails (e.g. a lambda)."""
    try:
        return _storable(value, path)
    except SerializationError:
        if _is_torch_module(value) or isinstance(value, _torch_child_types()):
            raise
        return value


def _storable(value: Any, path: str) -> Any:
    """A copy of a plain argument value, and proof that a definition can store it."""
    if _is_torch_module(value) or isinstance(value, _torch_child_types()):
        raise SerializationError(
            f"argument {path} is a {type(value).__qualname__} instance, whose constructor "
            f"arguments ptdry cannot know; pass ObjectDef({type(value).__qualname__}, ...) instead"
        )
    # a copy, and proof it can be stored; the value is the caller's own, so its names are trusted
    return serialize.decode(serialize.encode(value, path), policy=TRUSTED)
