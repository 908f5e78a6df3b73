"""The active compute context of this process: ``ContextManager``, ``context_check``.

The active context is process-wide (all threads see it) and there is at most one: the
frameworks' limits (threads, GPU memory) are per process. ``with ContextManager(request):``
borrows the request from a :class:`~ptdry.context.pool.ResourcePool`, applies its limits to
this process and makes it active; leaving the block undoes what can be undone and gives the
resources back. Entered while a context is active, it joins the active one when that one
satisfies the request, and refuses otherwise. Code that needs a framework says so with
:func:`context_check`, which raises when the active context does not give it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from ptdry.context.allocation import Allocation
from ptdry.context.limits import configure, environment
from ptdry.context.pool import ResourcePool
from ptdry.context.request import ResourceRequest
from ptdry.errors import ContextError, ContextIncompatibilityError

__all__ = ["ContextManager", "active_context", "context_check"]

log = logging.getLogger(__name__)

_lock = threading.RLock()
_active: Allocation | None = None
_users = 0  # ContextManagers inside the active context, the one that made it included


def active_context() -> Allocation | None:
    """The allocation of the active compute context, or None outside any."""
    return _active


def context_check(request: Any) -> Allocation:
    """Raise unless the active compute context gives what ``request`` asks; return it.

    Put it at the start of code that needs a framework (or GPUs, or CPU threads), so that it
    fails early and clearly instead of importing a framework into the wrong process.

    Example:
        >>> from ptdry import ContextManager, ResourcePool
        >>> with ContextManager({"num_cpus": 1}, pool=ResourcePool(num_gpus=0, num_cpus=2)):
        ...     context_check({"num_cpus": 1}).num_cpus
        1

    Raises:
        ContextIncompatibilityError: no context is active, or the active one lacks
            something ``request`` asks; the message names what and how to get it.
        ConfigError: ``request`` is malformed.
    """
    wanted = ResourceRequest.parse(request)
    active = _active
    how = f"wrap the code in `with ptdry.ContextManager({wanted}):` or run it with @ptdry.compute_context({wanted})"
    if active is None:
        raise ContextIncompatibilityError(f"no compute context is active, and this code needs {wanted}; {how}")
    missing = active.missing(wanted)
    if missing:
        raise ContextIncompatibilityError(
            f"the active compute context ({active.describe()}) does not give {', '.join(missing)}, "
            f"which this code needs ({wanted}); {how}"
        )
    return active


class ContextManager:
    """Run a ``with`` block in a compute context of this process.

    Args:
        request: what the block needs (see :mod:`ptdry.context.request`); None or ``{}``:
            no framework and no limits.
        pool: where to borrow from; default :meth:`ResourcePool.default` (this machine).

    ``__enter__`` returns the :class:`~ptdry.context.allocation.Allocation`; use its
    ``devices("torch")`` to place tensors. In this process ptdry cannot hide GPUs from a
    framework that is already using them (``CUDA_VISIBLE_DEVICES`` is read once): for
    isolation, use :func:`~ptdry.context.spawn.compute_context`.

    Example:
        >>> from ptdry import ContextManager, ResourcePool, context_check
        >>> pool = ResourcePool(num_gpus=0, num_cpus=2)
        >>> with ContextManager({"torch": {}, "num_cpus": 1}, pool=pool) as granted:
        ...     _ = context_check({"torch": {}})
        ...     granted.devices("torch"), pool.lent
        (['cpu'], {'num_cpus': 1})
        >>> pool.lent
        {}

    Raises (on entering):
        ConfigError: the request is malformed.
        ContextError: the pool cannot meet it, a context is active that does not satisfy
            it, or the frameworks cannot take its limits (see the message).
    """

    def __init__(self, request: Any = None, *, pool: ResourcePool | None = None) -> None:
        self.request = ResourceRequest.parse(request)
        self.pool = pool
        self._state: tuple | None = None  # (allocation, owner?, pool, env restore, undo)

    @property
    def allocation(self) -> Allocation | None:
        """The allocation while the block runs, else None."""
        return self._state[0] if self._state is not None else None

    def __enter__(self) -> Allocation:
        global _active, _users
        if self._state is not None:
            raise ContextError("this ContextManager is already entered; make a new one for another block")
        with _lock:
            if _active is not None:
                missing = _active.missing(self.request)
                if missing:
                    raise ContextError(
                        f"a compute context is active ({_active.describe()}) and it does not give "
                        f"{', '.join(missing)} of {self.request}; contexts nest only when the outer one "
                        "satisfies the inner; use compute_context to run this in a process of its own"
                    )
                _users += 1
                self._state = (_active, False, None, {}, [])
                return _active
            pool = self.pool if self.pool is not None else ResourcePool.default()
            allocation = pool.allocate(self.request)
            saved: dict[str, str | None] = {}
            undo: list = []
            try:
                for name, value in environment(allocation, child=False).items():
                    saved[name] = os.environ.get(name)
                    os.environ[name] = value
                undo = configure(allocation, child=False)
            except BaseException:
                _undo(undo, saved)
                pool.release(allocation)
                raise
            _active, _users = allocation, 1
            self._state = (allocation, True, pool, saved, undo)
            return allocation

    def __exit__(self, *exc_info: Any) -> None:
        global _active, _users
        if self._state is None:
            return
        allocation, owner, pool, saved, undo = self._state
        self._state = None
        with _lock:
            _users -= 1
            if not owner:
                return
            if _users:
                log.warning("a compute context ends while %d nested block(s) still use it", _users)
            _active, _users = None, 0
        try:
            _undo(undo, saved)
        finally:
            pool.release(allocation)

    def __repr__(self) -> str:
        return f"ContextManager({self.request})"


def _undo(undo: list, saved: dict[str, str | None]) -> None:
    for step in reversed(undo):
        try:
            step()
        except Exception:
            log.exception("undoing a compute context's limit failed")
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def activate_in_child(allocation: Allocation) -> None:
    """Make ``allocation`` the active context of a ``compute_context`` child (for good)."""
    global _active, _users
    with _lock:
        _active, _users = allocation, 1
