"""TrainingSettings: what a Trainer asks of its model's runtime, whatever the framework.

The Trainer never touches tensors, so where a model computes (device), in which precision,
how its gradients are clipped, whether it is compiled, and which distributed world it is
part of are settings it hands to the model (``Trainable.setup_training``); the torch
``Model`` implements every one, and a model of another framework maps what it can and
refuses the rest by name. Gradient accumulation is the Trainer's own business (it decides
when ``optimizer_step`` applies), but is passed along so a model that cannot accumulate
says so.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ptdry.core.properties import Property
from ptdry.train.distributed import World

__all__ = ["DEVICE_KINDS", "Device", "PRECISIONS", "TrainingSettings"]

#: What ``Trainer(device=...)`` accepts.
DEVICE_KINDS = "'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'"
#: What ``Trainer(precision=...)`` accepts: full float32, bfloat16 autocast, float16 autocast
#: with a gradient scaler.
PRECISIONS = ("32", "bf16-mixed", "16-mixed")

_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)\Z")


class Device(Property):
    """A device name: ``"auto"`` (CUDA, else MPS, else the CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:<index>"`` or ``"mps"``."""

    kind = DEVICE_KINDS

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError("not a string")
        if not _DEVICE.match(value):
            raise ValueError("not a device name")
        return value


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How the model is asked to train; the defaults ask for nothing special.

    Attributes:
        device: see :class:`Device`.
        precision: one of :data:`PRECISIONS`.
        grad_clip_norm: clip the gradients' global L2 norm to this value (None: no).
        grad_clip_value: clip every gradient element to ``[-value, value]`` (None: no).
        accumulate_grad_batches: batches whose gradients add up before one optimizer step.
        compile: compile the training forward pass (``torch.compile``).
        world: this process's place in a distributed job (None: a single process).
    """

    device: str = "auto"
    precision: str = "32"
    grad_clip_norm: float | None = None
    grad_clip_value: float | None = None
    accumulate_grad_batches: int = 1
    compile: bool = False
    world: World | None = None

    def requested(self) -> dict[str, Any]:
        """The settings that differ from the defaults, by name (what a model that supports
        none of them must refuse)."""
        default = TrainingSettings()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }
