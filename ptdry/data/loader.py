"""Batches: deterministic batching of tensors or a dataset, resumable at any batch.

The order of one epoch is a pure function of ``(seed, epoch)``: a ``torch.Generator`` seeded
from a sha256 of both draws the permutation, so it is the same in every process and does
not touch (or depend on) the global random number generators. ``skip=k`` starts after the
first ``k`` batches of that same order, which is how a run resumed mid-epoch sees exactly
the batches it had not consumed yet.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterator, Sequence

import torch

from ptdry.errors import ConfigError

__all__ = ["Batches", "epoch_generator", "num_batches"]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU ``torch.Generator`` whose state depends only on ``(seed, epoch)``.

    Example:
        >>> a = torch.randperm(5, generator=epoch_generator(0, 1))
        >>> torch.equal(a, torch.randperm(5, generator=epoch_generator(0, 1)))
        True
    """
    digest = hashlib.sha256(f"ptdry:{int(seed)}:{int(epoch)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches ``n`` samples make (the last one smaller unless ``drop_last``)."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; received {value!r}")
    return value


class Batches:
    """The batches of one split for one epoch: an iterable of tuples of tensors.

    Iterating twice gives the same batches. ``len()`` is the number of batches left after
    ``skip``.

    Args:
        tensors: equal-length tensors (features, labels, ...), or None with ``dataset``.
        dataset: a map-style dataset (``__getitem__`` and ``__len__``); samples are
            collated with ``torch.utils.data.default_collate``.
        batch_size: samples per batch.
        shuffle: draw the order from ``epoch_generator(seed, epoch)``; else in order.
        seed, epoch: what the order depends on.
        skip: leave out the first ``skip`` batches of the order.
        drop_last: leave out a last, smaller batch.

    Example:
        >>> b = Batches((torch.arange(5),), batch_size=2)
        >>> [x.tolist() for (x,) in b], len(Batches((torch.arange(5),), batch_size=2, skip=1))
        ([[0, 1], [2, 3], [4]], 2)
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor] | None = None,
        dataset: Any = None,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        skip: int = 0,
        drop_last: bool = False,
    ) -> None:
        if (tensors is None) == (dataset is None):
            raise ConfigError("Batches needs exactly one of tensors= or dataset=")
        self.tensors = tuple(tensors) if tensors is not None else None
        self.dataset = dataset
        self.batch_size = _check_positive("batch_size", batch_size)
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise ConfigError(f"skip must be a non-negative integer (batches to leave out); received {skip!r}")
        self.shuffle, self.seed, self.epoch, self.skip, self.drop_last = bool(shuffle), seed, epoch, skip, drop_last
        self.n = len(self.tensors[0]) if self.tensors is not None else len(dataset)
        self.total = num_batches(self.n, self.batch_size, drop_last)
        if skip > self.total:
            raise ConfigError(
                f"skip={skip} is more than the {self.total} batches of this epoch "
                f"({self.n} samples, batch_size={self.batch_size}); was the state saved with other data?"
            )

    def __len__(self) -> int:
        return self.total - self.skip

    def order(self) -> torch.Tensor | None:
        """The sample indices of the whole epoch, or None when in order."""
        if not self.shuffle:
            return None
        return torch.randperm(self.n, generator=epoch_generator(self.seed, self.epoch))

    def __iter__(self) -> Iterator[tuple]:
        order = self.order()
        bs, n = self.batch_size, self.n
        for b in range(self.skip, self.total):
            start, stop = b * bs, min(n, (b + 1) * bs)
            if self.tensors is not None:
                if order is None:
                    yield tuple(t[start:stop] for t in self.tensors)
                else:
                    idx = order[start:stop]
                    yield tuple(t.index_select(0, idx) for t in self.tensors)
            else:
                indices = range(start, stop) if order is None else order[start:stop].tolist()
                yield _collate([self.dataset[i] for i in indices])

    def __repr__(self) -> str:
        return (
            f"Batches({self.n} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, epoch={self.epoch}, skip={self.skip}, batches={len(self)})"
        )


def _collate(samples: list) -> tuple:
    from torch.utils.data import default_collate

    out = default_collate(samples)
    if isinstance(out, (list, tuple)):
        return tuple(out)
    return (out,)
