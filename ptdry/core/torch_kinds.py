"""Recognize torch modules, optimizers and schedulers without ever importing torch.

Until something else has imported torch, nothing can be a torch object, so these checks
answer False (or an empty tuple) and ``import ptdry`` stays light.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["is_torch_module", "torch_child_types"]

_CHILD_TYPES: tuple[type, ...] | None = None


def torch_child_types() -> tuple[type, ...]:
    """Torch types that are children of a Module: modules, optimizers, LR schedulers."""
    global _CHILD_TYPES
    if _CHILD_TYPES is None:
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "optim"):
            return ()
        from torch.optim import lr_scheduler

        _CHILD_TYPES = (
            torch.nn.Module,
            torch.optim.Optimizer,
            lr_scheduler.LRScheduler,
            lr_scheduler.ReduceLROnPlateau,
        )
    return _CHILD_TYPES


def is_torch_module(obj: Any) -> bool:
    """True for ``torch.nn.Module`` instances (including ptdry Modules that inherit it)."""
    torch = sys.modules.get("torch")
    return torch is not None and hasattr(torch, "nn") and isinstance(obj, torch.nn.Module)
