"""EpochPrinter: one line per epoch with its metrics, for logs (nohup, SLURM, CI).

A progress bar redrawn in place turns into megabytes of carriage returns in a log file; one
line per epoch (Keras' ``verbose=2``) is what a person reads there. The Trainer adds an
EpochPrinter instead of the progress bar when stdout is not a terminal (``verbose="auto"``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, TextIO

from ptdry.core.callback import Callback
from ptdry.core.statistic import Statistic

__all__ = ["EpochPrinter", "format_values"]


def format_values(values: Mapping[str, Any]) -> str:
    """``"train.loss 0.4312 - val.accuracy 0.9133"``: each value with 4 significant digits."""
    parts = []
    for name, value in values.items():
        parts.append(f"{name} {value:.4g}" if isinstance(value, (int, float)) else f"{name} {value}")
    return " - ".join(parts)


class EpochPrinter(Callback):
    """Print one line per epoch — its number, steps, wall time and every value recorded in it
    (``train.*``, ``val.*``, ``optim.lr``, ...) — and one line per test evaluation and early
    stop, flushed at once so a log shows the progress as it happens.

    Args:
        stream: where to write; None: ``sys.stdout`` at the time of printing.

    Example:
        >>> import io
        >>> out = io.StringIO(); p = EpochPrinter(stream=out)
        >>> class T:
        ...     class looper: epochs = 5
        >>> p.on_epoch_start(trainer=T(), epoch=2, step=4, num_batches=2)
        >>> p.on_log(statistic=Statistic("val", {"loss": 0.41234, "accuracy": 0.9}))
        >>> p.on_epoch_end(trainer=T(), epoch=2, step=6, metrics={"train.loss": 0.5})
        >>> parts = out.getvalue().rstrip().split(" - "); del parts[2]  # the time taken
        >>> parts
        ['epoch 2/5', '2 steps', 'train.loss 0.5', 'val.loss 0.4123', 'val.accuracy 0.9']
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._record_argument("stream", None)  # runtime wiring, not a hyperparameter
        self.stream = stream
        self._values: dict[str, Any] = {}
        self._start: tuple[float, int] | None = None

    def _write(self, line: str) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        print(line, file=stream, flush=True)

    def on_train_start(self, step: int, **_: Any) -> None:
        self._start = (time.perf_counter(), step)  # a mid-epoch resume has no on_epoch_start
        self._values = {}

    def on_epoch_start(self, step: int, **_: Any) -> None:
        self._start = (time.perf_counter(), step)
        self._values = {}

    def on_log(self, statistic: Statistic, **_: Any) -> None:
        if statistic.name != "step":
            self._values.update(statistic.items())

    def on_validation_end(self, split: str, metrics: Mapping[str, Any], **_: Any) -> None:
        if split != "val":  # test (or another split) evaluated outside an epoch
            self._write(f"{split} - {format_values(metrics)}")  # metrics: "test.loss", ...
            for k in metrics:
                self._values.pop(k, None)

    def on_epoch_end(self, trainer: Any, epoch: int, step: int, metrics: Mapping[str, Any], **_: Any) -> None:
        began, first = self._start or (time.perf_counter(), step)
        values = {**metrics, **{k: v for k, v in self._values.items() if k not in metrics}}
        head = f"epoch {epoch}/{trainer.looper.epochs} - {step - first} steps - {time.perf_counter() - began:.1f}s"
        self._write(" - ".join(p for p in (head, format_values(values)) if p))
        self._values, self._start = {}, None

    def on_train_end(self, reason: str, **_: Any) -> None:
        if reason not in ("completed", "max_steps"):
            self._write(f"stopped: {reason}")
