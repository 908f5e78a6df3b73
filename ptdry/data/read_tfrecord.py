"""Reading TFRecord files of ``tf.train.Example`` records (TensorFlow, imported here only).

Each record becomes a dict of NumPy arrays, one per feature (``int64_list`` → int64,
``float_list`` → float32, ``bytes_list`` → bytes), or a tuple of the features ``keys``. The
file is a stream: its length is known only by reading it.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ptdry.data.sources import Source, select
from ptdry.errors import DataError

__all__ = ["read_tfrecord"]


class _TFRecordSource(Source):
    random_access = False

    def __init__(self, path: str, options: dict[str, Any]) -> None:
        self.path, self.keys = path, options.get("keys")
        self.compression = options.get("compression") or ""
        first = next(self.iter(), None)
        if first is None:
            raise DataError(f"{path}: the TFRecord file has no records")
        self.supervised = isinstance(first, tuple) and len(first) == 2

    def iter(self) -> Iterator[Any]:
        import tensorflow as tf

        try:
            for raw in tf.data.TFRecordDataset(self.path, compression_type=self.compression):
                yield self._element(tf.train.Example.FromString(raw.numpy()))
        except (tf.errors.OpError, ValueError) as exc:
            raise DataError(f"{self.path}: cannot be read as TFRecord of tf.train.Example ({exc})") from None

    def _element(self, example: Any) -> Any:
        features = example.features.feature
        names = select(sorted(features), self.keys, self.path, "features")
        values = [_value(features[name]) for name in names]
        if self.keys is None:
            return dict(zip(names, values))
        return values[0] if isinstance(self.keys, str) or len(values) == 1 else tuple(values)


def _value(feature: Any) -> Any:
    kind = feature.WhichOneof("kind")
    if kind == "int64_list":
        return np.asarray(feature.int64_list.value, dtype=np.int64)
    if kind == "float_list":
        return np.asarray(feature.float_list.value, dtype=np.float32)
    if kind == "bytes_list":
        values = list(feature.bytes_list.value)
        return values[0] if len(values) == 1 else np.asarray(values)
    return np.zeros(0, dtype=np.float32)


def read_tfrecord(path: str, options: dict[str, Any]) -> Source:
    """The records of a TFRecord file (option ``compression``: ``"GZIP"`` or ``"ZLIB"``)."""
    return _TFRecordSource(path, options)
