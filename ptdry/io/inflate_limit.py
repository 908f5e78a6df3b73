"""A cap on how much an archive's compressed members may inflate to, against zip bombs.

Tensors and ``.npy`` arrays are stored uncompressed in an archive, so they never take more
bytes than the file itself, however many gigabytes of weights it holds. The compressed
members — ``manifest.json``, ``blobs/`` and ``pickles/`` — are what a zip bomb abuses:
400 KB of deflate inflate to 400 MB. The bytes these members decompress to, summed over one
load, may not exceed ``max_bytes``:

- :data:`DEFAULT_MAX_BYTES` (256 MiB) unless told otherwise;
- the environment variable ``PTDRY_MAX_ARCHIVE_BYTES`` (an integer number of bytes) raises
  or lowers it for a process;
- ``load_object(path, max_bytes=...)`` / ``state_from_bytes(data, max_bytes=...)`` for one
  call.

The size a member declares is checked before it is read, and reading stops as soon as the
bytes produced pass the limit, so a header that lies does not help.
"""

from __future__ import annotations

import os
import zipfile
from typing import Callable

from ptdry.errors import ArchiveError, ConfigError

__all__ = ["DEFAULT_MAX_BYTES", "ENV_VAR", "bounded_reader", "resolve_max_bytes"]

#: Default cap on the bytes compressed members of one archive may inflate to.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Environment variable overriding :data:`DEFAULT_MAX_BYTES`.
ENV_VAR = "PTDRY_MAX_ARCHIVE_BYTES"
_CHUNK = 1 << 20


def resolve_max_bytes(max_bytes: int | None) -> int:
    """``max_bytes`` if given, else ``$PTDRY_MAX_ARCHIVE_BYTES``, else :data:`DEFAULT_MAX_BYTES`.

    Raises:
        ConfigError: the value is not a positive integer; names where it came from.
    """
    source = "max_bytes"
    if max_bytes is None:
        text = os.environ.get(ENV_VAR)
        if text is None or not text.strip():
            return DEFAULT_MAX_BYTES
        source = f"${ENV_VAR}"
        try:
            max_bytes = int(text.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{source} must be a whole number of bytes; received {text!r}") from None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"{source} must be a positive number of bytes; received {max_bytes!r}")
    return max_bytes


def bounded_reader(
    zf: zipfile.ZipFile, where: str, max_bytes: int, fail: Callable[[str], ArchiveError], func: str
) -> Callable[[str], bytes]:
    """``read(member)`` for ``zf`` that keeps the inflated bytes of one load under ``max_bytes``.

    ``fail(problem)`` makes the error for a missing or corrupt member; ``func`` is the
    function the user called, named in the advice of a too-large error.
    """
    left = [max_bytes]

    def too_big(member: str, size: int, declared: bool) -> ArchiveError:
        verb = "declares" if declared else "inflates to more than"
        return ArchiveError(
            f"cannot load {where}: member {member} {verb} {size:,} bytes, which would take the "
            f"decompressed members of this archive past the limit of {max_bytes:,} bytes "
            f"(a zip bomb?); if you trust the file, pass a larger max_bytes to {func} or set "
            f"${ENV_VAR}"
        )

    def read(member: str) -> bytes:
        try:
            info = zf.getinfo(member)
        except KeyError as exc:
            raise fail(f"member {member} is missing (truncated or not a ptdry archive?)") from exc
        counted = info.compress_type != zipfile.ZIP_STORED
        if counted and info.file_size > left[0]:
            raise too_big(member, info.file_size, True)
        chunks, size = [], 0
        try:
            with zf.open(info) as f:
                while chunk := f.read(_CHUNK):
                    size += len(chunk)
                    if counted and size > left[0]:
                        raise too_big(member, size, False)
                    chunks.append(chunk)
        except ArchiveError:
            raise
        except Exception as exc:
            raise fail(f"member {member} is corrupt ({type(exc).__name__}: {exc})") from exc
        if counted:
            left[0] -= size
        return b"".join(chunks)

    return read
