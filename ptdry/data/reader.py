"""DataReader: files as Datasets — NumPy, CSV, JSON, HDF5, TFRecord, LMDB, a folder of images.

``DataReader(...).read(path)`` returns a :class:`FileDataset`, a Module whose definition holds
the reader (its options), the absolute path and a content fingerprint of the file
(:mod:`ptdry.data.fingerprint`). A stored tree therefore remembers which file it read; when the
tree is rebuilt, the dataset reads the file again — nothing needs to be passed — after
checking that its fingerprint is still the recorded one. A changed file is a
:class:`~ptdry.errors.DataError` naming it, raised when the rebuilt dataset is first read or
checked (``problems()``, as ``Trainer.fit`` does); building the tree works, so a past run
can still be inspected.

The format comes from ``format=`` or the path: ``.npy``, ``.npz``, ``.csv``/``.tsv``,
``.json``, ``.jsonl``/``.ndjson``, ``.h5``/``.hdf5``/``.hdf``, ``.tfrecord``/``.tfrecords``,
an LMDB folder (holding ``data.mdb``) or ``.lmdb``/``.mdb``, and any other folder as images.
h5py, lmdb, Pillow and TensorFlow are imported only to read their formats.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np

from ptdry.core.module import Module
from ptdry.core.properties import Choice, Instance, Str
from ptdry.data.dataset import Dataset
from ptdry.data.fingerprint import fingerprint as fingerprint_of
from ptdry.data.sources import Source
from ptdry.errors import DataError

__all__ = ["EXTENSIONS", "FORMATS", "DataReader", "FileDataset"]

#: The formats DataReader reads.
FORMATS = ("npy", "npz", "csv", "json", "jsonl", "hdf5", "tfrecord", "lmdb", "images")

#: File endings and the format they mean.
EXTENSIONS = {
    ".npy": "npy",
    ".npz": "npz",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
    ".lmdb": "lmdb",
    ".mdb": "lmdb",
}


class DataReader(Module):
    """Reads files as Datasets; its options are recorded like any constructor arguments.

    Args:
        format: one of :data:`FORMATS`; None: from the path.
        keys: the arrays (npz), datasets (HDF5), fields (JSON) or features (TFRecord) to read,
            in element order; one name gives its rows, several give tuples. Default: all.
        target: CSV: the column (name, or index without a header) split off as Y.
        delimiter, header, dtype: CSV: separator (default ``,``; tab for ``.tsv``), whether
            the first line names the columns, dtype of the values (default float32).
        decode: LMDB: ``"npy"`` (default), ``"raw"`` or a module-level function of the bytes
            (loading a stored tree needs it allowed: ``ptdry.allow``).
        mode, size: images: Pillow mode (``"L"``, ``"RGB"``) and ``(width, height)``.
        compression: TFRecord: ``"GZIP"`` or ``"ZLIB"``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "xy.npz")
        >>> np.savez(path, x=np.zeros((4, 2)), y=np.arange(4))
        >>> ds = DataReader().read(path)
        >>> len(ds), ds.supervised, ds[1][1]
        (4, True, np.int64(1))
    """

    format = Choice([None, *FORMATS])

    def __init__(
        self,
        format: str | None = None,
        *,
        keys: Any = None,
        target: Any = None,
        delimiter: str | None = None,
        header: bool = True,
        dtype: str | None = None,
        decode: Any = None,
        mode: str | None = None,
        size: Any = None,
        compression: str | None = None,
    ) -> None:
        self.format = format
        given = dict(
            keys=keys,
            target=target,
            delimiter=delimiter,
            dtype=dtype,
            decode=decode,
            mode=mode,
            size=size,
            compression=compression,
        )
        self.options = {k: v for k, v in given.items() if v is not None}
        self.options["header"] = header

    def format_of(self, path: str) -> str:
        """The format this reader reads ``path`` as.

        Raises:
            DataError: the path's ending names no format this reader knows.
        """
        if self.format is not None:
            return self.format
        ext = os.path.splitext(path.rstrip("/\\"))[1].lower()
        if ext in EXTENSIONS:
            return EXTENSIONS[ext]
        if os.path.isdir(path):
            return "lmdb" if os.path.exists(os.path.join(path, "data.mdb")) else "images"
        known = ", ".join(sorted(EXTENSIONS))
        raise DataError(
            f"{path}: unsupported format {ext or '(no extension)'!r}; DataReader reads {known}, "
            "folders of images or LMDB, or pass format="
        )

    def read(self, path: str | os.PathLike) -> "FileDataset":
        """The Dataset of the file (or folder) at ``path``.

        Raises:
            DataError: the path is missing, unreadable or of an unsupported format.
        """
        return FileDataset(self, path=path)

    __call__ = read

    def open(self, path: str) -> Source:
        """Open ``path`` for reading (a :class:`~ptdry.data.sources.Source`; one per process)."""
        fmt = self.format_of(path)
        options = {**self.options, "format": fmt}
        if fmt == "npy":
            from ptdry.data.read_arrays import read_npy

            return read_npy(path, options)
        if fmt == "npz":
            from ptdry.data.read_arrays import read_npz

            return read_npz(path, options)
        if fmt == "csv":
            from ptdry.data.read_arrays import read_csv

            return read_csv(path, options)
        if fmt in ("json", "jsonl"):
            from ptdry.data.read_arrays import read_json

            return read_json(path, options)
        if fmt == "hdf5":
            from ptdry.data.read_hdf5 import read_hdf5

            return read_hdf5(path, options)
        if fmt == "tfrecord":
            from ptdry.data.read_tfrecord import read_tfrecord

            return read_tfrecord(path, options)
        if fmt == "lmdb":
            from ptdry.data.read_lmdb import read_lmdb

            return read_lmdb(path, options)
        from ptdry.data.read_images import read_images

        return read_images(path, options)


class FileDataset(Dataset):
    """The rows of one file (or folder), read through a :class:`DataReader`.

    Args:
        reader: the DataReader (its options say how to read).
        path: the file; recorded as an absolute path.
        fingerprint: recorded by ptdry: the content fingerprint of the file when it was first
            read. Given (a rebuilt tree), the file is checked against it on first read.

    Raises:
        DataError: a missing, unreadable or unsupported file (when read first), or a file
            whose fingerprint changed (when a rebuilt dataset is first read).
    """

    reader = Instance(DataReader, kind="a DataReader")
    path = Str(nonempty=True)
    fingerprint = Str(allow_none=True)

    def __init__(self, reader: DataReader, path: str | os.PathLike, fingerprint: str | None = None) -> None:
        self.reader = reader
        self.path = os.path.abspath(os.fspath(path))
        self._record_argument("path", self.path)
        reader.format_of(self.path)  # an unsupported ending fails now
        self.__dict__["_dry_source"], self.__dict__["_dry_verified"] = None, False
        if fingerprint is None:
            fingerprint = fingerprint_of(self.path)
            self._record_argument("fingerprint", fingerprint)
            self.__dict__["_dry_verified"] = True
            self._source()  # an unreadable file fails now, naming it
        self.fingerprint = fingerprint

    def _verify(self) -> None:
        if self.__dict__["_dry_verified"]:
            return
        now = fingerprint_of(self.path)
        if now != self.fingerprint:
            raise DataError(
                f"{self.path} changed since this dataset was defined: its fingerprint was {self.fingerprint[:19]}…, "
                f"it is {now[:19]}… now. Restore the file, or read it again (DataReader(...).read(path)) to use "
                "the new content in a new run"
            )
        self.__dict__["_dry_verified"] = True

    def _source(self) -> Source:
        """The opened file for this process (workers open their own)."""
        cached = self.__dict__["_dry_source"]
        if cached is None or cached[0] != os.getpid():
            self._verify()
            cached = self.__dict__["_dry_source"] = (os.getpid(), self.reader.open(self.path))
        return cached[1]

    def close(self) -> None:
        """Close the file (it is opened again when read)."""
        cached = self.__dict__["_dry_source"]
        self.__dict__["_dry_source"] = None
        if cached is not None and cached[0] == os.getpid():
            cached[1].close()

    def __getstate__(self) -> dict[str, Any]:  # open handles stay in their process
        state = dict(self.__dict__)
        state["_dry_source"] = None
        return state

    # -- Dataset ---------------------------------------------------------------------------------------
    @property
    def random_access(self) -> bool:
        return self._source().random_access

    def _length(self) -> int | None:
        source = self._source()
        return len(source) if source.random_access else None

    def _get(self, i: int) -> Any:
        return self._source().get(i)

    def _rows(self, index: slice | np.ndarray) -> Any:
        return self._source().rows(index)

    def _iter(self) -> Iterator[Any]:
        return self._source().iter()

    @property
    def supervised(self) -> bool:
        return self._source().supervised

    @property
    def classes(self) -> list[str] | None:
        """Class names (a folder of images with one subfolder per class), else None."""
        return self._source().classes

    @property
    def backend(self) -> str:
        return "numpy"

    def problems(self) -> list[str]:
        """A missing file is listed; a file whose content changed raises :class:`DataError`
        (training on other data than the run recorded is an error, not a state to wait out)."""
        out = super().problems()
        if not os.path.exists(self.path):
            out.append(f"{self.path}: no such file or folder (this dataset read it when it was defined)")
            return out
        self._verify()
        return out
