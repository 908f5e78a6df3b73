"""ProgressBar: a tqdm bar per epoch showing the step, the loss and, at the end, the metrics."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from ptdry.core.callback import Callback
from ptdry.core.properties import Int

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """Show a tqdm progress bar on stderr for each epoch.

    The Trainer adds one by default when stderr is a terminal (``progress_bar=False`` turns
    that off). The loss shown is refreshed every ``refresh_every`` steps to keep the loop fast.

    Args:
        refresh_every: steps between updates of the shown loss.
        leave: keep each epoch's finished bar on screen.
    """

    refresh_every = Int(min=1)

    def __init__(self, refresh_every: int = 10, leave: bool = True) -> None:
        self.refresh_every = refresh_every
        self.leave = bool(leave)
        self._bar: Any = None

    def _open(self, trainer: Any, epoch: int, total: int | None) -> None:
        from tqdm.auto import tqdm

        self._close()
        if not getattr(trainer, "is_global_zero", True):  # one process of a distributed job shows it
            return
        self._bar = tqdm(
            total=total,
            desc=f"epoch {epoch}/{trainer.looper.epochs}",
            unit="batch",
            leave=self.leave,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_start(self, trainer: Any, epoch: int, num_batches: int, **_: Any) -> None:
        self._open(trainer, epoch, num_batches)

    def on_step_end(
        self, trainer: Any, step: int, epoch: int, loss: float | None = None, batch_idx: int | None = None, **_: Any
    ) -> None:
        if self._bar is None:  # resumed mid-epoch: no on_epoch_start for this epoch
            self._open(trainer, epoch, None)
            if self._bar is None:
                return
        # batches, not steps: a step takes several batches with gradient accumulation
        self._bar.update(1 if batch_idx is None else max(batch_idx + 1 - self._bar.n, 0))
        if loss is not None and step % self.refresh_every == 0:
            self._bar.set_postfix_str(f"loss={loss:.4f}", refresh=False)

    def on_epoch_end(self, metrics: Mapping[str, float], **_: Any) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        self._close()

    def on_train_end(self, **_: Any) -> None:
        self._close()

    def on_exception(self, **_: Any) -> None:
        self._close()
