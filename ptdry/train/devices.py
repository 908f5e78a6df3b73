"""Devices for torch models: which one ``"auto"`` means, and moving a model there.

``resolve_device("auto")`` is CUDA when torch sees a GPU, else Apple's MPS, else the CPU;
in a distributed job ``"auto"`` and ``"cuda"`` mean this process's GPU (``cuda:LOCAL_RANK``).
:func:`move_optimizer_state` follows a net that moved: an optimizer's state (Adam's moments)
goes to its parameter's device, the way ``Optimizer.load_state_dict`` places it, so a state
saved on a GPU trains on in a CPU process and back.
"""

from __future__ import annotations

from typing import Any

import torch

from ptdry.errors import ConfigError
from ptdry.train.distributed import World
from ptdry.train.settings import DEVICE_KINDS

__all__ = ["batch_to", "move_optimizer_state", "resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str, world: World | None = None) -> torch.device:
    """The torch device ``spec`` names on this machine.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')

    Raises:
        ConfigError: the device is not there (no CUDA, a GPU index beyond those visible, no MPS).
    """
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif _mps_available() and world is None:  # MPS has no process groups
            spec = "mps"
        else:
            spec = "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise ConfigError("device='mps' but this machine has no Apple MPS device; use device='auto' or 'cpu'")
        if world is not None:
            raise ConfigError("device='mps' cannot train with torch.distributed (no MPS process groups); use device='cpu'")
        return torch.device("mps")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={spec!r} but torch sees no CUDA device (torch {torch.__version__}"
                f"{', a CPU build' if torch.version.cuda is None else ''}); use device='auto' or 'cpu'"
            )
        index = int(spec.partition(":")[2]) if ":" in spec else (world.local_rank if world is not None else 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(f"device={spec!r} but torch sees {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
        return torch.device("cuda", index)
    raise ConfigError(f"device must be {DEVICE_KINDS}; received {spec!r}")


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Put each parameter's optimizer state on ``device`` (a scalar ``step`` stays where the
    optimizer keeps it, as ``Optimizer.load_state_dict`` does)."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step" and value.device != device:
                state[key] = value.to(device)


def batch_to(value: Any, device: torch.device, pin: bool) -> Any:
    """``value`` (tensors, nested in tuples, lists and dicts) on ``device``; with ``pin``
    (CUDA), host tensors are copied from pinned memory without blocking."""
    if isinstance(value, torch.Tensor):
        if value.device == device:
            return value
        if pin and value.device.type == "cpu":
            return value.pin_memory().to(device, non_blocking=True)
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(batch_to(v, device, pin) for v in value)
    if isinstance(value, dict):
        return {k: batch_to(v, device, pin) for k, v in value.items()}
    return value
