"""Timer records how long epochs and steps take; TimeLimit stops training after a wall time."""

from __future__ import annotations

import math
import time
from typing import Any

from ptdry.core.callback import Callback
from ptdry.core.properties import Float

__all__ = ["TimeLimit", "Timer"]


class Timer(Callback):
    """Record ``time.epoch`` (seconds per epoch, validation included), ``time.step`` (mean
    seconds per training step) and, at the end, ``time.train``, in the trainer's history.

    Timings differ between runs, so histories with a Timer are not equal across runs.
    """

    def __init__(self) -> None:
        self._train_t0: float | None = None
        self._epoch_t0: float | None = None
        self._epoch_s0 = 0
        self._last_step_t: float | None = None

    def on_train_start(self, trainer: Any, **_: Any) -> None:
        self._train_t0 = time.perf_counter()

    def on_epoch_start(self, trainer: Any, **_: Any) -> None:
        self._epoch_t0, self._epoch_s0, self._last_step_t = time.perf_counter(), trainer.step, None

    def on_step_end(self, **_: Any) -> None:
        self._last_step_t = time.perf_counter()

    def on_epoch_end(self, trainer: Any, **_: Any) -> None:
        if self._epoch_t0 is None:  # resumed mid-epoch: this epoch's start was not seen
            return
        now = time.perf_counter()
        steps = trainer.step - self._epoch_s0
        step_time = (self._last_step_t - self._epoch_t0) / steps if steps and self._last_step_t else math.nan
        trainer.log("time", {"epoch": now - self._epoch_t0, "step": step_time})
        self._epoch_t0 = None

    def on_train_end(self, trainer: Any, **_: Any) -> None:
        if self._train_t0 is not None:
            trainer.log("time", {"train": time.perf_counter() - self._train_t0})
            self._train_t0 = None


class TimeLimit(Callback):
    """Stop training once it has run for ``seconds`` (counted over resumes too).

    The check runs after every step, so the run ends at most one step (and its epoch's
    validation) after the limit.

    Args:
        seconds: the wall-time budget of training.

    Example:
        >>> class T:
        ...     def stop(self, reason): print(reason)
        >>> tl = TimeLimit(0.0); tl.on_train_start(trainer=T()); tl.on_step_end(trainer=T())
        time limit of 0s reached
    """

    seconds = Float(min=0.0)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.elapsed_before = 0.0
        self._start: float | None = None

    def elapsed(self) -> float:
        """Seconds of training so far, earlier runs of a resumed one included."""
        if self._start is None:
            return self.elapsed_before
        return time.monotonic() - self._start

    def on_train_start(self, **_: Any) -> None:
        self._start = time.monotonic() - self.elapsed_before

    def on_step_end(self, trainer: Any, **_: Any) -> None:
        if self._start is not None and time.monotonic() - self._start >= self.seconds:
            trainer.stop(f"time limit of {self.seconds:g}s reached")

    def on_train_end(self, **_: Any) -> None:
        self.elapsed_before, self._start = self.elapsed(), None

    def extra_state(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self._start = None
