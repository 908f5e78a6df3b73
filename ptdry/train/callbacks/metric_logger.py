"""MetricLogger: forward every Statistic the trainer records to a sink (a DB writer, a file).

A Session passes its database writer as the sink; without one, epoch-level values go to the
``ptdry.train`` logger at INFO.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from ptdry.core.callback import Callback
from ptdry.core.statistic import Statistic
from ptdry.errors import ConfigError

__all__ = ["MetricLogger"]

log = logging.getLogger("ptdry.train")


class MetricLogger(Callback):
    """Send each recorded :class:`~ptdry.core.statistic.Statistic` to ``sink(statistic)``.

    The sink is runtime wiring, not a hyperparameter: the definition records ``sink=None``,
    so a tree holding a MetricLogger can still be stored and rebuilt (give the rebuilt one
    its sink again by setting ``logger.sink``). The sink is called in the training loop, so
    it should be quick (e.g. put the statistic on a queue).

    Args:
        sink: ``fn(statistic)``; None logs epoch-level statistics with :mod:`logging`.
        phases: only these statistic names (``"step"``, ``"train"``, ``"val"``, ...); None: all.

    Example:
        >>> seen = []
        >>> ml = MetricLogger(sink=seen.append, phases=["val"])
        >>> ml.on_log(statistic=Statistic("val", {"loss": 0.5})); ml.on_log(statistic=Statistic("step", {"loss": 1}))
        >>> [dict(s) for s in seen], ml.definition().kwargs["sink"]
        ([{'val.loss': 0.5}], None)
    """

    def __init__(self, sink: Callable[[Statistic], Any] | None = None, phases: Iterable[str] | None = None) -> None:
        if sink is not None and not callable(sink):
            raise ConfigError(f"sink must be a function taking a Statistic; received {sink!r}")
        if isinstance(phases, str):
            phases = [phases]
        self.sink = sink
        self.phases = None if phases is None else frozenset(phases)
        if sink is not None:
            self._record_argument("sink", None)

    def on_log(self, statistic: Statistic, **_: Any) -> None:
        if self.phases is not None and statistic.name not in self.phases:
            return
        if self.sink is not None:
            self.sink(statistic)
        elif statistic.name != "step":
            values = ", ".join(f"{k}={v:.4g}" for k, v in statistic.items())
            log.info("epoch %s step %s: %s", statistic.epoch, statistic.step, values)
