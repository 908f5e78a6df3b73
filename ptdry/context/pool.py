"""ResourcePool: lends GPUs (whole or in fractions) and CPU threads, and takes them back.

Contexts borrow from a pool: :class:`~ptdry.context.manager.ContextManager` for the time of
its ``with`` block, :func:`~ptdry.context.spawn.compute_context` for the life of its
subprocess. The fractions lent of one GPU sum to at most 1; CPU threads are lent whole. A
request the pool cannot meet raises :class:`~ptdry.errors.ContextError` naming each thing
that is missing, and lends nothing. The pool is thread-safe.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Mapping

from ptdry.context.allocation import Allocation
from ptdry.context.devices import cpu_count, detect_gpus, visible_ids
from ptdry.context.request import EPSILON, ResourceRequest, gpu_name
from ptdry.errors import ConfigError, ContextError

__all__ = ["ResourcePool"]

_default: "ResourcePool | None" = None
_default_lock = threading.Lock()
_tokens = itertools.count(1)


class ResourcePool:
    """What a machine (or the share of it you give ptdry) has, and what of it is lent.

    Args:
        num_gpus: GPUs, named ``gpu/0`` … ``gpu/<num_gpus-1>``; None: the NVIDIA GPUs this
            process sees (``nvidia-smi``, limited by ``CUDA_VISIBLE_DEVICES``). A pool told
            it has N GPUs lends them even without CUDA (for planning and tests); a child
            given a GPU that does not exist fails with ContextError.
        num_cpus: CPU threads to lend; None: the cores this process may use.
        gpu_memory: bytes of memory per GPU (one int for all, or ``{index: bytes}``), used
            to turn a TensorFlow fraction into a memory limit; None: as detected.

    Example:
        >>> pool = ResourcePool(num_gpus=1, num_cpus=4)
        >>> a = pool.allocate({"torch": {"gpu/0": 0.5}})
        >>> b = pool.allocate({"tf": {"gpu/0": 0.5}, "num_cpus": 2})
        >>> pool.lent
        {'gpu/0': 1.0, 'num_cpus': 2}
        >>> pool.release(a); pool.release(b); pool.lent
        {}
    """

    def __init__(
        self,
        num_gpus: int | None = None,
        num_cpus: int | None = None,
        *,
        gpu_memory: int | Mapping[int, int] | None = None,
    ) -> None:
        if num_gpus is None:
            gpus = detect_gpus()
            ids = [g.cuda_id for g in gpus]
            memory: dict[int, int | None] = {g.index: g.memory for g in gpus}
        else:
            _check_count(num_gpus, "num_gpus", 0)
            visible = visible_ids() or []
            ids = visible[:num_gpus] if len(visible) >= num_gpus else [str(i) for i in range(num_gpus)]
            memory = {i: None for i in range(num_gpus)}
        if num_cpus is None:
            num_cpus = cpu_count()
        _check_count(num_cpus, "num_cpus", 1)
        if isinstance(gpu_memory, Mapping):
            memory.update({int(i): _check_count(v, f"gpu_memory[{i}]", 1) for i, v in gpu_memory.items()})
        elif gpu_memory is not None:
            memory = {i: _check_count(gpu_memory, "gpu_memory", 1) for i in memory}
        self._ids = dict(enumerate(ids))
        self._memory = memory
        self._num_cpus = num_cpus
        self._lock = threading.Lock()
        self._gpu_lent = {i: 0.0 for i in self._ids}
        self._cpu_lent = 0
        self._grants: dict[int, Allocation] = {}

    @classmethod
    def default(cls) -> "ResourcePool":
        """The process-wide pool (what this machine has), made on first use."""
        global _default
        with _default_lock:
            if _default is None:
                _default = cls()
            return _default

    # -- what there is ------------------------------------------------------------------------
    @property
    def num_gpus(self) -> int:
        return len(self._ids)

    @property
    def num_cpus(self) -> int:
        return self._num_cpus

    @property
    def lent(self) -> dict[str, Any]:
        """What is lent now: ``{"gpu/0": 0.5, "num_cpus": 2}`` (nothing lent: ``{}``)."""
        with self._lock:
            out: dict[str, Any] = {gpu_name(i): round(f, 9) for i, f in self._gpu_lent.items() if f > EPSILON}
            if self._cpu_lent:
                out["num_cpus"] = self._cpu_lent
            return out

    @property
    def available(self) -> dict[str, Any]:
        """What is free now: each GPU's free fraction and the free CPU threads."""
        with self._lock:
            out: dict[str, Any] = {gpu_name(i): round(max(0.0, 1 - f), 9) for i, f in self._gpu_lent.items()}
            out["num_cpus"] = self._num_cpus - self._cpu_lent
            return out

    # -- lending ------------------------------------------------------------------------------
    def allocate(self, request: Any) -> Allocation:
        """Lend what ``request`` asks (all of it, or nothing) and return the grant.

        Raises:
            ConfigError: the request is malformed.
            ContextError: the pool cannot meet it now; the message names each device or
                count that is missing, and what is free.
        """
        req = ResourceRequest.parse(request)
        with self._lock:
            problems = []
            totals = req.device_totals()
            for index, fraction in sorted(totals.items()):
                if index not in self._ids:
                    problems.append(f"{gpu_name(index)} does not exist ({self._describe_gpus()})")
                elif self._gpu_lent[index] + fraction > 1 + EPSILON:
                    lent = self._gpu_lent[index]
                    problems.append(
                        f"{gpu_name(index)}: {fraction:g} asked, {max(0.0, 1 - lent):g} free ({lent:g} lent)"
                    )
            taken = set(totals)
            whole: dict[str, list[int]] = {}
            for name, fw in req.frameworks.items():
                if not fw.num_gpus:
                    continue
                free = [i for i in self._ids if i not in taken and self._gpu_lent[i] <= EPSILON]
                if len(free) < fw.num_gpus:
                    problems.append(
                        f"{name} num_gpus {fw.num_gpus}: {len(free)} whole GPU(s) free ({self._describe_gpus()})"
                    )
                whole[name] = free[: fw.num_gpus]
                taken.update(whole[name])
            if req.num_cpus is not None and self._cpu_lent + req.num_cpus > self._num_cpus:
                problems.append(
                    f"num_cpus {req.num_cpus}: {self._num_cpus - self._cpu_lent} of {self._num_cpus} free"
                )
            if problems:
                raise ContextError(
                    f"cannot grant the resource request {req}: " + "; ".join(problems)
                    + ". Ask for less, or release what other contexts hold (they give it back when they end)"
                )
            gpus = {
                name: {**fw.gpus, **{i: 1.0 for i in whole.get(name, ())}} for name, fw in req.frameworks.items()
            }
            for fractions in gpus.values():
                for index, fraction in fractions.items():
                    self._gpu_lent[index] += fraction
            self._cpu_lent += req.num_cpus or 0
            used = {i for fractions in gpus.values() for i in fractions}
            grant = Allocation(
                request=req,
                gpus=gpus,
                num_cpus=req.num_cpus,
                gpu_ids={i: self._ids[i] for i in sorted(used)},
                gpu_memory={i: self._memory.get(i) for i in sorted(used)},
                token=next(_tokens),
            )
            self._grants[grant.token] = grant
            return grant

    def release(self, allocation: Allocation) -> None:
        """Take back what ``allocation`` holds.

        Raises:
            ContextError: ``allocation`` is not lent by this pool (or was released already).
        """
        with self._lock:
            grant = self._grants.pop(getattr(allocation, "token", None), None)
            if grant is None:
                raise ContextError(
                    f"cannot release {allocation!r}: this pool has not lent it, or it was released already"
                )
            for fractions in grant.gpus.values():
                for index, fraction in fractions.items():
                    self._gpu_lent[index] = max(0.0, self._gpu_lent[index] - fraction)
            self._cpu_lent -= grant.num_cpus or 0

    def _describe_gpus(self) -> str:
        n = len(self._ids)
        if n == 0:
            return "the pool has no GPU"
        return f"the pool has {n} GPU(s), {gpu_name(0)}" + (f" to {gpu_name(n - 1)}" if n > 1 else "")

    def __repr__(self) -> str:
        return f"ResourcePool(num_gpus={self.num_gpus}, num_cpus={self.num_cpus}, lent={self.lent})"


def _check_count(value: Any, name: str, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ConfigError(f"ResourcePool {name} = {value!r}; expected a whole number >= {minimum}")
    return value
