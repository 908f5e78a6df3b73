"""Allocation: what a pool granted for one request, and whether it satisfies another.

An :class:`Allocation` is the record of a compute context: the frameworks it admits, the
fraction of each GPU each of them may use, and the CPU threads of the process. It is what
:func:`~ptdry.context.manager.active_context` returns and what ``context_check`` compares a
request against. It travels to a ``compute_context`` child as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ptdry.context.request import EPSILON, ResourceRequest, gpu_name

__all__ = ["Allocation"]


@dataclass(frozen=True)
class Allocation:
    """Resources granted to one context.

    Attributes:
        request: what was asked.
        gpus: framework -> ``{device index: fraction}`` (``{}``: the framework runs on the
            CPU); ``num_gpus`` requests are resolved to whole devices (fraction 1).
        num_cpus: CPU threads of the process, or None for no limit.
        gpu_ids: device index -> the id that names it in ``CUDA_VISIBLE_DEVICES``.
        gpu_memory: device index -> its memory in bytes, where known.
        local: device index -> the CUDA index the frameworks of *this* process use for it
            (a child sees only its devices, numbered from 0).
        token: the pool's number for this grant (for ``ResourcePool.release``).
    """

    request: ResourceRequest
    gpus: Mapping[str, Mapping[int, float]]
    num_cpus: int | None = None
    gpu_ids: Mapping[int, str] = field(default_factory=dict)
    gpu_memory: Mapping[int, int | None] = field(default_factory=dict)
    local: Mapping[int, int] = field(default_factory=dict)
    token: int = 0

    @property
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks this context admits, in request order."""
        return tuple(self.gpus)

    def devices_in_use(self) -> list[int]:
        """Every device index granted to any framework, sorted."""
        return sorted({i for fractions in self.gpus.values() for i in fractions})

    def devices(self, framework: str) -> list[str]:
        """The devices ``framework`` may use, as its CUDA names (``["cuda:0"]``), or ``["cpu"]``.

        Example:
            >>> from ptdry.context.request import ResourceRequest
            >>> Allocation(ResourceRequest.parse({"torch": {}}), {"torch": {}}).devices("torch")
            ['cpu']
        """
        fractions = self.gpus.get(framework)
        if not fractions:
            return ["cpu"]
        return [f"cuda:{self.local.get(i, i)}" for i in sorted(fractions)]

    def missing(self, request: Any) -> list[str]:
        """What ``request`` asks that this allocation does not give (empty: it satisfies it)."""
        wanted = ResourceRequest.parse(request)
        out = []
        for name, fw in wanted.frameworks.items():
            if name not in self.gpus:
                have = ", ".join(self.frameworks) or "none"
                out.append(f"framework {name!r} (this context has: {have})")
                continue
            granted = self.gpus[name]
            for index, fraction in sorted(fw.gpus.items()):
                if granted.get(index, 0.0) + EPSILON < fraction:
                    out.append(f"{name} {gpu_name(index)} {fraction:g} (granted {granted.get(index, 0.0):g})")
            whole = sum(1 for i, f in granted.items() if f >= 1 - EPSILON and i not in fw.gpus)
            if whole < fw.num_gpus:
                out.append(f"{name} num_gpus {fw.num_gpus} (granted {whole} whole device(s))")
        if wanted.num_cpus is not None and self.num_cpus is not None and self.num_cpus < wanted.num_cpus:
            out.append(f"num_cpus {wanted.num_cpus} (granted {self.num_cpus})")
        return out

    def satisfies(self, request: Any) -> bool:
        """True when everything ``request`` asks is granted here (a request or its dict form)."""
        return not self.missing(request)

    def with_local(self, local: Mapping[int, int]) -> "Allocation":
        """A copy whose devices are numbered ``local`` in this process."""
        return replace(self, local=dict(local))

    def describe(self) -> str:
        """A short text for messages: ``torch: gpu/0 0.5; tf: cpu; num_cpus 2``."""
        parts = []
        for name, fractions in self.gpus.items():
            where = ", ".join(f"{gpu_name(i)} {f:g}" for i, f in sorted(fractions.items())) or "cpu"
            parts.append(f"{name}: {where}")
        if self.num_cpus is not None:
            parts.append(f"num_cpus {self.num_cpus}")
        return "; ".join(parts) or "no framework, no limits"

    # -- to and from a child process ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data (integer keys as strings); :meth:`from_dict` inverts it."""
        return {
            "request": self.request.to_dict(),
            "gpus": {name: {str(i): f for i, f in fr.items()} for name, fr in self.gpus.items()},
            "num_cpus": self.num_cpus,
            "gpu_ids": {str(i): v for i, v in self.gpu_ids.items()},
            "gpu_memory": {str(i): v for i, v in self.gpu_memory.items()},
            "local": {str(i): v for i, v in self.local.items()},
            "token": self.token,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Allocation":
        def ints(d: Mapping[str, Any]) -> dict[int, Any]:
            return {int(k): v for k, v in d.items()}

        return cls(
            request=ResourceRequest.parse(data["request"]),
            gpus={name: ints(fr) for name, fr in data["gpus"].items()},
            num_cpus=data["num_cpus"],
            gpu_ids=ints(data["gpu_ids"]),
            gpu_memory=ints(data["gpu_memory"]),
            local=ints(data["local"]),
            token=data["token"],
        )
