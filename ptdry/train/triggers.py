"""Triggers: the names of the training loop's events, and filters that thin them out.

A callback handles a trigger by defining a method of that name; it receives ``trainer=``
and the current values as keyword arguments, and should accept ``**_`` for the rest
(``def on_step_end(self, loss, **_)``). The trainer calls them in this order::

    on_setup                      once, when the callback is added to a trainer
    on_session_start              (Session) before training
    on_train_start                trainer, step, epoch, epochs, resumed
      on_epoch_start              trainer, step, epoch, num_batches   (not on a mid-epoch resume)
        on_step_start             trainer, step, epoch, batch_idx, batch
          on_before_backward      trainer, step, epoch, loss (tensor)
          on_after_backward       trainer, step, epoch, loss (tensor)
          on_before_optimizer_step  trainer, step, epoch, optimizer
        on_step_end               trainer, step, epoch, batch_idx, loss (float), outputs (dict)
        on_log                    trainer, statistic      (after every Trainer.log / history point)
        on_validation_start       trainer, step, epoch, split
        on_validation_end         trainer, step, epoch, split, metrics
      on_epoch_end                trainer, step, epoch, metrics
    on_train_end                  trainer, step, epoch, metrics, reason
    on_session_end                (Session) after training
    on_checkpoint_save            trainer, name, state, meta     (whenever a checkpoint is written)
    on_checkpoint_load            trainer, name, state, meta     (after a checkpoint is loaded)
    on_exception                  trainer, step, epoch, exception  (before the error propagates)

``step`` is the global step number, counted from 1 (at ``on_step_end`` it equals the number
of optimizer steps done); ``epoch`` is counted from 1; ``batch_idx`` from 0 within an epoch.

Filters: wrap a callback to run its step or epoch triggers only on some of them.
``Every(cb, steps=100)``, ``Every(cb, epochs=5)``, ``Once(cb)`` (each trigger only the first
time), ``Once(cb, step=500)``, ``Once(cb, epoch=3)``. A filter registers under the name of the
callback it wraps, and its state includes the wrapped callback's.
"""

from __future__ import annotations

from typing import Any, Callable

from ptdry.core.callback import Callback
from ptdry.errors import ConfigError

__all__ = ["EPOCH_TRIGGERS", "STEP_TRIGGERS", "TRIGGERS", "Every", "Once", "unknown_triggers", "unwrap"]

#: Every trigger the Trainer (and Session) fire, in the order of a run.
TRIGGERS = (
    "on_setup",
    "on_session_start",
    "on_train_start",
    "on_epoch_start",
    "on_step_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_step_end",
    "on_log",
    "on_validation_start",
    "on_validation_end",
    "on_epoch_end",
    "on_train_end",
    "on_session_end",
    "on_checkpoint_save",
    "on_checkpoint_load",
    "on_exception",
)

#: Triggers that happen once per step (they receive ``step``); ``Every(steps=)`` filters them.
STEP_TRIGGERS = frozenset(
    {"on_step_start", "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_step_end"}
)

#: Triggers that happen once per epoch (they receive ``epoch``); ``Every(epochs=)`` filters them.
EPOCH_TRIGGERS = frozenset({"on_epoch_start", "on_epoch_end"})


def unwrap(callback: Any) -> Any:
    """The callback inside any filters wrapping it."""
    while isinstance(callback, _Filter):
        callback = callback.callback
    return callback


def unknown_triggers(callback: Any) -> list[str]:
    """Methods named ``on_*`` that are not triggers (likely typos), e.g. ``["on_stepend"]``."""
    from ptdry.core.module import Module

    inner = unwrap(callback)
    return [
        a
        for a in dir(type(inner))
        if a.startswith("on_") and a not in TRIGGERS and not hasattr(Module, a) and callable(getattr(inner, a, None))
    ]


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; received {value!r}")
    return value


class _Filter(Callback):
    """Base of the filters: forwards the wrapped callback's triggers that pass ``_passes``."""

    callback: Any

    def _wrap(self, callback: Any) -> None:
        if isinstance(callback, type):
            raise ConfigError(f"{type(self).__name__} needs a callback instance; received the class {callback.__name__}")
        self.callback = callback

    @property
    def callback_name(self) -> str:
        """The name the trainer registers this filter under: the wrapped callback's."""
        return getattr(self.callback, "callback_name", type(self.callback).__name__)

    def _passes(self, trigger: str, kwargs: dict[str, Any]) -> bool:
        raise NotImplementedError

    def __getattr__(self, trigger: str) -> Callable[..., Any]:
        # Only reached for names the filter itself lacks: offer the wrapped callback's triggers.
        inner = getattr(self.__dict__.get("callback"), trigger, None) if trigger.startswith("on_") else None
        if not callable(inner):
            raise AttributeError(trigger)

        def filtered(**kwargs: Any) -> Any:
            if self._passes(trigger, kwargs):
                return inner(**kwargs)
            return None

        filtered.__name__ = trigger
        return filtered


class Every(_Filter):
    """Run a callback's step triggers every ``steps`` steps, or its epoch triggers every
    ``epochs`` epochs; its other triggers run as usual.

    A trigger passes when its ``step`` (or ``epoch``) is a multiple of the interval, counting
    from 1: ``Every(cb, steps=10)`` runs ``cb.on_step_end`` at steps 10, 20, ...

    Args:
        callback: the callback to filter.
        steps: interval in steps (exclusive with ``epochs``).
        epochs: interval in epochs.

    Example:
        >>> class Say(Callback):
        ...     def __init__(self): self.seen = []
        ...     def on_step_end(self, step, **_): self.seen.append(step)
        >>> f = Every(Say(), steps=2)
        >>> for s in range(1, 6): f.on_step_end(step=s)
        >>> f.callback.seen
        [2, 4]
    """

    def __init__(self, callback: Any, steps: int | None = None, epochs: int | None = None) -> None:
        if (steps is None) == (epochs is None):
            raise ConfigError(f"Every needs exactly one of steps= or epochs=; received steps={steps!r}, epochs={epochs!r}")
        self._wrap(callback)
        self.unit = "step" if steps is not None else "epoch"
        self.n = _positive(f"{self.unit}s", steps if steps is not None else epochs)
        self._triggers = STEP_TRIGGERS if self.unit == "step" else EPOCH_TRIGGERS

    def _passes(self, trigger: str, kwargs: dict[str, Any]) -> bool:
        if trigger not in self._triggers:
            return True
        value = kwargs.get(self.unit)
        return value is not None and value % self.n == 0


class Once(_Filter):
    """Run a callback's triggers once: each trigger the first time it fires, or its step
    triggers only at ``step``, or its epoch triggers only at ``epoch``.

    The triggers already run are part of the state, so a resumed run does not repeat them.

    Args:
        callback: the callback to filter.
        step: run the step triggers only at this global step (exclusive with ``epoch``).
        epoch: run the epoch triggers only at this epoch.

    Example:
        >>> class Say(Callback):
        ...     def __init__(self): self.seen = []
        ...     def on_epoch_end(self, epoch, **_): self.seen.append(epoch)
        >>> f = Once(Say())
        >>> for e in range(1, 4): f.on_epoch_end(epoch=e)
        >>> f.callback.seen
        [1]
    """

    def __init__(self, callback: Any, step: int | None = None, epoch: int | None = None) -> None:
        if step is not None and epoch is not None:
            raise ConfigError(f"Once takes step= or epoch=, not both; received step={step!r}, epoch={epoch!r}")
        self._wrap(callback)
        self.at_step = None if step is None else _positive("step", step)
        self.at_epoch = None if epoch is None else _positive("epoch", epoch)
        self.fired: set[str] = set()

    def _passes(self, trigger: str, kwargs: dict[str, Any]) -> bool:
        if self.at_step is not None:
            return trigger not in STEP_TRIGGERS or kwargs.get("step") == self.at_step
        if self.at_epoch is not None:
            return trigger not in EPOCH_TRIGGERS or kwargs.get("epoch") == self.at_epoch
        if trigger in self.fired:
            return False
        self.fired.add(trigger)
        return True

    def extra_state(self) -> dict[str, Any]:
        return {"fired": sorted(self.fired)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.fired = set(state.get("fired", ()))
