"""Which classes and functions loading may import and call: the allow-list and its registry.

Archives and database documents name classes and functions by path (``"pkg.mod:QualName"``).
Importing a module runs its code and calling a class runs its constructor, so stored data
must not choose what runs. Unless the caller passes ``trusted=True``, :class:`ImportPolicy`
resolves a name only when one of these holds, decided from the name *before* anything is
imported:

1. **Registered**: the object was given to :func:`allow` (or in an ``allowed=[...]``
   argument). The registered object itself is returned; nothing is imported.
2. **Built-in allow-list**, whose modules (ptdry, torch, Keras, NumPy) may be imported:
   the containers and scalars of ``builtins`` (``dict``, ``list``, ``tuple``, ``set``,
   ``frozenset``, ``int``, ``float``, ...); NumPy scalar types and ``numpy:dtype``;
   ``torch.nn.Module`` subclasses under ``torch.nn``; optimizer and LR scheduler classes
   under ``torch.optim``; the public functions of ``torch.nn.functional`` and
   ``torch.nn.init``; Keras's layer, model, optimizer, loss, initializer, regularizer and
   constraint classes (under ``keras.src.layers``, ``.models``, ``.optimizers``,
   ``.losses``, ``.initializers``, ``.regularizers``, ``.constraints``) and the public
   functions of ``keras.src.losses.losses`` and ``keras.src.activations.activations`` —
   as safe as torch.nn's; ptdry's own *model classes* (below) under ``ptdry``, and ptdry's
   functions made to be named in definitions (marked ``_dry_allowed``, e.g.
   ``ptdry.tf.nets.keras_mlp``).
3. **Model classes of modules already imported**: a class subclassing ptdry's ``Module``,
   ``torch.nn.Module``, ``torch.optim.Optimizer``, an LR scheduler, or (once Keras is
   imported) a Keras ``Layer``/``Model`` or optimizer, in a module that is already in
   ``sys.modules`` (so nothing new is imported). Definitions are made of these; the user's
   own network classes load as soon as the user has imported them. (A user's *function*
   building a Keras model needs :func:`allow`.)

Anything else — ``os:system``, ``subprocess:Popen``, ``builtins:eval``, a function of your
own, a class whose module is not imported yet — raises
:class:`~ptdry.errors.UntrustedArchiveError` naming the path in the tree and the name, and
nothing is imported or called. Attributes are looked up statically (no module
``__getattr__``, no descriptors), names with dunder parts are refused, and the object found
must carry exactly the name asked for (``torch.nn.functional:torch.load`` is refused).

``trusted=True`` imports any name, as ``pickle`` would: use it only for files and databases
whose writers you trust.

Example:
    >>> import collections
    >>> ImportPolicy().resolve("builtins:dict", "definition.table") is dict
    True
    >>> try:
    ...     ImportPolicy().resolve("collections:OrderedDict", "definition.table")
    ... except UntrustedArchiveError as exc:
    ...     print(str(exc)[:58])
    definition.table names collections:OrderedDict, which ptdr
    >>> ImportPolicy(allowed=[collections.OrderedDict]).resolve("collections:OrderedDict", "x")
    <class 'collections.OrderedDict'>
"""

from __future__ import annotations

import builtins
import enum
import importlib
import inspect
import sys
from typing import Any, Iterable

from ptdry.core.classpath import class_path, import_path, is_importable, main_hint
from ptdry.errors import ConfigError, UntrustedArchiveError

__all__ = ["DEFAULT", "TRUSTED", "ImportPolicy", "allow", "is_model_class", "registered"]

#: ``"module:QualName"`` -> object, filled by :func:`allow`.
_REGISTRY: dict[str, Any] = {}

#: Names of ``builtins`` that loading may call: containers and scalars, nothing that runs code.
_BUILTINS = frozenset(
    ["dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes", "range", "slice"]
)
#: Modules whose public functions are allowed (pure tensor math).
_TORCH_FUNCTION_MODULES = frozenset(["torch.nn.functional", "torch.nn.init", "torch._C._nn"])


def allow(*objs: Any) -> Any:
    """Let loading import and call ``objs`` (classes or functions) without ``trusted=True``.

    The registry is process-wide. Use it for your own functions (a loss, a metric) and for
    classes that are not model classes; see the module doc for what is allowed anyway.
    Usable as a decorator; returns its first argument.

    Example:
        In a module of yours (say ``mylab/losses.py``)::

            import ptdry

            @ptdry.allow
            def scaled_mse(outputs, targets, scale=1.0):
                return scale * torch.nn.functional.mse_loss(outputs, targets)

    Raises:
        ConfigError: an object cannot be imported by its name (a lambda, a local class).
    """
    if not objs:
        raise ConfigError("allow() needs at least one class or function")
    for obj in objs:
        _REGISTRY[_checked_path(obj)] = obj
    return objs[0]


def registered() -> dict[str, Any]:
    """A copy of the registry: ``{"module:QualName": object}``."""
    return dict(_REGISTRY)


def _checked_path(obj: Any) -> str:
    if callable(obj) and _being_defined(obj):  # @allow on a def: the module binds the name next
        return class_path(obj)
    if not callable(obj) or not is_importable(obj):
        raise ConfigError(
            f"allow() needs a class or function defined at module level (importable by name); "
            f"received {obj!r}"
        )
    return class_path(obj)


def _being_defined(obj: Any) -> bool:
    """True for a module-level function or class whose module does not hold its name yet —
    what a decorator sees (``@ptdry.allow`` runs before the ``def`` binds the name)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", "")
    name = getattr(obj, "__name__", None)
    return module is not None and qualname == name and "<" not in qualname and not hasattr(module, qualname)


class ImportPolicy:
    """Resolves the names stored data refers to, refusing what the data may not run.

    Args:
        trusted: import any name (the source is trusted; code may run).
        allowed: classes or functions allowed for this load only, besides :func:`allow`'s.
    """

    __slots__ = ("trusted", "_extra")

    def __init__(self, trusted: bool = False, allowed: Iterable[Any] = ()) -> None:
        self.trusted = bool(trusted)
        if isinstance(allowed, (str, bytes)) or not isinstance(allowed, Iterable):
            raise ConfigError(f"allowed must be a list of classes or functions; received {allowed!r}")
        self._extra = {_checked_path(obj): obj for obj in allowed}

    @classmethod
    def of(cls, trusted: bool = False, allowed: Iterable[Any] = ()) -> "ImportPolicy":
        """The policy for ``trusted`` and ``allowed`` (shared instances for the defaults)."""
        if not allowed:
            return TRUSTED if trusted else DEFAULT
        return cls(trusted, allowed)

    def resolve(self, name: Any, where: str) -> Any:
        """The class or function ``name`` (``"module:QualName"``) found at ``where`` in a tree.

        Raises:
            UntrustedArchiveError: ``name`` is not allowed; nothing was imported or called.
            ConfigError: ``name`` is malformed, or an allowed module lacks it.
        """
        if not isinstance(name, str):
            raise ConfigError(f"{where}: a class path must be a string like 'pkg.module:Name'; received {name!r}")
        if self.trusted:
            return import_path(name)
        found = self._extra.get(name, _REGISTRY.get(name, _MISSING))
        if found is not _MISSING:
            return found
        module_name, qualname = _split(name, where)
        family = _family(module_name)
        if family == "builtins":
            if qualname not in _BUILTINS:
                raise _refused(where, name, "of builtins only containers and scalars are allowed")
            return getattr(builtins, qualname)
        if family is None and sys.modules.get(module_name) is None:
            raise _refused(
                where, name, f"its module {module_name} is not imported, and ptdry does not import "
                "modules named by stored data (import it first if it is yours)"
            )  # fmt: skip
        if family == "torch" and not _torch_allowed_module(module_name):
            raise _refused(where, name, "of torch only torch.nn and torch.optim are allow-listed")
        if family == "keras" and not _keras_allowed_module(module_name):
            raise _refused(
                where, name, "of Keras only its layers, models, optimizers, losses, initializers, "
                "regularizers, constraints and activations are allow-listed"
            )  # fmt: skip
        module = _module(module_name, name)
        obj = _lookup(module, qualname, name)
        if _own_name(obj) != name:
            raise _refused(where, name, f"it is another name for {_own_name(obj) or repr(obj)[:80]}")
        if not _permitted(obj, family, module_name):
            what = "class" if isinstance(obj, type) else type(obj).__name__
            raise _refused(
                where, name, f"this {what} is neither a ptdry Module, torch.nn.Module, Keras layer, "
                "optimizer or scheduler class nor on the allow-list"
            )  # fmt: skip
        return obj

    def resolve_enum(self, name: Any, member: Any, where: str) -> enum.Enum:
        """The member ``member`` of the enum class ``name``.

        An enum class is allowed when :meth:`resolve` would allow it, or when its module is
        already imported (looking a member up calls nothing).
        """
        if not isinstance(member, str):
            raise ConfigError(f"{where}: an enum member name must be a string; received {member!r}")
        if self.trusted:
            cls = import_path(name)
        else:
            try:
                cls = self.resolve(name, where)
            except UntrustedArchiveError:
                module_name, qualname = _split(name, where)
                if sys.modules.get(module_name) is None or _family(module_name) == "builtins":
                    raise
                cls = _lookup(sys.modules[module_name], qualname, name)
                if not (isinstance(cls, type) and issubclass(cls, enum.Enum)) or _own_name(cls) != name:
                    raise
        if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
            raise ConfigError(f"{where}: {name} is not an enum class")
        try:
            return cls.__members__[member]
        except KeyError:
            raise ConfigError(f"{where}: enum {name} has no member {member!r}") from None

    def __repr__(self) -> str:
        extra = f", allowed={sorted(self._extra)}" if self._extra else ""
        return f"ImportPolicy(trusted={self.trusted}{extra})"


_MISSING = object()
#: Safe defaults: what loading uses unless told otherwise.
DEFAULT = ImportPolicy()
TRUSTED = ImportPolicy(trusted=True)


def _refused(where: str, name: str, reason: str) -> UntrustedArchiveError:
    qualname = name.rpartition(":")[2] or name
    return UntrustedArchiveError(
        f"{where} names {name}, which ptdry does not import or call when loading: {reason}. "
        f"If you trust where this came from, pass trusted=True; to allow only this one, call "
        f"ptdry.allow({qualname}) after importing it, or pass allowed=[{qualname}]"
    )


def _own_name(obj: Any) -> str | None:
    """``"module:QualName"`` as ``obj`` states it (never imports, unlike ``class_path``)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}:{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None


def _refuse_main(where: str, name: str) -> Any:
    raise UntrustedArchiveError(f"{where} names {name}, which ptdry does not import or call when loading" + main_hint(name))


def _split(name: str, where: str) -> tuple[str, str]:
    module_name, sep, qualname = name.partition(":")
    if not sep:
        module_name, _, qualname = name.rpartition(".")
    if module_name == "__main__" and qualname.isidentifier():
        return _refuse_main(where, name)
    parts = module_name.split(".") + qualname.split(".")
    if not module_name or not qualname or any(not p.isidentifier() or p.startswith("__") for p in parts):
        raise _refused(where, name, "it is not a plain 'module:QualName' name")
    return module_name, qualname


def _family(module_name: str) -> str | None:
    """The allow-listed package ``module_name`` belongs to, or None."""
    top = module_name.partition(".")[0]
    if module_name == "builtins":
        return "builtins"
    if module_name == "numpy":
        return "numpy"
    if top in ("torch", "ptdry", "keras"):
        return top
    return None


def _torch_allowed_module(module_name: str) -> bool:
    return (
        module_name in _TORCH_FUNCTION_MODULES
        or any(module_name == p or module_name.startswith(p + ".") for p in ("torch.nn", "torch.optim"))
    )


#: Keras's packages whose classes (and, for losses and activations, functions) are allowed.
_KERAS_PACKAGES = tuple(
    f"keras.src.{p}"
    for p in ("layers", "models", "optimizers", "losses", "initializers", "regularizers", "constraints", "activations")
)
_KERAS_FUNCTION_MODULES = frozenset(["keras.src.losses.losses", "keras.src.activations.activations"])


def _keras_allowed_module(module_name: str) -> bool:
    return any(module_name == p or module_name.startswith(p + ".") for p in _KERAS_PACKAGES)


def _keras_base_classes() -> tuple[type, ...]:
    """Keras's safe base classes (empty until Keras is imported)."""
    if sys.modules.get("keras") is None:
        return ()
    import keras

    return (
        keras.layers.Layer,
        keras.optimizers.Optimizer,
        keras.losses.Loss,
        keras.initializers.Initializer,
        keras.regularizers.Regularizer,
        keras.constraints.Constraint,
    )


def _module(module_name: str, name: str) -> Any:
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    try:  # only ptdry's, torch's, Keras's and NumPy's own modules get here
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {name!r}: {exc}") from exc


def _lookup(module: Any, qualname: str, name: str) -> Any:
    """Walk ``qualname`` without running code: no module ``__getattr__``, no descriptors."""
    obj = module
    for part in qualname.split("."):
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            raise ConfigError(
                f"module {module.__name__!r} has no attribute {qualname!r} (from class path {name!r})" + main_hint(name)
            ) from None
    return obj


def _permitted(obj: Any, family: str | None, module_name: str) -> bool:
    if family == "numpy":
        np = sys.modules["numpy"]
        return isinstance(obj, type) and (issubclass(obj, np.generic) or obj is np.dtype)
    if family == "keras":
        if isinstance(obj, type):
            return issubclass(obj, _keras_base_classes())
        return module_name in _KERAS_FUNCTION_MODULES and inspect.isfunction(obj) and not obj.__name__.startswith("_")
    if isinstance(obj, type):
        return is_model_class(obj)
    if family == "torch" and module_name in _TORCH_FUNCTION_MODULES:
        return callable(obj) and not obj.__name__.startswith("_")
    if family == "ptdry":  # ptdry's own functions made to be named in definitions
        return inspect.isfunction(obj) and getattr(obj, "_dry_allowed", False) is True
    return False


def is_model_class(obj: Any) -> bool:
    """True for subclasses of ptdry's Module, torch.nn.Module, Optimizer or an LR scheduler,
    and of a Keras Layer (models included) or Keras optimizer."""
    if not isinstance(obj, type):
        return False
    if getattr(obj, "_dry_module", False) is True:  # ptdry's Module marks its subclasses
        return True
    keras_bases = _keras_base_classes()[:2]  # Layer, Optimizer
    if keras_bases and issubclass(obj, keras_bases):
        return True
    torch = sys.modules.get("torch")
    if torch is None:  # nothing can subclass torch's classes before torch is imported
        return False
    bases = [torch.nn.Module, torch.optim.Optimizer]
    schedulers = getattr(torch.optim, "lr_scheduler", None)
    for attr in ("LRScheduler", "_LRScheduler", "ReduceLROnPlateau"):
        base = getattr(schedulers, attr, None)
        if isinstance(base, type):
            bases.append(base)
    return issubclass(obj, tuple(bases))
