"""``compute_context``: run a function in a fresh subprocess under a compute context.

The parent borrows the request from a pool, writes the function and its arguments with
``dill`` (so lambdas and closures travel) and starts ``python -m ptdry.context.child`` — a
new interpreter, not a fork: it imports only the frameworks the request names, after its
``CUDA_VISIBLE_DEVICES`` and thread variables are set. The parent waits on the *process*
(never on a queue that a dead child would leave empty), then:

- returns the function's return value;
- re-raises the function's exception with its type, plus a note holding the child's
  traceback (:class:`~ptdry.errors.ContextError` when the exception cannot be rebuilt here);
- raises :class:`~ptdry.errors.ContextError` with the exit code or signal when the child
  died without a result (killed, out of memory, ``os._exit``), or ran past ``timeout``.

The resources go back to the pool when the child has ended, whatever happened.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Callable, TypeVar

from ptdry.context.child import PAYLOAD, RESULT, SPEC
from ptdry.context.limits import environment, local_numbering
from ptdry.context.pool import ResourcePool
from ptdry.context.request import ResourceRequest
from ptdry.errors import ConfigError, ContextError, SerializationError, add_note

__all__ = ["ComputeFunction", "compute_context"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
#: How long a child may take to exit once its result is written (frameworks' shutdown).
EXIT_GRACE = 60.0
_POLL = 0.05
#: The directory holding the ``ptdry`` package; the child must import this same ptdry.
_PTDRY_ROOT = str(Path(__file__).resolve().parents[2])


def compute_context(
    request: Any = None, *, pool: ResourcePool | None = None, timeout: float | None = None
) -> Callable[[F], "ComputeFunction"]:
    """Decorate a function so that each call runs in a new process under ``request``.

    Args:
        request: what the function needs (see :mod:`ptdry.context.request`), e.g.
            ``{"torch": {"gpu/0": 0.5}, "num_cpus": 2}``; None: no framework, no limits.
        pool: where to borrow from; default :meth:`ResourcePool.default` (this machine).
        timeout: seconds a call may take; past it the child is killed and ContextError
            raised. None: no limit.

    The function and its arguments are sent with ``dill`` (a lambda or a closure works);
    its return value comes back the same way. The child starts a new interpreter, which
    takes a moment (seconds when it imports TensorFlow): give it whole jobs, not small steps.

    Example:
        >>> from ptdry import compute_context, context_check
        >>> @compute_context({"num_cpus": 1})
        ... def threads():
        ...     import os
        ...     return context_check({"num_cpus": 1}).num_cpus, os.environ["OMP_NUM_THREADS"]
        >>> threads()
        (1, '1')

    Raises (on calling):
        ConfigError: the request or ``timeout`` is malformed (on decorating).
        ContextError: the pool cannot meet the request, or the child died or timed out.
        SerializationError: dill cannot send the function, its arguments or its result.
        ImportError: dill is not installed (``pip install 'ptdry[dill]'``).
        Exception: whatever the function raised, with the child's traceback as a note.
    """
    parsed = ResourceRequest.parse(request)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"compute_context timeout = {timeout!r}; expected seconds > 0, or None for no limit")

    def decorate(fn: F) -> ComputeFunction:
        return ComputeFunction(fn, parsed, pool=pool, timeout=timeout)

    return decorate


class ComputeFunction:
    """A function whose calls run in a compute-context subprocess (see :func:`compute_context`).

    ``fn`` is the original function; ``request`` the parsed request. Works as a method too.
    """

    def __init__(self, fn: Callable[..., Any], request: Any, *, pool: ResourcePool | None, timeout: float | None):
        if not callable(fn):
            raise ConfigError(f"compute_context decorates a function; received {fn!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.request = ResourceRequest.parse(request)
        self.pool = pool
        self.timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return run(self.fn, args, kwargs, self.request, pool=self.pool, timeout=self.timeout)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __reduce__(self) -> tuple:  # the pool holds a lock and stays behind: a copy uses the default
        return (_rebuild, (self.fn, self.request.to_dict(), self.timeout))

    def __repr__(self) -> str:
        return f"<compute_context({self.request}) {getattr(self.fn, '__qualname__', self.fn)!r}>"


def _rebuild(fn: Callable[..., Any], request: dict, timeout: float | None) -> ComputeFunction:
    return ComputeFunction(fn, request, pool=None, timeout=timeout)


def run(
    fn: Callable[..., Any],
    args: tuple = (),
    kwargs: dict | None = None,
    request: Any = None,
    *,
    pool: ResourcePool | None = None,
    timeout: float | None = None,
) -> Any:
    """Call ``fn(*args, **kwargs)`` in a compute-context subprocess (what a decorated call does)."""
    dill = _dill()
    name = getattr(fn, "__qualname__", None) or repr(fn)
    payload = _dump(dill, fn, args, kwargs or {}, name)
    pool = pool if pool is not None else ResourcePool.default()
    allocation = pool.allocate(request)
    try:
        child_view = allocation.with_local(local_numbering(allocation))
        with tempfile.TemporaryDirectory(prefix="ptdry-context-") as tmp:
            work = Path(tmp)
            spec = {"allocation": child_view.to_dict(), "sys_path": list(sys.path), "name": name}
            (work / SPEC).write_text(json.dumps(spec))
            (work / PAYLOAD).write_bytes(payload)
            env = {**os.environ, **environment(child_view, child=True)}
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_PTDRY_ROOT, env.get("PYTHONPATH")) if p)
            proc = subprocess.Popen(
                [sys.executable, "-m", "ptdry.context.child", str(work)],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: a timeout ends its children too
            )
            log.debug("compute_context child %d runs %s with %s", proc.pid, name, allocation.describe())
            code = _wait(proc, work / RESULT, timeout, name)
            if not (work / RESULT).exists():
                raise ContextError(_death(name, proc.pid, code))
            outcome = pickle.loads((work / RESULT).read_bytes())
    finally:
        pool.release(allocation)
    if code:
        log.warning("compute_context child %d (%s) exited with code %s after writing its result", proc.pid, name, code)
    return _unpack(dill, outcome, name, proc.pid)


def _dill() -> Any:
    try:
        import dill
    except ImportError as exc:
        raise ImportError(
            "compute_context sends functions to its subprocess with dill, which is not installed; "
            "pip install 'ptdry[dill]'"
        ) from exc
    return dill


def _memory_only(module_name: Any) -> bool:
    """True for a module that exists only in this process (made in memory, run with ``exec``)."""
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    return (
        module is not None
        and module_name != "__main__"
        and getattr(module, "__file__", None) is None
        and getattr(module, "__spec__", None) is None
    )


def _as_main(fn: types.FunctionType) -> types.FunctionType:
    """A copy of ``fn`` that dill sends by value (it does so for ``__main__``'s functions)."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__qualname__, copy.__doc__ = fn.__kwdefaults__, fn.__qualname__, fn.__doc__
    copy.__dict__.update(fn.__dict__)
    copy.__module__ = "__main__"
    return copy


_pickler: Any = None


def _pickler_class(dill: Any) -> Any:
    """dill's Pickler, sending functions of memory-only modules by value.

    dill sends a function of an imported module by reference (the child imports the
    module) and one of ``__main__`` by value. A module made in memory (code run with
    ``exec`` in a namespace of its own) has no file for the child to import, so its
    functions go by value too, like ``__main__``'s. (Its classes still go by reference.)
    """
    global _pickler
    if _pickler is None:

        class PortablePickler(dill.Pickler):
            def save(self, obj: Any, save_persistent_id: bool = True) -> None:
                if isinstance(obj, types.FunctionType) and _memory_only(obj.__module__):
                    copies = self.__dict__.setdefault("_ptdry_copies", {})
                    if id(obj) not in copies:  # one copy per function: recursion and sharing stay
                        copies[id(obj)] = (obj, _as_main(obj))
                    obj = copies[id(obj)][1]
                super().save(obj, save_persistent_id)

        _pickler = PortablePickler
    return _pickler


def _dumps(dill: Any, obj: Any) -> bytes:
    buffer = io.BytesIO()
    _pickler_class(dill)(buffer, dill.settings["protocol"], recurse=True).dump(obj)
    return buffer.getvalue()


def _dump(dill: Any, fn: Any, args: tuple, kwargs: dict, name: str) -> bytes:
    try:
        return _dumps(dill, (fn, tuple(args), dict(kwargs)))
    except Exception as exc:
        culprit = "the function"
        for what, value in [("the function", fn)] + [(f"argument {i}", a) for i, a in enumerate(args)] + [
            (f"argument {k}", v) for k, v in kwargs.items()
        ]:
            try:
                _dumps(dill, value)
            except Exception:
                culprit = what
                break
        raise SerializationError(
            f"compute_context cannot send {culprit} of {name} to its subprocess with dill "
            f"({type(exc).__name__}: {exc}); pass data (arrays, paths, definitions) instead of live objects"
        ) from exc


def _wait(proc: subprocess.Popen, result: Path, timeout: float | None, name: str) -> int:
    """Wait for the child to exit; kill it past ``timeout``, or when it lingers after its result."""
    start = time.monotonic()
    done_at = None
    try:
        while True:
            try:
                return proc.wait(timeout=_POLL)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if result.exists():
                done_at = done_at or now
                if now - done_at > EXIT_GRACE:
                    log.warning("compute_context child %d (%s) did not exit after its result; killing it", proc.pid, name)
                    _kill(proc)
                    return proc.wait()
            elif timeout is not None and now - start > timeout:
                _kill(proc)
                raise ContextError(
                    f"{name} did not finish within timeout={timeout:g} s in its compute_context child "
                    f"(pid {proc.pid}), which was killed"
                )
    except BaseException:
        if proc.poll() is None:  # e.g. KeyboardInterrupt: no orphan keeps the resources busy
            _kill(proc)
        raise


def _kill(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the child's process group."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _death(name: str, pid: int, code: int) -> str:
    if code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        hint = (
            " — the kernel's out-of-memory killer sends SIGKILL when memory runs out"
            if -code == signal.SIGKILL
            else ""
        )
        return f"the compute_context child (pid {pid}) running {name} was killed by {sig} (exit code {code}){hint}"
    return (
        f"the compute_context child (pid {pid}) running {name} exited with code {code} without a result "
        "(it called sys.exit or os._exit, or failed to start; its output above says more)"
    )


def _unpack(dill: Any, outcome: dict, name: str, pid: int) -> Any:
    if outcome["ok"]:
        try:
            return dill.loads(outcome["value"])
        except Exception as exc:
            raise SerializationError(
                f"the return value of {name} cannot be loaded in this process ({type(exc).__name__}: {exc})"
            ) from exc
    note = f"raised in the compute_context child (pid {pid}) running {name}; the child's traceback:\n"
    note += outcome["traceback"].rstrip()
    error, why = None, outcome["why"]
    if outcome["error"] is not None:
        try:
            error = dill.loads(outcome["error"])
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
    if not isinstance(error, BaseException):
        error = ContextError(
            f"{name} raised {outcome['type']}: {outcome['message']} in its compute_context child "
            f"(pid {pid}); the exception itself could not be sent back ({why})"
        )
    add_note(error, note)
    raise error
