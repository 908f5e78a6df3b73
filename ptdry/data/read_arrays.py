"""Reading NumPy files (``.npy``, ``.npz``), CSV and JSON (``.json``, ``.jsonl``) as rows.

``.npy`` is memory-mapped (rows are read when used); ``.npz``, CSV and JSON are read into
arrays once per process. Every failure is a :class:`~ptdry.errors.DataError` naming the file.
"""

from __future__ import annotations

import csv
import json
from typing import Any, Sequence

import numpy as np

from ptdry.data.sources import ArraySource, select
from ptdry.errors import DataError

__all__ = ["read_csv", "read_json", "read_npy", "read_npz"]


def read_npy(path: str, options: dict[str, Any]) -> ArraySource:
    """The rows of one ``.npy`` array, memory-mapped."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as a .npy array ({exc})") from None
    if array.ndim == 0:
        raise DataError(f"{path}: holds a single value, not rows")
    return ArraySource([array], path)


def read_npz(path: str, options: dict[str, Any]) -> ArraySource:
    """The arrays ``keys`` (default: all, in the file's order) of a ``.npz``, row by row."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = select(archive.files, options.get("keys"), path)
            arrays = [archive[name] for name in names]
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as a .npz archive ({exc})") from None
    return ArraySource(arrays, path)


def read_csv(path: str, options: dict[str, Any]) -> ArraySource:
    """A numeric table: rows of ``dtype`` (default float32); ``target`` (a column name, or
    an index without a header) is split off, giving ``(x, y)`` rows."""
    delimiter = options.get("delimiter") or ("\t" if path.endswith(".tsv") else ",")
    header = options.get("header", True)
    dtype = np.dtype(options.get("dtype") or "float32")
    try:
        with open(path, newline="") as f:
            lines = [line for line in csv.reader(f, delimiter=delimiter) if line]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from None
    names = [c.strip() for c in lines.pop(0)] if header and lines else None
    if not lines:
        raise DataError(f"{path}: the CSV file has no rows")
    width = len(lines[0])
    for number, line in enumerate(lines, start=2 if names else 1):
        if len(line) != width:
            raise DataError(f"{path}, line {number}: {len(line)} columns, expected {width}")
    try:
        table = np.array(lines, dtype=np.float64)
    except ValueError:
        bad = next((n, c) for n, line in enumerate(lines, start=2 if names else 1) for c in line if not _is_number(c))
        raise DataError(
            f"{path}, line {bad[0]}: {bad[1]!r} is not a number; CSV files are read as numeric tables"
        ) from None
    target = options.get("target")
    if target is None:
        return ArraySource([table.astype(dtype)], path)
    column = _column(target, names, width, path)
    rest = [i for i in range(width) if i != column]
    y = table[:, column]
    y = y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(dtype)
    return ArraySource([table[:, rest].astype(dtype), y], path)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column(target: Any, names: Sequence[str] | None, width: int, path: str) -> int:
    if isinstance(target, str):
        if names is None or target not in names:
            raise DataError(f"{path} has no column {target!r}; it has {names or 'no header'}")
        return list(names).index(target)
    if not isinstance(target, int) or not -width <= target < width:
        raise DataError(f"{path}: target column {target!r} is not one of its {width} columns")
    return target % width


def read_json(path: str, options: dict[str, Any]) -> ArraySource:
    """Records — a JSON list of objects, an object of equal-length lists (columns), or one
    object per line (``.jsonl``) — as rows of the fields ``keys`` (default: all, in order)."""
    try:
        with open(path) as f:
            if options.get("format") == "jsonl" or path.endswith((".jsonl", ".ndjson")):
                records: Any = [json.loads(line) for line in f if line.strip()]
            else:
                records = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as JSON ({exc})") from None
    if isinstance(records, dict):
        columns = records
    elif isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
        fields = list(records[0])
        odd = next((i for i, r in enumerate(records) if list(r) != fields), None)
        if odd is not None:
            raise DataError(f"{path}: record {odd} has the fields {sorted(records[odd])}, the first {sorted(fields)}")
        columns = {name: [r[name] for r in records] for name in fields}
    else:
        raise DataError(f"{path}: expected a list of objects, an object of columns, or JSON lines")
    names = select(list(columns), options.get("keys"), path, "fields")
    arrays = []
    for name in names:
        try:
            arrays.append(np.asarray(columns[name]))
        except ValueError as exc:
            raise DataError(f"{path}: field {name!r} does not form an array ({exc})") from None
        if arrays[-1].dtype == object:
            raise DataError(f"{path}: field {name!r} holds values of different shapes or types")
    return ArraySource(arrays, path)
