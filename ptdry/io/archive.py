"""Archives: save a Module tree (definition + state) to one zip file and load it back.

An archive is a zip with ``manifest.json`` (format, versions, class path, ``dry_id``,
definition, the JSON part of the state), ``tensors.safetensors``, ``arrays/<n>.npy``,
``blobs/<n>.bin`` and, only when nothing else can hold a value, ``pickles/<n>.pkl`` — or,
for what pickle cannot write either and only when saved with ``trusted=True``,
``dill/<n>.pkl`` (:mod:`ptdry.io.dill_values`); loading either needs ``trusted=True``. :func:`state_to_bytes` writes a bare state in the
same layout (format ``"ptdry-state"``), so there is one code path. Writes to a path are
atomic. Every problem met while loading raises :class:`~ptdry.errors.ArchiveError` naming
the file. Loading imports and calls only allowed classes and functions unless
``trusted=True`` (:mod:`ptdry.core.allowed`), and caps how far compressed members may
inflate (:mod:`ptdry.io.inflate_limit`). See ``docs/archives.md``.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import sys
import zipfile
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Union

from ptdry.core.atomic import atomic_write
from ptdry.core.classpath import class_path, warn_main_classes
from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef
from ptdry.core.state import State
from ptdry.core.versions import library_versions
from ptdry.errors import ArchiveError, ConfigError, SerializationError, add_note
from ptdry.io import codec
from ptdry.io.dill_values import DillReader, DillWriter
from ptdry.io.inflate_limit import bounded_reader, resolve_max_bytes

__all__ = ["FORMAT", "FORMAT_VERSION", "load_object", "save_object", "state_from_bytes", "state_to_bytes"]

#: ``manifest["format"]`` of an archive written by :func:`save_object`.
FORMAT = "ptdry-archive"
#: ``manifest["format"]`` of a bare state written by :func:`state_to_bytes`.
STATE_FORMAT = "ptdry-state"
#: The newest format version this ptdry reads and the one it writes.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member times: equal state, equal bytes


# -- public API ---------------------------------------------------------------------------
def state_to_bytes(state: Mapping[Any, Any]) -> bytes:
    """Serialize a (nested) state mapping to bytes, e.g. to store it as a database artifact.

    The bytes are an in-memory zip in the archive layout (see the module doc), and the same
    state gives the same bytes. Read them with :func:`state_from_bytes`.

    Raises:
        SerializationError: a value cannot be stored even with pickle; names its key path.
    """
    encoded = codec.encode_state(state)
    manifest = _header(STATE_FORMAT)
    manifest.update(encoded.manifest_fields())
    buffer = io.BytesIO()
    _write_zip(buffer, manifest, encoded.members())
    return buffer.getvalue()


def state_from_bytes(
    data: bytes,
    *,
    trusted: bool = False,
    allowed: Iterable[Any] = (),
    source: str = "<bytes>",
    max_bytes: int | None = None,
) -> State:
    """Read a state written by :func:`state_to_bytes` (or the state of an archive).

    Args:
        data: the bytes.
        trusted: the source is trusted: unpickle values that nothing else could store, and
            import any class or function the state names (runs code).
        allowed: classes or functions the state may name besides the allowed ones (see
            :mod:`ptdry.core.allowed`).
        source: names the bytes in error messages (e.g. ``"artifact state of <id>"``).
        max_bytes: the most bytes the compressed members may inflate to (default
            ``$PTDRY_MAX_ARCHIVE_BYTES`` or 256 MiB; see :mod:`ptdry.io.inflate_limit`).

    Raises:
        UntrustedArchiveError: the state holds pickled values, or names a class or function
            that is not allowed, and ``trusted`` is false.
        ArchiveError: the bytes are not a ptdry state, are corrupt, too new or inflate past
            ``max_bytes``.
    """
    where = f"state from {source}"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail(where, f"expected bytes, received {type(data).__qualname__}")
    limit = resolve_max_bytes(max_bytes)
    with _open_zip(io.BytesIO(bytes(data)), where) as zf:
        read = _reader(zf, where, limit, "state_from_bytes")
        manifest = _read_manifest(read, zf, where, (STATE_FORMAT, FORMAT))
        return codec.decode_state(
            manifest, read, trusted=trusted, allowed=allowed, where=where, func="state_from_bytes"
        )


def save_object(obj: Module, file: PathOrFile, *, trusted: bool = False) -> None:
    """Save ``obj`` — its definition and its state — as an archive that rebuilds it.

    Args:
        obj: the Module (with its nested Modules, torch modules and optimizers).
        file: a path (written atomically: a temp file in the same directory, fsync, then
            rename; on failure the old file stays intact), or a binary file object (written
            at its current position, in one ``write`` call).
        trusted: store what nothing else can encode — a lambda, a closure or a local class
            given as a constructor argument, a state value pickle cannot write — with dill
            (``pip install 'ptdry[dill]'``). Loading such an archive needs ``trusted=True``
            too. Without such values the archive is the same as without ``trusted``.

    Raises:
        SerializationError: a constructor argument or a state value cannot be stored (with
            ``trusted=True``: not even with dill).
    """
    if not isinstance(obj, Module):
        raise ConfigError(f"save_object needs a ptdry Module; received {type(obj).__qualname__}")
    dill = DillWriter() if trusted else None
    try:
        if dill is None:
            definition = obj.definition().to_dict()
        else:
            definition = obj.definition(opaque=True).to_dict(fallback=dill.definition_fallback)
    except SerializationError as exc:
        if not trusted:
            add_note(exc, "save_object(obj, file, trusted=True) stores such values with dill; loading then needs trusted=True")
        raise
    warn_main_classes(definition, f"{type(obj).__name__} {obj.dry_id}")
    manifest = _header(FORMAT)
    manifest.update(
        {
            "class": class_path(type(obj)),
            "dry_id": obj.dry_id,
            "definition": definition,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        }
    )
    encoded = codec.encode_state(obj.state_dict(), dill)
    manifest.update(encoded.manifest_fields())
    if isinstance(file, (str, os.PathLike)):
        atomic_write(os.fspath(file), lambda f: _write_zip(f, manifest, encoded.members()))
        return
    buffer = io.BytesIO()
    _write_zip(buffer, manifest, encoded.members())
    file.write(buffer.getvalue())


def load_object(
    file: PathOrFile,
    *,
    trusted: bool = False,
    allowed: Iterable[Any] = (),
    max_bytes: int | None = None,
) -> Module:
    """Rebuild the Module saved by :func:`save_object`: same class, definition, ``dry_id``, state.

    Loading is safe by default: nothing is unpickled, and the definition may only name
    classes and functions that are allowed (ptdry and torch model classes, classes of
    modules you imported, a short allow-list, and what you registered with
    :func:`ptdry.allow`; see ``docs/archives.md``).

    Args:
        file: a path, or a binary file object (read from its current position to the end).
        trusted: the file is trusted: unpickle values that nothing else could store (with
            pickle or dill), and import and call any class or function it names (runs code).
        allowed: classes or functions to allow for this load, besides the allowed ones.
        max_bytes: the most bytes the compressed members may inflate to (default
            ``$PTDRY_MAX_ARCHIVE_BYTES`` or 256 MiB; tensors and arrays do not count).

    Raises:
        UntrustedArchiveError: the archive holds pickled or dill values, or names a class
            or function that is not allowed, and ``trusted`` is false; nothing is unpickled,
            imported or built. The message names the path in the tree and the name.
        ArchiveError: the file is missing, unreadable, corrupt, not a ptdry archive, written
            by a newer ptdry, inflates past ``max_bytes``, or its definition/state no longer
            fits the class.
    """
    limits = (trusted, allowed, resolve_max_bytes(max_bytes))
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        where = f"archive {path}"
        try:
            with open(path, "rb") as f:
                return _load(f, where, *limits)
        except FileNotFoundError as exc:
            raise _fail(where, "no such file") from exc
        except IsADirectoryError as exc:
            raise _fail(where, "it is a directory, not an archive file") from exc
        except OSError as exc:
            raise _fail(where, f"{exc.strerror or exc}") from exc
    if not hasattr(file, "read"):
        raise TypeError(
            f"load_object needs a path or a binary file object; received {type(file).__qualname__} "
            "(wrap bytes in io.BytesIO)"
        )
    name = getattr(file, "name", None)
    where = f"archive {name}" if isinstance(name, str) else "archive <stream>"
    try:
        data = file.read()
    except Exception as exc:
        raise _fail(where, f"reading failed ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, (bytes, bytearray)):
        raise _fail(where, "it is not a binary file object (open it with 'rb')")
    return _load(io.BytesIO(data), where, *limits)


# -- loading -------------------------------------------------------------------------------
def _load(f: BinaryIO, where: str, trusted: bool, allowed: Iterable[Any], max_bytes: int) -> Module:
    with _open_zip(f, where) as zf:
        read = _reader(zf, where, max_bytes, "load_object")
        manifest = _read_manifest(read, zf, where, (FORMAT,))
        cls_path, definition = manifest.get("class"), manifest.get("definition")
        if not isinstance(cls_path, str) or not isinstance(definition, dict):
            raise _fail(where, "its manifest lacks the class or the definition")
        dill = DillReader(read, trusted=trusted, where=where, func="load_object")
        state = codec.decode_state(
            manifest, read, trusted=trusted, allowed=allowed, where=where, func="load_object", dill=dill
        )
        try:
            tree = ObjectDef.from_dict(definition, trusted=trusted, allowed=allowed, decode_hook=dill.hook)
        except ArchiveError as exc:  # nothing was imported or called
            if str(exc).startswith("cannot load"):
                raise  # the dill reader's: it names the file already
            raise type(exc)(f"cannot load {where}: {exc}") from None
        except Exception as exc:
            raise _fail(where, f"cannot read its definition of {cls_path} ({_brief(exc)})") from exc
    root = tree.cls
    if not (isinstance(root, type) and issubclass(root, Module)) or class_path(root) != cls_path:
        # checked before building: the root of a definition is called, whatever it names
        raise _fail(where, f"its definition is of {_name(root)}, not the Module {cls_path}")
    try:
        obj = tree.build()
    except Exception as exc:
        raise _fail(where, f"cannot build {cls_path} from its definition ({_brief(exc)})") from exc
    if type(obj) is not root:
        raise _fail(where, f"its definition built {_name(type(obj))}, not {cls_path}")
    if "dry_id" in manifest and obj.dry_id != manifest["dry_id"]:
        raise _fail(where, f"built dry_id {obj.dry_id} instead of {manifest['dry_id']}")
    try:
        obj.load_state_dict(state)
    except Exception as exc:
        raise _fail(where, f"its state does not fit {cls_path} ({_brief(exc)})") from exc
    return obj


def _fail(where: str, problem: str) -> ArchiveError:
    return ArchiveError(f"cannot load {where}: {problem}")


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _open_zip(f: BinaryIO, where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(f)
    except zipfile.BadZipFile as exc:
        raise _fail(where, f"not a ptdry archive (not a zip file, or truncated: {exc})") from exc
    except Exception as exc:
        raise _fail(where, f"unreadable zip ({_brief(exc)})") from exc


def _reader(zf: zipfile.ZipFile, where: str, max_bytes: int, func: str) -> Callable[[str], bytes]:
    """``read(member)`` that turns every failure (missing member, bad CRC, ...) into ArchiveError
    and stops compressed members from inflating past ``max_bytes`` in total."""
    return bounded_reader(zf, where, max_bytes, lambda problem: _fail(where, problem), func)


def _read_manifest(
    read: Callable[[str], bytes], zf: zipfile.ZipFile, where: str, formats: tuple[str, ...]
) -> dict[str, Any]:
    """Read and check ``manifest.json``: a ptdry file of an accepted format, not too new."""
    try:
        zf.getinfo(MANIFEST)
    except KeyError:
        raise _fail(where, f"not a ptdry archive (a zip without {MANIFEST})") from None
    raw = read(MANIFEST)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except Exception as exc:
        raise _fail(where, f"{MANIFEST} is not valid JSON ({_brief(exc)})") from exc
    if not isinstance(manifest, dict):
        raise _fail(where, f"{MANIFEST} is not a JSON object")
    fmt, version = manifest.get("format"), manifest.get("format_version")
    if fmt not in formats:
        if fmt == STATE_FORMAT:
            raise _fail(where, "it holds only a state (use state_from_bytes), not an object")
        raise _fail(where, f"not a ptdry archive (manifest format {fmt!r})")
    if type(version) is not int or version < 1:
        raise _fail(where, f"its manifest has no valid format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f"cannot load {where}: written by a newer ptdry (format {version}); upgrade ptdry "
            f"(this one, {_ptdry_version()}, reads format {FORMAT_VERSION})"
        )
    return manifest


# -- writing -------------------------------------------------------------------------------
def _header(fmt: str) -> dict[str, Any]:
    return {
        "format": fmt,
        "format_version": FORMAT_VERSION,
        "ptdry_version": _ptdry_version(),
        "library_versions": library_versions(),
    }


def _ptdry_version() -> str:
    ptdry = sys.modules.get("ptdry")
    return getattr(ptdry, "__version__", None) or "unknown"


def _write_zip(f: BinaryIO, manifest: dict[str, Any], members: Iterable[tuple[str, bytes, bool]]) -> None:
    """Write the manifest first, then each member (big binary members uncompressed)."""
    text = json.dumps(manifest, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    with zipfile.ZipFile(f, "w", allowZip64=True) as zf:
        _add(zf, MANIFEST, text.encode("ascii"), True)
        for name, data, compress in members:
            _add(zf, name, data, compress)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, compress: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


