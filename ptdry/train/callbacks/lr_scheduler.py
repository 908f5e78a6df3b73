"""LRScheduler: drive any torch learning-rate scheduler from the loop, ReduceLROnPlateau too."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ptdry.core.callback import Callback
from ptdry.core.history import metric_mode
from ptdry.core.properties import Bool, Choice, Instance, Str
from ptdry.errors import NotReadyError

__all__ = ["LRScheduler"]

log = logging.getLogger(__name__)


class LRScheduler(Callback):
    """Build ``scheduler_cls(optimizer, **kwargs)`` when added to a trainer and step it every
    epoch or every step.

    The built scheduler is the child ``scheduler``, so its state is in the trainer's state and
    a resumed run continues the schedule exactly. A ``ReduceLROnPlateau`` is stepped with the
    monitored metric (``val.loss`` by default at epoch interval, ``step.loss`` at step
    interval) whenever it was computed, so the learning rates are exactly those torch's
    scheduler gives for that sequence of values — patience, ``threshold_mode``, cooldown,
    per-group ``min_lr`` and ``eps`` included. Without ``mode=`` in ``kwargs``, ptdry passes
    the direction of the monitor (``mode="max"`` for accuracy-like names), as EarlyStopping
    and Checkpoint read it; torch alone would minimize.

    At each epoch end the learning rate in effect (before an epoch-interval scheduler steps:
    the rate that epoch used) is recorded as ``optim.lr``; with several parameter groups the
    others as ``optim.lr_1``, ``optim.lr_2``, ...

    Args:
        scheduler_cls: a ``torch.optim.lr_scheduler`` class.
        monitor: the metric fed to ReduceLROnPlateau (ignored by other schedulers).
        interval: ``"epoch"`` or ``"step"``.
        log_lr: record the learning rates at each epoch end.
        **kwargs: the scheduler's arguments (``step_size=10, gamma=0.5``).

    Example:
        >>> import torch
        >>> from ptdry.train.model import Model, Optimizer
        >>> class T:  # a stand-in trainer
        ...     model = Model(torch.nn.Linear(2, 1), Optimizer(torch.optim.SGD, lr=1.0))
        ...     def log(self, *a, **k): pass
        >>> cb = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
        >>> cb.on_setup(trainer=T()); cb.on_epoch_end(trainer=T(), metrics={})
        >>> cb.scheduler.get_last_lr()
        [0.5]
    """

    scheduler_cls = Instance(type, kind="a scheduler class such as torch.optim.lr_scheduler.StepLR")
    monitor = Str(nonempty=True)
    interval = Choice(["epoch", "step"])
    log_lr = Bool()

    def __init__(
        self, scheduler_cls: type, monitor: str | None = None, interval: str = "epoch", log_lr: bool = True, **kwargs: Any
    ) -> None:
        self.scheduler_cls = scheduler_cls
        self.interval = interval
        self.log_lr = log_lr
        self.monitor = monitor or ("val.loss" if interval == "epoch" else "step.loss")
        from torch.optim.lr_scheduler import ReduceLROnPlateau  # torch schedulers only

        self.plateau = issubclass(scheduler_cls, ReduceLROnPlateau)
        self.kwargs = dict(kwargs)
        if self.plateau and "mode" not in self.kwargs:
            self.kwargs["mode"] = metric_mode(self.monitor)

    def on_setup(self, trainer: Any, **_: Any) -> None:
        optimizer = trainer.model.optimizer
        if optimizer is None or not optimizer.bound:
            raise NotReadyError("LRScheduler needs a model with an optimizer: Model(net, optimizer=Optimizer(...))")
        self.scheduler = self.scheduler_cls(optimizer.torch_optimizer, **self.kwargs)

    def _step(self, metrics: Mapping[str, Any]) -> None:
        # Called after the optimizer stepped (in this process or before a resume); tell torch,
        # whose "scheduler before optimizer" warning cannot see steps made before a resume.
        self.scheduler.optimizer._opt_called = True
        if self.plateau:
            value = metrics.get(self.monitor)
            if value is not None:
                self.scheduler.step(value)
        else:
            self.scheduler.step()

    def on_step_end(self, trainer: Any, **_: Any) -> None:
        if self.interval == "step":
            self._step(trainer.metrics)

    def on_epoch_end(self, trainer: Any, metrics: Mapping[str, Any], **_: Any) -> None:
        if self.log_lr:
            groups = self.scheduler.optimizer.param_groups
            values = {"lr": groups[0]["lr"]}
            values.update({f"lr_{i}": g["lr"] for i, g in enumerate(groups[1:], 1)})
            trainer.log("optim", values)
        if self.interval == "epoch":
            self._step(metrics)
