"""Callback: the base class of things called from a module's triggers."""

from __future__ import annotations

from typing import Any

from ptdry.core.module import Module

__all__ = ["Callback"]


class Callback(Module):
    """Define methods named after triggers (``on_step_end(self, loss, **_)``); register the
    callback with ``module.callbacks.register(cb)``.

    A Callback is a Module: its constructor arguments make its definition, and
    ``extra_state()`` / ``load_extra_state()`` make it checkpointable.

    Example:
        >>> import math
        >>> class NaNDetector(Callback):
        ...     def on_step_end(self, loss, **_):
        ...         if math.isnan(loss):
        ...             raise RuntimeError("NaNs detected!")
        >>> m = Module()
        >>> _ = m.callbacks.register(NaNDetector())
        >>> m.callbacks.call("on_step_end", loss=float("nan"))
        Traceback (most recent call last):
        ...
        RuntimeError: NaNs detected!
        raised by callback 'NaNDetector' in on_step_end
    """

    def __call__(self, trigger: str, **kwargs: Any) -> Any:
        """Call this callback's ``trigger`` method, if it has one."""
        fn = getattr(self, trigger, None)
        return fn(**kwargs) if callable(fn) else None
