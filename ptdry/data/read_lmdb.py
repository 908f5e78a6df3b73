"""Reading LMDB databases (lmdb, imported here only): one element per key, in key order."""

from __future__ import annotations

import io
import os
from typing import Any, Callable

import numpy as np

from ptdry.data.sources import Source
from ptdry.errors import DataError

__all__ = ["decode_npy", "read_lmdb"]


def decode_npy(value: bytes) -> Any:
    """A value written with ``np.save`` (an array) or ``np.savez`` (a tuple of its arrays, in
    order); never unpickles."""
    try:
        loaded = np.load(io.BytesIO(value), allow_pickle=False)
    except ValueError as exc:
        raise DataError(
            f"an LMDB value is not .npy/.npz bytes ({exc}); pass DataReader(decode='raw') or a function"
        ) from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return tuple(loaded[name] for name in loaded.files)


def _raw(value: bytes) -> bytes:
    return value


class _LMDBSource(Source):
    def __init__(self, env: Any, keys: list[bytes], decode: Callable[[bytes], Any], path: str) -> None:
        self.env, self.keys, self.decode, self.path = env, keys, decode, path
        first = self.get(0)
        self.supervised = isinstance(first, tuple) and len(first) == 2

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, i: int) -> Any:
        with self.env.begin() as txn:
            value = txn.get(self.keys[i])
        if value is None:
            raise DataError(f"{self.path}: key {self.keys[i]!r} disappeared while reading")
        try:
            return self.decode(value)
        except DataError as exc:
            raise DataError(f"{self.path}, key {self.keys[i]!r}: {exc}") from None

    def close(self) -> None:
        self.env.close()


def read_lmdb(path: str, options: dict[str, Any]) -> Source:
    """Every value of an LMDB database (a folder with ``data.mdb``, or the file), decoded by
    ``decode``: ``"npy"`` (default, see :func:`decode_npy`), ``"raw"`` (the bytes) or a
    module-level function of the bytes."""
    import lmdb

    decode = options.get("decode") or "npy"
    if decode == "npy":
        decoder: Callable[[bytes], Any] = decode_npy
    elif decode == "raw":
        decoder = _raw
    elif callable(decode):
        decoder = decode
    else:
        raise DataError(f"decode must be 'npy', 'raw' or a function of the bytes; received {decode!r}")
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=os.path.isdir(path))
    except lmdb.Error as exc:
        raise DataError(f"{path}: cannot be read as LMDB ({exc})") from None
    try:
        with env.begin() as txn:
            keys = list(txn.cursor().iternext(keys=True, values=False))
        if not keys:
            raise DataError(f"{path}: the LMDB database is empty")
        return _LMDBSource(env, keys, decoder, path)
    except BaseException:
        env.close()
        raise
