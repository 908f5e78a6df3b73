"""Dataset: elements to iterate (or index), with DRYML's small vocabulary of transformations.

Every dataset — NumPy arrays, a torch Dataset, a ``tf.data.Dataset``, a file — is a
:class:`Dataset` Module, and every transformation (``batch``, ``map``, ``shuffle``, ``torch()``
...) returns a new Dataset whose definition names its source, so a whole pipeline is stored
and rebuilt like any other tree. Transformations are lazy and copy nothing they need not:
``unbatch()`` of arrays yields views, ``batch(n)`` of rows slices them, ``torch()`` of NumPy
arrays shares their memory.

A dataset is *map-style* (``ds[i]``, ``len(ds)``) when its source allows random access, and
iterable otherwise; ``count()`` works for both. Elements are arrays/tensors or tuples, lists
and dicts of them; a *batched* dataset's elements are batches (``batch_size`` says of how
many rows), and a *supervised* one's are ``(X, Y)`` pairs.

The transformations are small classes in this same module (each one is a Dataset whose
methods make more of them); the work they do is in :mod:`ptdry.data.structure`.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any, Callable, Iterator

import numpy as np

from ptdry.core.module import Module
from ptdry.core.properties import Bool, Choice, Instance, Int
from ptdry.data import structure
from ptdry.data.randomness import buffered_shuffle, rng
from ptdry.errors import DataError

__all__ = [
    "Batched",
    "Collected",
    "Converted",
    "Dataset",
    "Indexed",
    "Mapped",
    "NotIndexed",
    "Shuffled",
    "Unbatched",
    "Window",
]


class Dataset(Module):
    """Base of ptdry's datasets: iteration, optional random access, and the vocabulary.

    Subclasses implement ``_iter()`` (a fresh iterator over the elements) and, when they
    can, ``_length()``, ``random_access`` with ``_get(i)``, and ``_rows(index)`` (a batch of
    the rows ``index``, a slice or an integer array, for loaders).

    Example:
        >>> import numpy as np
        >>> from ptdry import NumpyDataset
        >>> ds = NumpyDataset(np.arange(12).reshape(6, 2))     # one batch of 6 rows
        >>> ds.batch_size, ds.unbatch().batch(4).count()
        (6, 2)
        >>> [x.tolist() for x in ds.unbatch().take(2)]
        [[0, 1], [2, 3]]
    """

    # -- what subclasses provide ----------------------------------------------------------------
    def _iter(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} does not implement _iter()")

    def _length(self) -> int | None:
        """The number of elements if known without reading them, else None."""
        return None

    @property
    def random_access(self) -> bool:
        """True when ``ds[i]`` works (map-style)."""
        return False

    def _get(self, i: int) -> Any:
        raise TypeError(f"{type(self).__name__} is iterable, not map-style: iterate it, or collect() it first")

    def _rows(self, index: slice | np.ndarray) -> Any:
        """The rows ``index`` as one batch (an unbatched map-style dataset); subclasses with
        arrays override this with slicing or one gather per array."""
        positions = range(*index.indices(len(self))) if isinstance(index, slice) else index
        return structure.stack([self._get(int(i)) for i in positions], self.backend)

    def _batch_lengths(self) -> list[int]:
        """Rows in each element of a batched map-style dataset."""
        return [structure.batch_length(self._get(i)) for i in range(len(self))]

    @property
    def batch_size(self) -> int | None:
        """Rows per element when the elements are batches (the last may have fewer), else None."""
        return None

    @property
    def batched(self) -> bool:
        return self.batch_size is not None

    @property
    def supervised(self) -> bool:
        """True when the elements are ``(X, Y)`` pairs."""
        return False

    @property
    def indexed(self) -> bool:
        """True when the elements are ``(index, element)`` pairs (see :meth:`as_indexed`)."""
        return False

    @property
    def backend(self) -> str | None:
        """The framework of the elements' arrays: ``"numpy"``, ``"torch"``, ``"tf"`` or None."""
        return None

    # -- Python protocols -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        return self._iter()

    def __len__(self) -> int:
        n = self._length()
        if n is None:
            raise TypeError(f"the length of {type(self).__name__} is not known without reading it; use count()")
        return n

    def __bool__(self) -> bool:  # a dataset is an object, not a container that may be empty
        return True

    def __getitem__(self, i: int) -> Any:
        if not self.random_access:
            return self._get(i)  # raises the explanatory TypeError
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices must be integers; received {type(i).__qualname__}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for {type(self).__name__} of {n} elements")
        return self._get(int(i) % n)

    # -- reading ----------------------------------------------------------------------------------
    def peek(self) -> Any:
        """The first element, without changing anything.

        Raises:
            DataError: the dataset has no elements.
        """
        for element in self:
            return element
        raise DataError(f"cannot peek {type(self).__name__}: it has no elements")

    def count(self) -> int:
        """The number of elements (read through once when not known otherwise)."""
        n = self._length()
        if n is not None:
            return n
        return sum(1 for _ in self)

    def collect(self) -> "Dataset":
        """A map-style dataset holding every element in memory (read now, once)."""
        out = Collected(self)
        out.elements()
        return out

    # -- the vocabulary ------------------------------------------------------------------------------
    def batch(self, batch_size: int, drop_remainder: bool = False) -> "Dataset":
        """Elements that are batches of ``batch_size`` rows (the rows of a batched dataset are
        regrouped; a dataset already batched by ``batch_size`` is returned as it is)."""
        if self.batched:
            if self.batch_size == batch_size and not drop_remainder:
                return self
            return Batched(self.unbatch(), batch_size, drop_remainder)
        return Batched(self, batch_size, drop_remainder)

    def unbatch(self) -> "Dataset":
        """The rows of a batched dataset as elements (itself when not batched)."""
        return Unbatched(self) if self.batched else self

    def map(self, fn: Any, *, vectorized: bool = False) -> "Dataset":
        """``fn(element)`` for every element (an indexed dataset keeps its indices).

        ``fn`` must be a module-level function (or a Module, or an instance of an importable
        class) for the dataset's definition to be stored; lambdas work until then.
        ``vectorized=True`` says that ``fn`` of a batch of rows is the batch of ``fn`` of each
        row (elementwise math, :class:`Cast`), so loaders apply it to whole batches.
        """
        return Mapped(self, fn=fn, vectorized=vectorized)

    def apply_X(self, fn: Any, *, vectorized: bool = False) -> "Dataset":  # noqa: N802 (DRYML's name)
        """``fn`` on the X of each ``(X, Y)`` element (on the whole element when unsupervised)."""
        return Mapped(self, fn=fn, part="X" if self.supervised else None, vectorized=vectorized)

    def apply_Y(self, fn: Any, *, vectorized: bool = False) -> "Dataset":  # noqa: N802
        """``fn`` on the Y of each ``(X, Y)`` element.

        Raises:
            DataError: the dataset is not supervised.
        """
        if not self.supervised:
            raise DataError(
                f"apply_Y needs a supervised dataset (elements (X, Y)); {type(self).__name__} is not: "
                "build it from a pair such as NumpyDataset((X, Y)) or pass supervised=True"
            )
        return Mapped(self, fn=fn, part="Y", vectorized=vectorized)

    def take(self, n: int) -> "Dataset":
        """The first ``n`` elements."""
        return Window(self, 0, n)

    def skip(self, n: int) -> "Dataset":
        """All but the first ``n`` elements."""
        return Window(self, n, None)

    def shuffle(self, buffer_size: int, seed: int | None = None) -> "Dataset":
        """Rows in a random order drawn with a buffer of ``buffer_size`` rows (a batched
        dataset's rows are shuffled and batched again). With a ``seed`` every pass gives the
        same order; with None each pass draws a new one."""
        if self.batched:
            return Shuffled(self.unbatch(), buffer_size, seed).batch(self.batch_size)
        return Shuffled(self, buffer_size, seed)

    def as_indexed(self) -> "Dataset":
        """Elements ``(i, element)``: the row number (an array of them for a batch)."""
        return self if self.indexed else Indexed(self)

    def as_not_indexed(self) -> "Dataset":
        """The elements without the indices :meth:`as_indexed` added."""
        if not self.indexed:
            return self
        return self.source if isinstance(self, Indexed) else NotIndexed(self)

    def numpy(self) -> "Dataset":
        """Elements as NumPy arrays (torch tensors share memory; batches stay batches)."""
        return self._convert("numpy")

    def torch(self) -> "Dataset":
        """Elements as torch tensors (NumPy arrays share memory; batches stay batches)."""
        return self._convert("torch")

    def tf(self) -> "Dataset":
        """Elements as TensorFlow tensors (batches stay batches)."""
        return self._convert("tf")

    def _convert(self, backend: str) -> "Dataset":
        return self if self.backend == backend else Converted(self, backend)


# -- the transformations ---------------------------------------------------------------------------
class _Derived(Dataset):
    """A dataset made from ``source``: it has the source's traits unless it changes them."""

    source = Instance(Dataset, kind="a ptdry Dataset")

    def _length(self) -> int | None:
        return self.source._length()

    @property
    def random_access(self) -> bool:
        return self.source.random_access

    @property
    def batch_size(self) -> int | None:
        return self.source.batch_size

    @property
    def supervised(self) -> bool:
        return self.source.supervised

    @property
    def indexed(self) -> bool:
        return self.source.indexed

    @property
    def backend(self) -> str | None:
        return self.source.backend

    def _offsets(self) -> list[int]:
        """Where each batch of a batched random-access source starts, and the total (cached)."""
        offsets = self.__dict__.get("_dry_offsets")
        if offsets is None:
            offsets = [0, *itertools.accumulate(self.source._batch_lengths())]
            self.__dict__["_dry_offsets"] = offsets
        return offsets


class Batched(_Derived):
    """Batches of ``size`` consecutive rows of ``source`` (see :meth:`Dataset.batch`)."""

    size = Int(min=1)
    drop_remainder = Bool()

    def __init__(self, source: Dataset, size: int, drop_remainder: bool = False) -> None:
        self.source = source
        self.size = size
        self.drop_remainder = drop_remainder

    @property
    def batch_size(self) -> int:
        return self.size

    def _length(self) -> int | None:
        n = self.source._length()
        if n is None:
            return None
        return n // self.size if self.drop_remainder else -(-n // self.size)

    def _get(self, j: int) -> Any:
        start = j * self.size
        return self.source._rows(slice(start, min(start + self.size, self.source._length())))

    def _batch_lengths(self) -> list[int]:
        n, size = len(self.source), self.size
        return [min(size, n - j * size) for j in range(len(self))]

    def _iter(self) -> Iterator[Any]:
        if self.random_access:
            yield from (self._get(j) for j in range(len(self)))
            return
        rows: list[Any] = []
        for element in self.source:
            rows.append(element)
            if len(rows) == self.size:
                yield structure.stack(rows, self.backend)
                rows = []
        if rows and not self.drop_remainder:
            yield structure.stack(rows, self.backend)

    def unbatch(self) -> Dataset:
        if not self.drop_remainder:
            return self.source
        n = self._length()
        return self.source.take(n * self.size) if n is not None else Unbatched(self)


class Unbatched(_Derived):
    """The rows of a batched ``source`` as elements (see :meth:`Dataset.unbatch`)."""

    def __init__(self, source: Dataset) -> None:
        self.source = source

    @property
    def batch_size(self) -> None:
        return None

    def _length(self) -> int | None:
        return self._offsets()[-1] if self.source.random_access else None

    def _get(self, i: int) -> Any:
        offsets = self._offsets()
        b = bisect.bisect_right(offsets, i) - 1
        return structure.row(self.source._get(b), i - offsets[b])

    def _rows(self, index: slice | np.ndarray) -> Any:
        offsets = self._offsets()
        if len(offsets) != 2:
            return super()._rows(index)
        batch = self.source._get(0)  # one batch (arrays given whole): slice or gather it directly
        if isinstance(index, slice):
            start, stop, step = index.indices(offsets[1])
            if step == 1:
                return structure.slice_rows(batch, start, stop)
            index = np.arange(start, stop, step)
        return structure.take_rows(batch, index)

    def _iter(self) -> Iterator[Any]:
        for batch in self.source:
            for i in range(structure.batch_length(batch)):
                yield structure.row(batch, i)


class Mapped(_Derived):
    """``fn`` applied to each element, or to its X or Y (see :meth:`Dataset.map`)."""

    part = Choice([None, "X", "Y"])
    vectorized = Bool()

    def __init__(
        self, source: Dataset, fn: Callable[[Any], Any], part: str | None = None, vectorized: bool = False
    ) -> None:
        if not callable(fn):
            raise DataError(f"map needs a function; received {fn!r:.80}")
        self.source = source
        self.fn = fn
        self.part = part
        self.vectorized = vectorized or getattr(fn, "vectorized", False) is True

    def _apply(self, element: Any) -> Any:
        if self.source.indexed:
            i, element = element
            return i, self._plain(element)
        return self._plain(element)

    def _plain(self, element: Any) -> Any:
        if self.part is None:
            return self.fn(element)
        if not isinstance(element, (tuple, list)) or len(element) != 2:
            raise DataError(f"apply_{self.part} needs (X, Y) elements; received a {type(element).__qualname__}")
        x, y = element
        return (self.fn(x), y) if self.part == "X" else (x, self.fn(y))

    def _get(self, i: int) -> Any:
        return self._apply(self.source._get(i))

    def _rows(self, index: slice | np.ndarray) -> Any:
        if self.vectorized:
            return self._apply(self.source._rows(index))
        return super()._rows(index)

    def _iter(self) -> Iterator[Any]:
        return map(self._apply, self.source)


class Window(_Derived):
    """Elements ``start`` to ``stop`` (exclusive; None: to the end) of ``source``."""

    start = Int(min=0)
    stop = Int(min=0, allow_none=True)

    def __init__(self, source: Dataset, start: int = 0, stop: int | None = None) -> None:
        self.source = source
        self.start = start
        self.stop = stop

    def _bounds(self, n: int) -> tuple[int, int]:
        start = min(self.start, n)
        return start, max(start, n if self.stop is None else min(self.stop, n))

    def _length(self) -> int | None:
        n = self.source._length()
        if n is None:
            return None
        start, stop = self._bounds(n)
        return stop - start

    def _get(self, i: int) -> Any:
        return self.source._get(self.start + i)

    def _rows(self, index: slice | np.ndarray) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return self.source._rows(slice(self.start + start, self.start + stop, step))
        return self.source._rows(np.asarray(index) + self.start)

    def _batch_lengths(self) -> list[int]:
        start, stop = self._bounds(len(self.source))
        return self.source._batch_lengths()[start:stop]

    def _iter(self) -> Iterator[Any]:
        return itertools.islice(self.source, self.start, self.stop)

    def take(self, n: int) -> Dataset:
        stop = self.start + n if self.stop is None else min(self.stop, self.start + n)
        return Window(self.source, self.start, stop) if n >= 0 else super().take(n)

    def skip(self, n: int) -> Dataset:
        return Window(self.source, self.start + n, self.stop) if n >= 0 else super().skip(n)


class Shuffled(_Derived):
    """Rows of ``source`` in a buffered random order (see :meth:`Dataset.shuffle`)."""

    buffer_size = Int(min=1)
    seed = Int(allow_none=True)

    def __init__(self, source: Dataset, buffer_size: int, seed: int | None = None) -> None:
        self.source = source
        self.buffer_size = buffer_size
        self.seed = seed

    @property
    def random_access(self) -> bool:
        return False

    def _iter(self) -> Iterator[Any]:
        generator = rng("shuffle", self.seed) if self.seed is not None else np.random.default_rng()
        return buffered_shuffle(self.source, self.buffer_size, generator)


class Indexed(_Derived):
    """Elements ``(i, element)`` numbered by row (see :meth:`Dataset.as_indexed`)."""

    def __init__(self, source: Dataset) -> None:
        self.source = source

    @property
    def indexed(self) -> bool:
        return True

    def _get(self, i: int) -> Any:
        if not self.source.batched:
            return i, self.source._get(i)
        offsets = self._offsets()
        return np.arange(offsets[i], offsets[i + 1]), self.source._get(i)

    def _rows(self, index: slice | np.ndarray) -> Any:
        positions = np.arange(*index.indices(len(self))) if isinstance(index, slice) else np.asarray(index)
        return positions, self.source._rows(index)

    def _iter(self) -> Iterator[Any]:
        if not self.source.batched:
            yield from enumerate(self.source)
            return
        start = 0
        for batch in self.source:
            n = structure.batch_length(batch)
            yield np.arange(start, start + n), batch
            start += n


class NotIndexed(_Derived):
    """The elements of an indexed ``source`` without their indices."""

    def __init__(self, source: Dataset) -> None:
        self.source = source

    @property
    def indexed(self) -> bool:
        return False

    def _get(self, i: int) -> Any:
        return self.source._get(i)[1]

    def _rows(self, index: slice | np.ndarray) -> Any:
        return self.source._rows(index)[1]

    def _iter(self) -> Iterator[Any]:
        return (element for _, element in self.source)


class Converted(_Derived):
    """The elements of ``source`` with NumPy, torch or TensorFlow leaves (see :meth:`Dataset.numpy`)."""

    to = Choice(list(structure.BACKENDS))

    def __init__(self, source: Dataset, to: str) -> None:
        self.source = source
        self.to = to

    @property
    def backend(self) -> str:
        return self.to

    def unbatch(self) -> Dataset:
        # rows are gathered from the source (NumPy's gather is the fast one), then converted
        return Converted(self.source.unbatch(), self.to) if self.batched else self

    def _get(self, i: int) -> Any:
        return structure.convert(self.source._get(i), self.to)

    def _rows(self, index: slice | np.ndarray) -> Any:
        return structure.convert(self.source._rows(index), self.to)

    def _iter(self) -> Iterator[Any]:
        return (structure.convert(element, self.to) for element in self.source)


class Collected(_Derived):
    """Every element of ``source``, read once and kept in memory (see :meth:`Dataset.collect`).

    Its definition is the pipeline it collected, so a rebuilt tree collects it again."""

    def __init__(self, source: Dataset) -> None:
        self.source = source

    def elements(self) -> list[Any]:
        """The elements (read from the source on first use)."""
        elements = self.__dict__.get("_dry_elements")
        if elements is None:
            elements = self.__dict__["_dry_elements"] = list(self.source)
        return elements

    @property
    def random_access(self) -> bool:
        return True

    def _length(self) -> int:
        return len(self.elements())

    def _get(self, i: int) -> Any:
        return self.elements()[i]

    def _iter(self) -> Iterator[Any]:
        return iter(self.elements())

    def collect(self) -> Dataset:
        return self
