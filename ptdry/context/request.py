"""Resource requests: which framework may allocate what, parsed and checked strictly.

A request is a plain dict, so it fits in a definition or a run document::

    {"torch": {"gpu/0": 0.5}, "tf": {"gpu/0": 0.5}}   # half of GPU 0 each
    {"tf": {}}                                        # TensorFlow, on the CPU
    {"torch": {"num_gpus": 2}, "num_cpus": 4}         # two whole GPUs, any; 4 CPU threads
    {"num_cpus": 2}                                   # no framework, 2 CPU threads

Top-level keys are framework names (:data:`FRAMEWORKS`) and ``"num_cpus"`` (an int >= 1,
the CPU threads of the whole process). A framework's value maps ``"gpu/<index>"`` to the
fraction of that device's memory it may use (in ``(0, 1]``) and may hold ``"num_gpus"``
(whole devices, whichever are free). A framework that names no GPU runs on the CPU. The
fractions of one device, summed over the frameworks, are at most 1.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ptdry.errors import ConfigError

__all__ = ["EPSILON", "FRAMEWORKS", "FrameworkRequest", "ResourceRequest", "gpu_name"]

#: Framework names a request may use -> the module a context imports for it.
FRAMEWORKS: dict[str, str] = {"torch": "torch", "tf": "tensorflow"}
#: Slack when summing fractions (0.1 + 0.2 + 0.7 is 1.0000000000000002 in floats).
EPSILON = 1e-9

_GPU = re.compile(r"gpu/(0|[1-9][0-9]*)")
_EXPECTED_TOP = f"{', '.join(repr(f) for f in FRAMEWORKS)} or 'num_cpus'"
_EXPECTED_FW = "'gpu/<index>' (a fraction in (0, 1], e.g. 'gpu/0': 0.5) or 'num_gpus' (an int >= 0)"


def gpu_name(index: int) -> str:
    """``3`` -> ``"gpu/3"``: how requests, pools and messages name a device."""
    return f"gpu/{index}"


@dataclass(frozen=True)
class FrameworkRequest:
    """What one framework asks for: fractions of named GPUs and a count of whole GPUs."""

    gpus: Mapping[int, float] = field(default_factory=dict)  # device index -> fraction
    num_gpus: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {gpu_name(i): f for i, f in sorted(self.gpus.items())}
        if self.num_gpus:
            out["num_gpus"] = self.num_gpus
        return out


@dataclass(frozen=True)
class ResourceRequest:
    """A parsed, validated request; :meth:`parse` accepts the dict form (see the module doc).

    Example:
        >>> r = ResourceRequest.parse({"torch": {"gpu/0": 0.5}, "num_cpus": 2})
        >>> r.frameworks["torch"].gpus, r.num_cpus
        ({0: 0.5}, 2)
        >>> r.to_dict()
        {'torch': {'gpu/0': 0.5}, 'num_cpus': 2}
    """

    frameworks: Mapping[str, FrameworkRequest] = field(default_factory=dict)
    num_cpus: int | None = None

    @classmethod
    def parse(cls, request: Any) -> "ResourceRequest":
        """Check ``request`` (a dict, a ResourceRequest, or None for an empty request).

        Raises:
            ConfigError: an unknown key, a bad device name, a fraction outside ``(0, 1]``,
                a count that is not a whole number, or one device asked more than 1 in
                total; the message names the bad value and what is expected.
        """
        if isinstance(request, ResourceRequest):
            return request
        if request is None:
            return cls()
        if not isinstance(request, Mapping):
            raise ConfigError(
                f"a resource request is a dict like {{'torch': {{'gpu/0': 0.5}}, 'num_cpus': 2}}; "
                f"received {request!r} of type {type(request).__qualname__}"
            )
        frameworks: dict[str, FrameworkRequest] = {}
        num_cpus = None
        for key, value in request.items():
            if key == "num_cpus":
                num_cpus = _count(value, "num_cpus", minimum=1)
            elif key in FRAMEWORKS:
                frameworks[key] = _framework(key, value)
            else:
                raise ConfigError(f"resource request has unknown key {key!r}; expected {_EXPECTED_TOP}")
        parsed = cls(frameworks, num_cpus)
        for index, total in parsed.device_totals().items():
            if total > 1 + EPSILON:
                shares = ", ".join(f"{fw} {r.gpus[index]:g}" for fw, r in frameworks.items() if index in r.gpus)
                raise ConfigError(
                    f"resource request asks {total:g} of {gpu_name(index)} in total ({shares}); "
                    "the fractions of one device sum to at most 1"
                )
        return parsed

    def device_totals(self) -> dict[int, float]:
        """``{device index: fraction}`` summed over the frameworks (named devices only)."""
        totals: dict[int, float] = {}
        for fw in self.frameworks.values():
            for index, fraction in fw.gpus.items():
                totals[index] = totals.get(index, 0.0) + fraction
        return totals

    def to_dict(self) -> dict[str, Any]:
        """The plain dict form (JSON/BSON-safe); ``parse(r.to_dict()) == r``."""
        out: dict[str, Any] = {name: fw.to_dict() for name, fw in self.frameworks.items()}
        if self.num_cpus is not None:
            out["num_cpus"] = self.num_cpus
        return out

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), separators=(", ", ": "))


def _framework(name: str, value: Any) -> FrameworkRequest:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"resource request {name!r} must map to a dict of {_EXPECTED_FW} ({{}} for the CPU only); "
            f"received {value!r}"
        )
    gpus: dict[int, float] = {}
    num_gpus = 0
    for key, amount in value.items():
        where = f"{name}.{key}"
        if key == "num_gpus":
            num_gpus = _count(amount, where, minimum=0)
            continue
        match = _GPU.fullmatch(key) if isinstance(key, str) else None
        if match is None:
            raise ConfigError(f"resource request has unknown device {where!r}; expected {_EXPECTED_FW}")
        gpus[int(match.group(1))] = _fraction(amount, where)
    return FrameworkRequest(gpus, num_gpus)


def _fraction(value: Any, where: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 < value <= 1:
        raise ConfigError(
            f"resource request {where} = {value!r}; expected the fraction of the device's memory, "
            "a number in (0, 1] (1 for the whole device)"
        )
    return float(value)


def _count(value: Any, where: str, *, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ConfigError(f"resource request {where} = {value!r}; expected a whole number >= {minimum}")
    return value
