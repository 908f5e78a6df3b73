"""Samplers: which rows a DataLoader visits in each epoch, and in which order.

A sampler's order is a pure function of its arguments, the number of rows, the epoch and a
seed — never of global random state or of what was iterated before — so a loader resumed at
batch ``k`` of epoch ``e`` (in this process or another) sees exactly the rows it had not seen.
A sampler without a seed of its own uses the loader's (a run's seed, when a Trainer drives it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptdry.core.dataref import DataRef
from ptdry.core.module import Module
from ptdry.core.properties import Bool, Int
from ptdry.data.randomness import rng
from ptdry.errors import ConfigError, DataError, NotReadyError

__all__ = ["RandomSampler", "Sampler", "SequentialSampler", "SubsetSampler", "WeightedRandomSampler"]


class Sampler(Module):
    """Base of samplers: :meth:`order` gives the row indices of one epoch.

    Subclass it and implement ``order(n, epoch, seed)``, returning a 1-d integer array that
    depends only on the sampler's arguments and those three values.
    """

    def order(self, n: int, epoch: int = 0, seed: int = 0) -> np.ndarray:
        """Row indices (into ``n`` rows) to visit in ``epoch``, in order."""
        raise NotImplementedError(f"{type(self).__name__} does not implement order(n, epoch, seed)")

    def __call__(self, n: int, epoch: int = 0, seed: int = 0) -> np.ndarray:
        return self.order(n, epoch, seed)

    @property
    def shuffles(self) -> bool:
        """True when the order depends on the seed."""
        return False

    def _seed(self, seed: int) -> int:
        own = getattr(self, "seed", None)
        return seed if own is None else own


class SequentialSampler(Sampler):
    """Every row, in order.

    Example:
        >>> SequentialSampler().order(4).tolist()
        [0, 1, 2, 3]
    """

    def __init__(self) -> None:
        pass

    def order(self, n: int, epoch: int = 0, seed: int = 0) -> np.ndarray:
        return np.arange(n)


class RandomSampler(Sampler):
    """Every row once per epoch (or ``num_samples`` draws), in an order drawn from
    ``(seed, epoch)``: a new order each epoch, the same one whenever that epoch is replayed.

    Args:
        seed: the order's seed; None: the loader's (a Trainer gives it the run's seed).
        replacement: draw with replacement (then ``num_samples`` rows, default ``n``).
        num_samples: rows per epoch (default: all of them).

    Example:
        >>> s = RandomSampler(seed=3)
        >>> s.order(5, epoch=1).tolist() == s.order(5, epoch=1).tolist(), sorted(s.order(5, epoch=2).tolist())
        (True, [0, 1, 2, 3, 4])
    """

    seed = Int(allow_none=True)
    replacement = Bool()
    num_samples = Int(min=1, allow_none=True)

    def __init__(self, seed: int | None = None, replacement: bool = False, num_samples: int | None = None) -> None:
        self.seed = seed
        self.replacement = replacement
        self.num_samples = num_samples

    @property
    def shuffles(self) -> bool:
        return True

    def order(self, n: int, epoch: int = 0, seed: int = 0) -> np.ndarray:
        generator = rng("random", self._seed(seed), epoch)
        if self.replacement:
            return generator.integers(0, n, size=self.num_samples or n) if n else np.arange(0)
        order = generator.permutation(n)
        return order if self.num_samples is None else order[: self.num_samples]


class WeightedRandomSampler(Sampler):
    """``num_samples`` rows drawn with probabilities proportional to ``weights`` (one per
    row), with replacement by default; the draw depends on ``(seed, epoch)``.

    ``weights`` are data: the definition keeps their fingerprint and the state the weights.

    Example:
        >>> s = WeightedRandomSampler([0.0, 1.0, 0.0], num_samples=4, seed=0)
        >>> s.order(3).tolist()
        [1, 1, 1, 1]
    """

    dry_data_args = ("weights",)

    replacement = Bool()
    num_samples = Int(min=1, allow_none=True)
    seed = Int(allow_none=True)

    def __init__(
        self, weights: Any, num_samples: int | None = None, replacement: bool = True, seed: int | None = None
    ) -> None:
        self.replacement = replacement
        self.num_samples = num_samples
        self.seed = seed
        self.__dict__["_dry_weights"], self.__dict__["_dry_pending"] = None, None
        if isinstance(weights, DataRef):
            self.__dict__["_dry_pending"] = weights
        else:
            self._set_weights(weights)
            self._record_argument("weights", self.__dict__["_dry_weights"])  # as the state keeps them

    def _set_weights(self, weights: Any) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or not len(w) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ConfigError(
                f"weights must be a 1-d sequence of non-negative finite numbers, not all zero; received {weights!r:.80}"
            )
        self.__dict__["_dry_weights"], self.__dict__["_dry_pending"] = w, None

    @property
    def weights(self) -> np.ndarray:
        if self.__dict__["_dry_pending"] is not None:
            raise NotReadyError(
                "the weights of this WeightedRandomSampler are not loaded: call load_state_dict() first"
            )
        return self.__dict__["_dry_weights"]

    @property
    def shuffles(self) -> bool:
        return True

    def order(self, n: int, epoch: int = 0, seed: int = 0) -> np.ndarray:
        w = self.weights
        if len(w) != n:
            raise DataError(
                f"WeightedRandomSampler has {len(w)} weights but the dataset has {n} rows; give one weight per row"
            )
        size = self.num_samples or n
        if not self.replacement and size > int(np.count_nonzero(w)):
            raise DataError(
                f"cannot draw {size} rows without replacement: only {np.count_nonzero(w)} have a weight above 0"
            )
        return rng("weighted", self._seed(seed), epoch).choice(n, size=size, replace=self.replacement, p=w / w.sum())

    def extra_state(self) -> dict[str, Any]:
        return {"weights": self.__dict__["_dry_weights"]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("weights") is None:
            return
        pending = self.__dict__["_dry_pending"]
        if pending is not None and DataRef.of(state["weights"]) != pending:
            raise ConfigError("the saved weights do not match this WeightedRandomSampler's definition")
        self._set_weights(state["weights"])

    def problems(self) -> list[str]:
        pending = self.__dict__["_dry_pending"] is not None
        return super().problems() + (
            ["weights not loaded: call load_state_dict() with the saved state"] if pending else []
        )


class SubsetSampler(Sampler):
    """The rows ``indices`` only: in the given order, or shuffled per epoch with ``shuffle``.

    ``indices`` are data, like WeightedRandomSampler's weights (fingerprint in the definition,
    indices in the state).

    Example:
        >>> SubsetSampler([4, 0, 2]).order(5).tolist()
        [4, 0, 2]
    """

    dry_data_args = ("indices",)

    shuffle = Bool()
    seed = Int(allow_none=True)

    def __init__(self, indices: Any, shuffle: bool = False, seed: int | None = None) -> None:
        self.shuffle = shuffle
        self.seed = seed
        self.__dict__["_dry_idx"], self.__dict__["_dry_pending"] = None, None
        if isinstance(indices, DataRef):
            self.__dict__["_dry_pending"] = indices
        else:
            self._set_indices(indices)
            self._record_argument("indices", self.__dict__["_dry_idx"])  # as the state keeps them

    def _set_indices(self, indices: Any) -> None:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (len(idx) and idx.dtype.kind not in "iu"):
            raise ConfigError(f"indices must be a 1-d sequence of integers; received {indices!r:.80}")
        self.__dict__["_dry_idx"], self.__dict__["_dry_pending"] = idx.astype(np.int64), None

    @property
    def indices(self) -> np.ndarray:
        if self.__dict__["_dry_pending"] is not None:
            raise NotReadyError("the indices of this SubsetSampler are not loaded: call load_state_dict() first")
        return self.__dict__["_dry_idx"]

    @property
    def shuffles(self) -> bool:
        return self.shuffle

    def order(self, n: int, epoch: int = 0, seed: int = 0) -> np.ndarray:
        idx = self.indices
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise DataError(f"SubsetSampler indices reach {int(idx.max())} but the dataset has {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        return rng("subset", self._seed(seed), epoch).permutation(idx) if self.shuffle else idx

    def extra_state(self) -> dict[str, Any]:
        return {"indices": self.__dict__["_dry_idx"]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("indices") is None:
            return
        pending = self.__dict__["_dry_pending"]
        if pending is not None and DataRef.of(state["indices"]) != pending:
            raise ConfigError("the saved indices do not match this SubsetSampler's definition")
        self._set_indices(state["indices"])

    def problems(self) -> list[str]:
        pending = self.__dict__["_dry_pending"] is not None
        return super().problems() + (
            ["indices not loaded: call load_state_dict() with the saved state"] if pending else []
        )
