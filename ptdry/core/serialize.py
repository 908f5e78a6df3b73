"""Turn argument values into JSON/BSON-safe data and back, exactly.

Definitions (and the JSON part of archives) hold Python values: tuples, dicts with any keys,
NumPy scalars, small arrays, classes. JSON has none of these, and MongoDB refuses keys with
``.`` or ``$``. Each such value is written as a one-key *marker* dict (``{"__tuple__": [...]}``)
so that ``decode(encode(v)) == v`` with types preserved. Values that cannot be stored raise
:class:`~ptdry.errors.SerializationError` naming the argument path.

Two other views of the same values live here: :func:`readable` (plain, queryable data for
the ``config`` tree) and :func:`canonical_json` (sorted, NumPy-neutral text for hashing).
"""

from __future__ import annotations

import base64
import datetime as _dt
import enum
import json
import math
import pathlib
from typing import Any, Callable

from ptdry.core.allowed import DEFAULT, ImportPolicy
from ptdry.core.classpath import class_path, is_importable
from ptdry.core.dataref import DataRef
from ptdry.errors import ConfigError, PtdryError, SerializationError, UntrustedArchiveError

__all__ = [
    "MAX_INLINE_BYTES",
    "NOT_HANDLED",
    "canonical_json",
    "decode",
    "encode",
    "escape_key",
    "readable",
    "safe_key",
    "short_repr",
]

#: Arrays, tensors and bytes larger than this do not belong in a definition: keep them in state.
MAX_INLINE_BYTES = 64 * 1024

#: Returned by a hook that does not handle a value.
NOT_HANDLED = object()

_INT64 = 2**63
EncodeHook = Callable[[Any, str], Any]
DecodeHook = Callable[[str, Any, str], Any]  # (marker, payload, path in the tree)


def _is_marker(data: dict) -> bool:
    if len(data) != 1:
        return False
    (key,) = data
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


def safe_key(key: Any) -> bool:
    """True if ``key`` can be a JSON/BSON field name as it is (str, no ``.``/``$``, no marker)."""
    return (
        isinstance(key, str)
        and "." not in key
        and not key.startswith("$")
        and not key.startswith("__")
        and "\x00" not in key
    )


def _torch_kind(value: Any) -> str | None:
    module = type(value).__module__
    if module == "torch" or module.startswith("torch."):
        name = type(value).__name__
        if name in ("dtype", "device"):
            return name
        import torch

        if isinstance(value, torch.Tensor):
            return "tensor"
    return None


def _np():
    import numpy

    return numpy


def _buffer_bytes(nbytes: int, path: str, what: str, limit: int | None) -> None:
    if limit is not None and nbytes > limit:
        raise SerializationError(
            f"argument {path} is {what} of {nbytes} bytes, over the {limit}-byte "
            "limit for definitions; keep large data in the module's state (override "
            "extra_state) or pass a file path instead"
        )


def encode(
    value: Any,
    path: str = "value",
    hook: EncodeHook | None = None,
    limit: int | None = MAX_INLINE_BYTES,
) -> Any:
    """Return JSON-safe data for ``value``; ``hook(value, path)`` may handle values first.

    ``limit`` caps the bytes of one array, tensor or bytes value (None: no cap).

    Raises:
        SerializationError: ``value`` (or something inside it) cannot be stored; the message
            names its path, e.g. ``kwargs.layers[2]``.
    """
    if hook is not None:
        out = hook(value, path)
        if out is not NOT_HANDLED:
            return out
    if isinstance(value, enum.Enum):  # before str/int: IntEnum and str-mixin enums keep their type
        return {"__enum__": [class_path(type(value)), value.name]}
    if value is None or isinstance(value, (bool, str)):
        return value
    np = _np()
    if isinstance(value, np.generic):
        if isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise SerializationError(f"argument {path} is a NumPy object scalar; not storable")
        return {"__npscalar__": {"dtype": value.dtype.str, "value": encode(value.item(), path, None, limit)}}
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else {"__int__": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"__float__": repr(value)}
    if isinstance(value, list):
        return [encode(v, f"{path}[{i}]", hook, limit) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, f"{path}[{i}]", hook, limit) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(safe_key(k) for k in value):
            return {k: encode(v, f"{path}.{k}", hook, limit) for k, v in value.items()}
        return {
            "__dict__": [
                [encode(k, f"{path}<key>", hook, limit), encode(v, f"{path}[{k!r}]", hook, limit)]
                for k, v in value.items()
            ]
        }
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.fields is not None:
            raise SerializationError(
                f"argument {path} is a NumPy array of dtype {value.dtype}; only plain numeric, "
                "bool and string dtypes can be stored"
            )
        _buffer_bytes(value.nbytes, path, "an array", limit)
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape), "data": data}}
    if isinstance(value, (bytes, bytearray)):
        _buffer_bytes(len(value), path, "a bytes value", limit)
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, pathlib.PurePath):
        return {"__path__": str(value)}
    if isinstance(value, _dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, DataRef):
        return {"__dataref__": {"sha256": value.sha256, "summary": encode(value.summary, path, None, limit)}}
    kind = _torch_kind(value)
    if kind == "dtype":
        return {"__dtype__": str(value)}
    if kind == "device":
        return {"__device__": str(value)}
    if kind == "tensor":
        return _encode_tensor(value, path, limit)
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        if not is_importable(value):
            raise SerializationError(
                f"argument {path} = {_callable_name(value)} cannot be imported by name (a lambda, a "
                "local function or class, or a bound method); define it at module level so that a "
                "definition can refer to it as 'module:Name'"
            )
        return {"__callable__": class_path(value)}
    if hasattr(value, "read") or hasattr(value, "write"):
        hint = "pass its file path (a str or pathlib.Path) and open it in the constructor"
    else:
        hint = "use JSON-like values, NumPy/torch values, classes, Modules or ObjectDef(...) for objects"
    raise SerializationError(
        f"argument {path} = {short_repr(value)} of type {type(value).__qualname__} cannot be stored "
        f"in a definition; {hint}"
    )


def _encode_tensor(value: Any, path: str, limit: int | None) -> dict:
    import torch

    t = value.detach().cpu().contiguous()
    _buffer_bytes(t.numel() * t.element_size(), path, "a tensor", limit)
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return {
        "__tensor__": {
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "data": base64.b64encode(raw).decode("ascii"),
        }
    }


def _decode_tensor(spec: dict) -> Any:
    import torch

    dtype = _torch_dtype(torch, spec["dtype"])
    raw = base64.b64decode(spec["data"])
    if not raw:
        return torch.empty(spec["shape"], dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(spec["shape"])


def _callable_name(value: Any) -> str:
    """``<function f.<locals>.<lambda>>``: the end of a long name is the informative part."""
    name = getattr(value, "__qualname__", None) or repr(value)
    if len(name) > 70:
        name = "..." + name[-67:]
    return f"<{'class' if isinstance(value, type) else 'function'} {name}>"


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 80 characters: for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def decode(
    data: Any, hook: DecodeHook | None = None, *, policy: ImportPolicy | None = None, path: str = "value"
) -> Any:
    """Invert :func:`encode`; ``hook(marker, payload, path)`` decodes markers it knows first.

    Classes, functions and enums named in the data are resolved by ``policy`` (default: the
    safe :data:`~ptdry.core.allowed.DEFAULT`, which imports and calls only allowed names; see
    :mod:`ptdry.core.allowed`). ``path`` names ``data`` in error messages.

    Raises:
        UntrustedArchiveError: the data names a class or function ``policy`` refuses.
        ConfigError: the data is malformed.
    """
    policy = DEFAULT if policy is None else policy
    if isinstance(data, list):
        return [decode(v, hook, policy=policy, path=f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, dict):
        return data
    if not _is_marker(data):
        return {k: decode(v, hook, policy=policy, path=f"{path}.{k}") for k, v in data.items()}
    ((marker, payload),) = data.items()
    if hook is not None:
        out = hook(marker, payload, path)
        if out is not NOT_HANDLED:
            return out
    try:
        return _decode_marker(marker, payload, hook, policy, path)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, PtdryError):  # e.g. a hook's UntrustedArchiveError keeps its type
            raise
        raise ConfigError(f"{path}: malformed {marker} value {short_repr(payload)}: {exc}") from exc


def _decode_marker(marker: str, payload: Any, hook: DecodeHook | None, policy: ImportPolicy, path: str) -> Any:
    def inner(value: Any, where: str) -> Any:
        return decode(value, hook, policy=policy, path=where)

    if marker == "__tuple__":
        return tuple(inner(v, f"{path}[{i}]") for i, v in enumerate(payload))
    if marker == "__dict__":
        return {inner(k, f"{path}<key>"): inner(v, f"{path}[{i}]") for i, (k, v) in enumerate(payload)}
    if marker == "__float__":
        return float(payload)
    if marker == "__int__":
        return int(payload)
    if marker == "__npscalar__":
        np = _np()
        return np.dtype(payload["dtype"]).type(inner(payload["value"], path))
    if marker == "__ndarray__":
        np = _np()
        raw = base64.b64decode(payload["data"])
        arr = np.frombuffer(raw, dtype=np.dtype(payload["dtype"]))
        return arr.reshape(payload["shape"]).copy()
    if marker == "__bytes__":
        return base64.b64decode(payload)
    if marker == "__enum__":
        if not isinstance(payload, list) or len(payload) != 2:
            raise ValueError("expected [class path, member name]")
        cls_name, member = payload
        return policy.resolve_enum(cls_name, member, path)
    if marker == "__path__":
        return pathlib.Path(payload)
    if marker == "__datetime__":
        return _dt.datetime.fromisoformat(payload)
    if marker == "__callable__":
        return policy.resolve(payload, path)
    if marker in ("__dtype__", "__device__"):
        import torch

        if marker == "__device__":
            return torch.device(payload)
        return _torch_dtype(torch, payload.removeprefix("torch."))
    if marker == "__tensor__":
        return _decode_tensor(payload)
    if marker == "__dataref__":
        return DataRef(payload["sha256"], inner(payload.get("summary"), f"{path}.summary"))
    if marker == "__dill_ref__":  # only an archive (ptdry.io.dill_values) holds the bytes
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not policy.trusted:
            raise UntrustedArchiveError(
                f"{path} holds a value stored with dill ({kind}), which runs code when loaded; only "
                "load_object(..., trusted=True) on the archive that holds it can load it"
            )
        raise ConfigError(f"{path}: a value stored with dill ({kind}) whose bytes are not here; load it from its archive")
    raise ConfigError(f"{path}: unknown marker {marker!r} in stored data; written by a newer ptdry?")


def _torch_dtype(torch: Any, name: str) -> Any:
    """``torch.<name>`` if that is a dtype (never any other attribute of torch)."""
    dtype = getattr(torch, name, None) if isinstance(name, str) and not name.startswith("_") else None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name!r} is not a torch dtype")
    return dtype


def readable(value: Any, hook: EncodeHook | None = None) -> Any:
    """Plain data for queries: tuples→lists, NumPy→Python, classes→paths, unsafe keys escaped.

    Not invertible; used for the ``config`` tree that selectors and ``ptdry runs`` query.
    """
    if hook is not None:
        out = hook(value, "")
        if out is not NOT_HANDLED:
            return out
    if value is None or isinstance(value, (bool, str)):
        return value
    np = _np()
    if isinstance(value, np.generic):
        return readable(value.item(), hook)
    if isinstance(value, (int, float)):
        return value if not isinstance(value, int) or -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, (list, tuple)):
        return [readable(v, hook) for v in value]
    if isinstance(value, dict):
        return {escape_key(k): readable(v, hook) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.size <= 64 and not value.dtype.hasobject:
            return value.tolist()
        return {"dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, DataRef):
        return {"sha256": value.sha256, "summary": readable(value.summary)}
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    kind = _torch_kind(value)
    if kind == "tensor":
        return value.tolist() if value.numel() <= 64 else {"dtype": str(value.dtype), "shape": list(value.shape)}
    if kind is not None:
        return str(value)
    if isinstance(value, type) or callable(value):
        try:
            return class_path(value)
        except SerializationError:
            return repr(value)
    return repr(value)


def escape_key(key: Any) -> str:
    """A dict key as :func:`readable` stores it (``.`` and ``$`` replaced by look-alikes)."""
    text = key if isinstance(key, str) else str(key)
    return text.replace(".", "\uff0e").replace("$", "\uff04")


def _neutral(data: Any) -> Any:
    """Drop the NumPy scalar wrappers so hashes agree for ``0.1`` and ``np.float64(0.1)``."""
    if isinstance(data, list):
        return [_neutral(v) for v in data]
    if isinstance(data, dict):
        if set(data) == {"__npscalar__"}:
            return _neutral(data["__npscalar__"]["value"])
        return {k: _neutral(v) for k, v in data.items()}
    return data


def canonical_json(data: Any) -> str:
    """Deterministic JSON of encoded data: sorted keys, no spaces, NumPy scalars as Python."""
    return json.dumps(_neutral(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
