"""NaNDetector: end training when the step loss is NaN or infinite, by raising or stopping."""

from __future__ import annotations

import math
from typing import Any

from ptdry.core.callback import Callback
from ptdry.core.properties import Choice
from ptdry.errors import TrainingError

__all__ = ["NaNDetector"]


class NaNDetector(Callback):
    """Check the loss of every step; on NaN or infinity raise TrainingError or stop the trainer.

    The Trainer adds ``NaNDetector(action="raise")`` by default (``detect_nan=False`` turns
    that off); passing your own NaNDetector replaces the default.

    Args:
        action: ``"raise"`` (the run fails) or ``"stop"`` (the run ends after this step's
            epoch, as completed).

    Example:
        >>> try:
        ...     NaNDetector().on_step_end(trainer=None, step=3, epoch=1, loss=float("nan"))
        ... except TrainingError as e:
        ...     print(str(e)[:31])
        loss is nan at step 3 (epoch 1)
    """

    action = Choice(["raise", "stop"])

    def __init__(self, action: str = "raise") -> None:
        self.action = action

    def on_step_end(self, trainer: Any, step: int, epoch: int, loss: float | None = None, **_: Any) -> None:
        if loss is None or math.isfinite(loss):
            return
        message = f"loss is {loss} at step {step} (epoch {epoch})"
        if self.action == "raise":
            raise TrainingError(f"{message}; lower the learning rate, check the data, or use NaNDetector(action='stop')")
        trainer.stop(message)
