"""Statistic: a named set of computed quantities at one step/epoch (``val`` → loss, acc)."""

from __future__ import annotations

import math
import time
from typing import Any, Iterator, Mapping

from ptdry.core.metamodule import Metamodule
from ptdry.errors import ConfigError

__all__ = ["Statistic"]


def _number(name: str, value: Any) -> float:
    if hasattr(value, "item"):  # tensors and NumPy scalars
        try:
            value = value.item()
        except (ValueError, RuntimeError):  # more than one element
            shape = tuple(getattr(value, "shape", ()))
            raise ConfigError(
                f"metric {name!r} must be a single number; received a value of shape {shape}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"metric {name!r} must be a number; received {value!r}")
    return float(value)


class Statistic(Mapping[str, float], Metamodule):
    """Values computed together, e.g. ``Statistic("val", {"loss": 0.3}, step=10, epoch=1)``.

    As a mapping its keys are the full metric names (``"val.loss"``); ``values`` keeps the
    short names. Tensors and NumPy scalars are converted to floats.

    Example:
        >>> s = Statistic("val", {"loss": 0.25}, step=10, epoch=1)
        >>> dict(s)
        {'val.loss': 0.25}
    """

    __slots__ = ("name", "values", "step", "epoch", "t")  # runs hold millions of these

    def __init__(
        self,
        name: str = "",
        values: Mapping[str, Any] | None = None,
        *,
        step: int | None = None,
        epoch: int | None = None,
        t: float | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ConfigError(f"Statistic name must be a string; received {name!r}")
        self.name = name
        self.values = {k: _number(k, v) for k, v in (values or {}).items()}
        self.step = step
        self.epoch = epoch
        self.t = time.time() if t is None else t

    def _full(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def __getitem__(self, metric: str) -> float:
        for key, value in self.values.items():
            if self._full(key) == metric:
                return value
        raise KeyError(metric)

    def __iter__(self) -> Iterator[str]:
        return (self._full(k) for k in self.values)

    def __len__(self) -> int:
        return len(self.values)

    def update(self, values: Mapping[str, Any], *, step: int | None = None, epoch: int | None = None) -> None:
        """Add or replace values, and move to ``step``/``epoch`` when given."""
        self.values.update({k: _number(k, v) for k, v in values.items()})
        self.step = self.step if step is None else step
        self.epoch = self.epoch if epoch is None else epoch
        self.t = time.time()

    def to_document(self) -> dict[str, Any]:
        # NaN/inf are valid BSON doubles; keep them as floats.
        return {"name": self.name, "values": dict(self.values), "step": self.step, "epoch": self.epoch, "t": self.t}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Statistic":
        return cls(doc.get("name", ""), doc.get("values", {}), step=doc.get("step"), epoch=doc.get("epoch"), t=doc.get("t"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Statistic):
            return NotImplemented
        same = lambda a, b: a == b or (math.isnan(a) and math.isnan(b))  # noqa: E731
        return (
            (self.name, self.step, self.epoch) == (other.name, other.step, other.epoch)
            and self.values.keys() == other.values.keys()
            and all(same(v, other.values[k]) for k, v in self.values.items())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Statistic({self.name!r}, {self.values}, step={self.step}, epoch={self.epoch})"
