"""EarlyStopping: stop when a monitored metric stops improving, diverges, or is good enough.

Semantics follow Keras where Keras and Lightning agree (``patience``, ``min_delta``, ``mode``),
Keras for ``baseline``, ``start_from_epoch`` and ``restore_best_weights``, and Lightning for
``stopping_threshold``, ``divergence_threshold`` and ``check_finite``; docs/training.md has
the table of where ptdry differs from both.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping

from ptdry.core.properties import Bool, Float, Int
from ptdry.train.callbacks.monitor import MonitorCallback

__all__ = ["EarlyStopping"]

log = logging.getLogger(__name__)


class EarlyStopping(MonitorCallback):
    """Stop training once ``monitor`` has not improved for ``patience`` checks in a row.

    Checked at every epoch end where the metric was computed (epochs without it, e.g.
    without validation, do not count). At each check, in this order:

    1. ``check_finite``: a NaN or infinite value stops the run;
    2. ``stopping_threshold``: a value better than it stops the run (the goal is reached);
    3. ``divergence_threshold``: a value worse than it stops the run (no hope left);
    4. otherwise the wait counter grows by one; a value better than the best by more than
       ``min_delta`` becomes the best and resets the counter — but with a ``baseline``, only
       once the value is also better than the baseline; when the counter reaches
       ``patience``, the run stops (``patience=0``: at the first check without improvement).

    The reason is passed to ``trainer.stop`` and ends up in the run's ``status.reason``. The
    callback's state — best value, its epoch, the counter, the reason and the best weights
    if kept — is part of the trainer's state, so a resumed run stops at the same epoch.

    Args:
        monitor: the metric, e.g. ``"val.loss"`` or ``"val.accuracy"``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names, else min).
        patience: checks without improvement before stopping (0 or more).
        min_delta: an improvement must beat the best by more than this.
        baseline: the value the run must beat: until a value beats it, improvements do not
            reset the counter, so a run that stalls below it stops at its ``patience``-th check
            (as in Keras, a check that improves on the best never stops the run).
        start_from_epoch: ignore the first this many epochs (a warm-up).
        stopping_threshold: stop as soon as the metric is better than this.
        divergence_threshold: stop as soon as the metric is worse than this.
        check_finite: stop when the metric is NaN or infinite.
        restore_best_weights: keep a copy of the net's weights at the best epoch and load
            them back when training ends with other weights.

    Example:
        >>> es = EarlyStopping(patience=2)
        >>> class T:
        ...     def stop(self, reason): print("stop:", reason[:40])
        >>> for e, v in enumerate([1.0, 0.8, 0.9, 0.85], 1):
        ...     es.on_epoch_end(trainer=T(), epoch=e, metrics={"val.loss": v})
        stop: early stopping: val.loss did not improve
    """

    patience = Int(min=0)
    baseline = Float(allow_none=True)
    start_from_epoch = Int(min=0)
    stopping_threshold = Float(allow_none=True)
    divergence_threshold = Float(allow_none=True)
    check_finite = Bool()
    restore_best_weights = Bool()

    def __init__(
        self,
        monitor: str = "val.loss",
        mode: str = "auto",
        patience: int = 3,
        min_delta: float = 0.0,
        *,
        baseline: float | None = None,
        start_from_epoch: int = 0,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_finite: bool = True,
        restore_best_weights: bool = False,
    ) -> None:
        self._init_monitor(monitor, mode, min_delta)
        self.patience = patience
        self.baseline = baseline
        self.start_from_epoch = start_from_epoch
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.check_finite = check_finite
        self.restore_best_weights = restore_best_weights
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.reason: str | None = None
        self.best_weights: dict[str, Any] = {}

    def _better(self, value: float, reference: float) -> bool:
        return value < reference if self.mode == "min" else value > reference

    def check(self, value: float, epoch: int) -> str | None:
        """Update the counters with the metric's value at ``epoch``; the reason to stop, or None."""
        name, sign = self.monitor, "<" if self.mode == "min" else ">"
        if self.check_finite and not math.isfinite(value):
            best = "none" if self.best is None else f"{self.best:.6g}"
            return f"early stopping: {name} is {value} (not finite); the best was {best}"
        if self.stopping_threshold is not None and self._better(value, self.stopping_threshold):
            return f"early stopping: {name} = {value:.6g} {sign} stopping_threshold {self.stopping_threshold:g}"
        if self.divergence_threshold is not None and self._better(self.divergence_threshold, value):
            worse = ">" if self.mode == "min" else "<"
            return f"early stopping: {name} = {value:.6g} {worse} divergence_threshold {self.divergence_threshold:g}"
        self.wait += 1
        if self.improved(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.baseline is None or self.improved(value, self.baseline):
                self.wait = 0
            return None
        if self.wait >= self.patience:
            best = "none" if self.best is None else f"{self.best:.6g} at epoch {self.best_epoch}"
            against = "" if self.baseline is None else f", baseline {self.baseline:g}"
            return f"early stopping: {name} did not improve for {self.wait} checks (best {best}{against})"
        return None

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: Mapping[str, float], **_: Any) -> None:
        value = self.monitored(metrics)
        if value is None or epoch <= self.start_from_epoch:
            return
        previous_best = self.best_epoch
        reason = self.check(value, epoch)
        if self.restore_best_weights and self.best_epoch is not None and self.best_epoch != previous_best:
            net = trainer.model.net
            self.best_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if reason is not None:
            self.stopped_epoch, self.reason = epoch, reason
            trainer.stop(reason)

    def on_train_end(self, trainer: Any, **_: Any) -> None:
        if self.restore_best_weights and self.best_weights and self.best_epoch != trainer.looper.epochs_done:
            trainer.model.net.load_state_dict(self.best_weights)
            log.info("restored the weights of epoch %s (%s=%.6g)", self.best_epoch, self.monitor, self.best)

    def extra_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "reason": self.reason,
            "best_weights": self.best_weights,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        self.stopped_epoch = state.get("stopped_epoch")
        self.reason = state.get("reason")
        self.best_weights = dict(state.get("best_weights") or {})
