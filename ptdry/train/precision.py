"""Precision for torch models: autocast and, for float16, a gradient scaler.

``"32"`` computes in float32. ``"bf16-mixed"`` runs the forward pass and the loss under
``torch.autocast`` in bfloat16 (parameters and optimizer state stay float32; bfloat16 has
float32's range, so no scaling is needed). ``"16-mixed"`` does the same in float16, whose
small range needs the loss scaled before backward and the gradients unscaled before the
step: a ``torch.amp.GradScaler``, whose state (the current scale and its growth counter)
is part of the trainer's checkpoints, so a resumed run scales exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ptdry.errors import ConfigError
from ptdry.train.settings import PRECISIONS

__all__ = ["Precision"]

_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class Precision:
    """Autocast and loss scaling of one precision on one device.

    Example:
        >>> p = Precision("bf16-mixed", torch.device("cpu"))
        >>> with p.autocast():
        ...     y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
        >>> y.dtype, p.scaler is None
        (torch.bfloat16, True)

    Raises:
        ConfigError: an unknown precision, or one the device cannot compute in.
    """

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}; received {precision!r}")
        self.name = precision
        self.device_type = device.type
        self.dtype = _DTYPES.get(precision)
        if precision == "bf16-mixed" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                f"precision='bf16-mixed' but {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                "use precision='16-mixed'"
            )
        self.scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None
        self._unscaled = False

    def autocast(self) -> Any:
        """The context the forward pass and the loss run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of ``loss``, scaled first with float16."""
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale (once per step), so clipping and callbacks see
        their true values."""
        if self.scaler is not None and not self._unscaled:
            self.scaler.unscale_(optimizer)
            self._unscaled = True

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Apply the gradients; with float16, skip a step whose gradients overflowed and
        adjust the scale."""
        if self.scaler is None:
            optimizer.step()
            return
        self.unscale(optimizer)
        self.scaler.step(optimizer)
        self.scaler.update()
        self._unscaled = False

    def state_dict(self) -> dict[str, Any] | None:
        """The scaler's state (None without a scaler)."""
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(dict(state))
