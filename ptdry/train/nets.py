"""Small ready-made networks for examples, tests and quick baselines."""

from __future__ import annotations

import torch

from ptdry.errors import ConfigError

__all__ = ["MLP"]

_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU, "sigmoid": torch.nn.Sigmoid}


class MLP(torch.nn.Module):
    """A multilayer perceptron: ``MLP(64, 128, 10)`` is 64 → 128 → 10 with ReLU in between.

    A plain ``torch.nn.Module`` whose constructor takes only numbers and names, so
    ``ObjectDef(MLP, 64, 128, 10)`` can be stored in a definition and rebuilt.

    Args:
        *sizes: layer widths, input first, output last (at least two).
        dropout: dropout probability after each hidden activation (0: none).
        activation: ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"sigmoid"``.

    Example:
        >>> MLP(64, 128, 10)(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(self, *sizes: int, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ConfigError(f"MLP needs at least two positive integer sizes (input, ..., output); received {sizes!r}")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(_ACTIVATIONS)}; received {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); received {dropout!r}")
        layers: list[torch.nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(torch.nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[activation]())
                if dropout:
                    layers.append(torch.nn.Dropout(dropout))
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))
