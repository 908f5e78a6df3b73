"""Search spaces: what each dotted path of a definition may take in a sweep.

A space maps paths (``"trainer.model.optimizer.lr"``, ``"seed"``) to:

- a list or a ``range``: the values to try (a *grid axis*; the random strategy picks one);
- ``uniform(low, high)``, ``loguniform(low, high)``: real numbers (random and Optuna only);
- ``randint(low, high)``: integers ``low <= n < high``, as ``range(low, high)``;
- ``choice([...])``: one of the values (like a list, also under Optuna's samplers).

The distributions are small Modules, so a sweep's definition stores them like any
argument. :class:`Space` checks a space and turns it into trial points: the cartesian
product (grid) or seeded samples (random).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

from ptdry.core import serialize
from ptdry.core.module import Module
from ptdry.core.properties import Float, Int
from ptdry.errors import ConfigError

__all__ = [
    "Categorical",
    "Distribution",
    "IntRange",
    "LogUniform",
    "Space",
    "Uniform",
    "choice",
    "loguniform",
    "randint",
    "uniform",
]


class Distribution(Module):
    """Base of the search-space distributions: sampled with a NumPy ``Generator``."""

    def grid_values(self) -> list[Any] | None:
        """The values a grid enumerates, or None for a continuous distribution."""
        return None

    def sample(self, rng: Any) -> Any:
        raise NotImplementedError

    def to_optuna(self) -> Any:
        """The matching ``optuna.distributions`` object."""
        raise NotImplementedError

    def example(self) -> Any:
        """A value the distribution can take (to check a space against a definition)."""
        raise NotImplementedError


class _Interval(Distribution):
    low = Float()
    high = Float()

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        if not self.low < self.high:
            raise ConfigError(
                f"{type(self).__name__.lower()}(low, high) needs low < high; received low={low!r}, high={high!r}"
            )

    def example(self) -> float:
        return self.low

    def __repr__(self) -> str:
        return f"{_public_name(self)}({self.low!r}, {self.high!r})"


class Uniform(_Interval):
    """Real numbers spread evenly over ``[low, high)``; made by :func:`uniform`."""

    def sample(self, rng: Any) -> float:
        return float(rng.uniform(self.low, self.high))

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high)


class LogUniform(_Interval):
    """Real numbers whose logarithm is uniform over ``[log low, log high)`` (learning rates,
    weight decays); made by :func:`loguniform`."""

    low = Float(above=0.0)

    def sample(self, rng: Any) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=True)


class IntRange(Distribution):
    """Integers ``low <= n < high`` (as ``range(low, high)``); made by :func:`randint`."""

    low = Int()
    high = Int()

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        if not self.low < self.high:
            raise ConfigError(
                f"randint(low, high) needs low < high (high is excluded); received low={low!r}, high={high!r}"
            )

    def grid_values(self) -> list[int]:
        return list(range(self.low, self.high))

    def sample(self, rng: Any) -> int:
        return int(rng.integers(self.low, self.high))

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high - 1)

    def example(self) -> int:
        return self.low

    def __repr__(self) -> str:
        return f"randint({self.low!r}, {self.high!r})"


class Categorical(Distribution):
    """One of ``values``; made by :func:`choice`."""

    def __init__(self, values: Any) -> None:
        if isinstance(values, range):
            values = list(values)
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(
                f"choice() needs a non-empty list of values; received {type(values).__qualname__}: {values!r}"
            )
        self.values = list(values)

    def grid_values(self) -> list[Any]:
        return list(self.values)

    def sample(self, rng: Any) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        # Optuna's choices must be plain scalars: it picks an index, the trial maps it back.
        return CategoricalDistribution(list(range(len(self.values))))

    def example(self) -> Any:
        return self.values[0]

    def __repr__(self) -> str:
        return f"choice({list(self.values)!r})"


def uniform(low: float, high: float) -> Uniform:
    """Real numbers spread evenly over ``[low, high)``."""
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    """Positive reals with a uniform logarithm, e.g. ``loguniform(1e-4, 1e-1)`` for a learning rate."""
    return LogUniform(low, high)


def randint(low: int, high: int) -> IntRange:
    """Integers ``low <= n < high`` (``high`` excluded, as in ``range``)."""
    return IntRange(low, high)


def choice(values: Any) -> Categorical:
    """One of ``values`` (a grid tries each; random and Optuna strategies pick one)."""
    return Categorical(values)


def _public_name(d: Distribution) -> str:
    return {"Uniform": "uniform", "LogUniform": "loguniform"}.get(type(d).__name__, type(d).__name__)


class Space:
    """A checked search space: ``{path: list | Distribution}`` in the order given.

    Raises:
        ConfigError: a path is not a dotted name, or a value is not a list, range or
            distribution (the message names the path), or a list is empty.
    """

    def __init__(self, space: Mapping[str, Any]) -> None:
        if not isinstance(space, Mapping) or not space:
            raise ConfigError(
                "space must be a non-empty dict of dotted paths to lists, ranges or distributions, e.g. "
                f"{{'trainer.model.optimizer.lr': loguniform(1e-4, 1e-1)}}; received {space!r}"
            )
        self.entries: dict[str, list[Any] | Distribution] = {}
        for path, value in space.items():
            if not isinstance(path, str) or not path or "" in path.split("."):
                raise ConfigError(
                    f"space keys are dotted paths such as 'trainer.model.optimizer.lr'; received {path!r}"
                )
            self.entries[path] = _entry(path, value)

    def recorded(self) -> dict[str, Any]:
        """The space as a definition stores it (ranges become lists)."""
        return dict(self.entries)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination, the first path varying slowest.

        Raises:
            ConfigError: a path has a continuous distribution (a grid cannot enumerate it).
        """
        axes = []
        for path, entry in self.entries.items():
            values = entry if isinstance(entry, list) else entry.grid_values()
            if values is None:
                raise ConfigError(
                    f"space[{path!r}] = {entry!r} is continuous: a grid cannot enumerate it; give a list of "
                    "values, or use strategy='random' or an Optuna sampler"
                )
            axes.append(values)
        return [dict(zip(self.entries, combo)) for combo in itertools.product(*axes)]

    def grid_size(self) -> int | None:
        """How many points the grid has, or None if a path is continuous."""
        n = 1
        for entry in self.entries.values():
            values = entry if isinstance(entry, list) else entry.grid_values()
            if values is None:
                return None
            n *= len(values)
        return n

    def random(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` points sampled independently (lists: one value, uniformly); the same ``seed``
        gives the same points."""
        import numpy as np

        rng = np.random.default_rng(seed)
        points = []
        for _ in range(n):
            point = {}
            for path, entry in self.entries.items():
                point[path] = entry[int(rng.integers(len(entry)))] if isinstance(entry, list) else entry.sample(rng)
            points.append(point)
        return points

    def example(self) -> dict[str, Any]:
        """One point (each path's first or lowest value), to check the paths exist."""
        return {p: e[0] if isinstance(e, list) else e.example() for p, e in self.entries.items()}

    def distribution(self, path: str) -> Distribution:
        """The entry at ``path`` as a distribution (a list is a :class:`Categorical`)."""
        entry = self.entries[path]
        return Categorical(entry) if isinstance(entry, list) else entry


def _entry(path: str, value: Any) -> list[Any] | Distribution:
    if isinstance(value, Categorical):
        _storable(path, value.values)
    if isinstance(value, Distribution):
        return value
    if isinstance(value, range):
        value = list(value)
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"space[{path!r}] is an empty list; give the values to try")
        _storable(path, value)
        return list(value)
    kind = "tuples" if isinstance(value, tuple) else "values"
    hint = f"a list of {kind} such as [{value!r}]"
    raise ConfigError(
        f"space[{path!r}] = {value!r}: expected a list or range of values, or uniform/loguniform/randint/"
        f"choice(...); to try one value write {hint}"
    )


def _storable(path: str, values: list[Any]) -> None:
    """Each value can be stored with a trial (plain values, tuples, classes; not objects)."""
    for i, v in enumerate(values):
        serialize.encode(v, f"space[{path!r}][{i}]")  # else a SerializationError naming it
