"""Codec: a state tree ⇄ JSON entries plus binary members (tensors, arrays, blobs, pickles).

:func:`encode_state` turns a (nested) state mapping into :class:`Encoded`: JSON-safe
``entries`` for the manifest and the binary members of the archive. The JSON part uses
:mod:`ptdry.core.serialize` (its marker dicts such as ``{"__tuple__": [...]}``), with a hook
that moves big or binary values out of the JSON:

- ``{"__tensor_ref__": {...}}``: a torch tensor in ``tensors.safetensors``. Tensors that
  share storage (tied weights, views) are stored once; a group of *different* views of one
  storage is stored as the raw bytes of the span they cover, and each view records its
  dtype, shape, stride and offset, so aliasing survives the round trip.
- ``{"__array_ref__": {...}}``: a NumPy array (or an unusual NumPy scalar, as a 0-d array)
  in ``arrays/<n>.npy``, written and read with ``allow_pickle=False``.
- ``{"__blob_ref__": n}``: a bytes value over :data:`BLOB_INLINE` bytes in ``blobs/<n>.bin``.
- ``{"__pickle_ref__": {...}}``: anything else, pickled in ``pickles/<n>.pkl``; reading it
  back needs ``trusted=True``.
- ``{"__dill_ref__": {...}}``: what pickle cannot write either (a lambda, a closure), in
  ``dill/<n>.pkl`` — only when the caller passes a :class:`~ptdry.io.dill_values.DillWriter`
  (``save_object(..., trusted=True)``); reading it back needs ``trusted=True``.

:func:`decode_state` inverts this; every failure becomes an :class:`~ptdry.errors.ArchiveError`.
"""

from __future__ import annotations

import io
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from ptdry.core import serialize
from ptdry.core.allowed import ImportPolicy
from ptdry.core.state import State
from ptdry.errors import ArchiveError, SerializationError, UntrustedArchiveError
from ptdry.io.dill_values import MANIFEST_KEY, MARKER, DillReader, DillWriter, check_records, untrusted

__all__ = ["BLOB_INLINE", "TENSORS", "Encoded", "decode_state", "encode_state"]

#: Member holding every torch tensor.
TENSORS = "tensors.safetensors"
#: Bytes values longer than this are stored as their own member instead of base64 in JSON.
BLOB_INLINE = 4096
#: Tensor dtypes stored as themselves (readable by any safetensors tool); others as raw bytes.
_DIRECT = {"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}


def array_member(n: int) -> str:
    return f"arrays/{n}.npy"


def blob_member(n: int) -> str:
    return f"blobs/{n}.bin"


def pickle_member(n: int) -> str:
    return f"pickles/{n}.pkl"


@dataclass
class Encoded:
    """A state tree split into JSON ``entries`` and binary members (see the module doc)."""

    entries: list = field(default_factory=list)
    tensors: dict[str, Any] = field(default_factory=dict)  # safetensors name -> CPU tensor
    arrays: list[bytes] = field(default_factory=list)  # .npy bytes
    blobs: list[bytes] = field(default_factory=list)
    pickles: list[bytes] = field(default_factory=list)
    pickle_records: list[dict] = field(default_factory=list)  # {"member", "path", "type"}
    aliases: dict[str, list[str]] = field(default_factory=dict)  # name -> key paths sharing it
    dill: DillWriter | None = None  # values only dill can write (trusted archives only)

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest's description of the state tree."""
        fields = {"entries": self.entries, "tensor_aliases": self.aliases, "pickles": self.pickle_records}
        if self.dill is not None and self.dill.records:
            fields[MANIFEST_KEY] = self.dill.records
        return fields

    def members(self) -> Iterator[tuple[str, bytes, bool]]:
        """``(member name, bytes, compress?)``; tensors are serialized only when reached."""
        if self.tensors:
            import safetensors.torch

            yield TENSORS, safetensors.torch.save(self.tensors, metadata={"format": "pt"}), False
        for n, data in enumerate(self.arrays):
            yield array_member(n), data, False
        for n, data in enumerate(self.blobs):
            yield blob_member(n), data, True
        for n, data in enumerate(self.pickles):
            yield pickle_member(n), data, True
        if self.dill is not None:
            yield from self.dill.members()


# -- encoding -------------------------------------------------------------------------------
def encode_state(state: Mapping[Any, Any], dill: DillWriter | None = None) -> Encoded:
    """Split ``state`` into manifest entries and binary members, for an archive.

    Keys of the top-level mapping name the values in error messages and in the manifest
    (``"net.0.weight"``, ``"opt.state[0].exp_avg"``). ``dill``: where values that pickle
    cannot write go (None: they raise).

    Raises:
        SerializationError: a value cannot be stored even with pickle (or dill, when given);
            names its key path.
    """
    out = Encoded(dill=dill)
    found: list[tuple[str, Any, dict]] = []  # (path, tensor, payload to fill in)

    def hook(value: Any, path: str) -> Any:
        if value is None or type(value) in (bool, int, float, str) or isinstance(value, (dict, list, tuple)):
            return serialize.NOT_HANDLED  # plain JSON or a container serialize walks with us
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.Tensor):
            if _plain_tensor(torch, value):
                payload: dict = {}
                found.append((path, value, payload))
                return {"__tensor_ref__": payload}
            return _pickle(out, value, path)
        np = sys.modules.get("numpy")
        if np is not None and isinstance(value, (np.ndarray, np.generic)):
            return _encode_numpy(out, np, value, path)
        if isinstance(value, (bytes, bytearray)) and len(value) > BLOB_INLINE:
            out.blobs.append(bytes(value))
            return {"__blob_ref__": len(out.blobs) - 1}
        try:
            return serialize.encode(value, path, None, limit=None)
        except SerializationError:
            return _pickle(out, value, path)

    for key, value in state.items():
        path = key if isinstance(key, str) else repr(key)
        encoded_key = serialize.encode(key, "state key", None, limit=None)
        out.entries.append([encoded_key, serialize.encode(value, path, hook, limit=None)])
    if found:
        _plan_tensors(out, found)
    return out


def _plain_tensor(torch: Any, t: Any) -> bool:
    """A dense tensor of a plain type whose bytes are its value (safetensors can hold it)."""
    return (
        type(t) in (torch.Tensor, torch.nn.Parameter)
        and t.layout == torch.strided
        and not t.is_quantized
        and not t.is_nested
        and t.device.type != "meta"
    )


def _encode_numpy(out: Encoded, np: Any, value: Any, path: str) -> Any:
    if isinstance(value, np.generic):
        kind, simple = value.dtype.kind, value.dtype.str[1:] in ("f2", "f4", "f8")
        if kind in "biu" or (simple and np.isfinite(value)):
            return serialize.encode(value, path, None, limit=None)
        value, scalar = np.asarray(value), True
    elif type(value) is np.ndarray or isinstance(value, np.memmap):
        scalar = False
    else:  # a subclass (masked array, matrix): .npy would drop what makes it special
        return _pickle(out, value, path)
    buf = io.BytesIO()
    try:
        np.save(buf, np.asarray(value), allow_pickle=False)
    except ValueError:  # object dtype: only pickle can hold it
        return _pickle(out, value[()] if scalar else value, path)
    out.arrays.append(buf.getvalue())
    return {"__array_ref__": {"index": len(out.arrays) - 1, "scalar": scalar}}


def _pickle(out: Encoded, value: Any, path: str) -> dict:
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    try:
        data = pickle.dumps(value, protocol=4)
    except Exception as exc:
        if out.dill is not None:
            return out.dill.add(value, path)
        raise SerializationError(
            f"state value {path} of type {kind} cannot be stored: JSON, safetensors and .npy "
            f"do not fit it, and pickle failed ({type(exc).__name__}: {exc})"
        ) from exc
    n = len(out.pickles)
    out.pickles.append(data)
    out.pickle_records.append({"member": pickle_member(n), "path": path, "type": kind})
    return {"__pickle_ref__": {"index": n, "path": path, "type": kind}}


def _plan_tensors(out: Encoded, found: list[tuple[str, Any, dict]]) -> None:
    """Group tensors by storage; store each storage once and fill in the ref payloads."""
    groups: dict[tuple, list[int]] = {}
    for i, (_, t, _) in enumerate(found):
        storage = t.untyped_storage()
        if t.numel() == 0 or storage.nbytes() == 0 or t.is_conj() or t.is_neg():
            key: tuple = ("alone", i)
        else:
            key = (str(t.device), storage.data_ptr())
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        tensors = [found[i][1].detach() for i in members]
        views = {(t.dtype, tuple(t.shape), t.stride(), t.storage_offset()) for t in tensors}
        if len(views) == 1:
            stored, spec = _direct(tensors[0])
            specs = [spec] * len(members)
        else:
            stored, specs = _span(tensors)
        raw = "stride" in specs[0]  # raw bytes, not the tensor itself: say so in the name
        name = _unique_name(found[members[0]][0] + ("#bytes" if raw else ""), out.tensors)
        out.tensors[name] = stored
        for i, spec in zip(members, specs):
            found[i][2].update(name=name, **spec)
        if len(members) > 1:
            out.aliases[name] = [found[i][0] for i in members]


def _unique_name(path: str, taken: Mapping[str, Any]) -> str:
    base = path or "<empty key>"
    name, n = base, 1
    while name in taken or name == "__metadata__":  # __metadata__ is reserved by safetensors
        name, n = f"{base}#{n}", n + 1
    return name


def _direct(t: Any) -> tuple[Any, dict]:
    """One view of a storage: store the tensor itself (contiguous, on the CPU)."""
    import torch

    c = t.resolve_conj().resolve_neg().cpu().contiguous()
    dtype = str(c.dtype).removeprefix("torch.")
    if dtype in _DIRECT:
        return c, {"dtype": dtype, "shape": list(c.shape)}
    raw = c.reshape(-1).view(torch.uint8) if c.numel() else torch.empty(0, dtype=torch.uint8)
    spec = {"dtype": dtype, "shape": list(c.shape), "stride": list(c.stride()), "offset": 0}
    return raw, spec


def _span(tensors: list[Any]) -> tuple[Any, list[dict]]:
    """Several views of one storage: store the bytes they cover once, and each view's layout."""
    import torch

    align = max(t.element_size() for t in tensors)  # powers of two: keeps offsets whole
    starts = [t.storage_offset() * t.element_size() for t in tensors]
    ends = [s + _extent(t.shape, t.stride()) * t.element_size() for s, t in zip(starts, tensors)]
    lo, hi = min(starts) // align * align, max(ends)
    base = torch.empty(0, dtype=torch.uint8, device=tensors[0].device).set_(tensors[0].untyped_storage())
    raw = base[lo:hi].cpu().clone()
    specs = [
        {
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": (s - lo) // t.element_size(),
        }
        for s, t in zip(starts, tensors)
    ]
    return raw, specs


def _extent(shape: Any, stride: Any) -> int:
    """Elements from a view's first element to one past its last (0 for an empty view)."""
    if any(n == 0 for n in shape):
        return 0
    return 1 + sum((n - 1) * s for n, s in zip(shape, stride))


# -- decoding -------------------------------------------------------------------------------
def decode_state(
    manifest: Mapping[str, Any],
    read: Callable[[str], bytes],
    *,
    trusted: bool,
    where: str,
    func: str,
    allowed: Iterable[Any] = (),
    dill: DillReader | None = None,
) -> State:
    """Rebuild the state tree described by ``manifest`` from members given by ``read(name)``.

    ``where`` names the file in messages (``"archive model.zip"``); ``func`` is the function
    the user called, named in the advice of an untrusted-pickle error. Classes, functions
    and enums named in the state are resolved as :mod:`ptdry.core.allowed` says (``allowed``
    adds to what loading may import; ``trusted`` allows everything). ``dill`` reads values
    stored with dill (default: a reader of its own).

    Raises:
        UntrustedArchiveError: the state holds pickled values, or names a class or function
            that is not allowed, and ``trusted`` is false; nothing is unpickled or imported.
        ArchiveError: a member is missing or corrupt, or the entries are malformed.
    """
    records = manifest.get("pickles", [])
    if not isinstance(records, list):
        raise ArchiveError(f"cannot load {where}: its manifest's list of pickles is malformed")
    if records and not trusted:
        raise untrusted(records, where, func, _PICKLED)
    check_records(manifest, trusted=trusted, where=where, func=func)
    policy = ImportPolicy.of(trusted, allowed)
    decoder = _Decoder(read, trusted, where, func, dill or DillReader(read, trusted=trusted, where=where, func=func))
    entries = manifest.get("entries")
    if not isinstance(entries, list):
        raise ArchiveError(f"cannot load {where}: its manifest has no list of state entries")
    try:
        state = State()
        for item in entries:
            key_data, value_data = item
            key = serialize.decode(key_data, policy=policy, path="state key")
            path = f"state[{serialize.short_repr(key)}]"
            state[key] = serialize.decode(value_data, decoder.hook, policy=policy, path=path)
        return state
    except UntrustedArchiveError as exc:
        if exc is decoder.error:
            raise
        raise UntrustedArchiveError(f"cannot load {where}: {exc}") from None
    except ArchiveError:
        raise
    except Exception as exc:
        if decoder.error is not None:  # serialize.decode wrapped our error in a ConfigError
            raise decoder.error from None
        problem = f"malformed state entries ({type(exc).__name__}: {exc})"
        raise ArchiveError(f"cannot load {where}: {problem}") from exc


_PICKLED = "stored with pickle (state), which can run arbitrary code when loaded"


class _Decoder:
    """The decode hook for archive markers; loads each member once, on first use."""

    def __init__(self, read: Callable[[str], bytes], trusted: bool, where: str, func: str, dill: DillReader) -> None:
        self.read, self.trusted, self.where, self.func, self.dill = read, trusted, where, func, dill
        self._tensors: dict[str, Any] | None = None
        self._views: dict[tuple, Any] = {}
        self.error: ArchiveError | None = None  # the first error the hook raised


    def fail(self, problem: str) -> ArchiveError:
        return ArchiveError(f"cannot load {self.where}: {problem}")

    def hook(self, marker: str, payload: Any, path: str) -> Any:
        try:
            return self._hook(marker, payload)
        except ArchiveError as exc:
            self.error = self.error or exc
            raise

    def _hook(self, marker: str, payload: Any) -> Any:
        if marker == "__tensor_ref__":
            return self.tensor(payload)
        if marker == "__array_ref__":
            return self.array(payload)
        if marker == "__blob_ref__":
            return self.read(blob_member(_index(payload)))
        if marker == "__pickle_ref__":
            if not self.trusted:
                raise untrusted([payload], self.where, self.func, _PICKLED)
            data = self.read(pickle_member(_index(payload.get("index"))))
            try:
                return pickle.loads(data)
            except Exception as exc:
                raise self.fail(f"pickled value {payload.get('path')} cannot be read ({exc})") from exc
        if marker == MARKER:
            return self.dill.load(payload)
        return serialize.NOT_HANDLED

    def array(self, payload: dict) -> Any:
        import numpy as np

        member = array_member(_index(payload.get("index")))
        try:
            arr = np.load(io.BytesIO(self.read(member)), allow_pickle=False)
        except ArchiveError:
            raise
        except Exception as exc:
            problem = f"member {member} is not a valid .npy array ({type(exc).__name__}: {exc})"
            raise self.fail(problem) from exc
        if not isinstance(arr, np.ndarray) or (payload.get("scalar") and arr.ndim != 0):
            raise self.fail(f"member {member} does not hold what the manifest describes")
        return arr[()] if payload.get("scalar") else arr

    def tensor(self, spec: dict) -> Any:
        import torch

        if self._tensors is None:
            import safetensors.torch

            data = self.read(TENSORS)
            try:
                self._tensors = safetensors.torch.load(data)
            except Exception as exc:
                raise self.fail(f"member {TENSORS} is corrupt ({type(exc).__name__}: {exc})") from exc
        name, dtype_name, shape = spec["name"], spec["dtype"], _ints(spec["shape"])
        dtype = getattr(torch, dtype_name, None) if isinstance(dtype_name, str) else None
        stored = self._tensors.get(name) if isinstance(name, str) else None
        if stored is None or not isinstance(dtype, torch.dtype):
            raise self.fail(f"tensor {name!r} ({dtype_name}) is missing from {TENSORS}")
        if "stride" not in spec:  # stored as itself
            if stored.dtype != dtype or list(stored.shape) != shape:
                raise self.fail(f"tensor {name!r} in {TENSORS} does not match the manifest")
            return stored
        stride, offset = _ints(spec["stride"]), _ints([spec["offset"]])[0]
        key = (name, dtype_name, tuple(shape), tuple(stride), offset)
        if key not in self._views:
            size = torch.empty(0, dtype=dtype).element_size()
            end = (offset + _extent(shape, stride)) * size if _extent(shape, stride) else 0
            if stored.dtype != torch.uint8 or len(stride) != len(shape) or end > stored.numel():
                raise self.fail(f"tensor view {name!r} does not fit the bytes stored for it")
            if stored.storage_offset() or stored.untyped_storage().nbytes() != stored.numel():
                stored = stored.clone()  # views index the storage from its start: own it whole
            view = torch.empty(0, dtype=dtype).set_(stored.untyped_storage(), offset, shape, stride)
            self._views[key] = view
        return self._views[key]


def _index(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"bad member index {value!r}")
    return value


def _ints(values: Any) -> list[int]:
    if not isinstance(values, list) or any(type(v) is not int or v < 0 for v in values):
        raise ValueError(f"bad shape, stride or offset {values!r}")
    return values
