"""Random orders that depend only on their seed (and epoch): the same in every process.

:func:`rng` derives a NumPy ``Generator`` from a sha256 of its keys, so an order is a pure
function of ``(seed, epoch, ...)``: it does not touch, or depend on, the global random number
generators, and a run resumed in another process draws the same orders.
:func:`buffered_shuffle` is the streaming shuffle of iterable datasets.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Iterator

import numpy as np

__all__ = ["buffered_shuffle", "rng"]


def rng(*keys: Any) -> np.random.Generator:
    """A generator whose state depends only on ``keys`` (ints or strings).

    Example:
        >>> rng(0, 1).permutation(5).tolist() == rng(0, 1).permutation(5).tolist()
        True
    """
    digest = hashlib.sha256(("ptdry:" + ":".join(str(k) for k in keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def buffered_shuffle(elements: Iterable[Any], buffer_size: int, generator: np.random.Generator) -> Iterator[Any]:
    """``elements`` in a random order drawn with a buffer of ``buffer_size`` elements.

    Each step picks uniformly among *all* buffered elements (the last one included) and puts
    the next element from the stream in its place, so every element comes out exactly once.
    With ``buffer_size`` at least the number of elements this is a uniform permutation.

    Example:
        >>> sorted(buffered_shuffle(range(10), 4, rng(0))) == list(range(10))
        True
    """
    buffer: list[Any] = []
    for element in elements:
        if len(buffer) < buffer_size:
            buffer.append(element)
            continue
        i = int(generator.integers(0, len(buffer)))
        out, buffer[i] = buffer[i], element
        yield out
    while buffer:
        i = int(generator.integers(0, len(buffer)))
        buffer[i], buffer[-1] = buffer[-1], buffer[i]
        yield buffer.pop()
