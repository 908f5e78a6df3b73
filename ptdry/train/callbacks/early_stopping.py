"""EarlyStopping: stop when a monitored metric has not improved for ``patience`` epochs."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ptdry.errors import ConfigError
from ptdry.train.callbacks.monitor import MonitorCallback

__all__ = ["EarlyStopping"]

log = logging.getLogger(__name__)


class EarlyStopping(MonitorCallback):
    """Stop training once ``monitor`` has not improved for ``patience`` epochs in a row.

    Checked at every epoch end where the metric was computed (epochs without validation do
    not count). Its state — best value, its epoch, the wait counter and the best weights if
    kept — is part of the trainer's state, so a resumed run stops at the same epoch.

    Args:
        monitor: the metric, e.g. ``"val.loss"`` or ``"val.accuracy"``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names, else min).
        patience: epochs without improvement before stopping.
        min_delta: an improvement must beat the best by more than this.
        restore_best_weights: keep a copy of the net's weights at the best epoch and load
            them back when training ends without them being the latest.

    Example:
        >>> es = EarlyStopping(patience=2)
        >>> class T:
        ...     def stop(self, reason): print("stop:", reason[:40])
        >>> for e, v in enumerate([1.0, 0.8, 0.9, 0.85], 1):
        ...     es.on_epoch_end(trainer=T(), epoch=e, metrics={"val.loss": v})
        stop: early stopping: val.loss did not improve
    """

    def __init__(
        self,
        monitor: str = "val.loss",
        mode: str = "auto",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
    ) -> None:
        self._init_monitor(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"patience must be a positive integer (epochs); received {patience!r}")
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] = {}

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: Mapping[str, float], **_: Any) -> None:
        value = self.monitored(metrics)
        if value is None:
            return
        if self.improved(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                net = trainer.model.net
                self.best_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop(
                f"early stopping: {self.monitor} did not improve for {self.wait} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch})"
            )

    def on_train_end(self, trainer: Any, **_: Any) -> None:
        if self.restore_best_weights and self.best_weights and self.wait > 0:
            trainer.model.net.load_state_dict(self.best_weights)
            log.info("restored the weights of epoch %s (%s=%.6g)", self.best_epoch, self.monitor, self.best)

    def extra_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        self.stopped_epoch = state.get("stopped_epoch")
        self.best_weights = dict(state.get("best_weights") or {})
